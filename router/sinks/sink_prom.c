/* `prometheus_remote_write` sink: metric events (docs/metrics.md) sent to a Prometheus remote
 * write receiver (Prometheus with --web.enable-remote-write-receiver, Mimir, Thanos, Cortex,
 * VictoriaMetrics, Grafana Cloud, another spillway) as the Remote-Write 1.0 specification says:
 * a WriteRequest in protobuf (router/sinks/prom_encode.h: names and labels translated, deltas made
 * cumulative, series sorted, samples in time order), snappy's block format, POSTed with
 * Content-Encoding: snappy, Content-Type: application/x-protobuf and
 * X-Prometheus-Remote-Write-Version: 0.1.0 by the shared libcurl client (httpc.h). A span of queued
 * events goes out in requests of batch_max_events events. The answers: 2xx accepted; 5xx and 429
 * retried with backoff (Retry-After believed), the same request, encoded once (the deltas it made
 * cumulative are not added twice); any other answer refuses the request for good (its events
 * dead-lettered with the answer), and an answer about out-of-order, too old or duplicate samples
 * is counted as such. Events with no Prometheus form are dead-lettered with the reason before
 * anything is sent. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/ring.h"
#include "core/snap.h"
#include "router/sinks/httpc.h"
#include "router/sinks/prom_encode.h"
#include "router/sinks/sink.h"

struct prom_opts {
    struct sink_common common;
    char *url;
    struct cfg_strmap headers;
    struct cfg_strmap external_labels;
    struct cfg_strlist buckets;
    int64_t max_series;
    int64_t timeout;
    int64_t connect_timeout;
    struct httpc_tls tls;
};

/* A record of the request being delivered. */
struct item {
    const char *rec;
    size_t len;
};

struct prom_sink {
    struct httpc *http;
    struct prom_encoder *enc;
    struct prom_encode_opts eo;
    double *buckets;
    struct buf msg, body;
    struct item *items;
    size_t nitems, capitems;
    /* The request being delivered: span[progress..chunk_end), encoded into body. */
    size_t progress, chunk_end;
    int encoded;
    struct log_limit lim;
    char why[512];
};

static const char *const request_headers[] = {
    "Content-Encoding: snappy",
    "Content-Type: application/x-protobuf",
    "X-Prometheus-Remote-Write-Version: 0.1.0",
};

/* ---- opening ---- */

/* Prometheus' default buckets (client_golang's DefBuckets). */
static const char *const default_buckets[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                              "0.5",   "1",    "2.5",   "5",    "10"};

/* The bucket bounds for single observations: numbers, ascending. */
static int parse_buckets(struct sink *s, struct prom_sink *h, char *err, size_t errlen)
{
    const struct prom_opts *o = s->opts;
    int n = o->buckets.n;
    char *const *text = o->buckets.v;
    if (n == 0) {
        n = (int)(sizeof(default_buckets) / sizeof(default_buckets[0]));
        text = (char *const *)default_buckets;
    }
    h->buckets = calloc((size_t)n, sizeof(double));
    if (!h->buckets)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        char *end;
        double v = strtod(text[i], &end);
        if (end == text[i] || *end || !isfinite(v) || (i && !(v > h->buckets[i - 1]))) {
            snprintf(err, errlen, "sink %s: buckets: \"%s\": the bounds must be numbers, ascending",
                     s->name, text[i]);
            return -EINVAL;
        }
        h->buckets[i] = v;
    }
    h->eo.buckets = h->buckets;
    h->eo.nbuckets = (size_t)n;
    return 0;
}

static int prom_open(struct sink *s, char *err, size_t errlen)
{
    httpc_global_init(); /* on the main thread, before any sink thread runs libcurl */
    const struct prom_opts *o = s->opts;
    struct prom_sink *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    s->priv = h;
    if (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8)) {
        snprintf(err, errlen, "sink %s: url %s: an http:// or https:// URL", s->name, o->url);
        return -EINVAL;
    }
    int rc = parse_buckets(s, h, err, errlen);
    if (rc)
        return rc;
    h->eo.external_labels = &o->external_labels;
    h->eo.max_series = o->max_series;
    const struct httpc_opts ho = {.timeout = o->timeout,
                                  .connect_timeout = o->connect_timeout,
                                  .tls = &o->tls,
                                  .headers = &o->headers,
                                  .version = HTTPC_HTTP1};
    h->http = httpc_new(&ho);
    h->enc = prom_encoder_new(&h->eo);
    if (!h->http || !h->enc) {
        snprintf(err, errlen, "sink %s: out of memory", s->name);
        return -ENOMEM;
    }
    return 0;
}

