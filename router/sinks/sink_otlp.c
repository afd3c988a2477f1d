/* `otlp` sink: canonical events back into OTLP (router/sinks/otlp_encode.h), exported as an
 * OpenTelemetry SDK or collector would: OTLP/HTTP in protobuf (the default) or JSON, POSTed to
 * <endpoint>/v1/logs, /v1/traces and /v1/metrics, or OTLP/gRPC (the services' Export methods over
 * HTTP/2, h2c or TLS), with libcurl (router/sinks/httpc.h) and gzip. A span of queued events is
 * sent in chunks of batch_max_events (about batch_max_bytes), each chunk as up to three requests,
 * one per signal. What the destination answers decides each request's events, as the OTLP
 * specification says: accepted; retried after a backoff (HTTP 429, 502, 503, 504 and the gRPC
 * codes it lists; Retry-After and RetryInfo say how long to wait); refused for good (any other
 * answer: every event of the request dead-lettered with it); or accepted in part
 * (partial_success: that many of the request's events, the last ones, dead-lettered with its
 * error_message, since the answer does not say which). A retry resumes at the request that
 * failed: a request accepted is never sent again. Events with no OTLP form are dead-lettered
 * with the reason before anything is sent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/jsontok.h"
#include "core/log.h"
#include "core/ring.h"
#include "router/sinks/grpcc.h"
#include "router/sinks/httpc.h"
#include "router/sinks/otlp_encode.h"
#include "router/sinks/sink.h"

#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "proto/otlp_services.h"

enum protocol { P_HTTP_PROTOBUF, P_HTTP_JSON, P_GRPC };
static const char *const protocols[] = {"http/protobuf", "http/json", "grpc", NULL};
static const char *const compressions[] = {"none", "gzip", NULL};

struct otlp_opts {
    struct sink_common common;
    int protocol;
    char *endpoint;
    char *signal_endpoint[OTLP_ENCODE_SIGNALS]; /* logs_endpoint, ... ("": from endpoint) */
    struct cfg_strmap headers;
    int compression;
    int64_t timeout;
    int64_t connect_timeout;
    struct httpc_tls tls;
};

/* A record of the chunk, in the request of its signal. */
struct item {
    const char *rec;
    size_t len;
};

struct otlp_sink {
    struct httpc *http;
    struct otlp_encoder *enc;
    char *url[OTLP_ENCODE_SIGNALS];
    const char *hdr[5]; /* the protocol's request headers */
    size_t nhdr;
    char timeout_hdr[32]; /* grpc-timeout */
    struct buf msg, zmsg;
    /* Each signal's request of the chunk as it goes on the wire, made once (built has a bit per
     * signal): a retry sends the same bytes again. */
    struct buf wire[OTLP_ENCODE_SIGNALS];
    unsigned built;
    struct item *items[OTLP_ENCODE_SIGNALS];
    size_t nitems[OTLP_ENCODE_SIGNALS], capitems[OTLP_ENCODE_SIGNALS];
    /* The chunk being delivered: span[progress..chunk_end), encoded; done has a bit per signal
     * whose request is over (accepted or refused), which a retry skips. */
    size_t progress, chunk_end;
    int encoded;
    unsigned done;
    struct log_limit lim;
    char why[512];
};

/* ---- opening ---- */

/* The URL of each signal: for HTTP, endpoint + /v1/<signal> (what OTEL_EXPORTER_OTLP_ENDPOINT
 * means) unless a per-signal URL is given; for gRPC, endpoint + the service's Export method. */
