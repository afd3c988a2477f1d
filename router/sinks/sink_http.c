/* `http` sink: POSTs batches to a URL with libcurl (keep-alive, TLS, timeouts), encoded as
 * NDJSON, a JSON array, an Elasticsearch _bulk body, a Loki push or Splunk HEC envelopes,
 * optionally gzip-compressed. 2xx is delivered; 408, 429, 5xx and network errors are retried
 * (the generic sink loop backs off exponentially with jitter, or waits what a 429's or 503's
 * Retry-After asks when that is longer); any other 4xx is final and the
 * batch's events go to the dead_letter sink with the response. A retry resumes at the request
 * that failed, so earlier requests of the same span are never sent twice. Elasticsearch answers
 * per item: items refused for good are dead-lettered once, and only the items it asked to retry
 * (429, 5xx) are sent again, on their own, before the sink goes on. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/ring.h"
#include "router/sinks/encode.h"
#include "router/sinks/httpc.h"
#include "router/sinks/sink.h"

static const char *const compressions[] = {"none", "gzip", NULL};

struct http_sink_opts {
    struct sink_common common;
    char *url;
    int encoding;
    int compression;
    int64_t request_timeout;
    int64_t connect_timeout;
    struct cfg_strmap headers;
    char *index;
    struct cfg_strlist labels;
    struct cfg_strmap static_labels;
    char *sourcetype;
    char *hec_index;
    char *ddsource;
    char *ddtags;
    struct httpc_tls tls;
};

struct http_sink {
    struct httpc *http;
    struct encode_opts enc;
    struct buf body, zbody;
    const struct buf *resp; /* the last answer's body (the client's) */
    struct encode_item *items;
    size_t items_cap;
    size_t progress; /* bytes of the current span delivered or dead-lettered */
    /* Items of a bulk request (before progress) that Elasticsearch asked to retry: sent again,
     * alone, before anything else. They point into the span, which stays until it is done. */
    struct encode_item *redo;
    size_t nredo, redo_cap;
    struct log_limit lim;
    char why[256];     /* why the last attempt failed, for the retry warning */
    const char *ctype; /* of the body encoded last */
};

/* The start of the last answer's body, for an error message: "%.*s" with resp_shown(). */
static const char *resp_text(const struct http_sink *h)
{
    return h->resp->data ? h->resp->data : "";
}

static int resp_shown(const struct http_sink *h, size_t max)
{
    return httpc_shown(h->resp, max);
}

static int http_open(struct sink *s, char *err, size_t errlen)
{
    /* Sinks are opened on the main thread before any sink thread runs libcurl. */
    httpc_global_init();
    const struct http_sink_opts *o = s->opts;
    struct http_sink *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    s->priv = h;
    h->enc = (struct encode_opts){o->encoding,   o->index,     &o->labels,  &o->static_labels,
                                  o->sourcetype, o->hec_index, o->ddsource, o->ddtags};
    if (o->encoding == ENC_ELASTICSEARCH && !*o->index) {
        snprintf(err, errlen, "sink %s: encoding elasticsearch needs index", s->name);
        return -EINVAL;
    }
    const struct httpc_opts ho = {.timeout = o->request_timeout,
                                  .connect_timeout = o->connect_timeout,
                                  .tls = &o->tls,
                                  .headers = &o->headers,
                                  .version = HTTPC_HTTP1};
    h->http = httpc_new(&ho);
    if (!h->http) {
        snprintf(err, errlen, "sink %s: cannot initialize libcurl", s->name);
        return -ENOMEM;
    }
    h->resp = &httpc_answer(h->http)->body;
    return 0;
}

/* One POST of h->body. Returns the HTTP status, or -1 on a network error (message set); *sent
 * is the body's size on the wire. A 429 or 503 that says when to come back (Retry-After) sets
 * the next retry's wait. */
