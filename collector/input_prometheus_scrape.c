/* `prometheus_scrape` input: GETs each target's /metrics every `interval`, as Prometheus scrapes,
 * and makes each sample a metric event (collector/prom_text.h parses the text exposition format,
 * and OpenMetrics' text where it is the same; collector/prom_event.h writes the events) with the
 * labels `job` and `instance` added (a scraped label of either name becomes exported_<name>, as
 * Prometheus does by default) and the input's own `labels`. Every scrape also gives Prometheus'
 * synthetic series for the target: `up` (1 when the scrape worked, 0 when not),
 * `scrape_duration_seconds` and `scrape_samples_scraped`; a failed scrape (no answer within
 * `timeout`, an HTTP error, a body over max_body, a page of which nothing reads) is counted in
 * scrape_failed and logged (rate-limited), and never holds the other targets: the GETs run on the
 * collector's loop through libcurl's multi interface (collector/curlev.h), each target its own
 * transfer and timer. Lines that do not read (longer than max_line, not a sample, a series already
 * on the page) are dead-lettered with the reason, the rest of the page delivered. While the
 * pipeline is full (`block`) no scrape starts (those skipped are counted in scrape_failed): a
 * scrape's samples are the state at the time, and one taken later is as good. */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/collector.h"
#include "collector/curlev.h"
#include "collector/input.h"
#include "collector/prom_event.h"
#include "collector/prom_text.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/timeutil.h"

struct scrape_opts {
    struct input_common common;
    struct cfg_strlist targets;
    int64_t interval;
    int64_t timeout;
    char *job;
    struct cfg_strmap labels;
    struct cfg_strmap headers;
    int64_t max_body;
    int64_t max_line;
};

struct scrape;

struct target {
    struct scrape *s;
    char *url;
    char *instance;  /* host:port */
    uint64_t stream; /* its events stay in one partition: a series' samples in order */
    struct curlev_get *get;
    struct event *timer;
    int64_t started_ms;        /* the scrape's time, the time of its samples that have none */
    int skipped;               /* the last turn was skipped (pipeline full): counted once per run */
    struct log_limit fail_log; /* each target's failures logged once a second at most */
};

struct scrape {
    struct input *in;
    const struct scrape_opts *o;
    const char *job; /* o->job, or the input's name */
    struct curlev *curl;
    struct target *t;
    size_t nt;
    int paused;
    struct prom_text parser;
    struct target *cur; /* the target whose page is being handed over */
    int samples;
    struct prom_label *labels; /* a sample's labels with the target's */
    size_t caplabels;
    struct buf names; /* exported_<name> */
    const char **hdr;
    size_t nhdr;
};

/* ---- events ---- */

/* The target's labels: job, instance, then the input's labels. */
static size_t target_labels(const struct scrape *s, const struct target *t, struct prom_label *l)
{
    size_t n = 0;
    l[n++] = (struct prom_label){"job", s->job, 3, strlen(s->job)};
    l[n++] = (struct prom_label){"instance", t->instance, 8, strlen(t->instance)};
    for (int i = 0; i < s->o->labels.n; i++)
        l[n++] = (struct prom_label){s->o->labels.key[i], s->o->labels.val[i],
                                     strlen(s->o->labels.key[i]), strlen(s->o->labels.val[i])};
    return n;
}

static int is_target_label(const struct scrape *s, const char *n, size_t len)
{
    if ((len == 3 && !memcmp(n, "job", 3)) || (len == 8 && !memcmp(n, "instance", 8)))
        return 1;
    for (int i = 0; i < s->o->labels.n; i++) {
        if (strlen(s->o->labels.key[i]) == len && !memcmp(s->o->labels.key[i], n, len))
            return 1;
    }
    return 0;
}

/* A sample of the page: its labels (one that a target label would replace renamed
 * exported_<name>) and the target's, its time (the scrape's, unless it has its own). */
