/* OTLP/JSON export requests (collector/otlp.h, OTLP_JSON): the same body decoded as logs, traces
 * and metrics, as the http input does for /v1/logs, /v1/traces and /v1/metrics.
 *
 * What must hold for each signal: the count returned is the number of records handed over
 * (events and invalid records), or -EINVAL / -E2BIG with a reason and nothing handed over;
 * every event is one line holding a JSON object with no duplicate key (attribute keys are merged
 * into one object, so clashes must be resolved, not repeated; a member the body repeats is
 * decoded once); every invalid record has a reason and is a part of the body. A second decode
 * of the same body by the same decoder (its arena and buffers reused) gives the same bytes. */
#include "fuzz.h"
#include "collector/otlp.h"

struct ctx {
    const char *signal;
    const char *body;
    size_t size;
    int events, invalid;
    struct buf all; /* every event and reason, to compare two decodes */
};

static void on_event(void *ud, const char *json, size_t len)
{
    struct ctx *c = ud;
    c->events++;
    fuzz_check_object(c->signal, json, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES);
    buf_append(&c->all, json, len);
    buf_putc(&c->all, '\n');
}

static void on_invalid(void *ud, const char *why, const char *raw, size_t len)
{
    struct ctx *c = ud;
    c->invalid++;
    FUZZ_CHECK(why && *why, "%s: an invalid record without a reason", c->signal);
    FUZZ_CHECK(raw >= c->body && raw + len <= c->body + c->size,
               "%s: an invalid record's text is not in the body", c->signal);
    FUZZ_CHECK(c->events == 0, "%s: an invalid record after the events", c->signal);
    buf_puts(&c->all, why);
    buf_putc(&c->all, '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"otlp logs", "otlp traces", "otlp metrics"};
    static const enum otlp_signal sigs[] = {OTLP_LOGS, OTLP_TRACES, OTLP_METRICS};
    const char *body = (const char *)data;
    struct recv_time rt = fuzz_recv_time();
    struct otlp_decoder *d = otlp_decoder_new("otlp");
    FUZZ_CHECK(d, "otlp_decoder_new failed");
    for (int s = 0; s < 3; s++) {
        struct buf first = {0};
        for (int round = 0; round < 2; round++) {
            struct ctx c = {names[s], body, size, 0, 0, {0}};
            const struct otlp_out out = {on_event, on_invalid, &c};
            const char *err = NULL;
            int n = otlp_decode(d, sigs[s], OTLP_JSON, body, size, &rt, &out, &err);
            if (n < 0) {
                FUZZ_CHECK((n == -EINVAL || n == -E2BIG) && err && *err,
                           "%s: returned %d (reason %s)", names[s], n, err ? err : "none");
                FUZZ_CHECK(c.events + c.invalid == 0,
                           "%s: refused the body (%s) after handing over %d records", names[s], err,
                           c.events + c.invalid);
            } else {
                FUZZ_CHECK(n == c.events + c.invalid, "%s: returned %d but handed over %d",
                           names[s], n, c.events + c.invalid);
            }
            buf_putc(&c.all, (char)(n < 0 ? -n : 0));
            if (round == 0)
                first = c.all;
            else
                FUZZ_CHECK(first.len == c.all.len && !memcmp(first.data, c.all.data, first.len),
                           "%s: a second decode gave other records", names[s]);
            if (round == 1)
                buf_free(&c.all);
        }
        buf_free(&first);
    }
    otlp_decoder_free(d);
    return 0;
}