static int urls(struct sink *s, struct otlp_sink *h, char *err, size_t errlen)
{
    static const char *const http_paths[] = {OTLP_HTTP_LOGS, OTLP_HTTP_TRACES, OTLP_HTTP_METRICS};
    static const char *const grpc_paths[] = {OTLP_GRPC_LOGS, OTLP_GRPC_TRACES, OTLP_GRPC_METRICS};
    const struct otlp_opts *o = s->opts;
    const char *ep = o->endpoint;
    int has_scheme = !strncmp(ep, "http://", 7) || !strncmp(ep, "https://", 8);
    if (!has_scheme && (o->protocol != P_GRPC || strstr(ep, "://"))) {
        snprintf(err, errlen, "sink %s: endpoint %s: %s", s->name, ep,
                 o->protocol == P_GRPC ? "host:port, http://host:port or https://host:port"
                                       : "an http:// or https:// URL");
        return -EINVAL;
    }
    size_t n = strlen(ep);
    while (n && ep[n - 1] == '/')
        n--;
    for (int sig = 0; sig < OTLP_ENCODE_SIGNALS; sig++) {
        const char *own = o->signal_endpoint[sig];
        if (*own && o->protocol == P_GRPC) {
            snprintf(err, errlen,
                     "sink %s: %s_endpoint is for the http protocols (grpc takes "
                     "endpoint only)",
                     s->name, otlp_encode_signal_names[sig]);
            return -EINVAL;
        }
        struct buf u = {0};
        if (*own)
            buf_puts(&u, own);
        else
            buf_printf(&u, "%s%.*s%s", has_scheme ? "" : "http://", (int)n, ep,
                       o->protocol == P_GRPC ? grpc_paths[sig] : http_paths[sig]);
        if (buf_putc(&u, '\0')) {
            buf_free(&u);
            return -ENOMEM;
        }
        h->url[sig] = u.data;
    }
    return 0;
}

static void request_headers(const struct otlp_opts *o, struct otlp_sink *h)
{
    int z = o->compression == 1;
    if (o->protocol == P_GRPC) {
        h->hdr[h->nhdr++] = "Content-Type: application/grpc";
        h->hdr[h->nhdr++] = "TE: trailers";
        h->hdr[h->nhdr++] = "grpc-accept-encoding: identity";
        if (z)
            h->hdr[h->nhdr++] = "grpc-encoding: gzip";
        /* The deadline the server may enforce too: our timeout, in milliseconds. */
        snprintf(h->timeout_hdr, sizeof(h->timeout_hdr), "grpc-timeout: %lldm",
                 (long long)(o->timeout / 1000000));
        h->hdr[h->nhdr++] = h->timeout_hdr;
        return;
    }
    h->hdr[h->nhdr++] = o->protocol == P_HTTP_JSON ? "Content-Type: application/json"
                                                   : "Content-Type: application/x-protobuf";
    if (z)
        h->hdr[h->nhdr++] = "Content-Encoding: gzip";
}

/* Headers the protocol sends itself: a configured one of the same name would go out twice. */
static int reserved_header(const char *name)
{
    static const char *const names[] = {
        "content-type",         "content-encoding", "te", "grpc-encoding",
        "grpc-accept-encoding", "grpc-timeout",     NULL};
    for (int i = 0; names[i]; i++) {
        if (!strcasecmp(name, names[i]))
            return 1;
    }
    return 0;
}

static int otlp_open(struct sink *s, char *err, size_t errlen)
{
    httpc_global_init(); /* on the main thread, before any sink thread runs libcurl */
    const struct otlp_opts *o = s->opts;
    for (int i = 0; i < o->headers.n; i++) {
        if (reserved_header(o->headers.key[i])) {
            snprintf(err, errlen, "sink %s: headers: %s is set by the protocol itself", s->name,
                     o->headers.key[i]);
            return -EINVAL;
        }
    }
    struct otlp_sink *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    s->priv = h;
    int rc = urls(s, h, err, errlen);
    if (rc)
        return rc;
    request_headers(o, h);
    const struct httpc_opts ho = {.timeout = o->timeout,
                                  .connect_timeout = o->connect_timeout,
                                  .tls = &o->tls,
                                  .headers = &o->headers,
                                  .version = o->protocol == P_GRPC ? HTTPC_HTTP2 : HTTPC_HTTP1};
    h->http = httpc_new(&ho);
    h->enc = otlp_encoder_new();
    if (!h->http || !h->enc) {
        snprintf(err, errlen, "sink %s: out of memory", s->name);
        return -ENOMEM;
    }
    return 0;
}

static void otlp_close(struct sink *s)
{
    struct otlp_sink *h = s->priv;
    if (!h)
        return;
    httpc_free(h->http);
    otlp_encoder_free(h->enc);
    for (int i = 0; i < OTLP_ENCODE_SIGNALS; i++) {
        free(h->url[i]);
        free(h->items[i]);
    }
    buf_free(&h->msg);
    buf_free(&h->zmsg);
    for (int sig = 0; sig < OTLP_ENCODE_SIGNALS; sig++)
        buf_free(&h->wire[sig]);
    free(h);
    s->priv = NULL;
}

/* ---- the answers ---- */

/* How many of the request's records an Export*ServiceResponse in protobuf says were rejected
 * (partial_success), and its error_message into msg. 0 when none, or when it does not decode:
 * then nothing says that less than all was accepted. */