static void emit(struct scrape *s, const struct prom_sample *p)
{
    struct input *in = s->in;
    size_t need = p->nlabels + 2 + (size_t)s->o->labels.n;
    if (need > s->caplabels) {
        struct prom_label *l = realloc(s->labels, need * sizeof(*l));
        if (!l) {
            collector_dead(in, "out of memory building the sample's event", p->name, p->nlen);
            return;
        }
        s->labels = l;
        s->caplabels = need;
    }
    buf_reset(&s->names);
    size_t n = 0;
    int renamed = 0;
    for (size_t i = 0; i < p->nlabels; i++) {
        struct prom_label l = p->labels[i];
        if (is_target_label(s, l.name, l.nlen)) {
            renamed = 1;
            l.nlen += 9; /* its name is written below, once s->names has stopped moving */
        }
        s->labels[n++] = l;
    }
    if (renamed) {
        for (size_t i = 0; i < n; i++) {
            if (s->labels[i].nlen == p->labels[i].nlen)
                continue;
            size_t at = s->names.len;
            buf_puts(&s->names, "exported_");
            buf_append(&s->names, p->labels[i].name, p->labels[i].nlen);
            s->labels[i].name = (const char *)(uintptr_t)at; /* an offset for now */
        }
        for (size_t i = 0; i < n; i++) {
            if (s->labels[i].nlen != p->labels[i].nlen)
                s->labels[i].name = s->names.data + (uintptr_t)s->labels[i].name;
        }
    }
    n += target_labels(s, s->cur, s->labels + n);
    size_t at;
    struct buf *out = collector_buffer(in->col, &at);
    int64_t ts = p->ts_ms != INT64_MIN ? p->ts_ms : s->cur->started_ms;
    if (prom_event_write(out, in->name, collector_now(in->col), ts, p->name, p->nlen, p->type,
                         p->value, s->labels, n))
        collector_dead(in, "out of memory building the sample's event", p->name, p->nlen);
    else
        collector_event(in, out->data + at, out->len - at);
    s->samples++;
}

static void on_sample(void *ud, const struct prom_sample *p)
{
    emit(ud, p);
}

static void on_bad_line(void *ud, const char *why, const char *line, size_t len)
{
    struct scrape *s = ud;
    char reason[256];
    snprintf(reason, sizeof(reason), "%s (target %s)", why, s->cur->url);
    collector_dead(s->in, reason, line, len);
}

/* One of Prometheus' synthetic series for the target (up, scrape_duration_seconds, ...). */
static void synthetic(struct scrape *s, const char *name, double v)
{
    const struct prom_sample p = {name, strlen(name), PROM_GAUGE, v, INT64_MIN, NULL, 0};
    emit(s, &p);
}

/* ---- scrapes ---- */

static void failed(struct scrape *s, struct target *t, const char *why)
{
    counter_add(&s->in->stats.scrape_failed, 1);
    int64_t sup = log_limit_take(&t->fail_log);
    if (sup >= 0)
        log_warn("scrape failed", "{s:s, s:s, s:s, s:I}", "input", s->in->name, "target", t->url,
                 "error", why, "suppressed", (json_int_t)sup);
}

/* The page of a target, or why there is none: its samples and up, scrape_duration_seconds and
 * scrape_samples_scraped, handed over together (one read of the collector). */
static void on_done(void *ud, const struct curlev_result *r)
{
    struct target *t = ud;
    struct scrape *s = t->s;
    struct input *in = s->in;
    char why[300] = "";
    counter_add(&in->stats.bytes, r->len);
    collector_begin_stream(in->col, t->stream);
    s->cur = t;
    s->samples = 0;
    int ok = 0;
    if (r->error) {
        snprintf(why, sizeof(why), "%s", r->error);
    } else if (r->status != 200) {
        snprintf(why, sizeof(why), "HTTP %ld", r->status);
    } else {
        int om = !strncmp(r->ctype, "application/openmetrics-text", 28);
        const struct prom_text_out out = {on_sample, on_bad_line, s};
        uint64_t dead0 = counter_get(&in->stats.dead_letter);
        int n = prom_text_parse(&s->parser, r->body, r->len, om, (size_t)s->o->max_line, &out);
        ok = n >= 0;
        if (n < 0)
            snprintf(why, sizeof(why), "out of memory parsing the page");
        else if (n == 0 && counter_get(&in->stats.dead_letter) > dead0) {
            ok = 0;           /* nothing on the page read: not an exposition page */
            size_t shown = 0; /* its first line (the body is not NUL-terminated) */
            while (shown < r->len && shown < 60 && r->body[shown] != '\n' && r->body[shown] != '\r')
                shown++;
            snprintf(why, sizeof(why), "not the text exposition format (%s: %.*s)",
                     r->ctype[0] ? r->ctype : "no Content-Type", (int)shown, r->body);
        }
    }
    int scraped = s->samples;
    synthetic(s, "up", ok);
    synthetic(s, "scrape_duration_seconds", (double)r->took_ns / 1e9);
    synthetic(s, "scrape_samples_scraped", scraped);
    collector_commit(in->col);
    counter_add(&in->stats.scrapes, 1);
    if (!ok)
        failed(s, t, why);
    s->cur = NULL;
}