static long post(struct sink *s, struct http_sink *h, const char *ctype, size_t *sent)
{
    const struct http_sink_opts *o = s->opts;
    const struct buf *send = &h->body;
    int z = o->compression == 1;
    if (z) {
        if (httpc_gzip(h->body.data, h->body.len, &h->zbody)) {
            snprintf(h->why, sizeof(h->why), "out of memory compressing the batch");
            sink_set_error(s, "%s", h->why);
            return -1;
        }
        send = &h->zbody;
    }
    char ct[96];
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    const char *extra[] = {ct, "Content-Encoding: gzip"};
    const char *why;
    if (httpc_post(h->http, o->url, extra, z ? 2 : 1, send->data, send->len, &why)) {
        snprintf(h->why, sizeof(h->why), "%s", why);
        sink_set_error(s, "%s", h->why);
        return -1;
    }
    const struct httpc_answer *a = httpc_answer(h->http);
    if ((a->status == 429 || a->status == 503) && a->retry_after > 0)
        sink_retry_after(s, a->retry_after);
    *sent = send->len;
    return a->status;
}

/* Room for n items in *v (capacity *cap). Returns 0 or -ENOMEM. */
static int items_reserve(struct encode_item **v, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < n)
        c *= 2;
    struct encode_item *nv = realloc(*v, c * sizeof(*nv));
    if (!nv)
        return -ENOMEM;
    *v = nv;
    *cap = c;
    return 0;
}

/* The answer to item i of a request: Elasticsearch's items[i].create (or .index), Honeycomb's
 * [i]; NULL when the answer does not mention it. */
static json_t *item_answer(int encoding, json_t *r, size_t i)
{
    if (encoding == ENC_HONEYCOMB)
        return json_array_get(r, i);
    json_t *arr = json_object_get(r, "items");
    json_t *op = json_object_get(json_array_get(arr, i), "create");
    return op ? op : json_object_get(json_array_get(arr, i), "index");
}

/* Elasticsearch and Honeycomb answer 200 even when items failed, with a status per item:
 * items[0..n) were the request's. Those with a final status are refused (dead-lettered, once);
 * those worth retrying (429, 5xx) become the redo list (items may be that list: it is compacted
 * in place). Returns how many were accepted. */
static size_t per_item(struct sink *s, struct http_sink *h, const struct encode_item *items,
                       size_t n)
{
    int enc = h->enc.encoding;
    const char *who = enc == ENC_HONEYCOMB ? "honeycomb" : "elasticsearch";
    h->nredo = 0;
    json_t *r = json_loadb(resp_text(h), h->resp->len, 0, NULL);
    if (!r || (enc == ENC_ELASTICSEARCH && !json_is_true(json_object_get(r, "errors"))) ||
        (enc == ENC_HONEYCOMB && !json_is_array(r))) {
        json_decref(r);
        return n;
    }
    if (items != h->redo && items_reserve(&h->redo, &h->redo_cap, n)) {
        json_decref(r);
        return n; /* cannot keep them for a retry: the lesser harm is counting them delivered */
    }
    size_t accepted = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *op = item_answer(enc, r, i);
        /* An item the answer does not mention (a short list) is taken as accepted. */
        json_int_t st = json_integer_value(json_object_get(op, "status"));
        if (st < 300) {
            accepted++;
        } else if (st == 429 || st >= 500) {
            h->redo[h->nredo++] = items[i];
        } else {
            char *why = json_dumps(json_object_get(op, "error"), JSON_COMPACT);
            char msg[512];
            snprintf(msg, sizeof(msg), "%s refused the event (%lld): %s", who, (long long)st,
                     why ? why : "");
            free(why);
            sink_set_error(s, "%s", msg);
            sink_refuse(s, items[i].json, items[i].len, msg);
        }
    }
    if (h->nredo)
        sink_set_error(s, "%s asked to retry %zu of %zu items", who, h->nredo, n);
    json_decref(r);
    return accepted;
}

/* The body of a request of items[0..n), and its content type. */
static void encode(struct http_sink *h, const struct encode_item *items, size_t n)
{
    buf_reset(&h->body);
    h->ctype = encode_batch(&h->enc, items, n, &h->body);
}

/* One request of items[0..n), whose body encode() made. RETRY: nothing was accepted, send the same
 * again later. OK: the destination answered: accepted, refused for good (dead-lettered), or for
 * Elasticsearch item by item, with the items to retry left in the redo list. */