static void prom_close(struct sink *s)
{
    struct prom_sink *h = s->priv;
    if (!h)
        return;
    httpc_free(h->http);
    prom_encoder_free(h->enc);
    free(h->buckets);
    free(h->items);
    buf_free(&h->msg);
    buf_free(&h->body);
    free(h);
    s->priv = NULL;
}

/* ---- the answers ---- */

static void log_answer(struct sink *s, struct prom_sink *h, const char *what)
{
    int64_t sup = log_limit_take(&h->lim);
    if (sup >= 0)
        log_warn(what, "{s:s, s:I, s:s, s:I}", "sink", s->name, "events", (json_int_t)h->nitems,
                 "error", h->why, "suppressed", (json_int_t)sup);
}

/* A refusal that says some samples came out of order, too old, or twice with another value (what
 * Prometheus answers with 400 for the whole request): counted as such. */
static void count_refusal(struct sink *s, const struct buf *body)
{
    static const char *const ooo[] = {"out of order", "out-of-order", "out of bounds", "too old"};
    size_t n = body->len < 4096 ? body->len : 4096;
    char text[4097];
    memcpy(text, body->data ? body->data : "", n);
    text[n] = '\0';
    for (size_t i = 0; i < sizeof(ooo) / sizeof(ooo[0]); i++) {
        if (strstr(text, ooo[i])) {
            counter_add(&s->stats.out_of_order, 1);
            return;
        }
    }
    if (strstr(text, "duplicate sample"))
        counter_add(&s->stats.duplicate, 1);
}

static enum sink_result answer(struct sink *s, struct prom_sink *h, const struct httpc_answer *a)
{
    if (a->status >= 200 && a->status < 300) {
        counter_add(&s->stats.bytes, h->body.len);
        return SINK_OK;
    }
    snprintf(h->why, sizeof(h->why), "HTTP %ld: %.*s", a->status, httpc_shown(&a->body, 300),
             a->body.data ? a->body.data : "");
    /* Trailing newlines (Go's http.Error ends with one) would end up in the dead letters. */
    size_t n = strlen(h->why);
    while (n && (h->why[n - 1] == '\n' || h->why[n - 1] == '\r'))
        h->why[--n] = '\0';
    sink_set_error(s, "%s", h->why);
    if (a->status >= 500 || a->status == 429) {
        if (a->retry_after > 0)
            sink_retry_after(s, a->retry_after);
        log_answer(s, h, "prometheus_remote_write sink: will retry");
        return SINK_RETRY;
    }
    count_refusal(s, &a->body);
    for (size_t i = 0; i < h->nitems; i++)
        sink_refuse(s, h->items[i].rec, h->items[i].len, h->why);
    log_answer(s, h, "prometheus_remote_write sink: the destination refused a request");
    return SINK_OK;
}

/* ---- sending ---- */