static void schedule(struct scrape *s, struct target *t)
{
    struct timeval tv = time_timeval(s->o->interval);
    evtimer_add(t->timer, &tv);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct target *t = arg;
    struct scrape *s = t->s;
    schedule(s, t);
    if (s->paused || collector_paused(s->in->col)) {
        if (!t->skipped++)
            failed(s, t, "the pipeline is full: scrape skipped");
        else
            counter_add(&s->in->stats.scrape_failed, 1);
        return;
    }
    t->skipped = 0;
    if (curlev_get_busy(t->get)) {
        failed(s, t, "the previous scrape is still running (timeout longer than interval)");
        return;
    }
    t->started_ms = time_now_ns() / 1000000;
    if (curlev_get_start(t->get, t->url, s->hdr, s->nhdr, s->o->timeout, (size_t)s->o->max_body))
        failed(s, t, "out of memory starting the scrape");
}

/* ---- life ---- */

/* A target as configured: a URL, or host:port for http://host:port/metrics. Its instance is the
 * URL's host:port. */
static int add_target(struct scrape *s, const char *spec, char *err, size_t errlen)
{
    struct target *t = &s->t[s->nt];
    struct buf u = {0};
    int has_scheme = !strncmp(spec, "http://", 7) || !strncmp(spec, "https://", 8);
    if (!has_scheme && strstr(spec, "://")) {
        snprintf(err, errlen, "input %s: target %s: an http:// or https:// URL, or host:port",
                 s->in->name, spec);
        return -EINVAL;
    }
    if (buf_printf(&u, "%s%s%s", has_scheme ? "" : "http://", spec,
                   has_scheme || strchr(spec, '/') ? "" : "/metrics") < 0 ||
        buf_putc(&u, '\0'))
        return -ENOMEM;
    t->url = u.data;
    const char *h = strstr(t->url, "://") + 3;
    size_t hl = strcspn(h, "/?#");
    t->instance = strndup(h, hl);
    t->s = s;
    t->stream = hash64(t->url, strlen(t->url)) | 1;
    t->get = curlev_get_new(s->curl, on_done, t);
    t->timer = evtimer_new(s->in->base, on_tick, t);
    if (!t->instance || !t->get || !t->timer)
        return -ENOMEM;
    s->nt++;
    return 0;
}

static int scrape_start(struct input *in, char *err, size_t errlen)
{
    struct scrape *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    in->priv = s;
    s->in = in;
    s->o = in->opts;
    prom_text_init(&s->parser);
    s->job = *s->o->job ? s->o->job : in->name;
    if (s->o->timeout > s->o->interval) {
        snprintf(err, errlen, "input %s: timeout must not be longer than interval", in->name);
        return -EINVAL;
    }
    if (s->o->targets.n == 0) {
        snprintf(err, errlen, "input %s: targets: at least one", in->name);
        return -EINVAL;
    }
    curlev_global_init();
    s->curl = curlev_new(in->base);
    s->t = calloc((size_t)s->o->targets.n, sizeof(*s->t));
    s->hdr = calloc((size_t)s->o->headers.n + 1, sizeof(*s->hdr));
    if (!s->curl || !s->t || !s->hdr)
        return -ENOMEM;
    /* Prometheus' Accept: the text format first, OpenMetrics' where the target prefers it. */
    s->hdr[s->nhdr++] = "Accept: text/plain;version=0.0.4;q=1,application/openmetrics-text;"
                        "version=1.0.0;q=0.5,*/*;q=0.1";
    for (int i = 0; i < s->o->headers.n; i++) {
        struct buf h = {0};
        if (buf_printf(&h, "%s: %s", s->o->headers.key[i], s->o->headers.val[i]) < 0)
            return -ENOMEM;
        s->hdr[s->nhdr++] = h.data;
    }
    for (int i = 0; i < s->o->targets.n; i++) {
        int rc = add_target(s, s->o->targets.v[i], err, errlen);
        if (rc)
            return rc == -ENOMEM
                       ? (snprintf(err, errlen, "input %s: out of memory", in->name), -ENOMEM)
                       : rc;
    }
    /* The first scrapes start now, spread over the first interval's first second. */
    for (size_t i = 0; i < s->nt; i++) {
        struct timeval tv = {0, (suseconds_t)(i * 1000000 / s->nt)};
        evtimer_add(s->t[i].timer, &tv);
    }
    log_info("input scraping", "{s:s, s:i, s:f}", "input", in->name, "targets", (int)s->nt,
             "interval_s", (double)s->o->interval / 1e9);
    return 0;
}

