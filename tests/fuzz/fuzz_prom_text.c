/* The Prometheus text exposition format (collector/prom_text.h) as the prometheus_scrape input
 * reads a page, in both dialects (the text format, OpenMetrics text), and each sample made into
 * its event (collector/prom_event.h) with a job and an instance label, as the input writes it.
 *
 * What must hold: no crash, no read past the page; the count returned is the samples handed over;
 * every sample's name is a valid metric name and its labels valid label names without one given
 * twice; every line that is not blank, a comment or a sample is an error with a reason; no two
 * samples of the page are one series; each event is one JSON object without duplicate keys of kind
 * "metric"; a second parse of the same page by the same parser gives the same result. */
#include "fuzz.h"
#include "collector/prom_event.h"
#include "collector/prom_text.h"

struct ctx {
    int samples, errors;
    struct buf all, ev;
};

static int valid_name(const char *s, size_t n, int metric)
{
    if (!n || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (metric && c == ':')))
            return 0;
    }
    return 1;
}

static void on_sample(void *ud, const struct prom_sample *s)
{
    struct ctx *c = ud;
    c->samples++;
    FUZZ_CHECK(valid_name(s->name, s->nlen, 1), "sample name %.*s", (int)s->nlen, s->name);
    struct prom_label l[260];
    FUZZ_CHECK(s->nlabels <= 256, "%zu labels", s->nlabels);
    for (size_t i = 0; i < s->nlabels; i++) {
        FUZZ_CHECK(valid_name(s->labels[i].name, s->labels[i].nlen, 0), "label name %.*s",
                   (int)s->labels[i].nlen, s->labels[i].name);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(!(s->labels[i].nlen == s->labels[j].nlen &&
                         !memcmp(s->labels[i].name, s->labels[j].name, s->labels[i].nlen)),
                       "label %.*s twice", (int)s->labels[i].nlen, s->labels[i].name);
        l[i] = s->labels[i];
        /* What the input does with a scraped label that a target label would replace. */
        if ((l[i].nlen == 3 && !memcmp(l[i].name, "job", 3)) ||
            (l[i].nlen == 8 && !memcmp(l[i].name, "instance", 8))) {
            l[i].name = l[i].nlen == 3 ? "exported_job" : "exported_instance";
            l[i].nlen += 9;
        }
    }
    l[s->nlabels] = (struct prom_label){"job", "j", 3, 1};
    l[s->nlabels + 1] = (struct prom_label){"instance", "h:1", 8, 3};
    struct recv_time rt = fuzz_recv_time();
    buf_reset(&c->ev);
    FUZZ_CHECK(prom_event_write(&c->ev, "scrape", &rt, s->ts_ms, s->name, s->nlen, s->type,
                                s->value, l, s->nlabels + 2) == 0,
               "prom_event_write failed");
    fuzz_check_object("prom_text", c->ev.data, c->ev.len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES);
    buf_append(&c->all, c->ev.data, c->ev.len);
    buf_putc(&c->all, '\n');
}

static void on_error(void *ud, const char *why, const char *line, size_t len)
{
    struct ctx *c = ud;
    c->errors++;
    FUZZ_CHECK(why && *why, "an error without a reason");
    buf_append(&c->all, why, strlen(why));
    buf_putc(&c->all, '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct prom_text p;
    prom_text_init(&p);
    for (int om = 0; om < 2; om++) {
        struct buf first = {0};
        for (int round = 0; round < 2; round++) {
            struct ctx c = {0};
            const struct prom_text_out out = {on_sample, on_error, &c};
            int n = prom_text_parse(&p, (const char *)data, size, om, 4096, &out);
            FUZZ_CHECK(n == c.samples, "returned %d, handed over %d samples", n, c.samples);
            if (round == 0)
                buf_append(&first, c.all.data ? c.all.data : "", c.all.len);
            else
                FUZZ_CHECK(first.len == c.all.len &&
                               (!c.all.len || !memcmp(first.data, c.all.data, c.all.len)),
                           "a second parse gave another result");
            buf_free(&c.all);
            buf_free(&c.ev);
        }
        buf_free(&first);
    }
    prom_text_free(&p);
    return 0;
}