static int64_t rejected_pb(int sig, const uint8_t *p, size_t n, char *msg, size_t msglen)
{
    int64_t r = 0;
    if (sig == OTLP_ENCODE_LOGS) {
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse *a =
            opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(NULL, n,
                                                                                            p);
        if (a && a->partial_success) {
            r = a->partial_success->rejected_log_records;
            snprintf(msg, msglen, "%s", a->partial_success->error_message);
        }
        opentelemetry__proto__collector__logs__v1__export_logs_service_response__free_unpacked(
            a, NULL);
    } else if (sig == OTLP_ENCODE_TRACES) {
        Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *a =
            opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL,
                                                                                              n, p);
        if (a && a->partial_success) {
            r = a->partial_success->rejected_spans;
            snprintf(msg, msglen, "%s", a->partial_success->error_message);
        }
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(
            a, NULL);
    } else {
        Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *a =
            opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
                NULL, n, p);
        if (a && a->partial_success) {
            r = a->partial_success->rejected_data_points;
            snprintf(msg, msglen, "%s", a->partial_success->error_message);
        }
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(
            a, NULL);
    }
    return r;
}

/* The same for an answer in OTLP/JSON ({"partialSuccess":{"rejectedLogRecords":"2",
 * "errorMessage":"..."}}; snake_case names and numbers as numbers are taken too). */
static int64_t rejected_json(int sig, const char *p, size_t n, char *msg, size_t msglen)
{
    static const char *const camel[] = {"rejectedLogRecords", "rejectedSpans",
                                        "rejectedDataPoints"};
    static const char *const snake[] = {"rejected_log_records", "rejected_spans",
                                        "rejected_data_points"};
    struct jsontok t = {0};
    struct buf text = {0};
    int64_t r = 0;
    if (jsontok_parse(&t, p, n) || t.tok[0].type != JSMN_OBJECT)
        goto done;
    int ps = jsontok_find(&t, 0, "partialSuccess", 14);
    if (ps < 0)
        ps = jsontok_find(&t, 0, "partial_success", 15);
    int v = jsontok_find(&t, ps, camel[sig], strlen(camel[sig]));
    if (v < 0)
        v = jsontok_find(&t, ps, snake[sig], strlen(snake[sig]));
    if (v >= 0 && (t.tok[v].type == JSMN_STRING || t.tok[v].type == JSMN_PRIMITIVE))
        r = strtoll(p + t.tok[v].start, NULL, 10);
    int m = jsontok_find(&t, ps, "errorMessage", 12);
    if (m < 0)
        m = jsontok_find(&t, ps, "error_message", 13);
    if (m >= 0 && t.tok[m].type == JSMN_STRING &&
        jsontok_unescape(p + t.tok[m].start, (size_t)(t.tok[m].end - t.tok[m].start), &text) == 0)
        snprintf(msg, msglen, "%.*s", (int)text.len, text.data ? text.data : "");
done:
    jsontok_free(&t);
    buf_free(&text);
    return r;
}

static void log_answer(struct sink *s, struct otlp_sink *h, const char *what, int sig)
{
    int64_t sup = log_limit_take(&h->lim);
    if (sup >= 0)
        log_warn(what, "{s:s, s:s, s:I, s:s, s:I}", "sink", s->name, "signal",
                 otlp_encode_signal_names[sig], "events", (json_int_t)h->nitems[sig], "error",
                 h->why, "suppressed", (json_int_t)sup);
}

/* The request failed in a way a retry can fix (h->why says how): send it again after a backoff,
 * or after delay when the destination asked for one. */
static enum sink_result retry(struct sink *s, struct otlp_sink *h, int sig, int64_t delay)
{
    sink_set_error(s, "%s", h->why);
    if (delay > 0)
        sink_retry_after(s, delay);
    log_answer(s, h, "otlp sink: will retry", sig);
    return SINK_RETRY;
}

/* Records items[from..] of signal sig's request were refused for good: dead-lettered with
 * h->why. */
static void refuse(struct sink *s, struct otlp_sink *h, int sig, size_t from)
{
    for (size_t i = from; i < h->nitems[sig]; i++)
        sink_refuse(s, h->items[sig][i].rec, h->items[sig][i].len, h->why);
}

/* The destination accepted the request (HTTP 2xx, gRPC OK), maybe only in part: partial_success
 * says how many records it rejected, not which, so the request's last ones are dead-lettered
 * (the count of failed events is then exact, and the dead_letter sink holds as many for an
 * operator to look at). p[0..n) is the response message; sent the request's size. */