static void scrape_pause(struct input *in)
{
    struct scrape *s = in->priv;
    if (s)
        s->paused = 1;
}

static void scrape_resume(struct input *in)
{
    struct scrape *s = in->priv;
    if (s)
        s->paused = 0;
}

static void scrape_stop(struct input *in)
{
    struct scrape *s = in->priv;
    for (size_t i = 0; s && i < s->nt; i++) {
        if (s->t[i].timer)
            evtimer_del(s->t[i].timer);
    }
}

static void scrape_destroy(struct input *in)
{
    struct scrape *s = in->priv;
    if (!s)
        return;
    scrape_stop(in);
    for (size_t i = 0; i < s->nt; i++) {
        curlev_get_free(s->t[i].get);
        if (s->t[i].timer)
            event_free(s->t[i].timer);
        free(s->t[i].url);
        free(s->t[i].instance);
    }
    curlev_free(s->curl);
    for (size_t i = 1; i < s->nhdr; i++)
        free((char *)s->hdr[i]);
    free(s->hdr);
    free(s->t);
    free(s->labels);
    buf_free(&s->names);
    prom_text_free(&s->parser);
    free(s);
    in->priv = NULL;
}

static const struct cfg_key scrape_keys[] = {
    {"targets", CFG_STRLIST, offsetof(struct scrape_opts, targets), NULL,
     "What to scrape: URLs (http://host:9100/metrics) or host:port (then /metrics over http).",
     CFG_REQUIRED},
    {"interval", CFG_DURATION, offsetof(struct scrape_opts, interval), "15s",
     "Time between two scrapes of a target.", 0, 0.1, 86400},
    {"timeout", CFG_DURATION, offsetof(struct scrape_opts, timeout), "10s",
     "A scrape not answered whole within this time fails (up 0); at most interval.", 0, 0.01,
     86400},
    {"job", CFG_STRING, offsetof(struct scrape_opts, job), "",
     "The job label of every sample (default: the input's name)."},
    {"labels", CFG_STRMAP, offsetof(struct scrape_opts, labels), NULL,
     "Labels added to every sample (a scraped label of the same name becomes exported_<name>)."},
    {"headers", CFG_STRMAP, offsetof(struct scrape_opts, headers), NULL,
     "Headers sent with every scrape, e.g. Authorization: \"Bearer ${TOKEN}\".", CFG_SECRET},
    {"max_body", CFG_SIZE, offsetof(struct scrape_opts, max_body), "16MiB",
     "Largest page (decompressed); a longer one fails the scrape.", 0, 1024, 1073741824},
    {"max_line", CFG_SIZE, offsetof(struct scrape_opts, max_line), "64KiB",
     "Longest line of a page; a longer one is dead-lettered (its first max_line bytes), the rest "
     "of the page read.",
     0, 256, 16777216},
    INPUT_COMMON_KEYS(struct scrape_opts),
    {0},
};

const struct input_type input_prometheus_scrape = {
    .cfg = {.name = "prometheus_scrape",
            .desc = "Scrapes Prometheus /metrics endpoints (text exposition format, OpenMetrics "
                    "text) every interval into metric events, with job and instance labels and "
                    "up per target.",
            .size = sizeof(struct scrape_opts),
            .keys = scrape_keys},
    .start = scrape_start,
    .pause = scrape_pause,
    .resume = scrape_resume,
    .stop = scrape_stop,
    .destroy = scrape_destroy,
};