static enum sink_result send_items(struct sink *s, struct http_sink *h,
                                   const struct encode_item *items, size_t n)
{
    const struct http_sink_opts *o = s->opts;
    size_t sent = 0;
    long code = post(s, h, h->ctype, &sent);
    if (code < 0 || code == 408 || code == 429 || code >= 500) {
        if (code >= 0) {
            snprintf(h->why, sizeof(h->why), "HTTP %ld: %.*s", code, resp_shown(h, 200),
                     resp_text(h));
            sink_set_error(s, "%s", h->why);
        }
        /* The reason `ctl sinks` shows, and the HTTP status when there was an answer. */
        int64_t sup = log_limit_take(&h->lim);
        if (sup >= 0)
            log_warn("http sink: will retry", "{s:s, s:o*, s:s, s:I}", "sink", s->name, "status",
                     code >= 0 ? json_integer(code) : NULL, "error", h->why, "suppressed",
                     (json_int_t)sup);
        return SINK_RETRY;
    }
    if (code >= 300) {
        char msg[512];
        snprintf(msg, sizeof(msg), "HTTP %ld: %.*s", code, resp_shown(h, 400), resp_text(h));
        sink_set_error(s, "%s", msg);
        for (size_t i = 0; i < n; i++)
            sink_refuse(s, items[i].json, items[i].len, msg);
        h->nredo = 0;
        return SINK_OK;
    }
    int itemized = o->encoding == ENC_ELASTICSEARCH || o->encoding == ENC_HONEYCOMB;
    size_t accepted = itemized ? per_item(s, h, items, n) : n;
    if (!itemized)
        h->nredo = 0;
    sink_accepted(s, accepted);
    /* Bytes the destination accepted: the body, or the accepted items' share of it. */
    counter_add(&s->stats.bytes, accepted == n ? sent : (uint64_t)sent * accepted / n);
    return SINK_OK;
}

/* Items a request of the first n takes under the destination's byte limit: the encoding adds
 * to each event (Datadog's reserved attributes), so the batch is encoded, and halved while its
 * body is over the limit (an event alone over it is sent alone, and refused by the
 * destination). */
static size_t fit(struct http_sink *h, const struct encode_limits *lim, size_t n)
{
    for (;;) {
        encode(h, h->items, n);
        if (!lim->bytes || h->body.len <= lim->bytes || n == 1)
            return n;
        n = (n + 1) / 2;
    }
}

static enum sink_result http_write(struct sink *s, const char *span, size_t len, uint64_t nrec)
{
    const struct http_sink_opts *o = s->opts;
    struct http_sink *h = s->priv;
    size_t max_bytes = o->common.batch_bytes > 0 ? (size_t)o->common.batch_bytes : 1 << 20;
    size_t max_events = (size_t)o->common.batch_events;
    struct encode_limits lim = encode_limits_of(&h->enc);
    if (lim.events && lim.events < max_events)
        max_events = lim.events;
    if (lim.bytes && lim.bytes < max_bytes)
        max_bytes = lim.bytes;
    if (h->nredo > 0) {
        encode(h, h->redo, h->nredo);
        if (send_items(s, h, h->redo, h->nredo) != SINK_OK || h->nredo > 0)
            return SINK_RETRY;
    }
    while (h->progress < len) {
        /* The next request: records from progress, up to the size and count limits. */
        size_t n = 0, bytes = 0, off = h->progress;
        while (off < len && n < max_events && (n == 0 || bytes < max_bytes)) {
            const struct ring_rec *r = (const struct ring_rec *)(span + off);
            if (lim.bytes && n > 0 && bytes + r->len > max_bytes)
                break; /* the destination's own limit is a hard one */
            if (items_reserve(&h->items, &h->items_cap, n + 1))
                return SINK_RETRY;
            h->items[n++] = (struct encode_item){RING_REC_DATA(r), r->len};
            bytes += r->len;
            off += RING_REC_SIZE(r->len);
        }
        n = fit(h, &lim, n);
        off = h->progress;
        for (size_t i = 0; i < n; i++)
            off += RING_REC_SIZE(h->items[i].len);
        if (send_items(s, h, h->items, n) != SINK_OK)
            return SINK_RETRY;
        h->progress = off;
        if (h->nredo > 0)
            return SINK_RETRY; /* after a backoff: the items Elasticsearch asked to retry */
    }
    h->progress = 0;
    buf_trim(&h->body, 8 << 20);
    buf_trim(&h->zbody, 8 << 20);
    return SINK_OK;
}