static enum sink_result accepted(struct sink *s, struct otlp_sink *h, int sig, const void *p,
                                 size_t n, int json, size_t sent)
{
    char msg[300] = "";
    size_t total = h->nitems[sig];
    int64_t r = json ? rejected_json(sig, p, n, msg, sizeof(msg))
                     : rejected_pb(sig, p, n, msg, sizeof(msg));
    size_t rej = r <= 0 ? 0 : (uint64_t)r > total ? total : (size_t)r;
    if (rej) {
        snprintf(h->why, sizeof(h->why), "partial success: %zu of %zu %s rejected: %s", rej, total,
                 otlp_encode_signal_names[sig], msg);
        sink_set_error(s, "%s", h->why);
        refuse(s, h, sig, total - rej);
        log_answer(s, h, "otlp sink: the destination rejected part of a request", sig);
    } else if (*msg) {
        snprintf(h->why, sizeof(h->why), "partial success with nothing rejected: %s", msg);
        log_answer(s, h, "otlp sink: the destination warns", sig);
    }
    counter_add(&s->stats.bytes, total ? (uint64_t)sent * (total - rej) / total : sent);
    sink_accepted(s, total - rej);
    return SINK_OK;
}

/* What an HTTP error answer says: its google.rpc.Status message (protobuf), else its body. */
static void http_error(struct otlp_sink *h, const struct httpc_answer *a)
{
    Google__Rpc__Status *st = NULL;
    if (!strncmp(a->ctype, "application/x-protobuf", 22) && a->body.len)
        st = google__rpc__status__unpack(NULL, a->body.len, (const uint8_t *)a->body.data);
    if (st)
        snprintf(h->why, sizeof(h->why), "HTTP %ld: %s", a->status, st->message);
    else
        snprintf(h->why, sizeof(h->why), "HTTP %ld: %.*s", a->status, httpc_shown(&a->body, 300),
                 a->body.data ? a->body.data : "");
    google__rpc__status__free_unpacked(st, NULL);
}

static enum sink_result http_answer(struct sink *s, struct otlp_sink *h, int sig,
                                    const struct httpc_answer *a, size_t sent)
{
    const struct otlp_opts *o = s->opts;
    if (a->status >= 200 && a->status < 300)
        return accepted(s, h, sig, a->body.data ? a->body.data : "", a->body.len,
                        o->protocol == P_HTTP_JSON, sent);
    http_error(h, a);
    if (a->status == 429 || a->status == 502 || a->status == 503 || a->status == 504)
        return retry(s, h, sig, a->retry_after);
    sink_set_error(s, "%s", h->why);
    refuse(s, h, sig, 0);
    log_answer(s, h, "otlp sink: the destination refused a request", sig);
    return SINK_OK;
}

static enum sink_result grpc_answer(struct sink *s, struct otlp_sink *h, int sig,
                                    const struct httpc_answer *a, size_t sent)
{
    int code = a->grpc_status;
    if (code < 0) /* no status: a proxy's answer, say */
        code = a->status == 200 ? GRPC_UNKNOWN : grpcc_from_http(a->status);
    if (code == GRPC_OK) {
        const uint8_t *m;
        size_t n;
        if (grpcc_message(a->body.data, a->body.len, &m, &n))
            m = NULL, n = 0;
        return accepted(s, h, sig, m, n, 0, sent);
    }
    int64_t delay = grpcc_retry_delay(a->grpc_details.data, a->grpc_details.len);
    if (a->grpc_status < 0)
        snprintf(h->why, sizeof(h->why), "gRPC %s: no grpc-status in the answer (HTTP %ld)",
                 grpcc_code_name(code), a->status);
    else
        snprintf(h->why, sizeof(h->why), "gRPC %s: %.*s", grpcc_code_name(code),
                 (int)a->grpc_message.len, a->grpc_message.data ? a->grpc_message.data : "");
    if (grpcc_retryable(code, delay >= 0))
        return retry(s, h, sig, delay > 0 ? delay : 0);
    sink_set_error(s, "%s", h->why);
    refuse(s, h, sig, 0);
    log_answer(s, h, "otlp sink: the destination refused a request", sig);
    return SINK_OK;
}

/* ---- sending ---- */

/* Signal sig's request of the chunk as it goes on the wire: the encoded message, gzipped when
 * asked, in a gRPC frame for grpc. */