static int push_item(struct prom_sink *h, const char *rec, size_t len)
{
    if (h->nitems == h->capitems) {
        size_t cap = h->capitems ? h->capitems * 2 : 256;
        struct item *v = realloc(h->items, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        h->items = v;
        h->capitems = cap;
    }
    h->items[h->nitems++] = (struct item){rec, len};
    return 0;
}

/* The next request of the span, from progress: up to batch_max_events events and about
 * batch_max_bytes of them, compressed into h->body; an event with no Prometheus form is
 * dead-lettered with the reason. */
static int encode_chunk(struct sink *s, struct prom_sink *h, const char *span, size_t len)
{
    const struct prom_opts *o = s->opts;
    size_t max_bytes = o->common.batch_bytes > 0 ? (size_t)o->common.batch_bytes : 1 << 20;
    size_t max_events = (size_t)o->common.batch_events, n = 0, bytes = 0, off = h->progress;
    prom_encoder_reset(h->enc);
    h->nitems = 0;
    while (off < len && n < max_events && (n == 0 || bytes < max_bytes)) {
        const struct ring_rec *r = (const struct ring_rec *)(span + off);
        const char *data = RING_REC_DATA(r), *why;
        int rc = prom_encoder_add(h->enc, data, r->len, &why);
        if (rc == -ENOMEM || (rc == 0 && push_item(h, data, r->len)))
            return -ENOMEM;
        if (rc) {
            snprintf(h->why, sizeof(h->why), "%s", why);
            sink_set_error(s, "%s", h->why);
            sink_refuse(s, data, r->len, h->why);
            int64_t sup = log_limit_take(&h->lim);
            if (sup >= 0)
                log_warn("prometheus_remote_write sink: an event has no Prometheus form: "
                         "dead-lettered",
                         "{s:s, s:s, s:I}", "sink", s->name, "error", h->why, "suppressed",
                         (json_int_t)sup);
        }
        n++;
        bytes += r->len;
        off += RING_REC_SIZE(r->len);
    }
    h->chunk_end = off;
    if (h->nitems &&
        (prom_encoder_write(h->enc, &h->msg) || snap_compress(h->msg.data, h->msg.len, &h->body)))
        return -ENOMEM;
    h->encoded = 1;
    return 0;
}

static enum sink_result prom_write(struct sink *s, const char *span, size_t len, uint64_t nrec)
{
    struct prom_sink *h = s->priv;
    const struct prom_opts *o = s->opts;
    while (h->progress < len) {
        if (!h->encoded && encode_chunk(s, h, span, len)) {
            /* The deltas of what was added are in the table already: this chunk cannot be
             * encoded again without counting them twice, so its events are dead-lettered. */
            snprintf(h->why, sizeof(h->why), "out of memory encoding the request");
            sink_set_error(s, "%s", h->why);
            for (size_t i = 0; i < h->nitems; i++)
                sink_refuse(s, h->items[i].rec, h->items[i].len, h->why);
            h->encoded = 1;
            h->nitems = 0;
        }
        if (h->nitems) {
            const char *why;
            if (httpc_post(h->http, o->url, request_headers, 3, h->body.data, h->body.len, &why)) {
                snprintf(h->why, sizeof(h->why), "%s", why);
                sink_set_error(s, "%s", h->why);
                log_answer(s, h, "prometheus_remote_write sink: will retry");
                return SINK_RETRY;
            }
            if (answer(s, h, httpc_answer(h->http)) != SINK_OK)
                return SINK_RETRY;
        }
        h->progress = h->chunk_end;
        h->encoded = 0;
    }
    h->progress = 0;
    buf_trim(&h->msg, 8 << 20);
    buf_trim(&h->body, 8 << 20);
    return SINK_OK;
}

/* ---- config ---- */

static const struct cfg_key prom_keys[] = {
    {"url", CFG_STRING, offsetof(struct prom_opts, url), NULL,
     "The remote write endpoint, e.g. http://prometheus:9090/api/v1/write (Prometheus started "
     "with --web.enable-remote-write-receiver).",
     CFG_REQUIRED},
    {"headers", CFG_STRMAP, offsetof(struct prom_opts, headers), NULL,
     "Extra headers, e.g. Authorization: \"Bearer ${TOKEN}\" (values are redacted in dumps).",
     CFG_SECRET},
    {"external_labels", CFG_STRMAP, offsetof(struct prom_opts, external_labels), NULL,
     "Labels added to every series that does not have them (as Prometheus' external_labels)."},
    {"buckets", CFG_STRLIST, offsetof(struct prom_opts, buckets),
     "[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]",
     "Upper bounds of the histogram buckets single observations (statsd timers, histograms, "
     "distributions) are counted into, ascending (empty: the default)."},
    {"max_series", CFG_INT, offsetof(struct prom_opts, max_series), "100000",
     "Series whose deltas the sink adds up into cumulative values (statsd counters and "
     "observations, Lua aggregates, OTLP delta sums); an event of one more is dead-lettered.",
     0, 0, 100000000},
    {"timeout", CFG_DURATION, offsetof(struct prom_opts, timeout), "30s",
     "A request not answered in this time is retried.", 0, 0.001, 3600},
    {"connect_timeout", CFG_DURATION, offsetof(struct prom_opts, connect_timeout), "5s",
     "Time to establish a connection.", 0, 0.001, 600},
    SINK_COMMON_KEYS(struct prom_opts),
    SINK_BATCH_KEYS(struct prom_opts, "1MiB", "1s"),
    {"batch_max_events", CFG_INT, offsetof(struct prom_opts, common.batch_events), "2000",
     "Events per request at most; this many queued is also sent at once.", 0, 1, 1000000},
    HTTPC_TLS_KEYS(struct prom_opts, tls),
    {0},
};

const struct sink_type sink_prom = {
    .cfg =
        {
            .name = "prometheus_remote_write",
            .desc = "Sends metric events to a Prometheus remote write receiver (protobuf, "
                    "snappy; names and labels as Prometheus wants them, deltas made cumulative); "
                    "retries 5xx and 429, dead-letters other refusals.",
            .size = sizeof(struct prom_opts),
            .keys = prom_keys,
        },
    .open = prom_open,
    .write = prom_write,
    .close = prom_close,
};