static void http_close(struct sink *s)
{
    struct http_sink *h = s->priv;
    if (!h)
        return;
    httpc_free(h->http);
    buf_free(&h->body);
    buf_free(&h->zbody);
    free(h->items);
    free(h->redo);
    free(h);
    s->priv = NULL;
}

static const struct cfg_key http_keys[] = {
    {"url", CFG_STRING, offsetof(struct http_sink_opts, url), NULL,
     "Where to POST (e.g. http://es:9200/_bulk, http://loki:3100/loki/api/v1/push, "
     "https://splunk:8088/services/collector/event).",
     CFG_REQUIRED},
    {"encoding", CFG_ENUM, offsetof(struct http_sink_opts, encoding), "ndjson", "Body format.", 0,
     0, 0, encoding_names},
    {"compression", CFG_ENUM, offsetof(struct http_sink_opts, compression), "none",
     "gzip compresses each request body.", 0, 0, 0, compressions},
    SINK_COMMON_KEYS(struct http_sink_opts),
    SINK_BATCH_KEYS(struct http_sink_opts, "1MiB", "1s"),
    {"batch_max_events", CFG_INT, offsetof(struct http_sink_opts, common.batch_events), "1000",
     "Events per request at most; this many queued is also sent at once.", 0, 1, 1000000},
    {"request_timeout", CFG_DURATION, offsetof(struct http_sink_opts, request_timeout), "30s",
     "A request not answered in this time is retried.", 0, 0.001, 3600},
    {"connect_timeout", CFG_DURATION, offsetof(struct http_sink_opts, connect_timeout), "5s",
     "Time to establish a connection.", 0, 0.001, 600},
    {"headers", CFG_STRMAP, offsetof(struct http_sink_opts, headers), NULL,
     "Extra headers, e.g. Authorization: \"Bearer ${TOKEN}\" (values are redacted in dumps).",
     CFG_SECRET},
    {"index", CFG_STRING, offsetof(struct http_sink_opts, index), "",
     "elasticsearch: the index; {field} and {date} (YYYY.MM.DD) expand per event."},
    {"labels", CFG_STRLIST, offsetof(struct http_sink_opts, labels), NULL,
     "loki: fields whose values become stream labels (keep them few: service, level)."},
    {"static_labels", CFG_STRMAP, offsetof(struct http_sink_opts, static_labels), NULL,
     "loki: labels with fixed values (job: spillway)."},
    {"sourcetype", CFG_STRING, offsetof(struct http_sink_opts, sourcetype), "_json",
     "splunk_hec: the sourcetype of every event."},
    {"hec_index", CFG_STRING, offsetof(struct http_sink_opts, hec_index), "",
     "splunk_hec: the index (empty: the token's default)."},
    {"ddsource", CFG_STRING, offsetof(struct http_sink_opts, ddsource), "",
     "datadog: the ddsource of every entry (empty: the event's source, the input's name)."},
    {"ddtags", CFG_STRING, offsetof(struct http_sink_opts, ddtags), "",
     "datadog: the ddtags of every entry (env:prod,team:checkout; empty: none)."},
    HTTPC_TLS_KEYS(struct http_sink_opts, tls),
    {0},
};

const struct sink_type sink_http = {
    .cfg =
        {
            .name = "http",
            .desc = "POSTs batches over HTTP(S): NDJSON, JSON array, Elasticsearch bulk, Loki, "
                    "Splunk HEC, Honeycomb, Datadog; gzip, retries with backoff, TLS.",
            .size = sizeof(struct http_sink_opts),
            .keys = http_keys,
        },
    .open = http_open,
    .write = http_write,
    .close = http_close,
};