static int request_body(const struct otlp_opts *o, struct otlp_sink *h, int sig,
                        const struct buf **body)
{
    if (h->built & 1u << sig) {
        *body = &h->wire[sig];
        return 0;
    }
    enum otlp_encode_format fmt =
        o->protocol == P_HTTP_JSON ? OTLP_ENCODE_JSON : OTLP_ENCODE_PROTOBUF;
    buf_reset(&h->msg);
    if (otlp_encoder_write(h->enc, sig, fmt, &h->msg))
        return -ENOMEM;
    const struct buf *payload = &h->msg;
    int z = o->compression == 1;
    if (z) {
        if (httpc_gzip(h->msg.data, h->msg.len, &h->zmsg))
            return -ENOMEM;
        payload = &h->zmsg;
    }
    struct buf *w = &h->wire[sig];
    buf_reset(w);
    if (o->protocol == P_GRPC) {
        uint8_t prefix[5];
        grpcc_prefix(prefix, z, (uint32_t)payload->len);
        if (buf_append(w, prefix, 5))
            return -ENOMEM;
    }
    if (buf_append(w, payload->data, payload->len))
        return -ENOMEM;
    h->built |= 1u << sig;
    *body = w;
    return 0;
}

/* Sends signal sig's request of the chunk. OK: the request is over (accepted, or refused for
 * good and dead-lettered); RETRY: nothing was accepted, send it again after a backoff. */
static enum sink_result send_request(struct sink *s, struct otlp_sink *h, int sig)
{
    const struct otlp_opts *o = s->opts;
    const struct buf *body;
    const char *why;
    if (request_body(o, h, sig, &body)) {
        snprintf(h->why, sizeof(h->why), "out of memory building the request");
        return retry(s, h, sig, 0);
    }
    if (httpc_post(h->http, h->url[sig], h->hdr, h->nhdr, body->data, body->len, &why)) {
        snprintf(h->why, sizeof(h->why), "%s", why);
        return retry(s, h, sig, 0);
    }
    const struct httpc_answer *a = httpc_answer(h->http);
    return o->protocol == P_GRPC ? grpc_answer(s, h, sig, a, body->len)
                                 : http_answer(s, h, sig, a, body->len);
}

static int push_item(struct otlp_sink *h, int sig, const char *rec, size_t len)
{
    if (h->nitems[sig] == h->capitems[sig]) {
        size_t cap = h->capitems[sig] ? h->capitems[sig] * 2 : 256;
        struct item *v = realloc(h->items[sig], cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        h->items[sig] = v;
        h->capitems[sig] = cap;
    }
    h->items[sig][h->nitems[sig]++] = (struct item){rec, len};
    return 0;
}

/* The next chunk of the span, from progress: up to batch_max_events records and about
 * batch_max_bytes of them, each added to its signal's request; a record with no OTLP form is
 * dead-lettered with the reason. */
static int encode_chunk(struct sink *s, struct otlp_sink *h, const char *span, size_t len)
{
    const struct otlp_opts *o = s->opts;
    size_t max_bytes = o->common.batch_bytes > 0 ? (size_t)o->common.batch_bytes : 1 << 20;
    size_t max_events = (size_t)o->common.batch_events, n = 0, bytes = 0, off = h->progress;
    otlp_encoder_reset(h->enc);
    memset(h->nitems, 0, sizeof(h->nitems));
    while (off < len && n < max_events && (n == 0 || bytes < max_bytes)) {
        const struct ring_rec *r = (const struct ring_rec *)(span + off);
        const char *data = RING_REC_DATA(r), *why;
        int sig = otlp_encoder_add(h->enc, data, r->len, &why);
        if (sig == -ENOMEM || (sig >= 0 && push_item(h, sig, data, r->len)))
            return -ENOMEM;
        if (sig < 0) {
            snprintf(h->why, sizeof(h->why), "otlp: %s", why);
            sink_set_error(s, "%s", h->why);
            sink_refuse(s, data, r->len, h->why);
            int64_t sup = log_limit_take(&h->lim);
            if (sup >= 0)
                log_warn("otlp sink: an event has no OTLP form: dead-lettered", "{s:s, s:s, s:I}",
                         "sink", s->name, "error", h->why, "suppressed", (json_int_t)sup);
        }
        n++;
        bytes += r->len;
        off += RING_REC_SIZE(r->len);
    }
    h->chunk_end = off;
    h->encoded = 1;
    h->done = 0;
    h->built = 0;
    return 0;
}

static enum sink_result otlp_write(struct sink *s, const char *span, size_t len, uint64_t nrec)
{
    struct otlp_sink *h = s->priv;
    while (h->progress < len) {
        if (!h->encoded && encode_chunk(s, h, span, len)) {
            snprintf(h->why, sizeof(h->why), "out of memory encoding the batch");
            sink_set_error(s, "%s", h->why);
            return SINK_RETRY;
        }
        for (int sig = 0; sig < OTLP_ENCODE_SIGNALS; sig++) {
            if (!h->nitems[sig] || (h->done & 1u << sig))
                continue;
            if (send_request(s, h, sig) != SINK_OK)
                return SINK_RETRY;
            h->done |= 1u << sig;
        }
        h->progress = h->chunk_end;
        h->encoded = 0;
    }
    h->progress = 0;
    buf_trim(&h->msg, 8 << 20);
    buf_trim(&h->zmsg, 8 << 20);
    for (int sig = 0; sig < OTLP_ENCODE_SIGNALS; sig++)
        buf_trim(&h->wire[sig], 8 << 20);
    return SINK_OK;
}

/* ---- config ---- */

static const struct cfg_key otlp_keys[] = {
    {"endpoint", CFG_STRING, offsetof(struct otlp_opts, endpoint), NULL,
     "Where to export. http/protobuf and http/json: the base URL (http://collector:4318), to which "
     "/v1/logs, /v1/traces and /v1/metrics are appended, as OTEL_EXPORTER_OTLP_ENDPOINT means. "
     "grpc: host:port or http://host:port (HTTP/2 in clear, h2c), https://host:port (TLS).",
     CFG_REQUIRED},
    {"protocol", CFG_ENUM, offsetof(struct otlp_opts, protocol), "http/protobuf",
     "OTLP's transport and encoding, as OTEL_EXPORTER_OTLP_PROTOCOL names them.", 0, 0, 0,
     protocols},
    {"logs_endpoint", CFG_STRING, offsetof(struct otlp_opts, signal_endpoint[OTLP_ENCODE_LOGS]), "",
     "http protocols: the full URL for logs, used as it is (instead of endpoint/v1/logs)."},
    {"traces_endpoint", CFG_STRING, offsetof(struct otlp_opts, signal_endpoint[OTLP_ENCODE_TRACES]),
     "", "http protocols: the full URL for traces (instead of endpoint/v1/traces)."},
    {"metrics_endpoint", CFG_STRING,
     offsetof(struct otlp_opts, signal_endpoint[OTLP_ENCODE_METRICS]), "",
     "http protocols: the full URL for metrics (instead of endpoint/v1/metrics)."},
    {"headers", CFG_STRMAP, offsetof(struct otlp_opts, headers), NULL,
     "Extra headers (gRPC metadata for grpc), e.g. authorization: \"Bearer ${TOKEN}\".",
     CFG_SECRET},
    {"compression", CFG_ENUM, offsetof(struct otlp_opts, compression), "gzip",
     "gzip compresses each request (Content-Encoding, or grpc-encoding for grpc).", 0, 0, 0,
     compressions},
    {"timeout", CFG_DURATION, offsetof(struct otlp_opts, timeout), "10s",
     "A request not answered in this time is retried.", 0, 0.001, 3600},
    {"connect_timeout", CFG_DURATION, offsetof(struct otlp_opts, connect_timeout), "5s",
     "Time to establish a connection.", 0, 0.001, 600},
    SINK_COMMON_KEYS(struct otlp_opts),
    SINK_BATCH_KEYS(struct otlp_opts, "1MiB", "1s"),
    {"batch_max_events", CFG_INT, offsetof(struct otlp_opts, common.batch_events), "1000",
     "Events per export at most (a batch of several signals is one request per signal); this "
     "many queued is also sent at once.",
     0, 1, 1000000},
    HTTPC_TLS_KEYS(struct otlp_opts, tls),
    {0},
};

const struct sink_type sink_otlp = {
    .cfg =
        {
            .name = "otlp",
            .desc = "Exports logs, traces and metrics as OTLP (http/protobuf, http/json or "
                    "grpc) to a collector or backend; gzip, retries as the OTLP specification "
                    "says, partial success dead-lettered, TLS.",
            .size = sizeof(struct otlp_opts),
            .keys = otlp_keys,
        },
    .open = otlp_open,
    .write = otlp_write,
    .close = otlp_close,
};
