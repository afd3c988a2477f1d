/* `http` input (libevent's evhttp): POST /v1/events (NDJSON, one JSON object, or a JSON
 * array), OTLP/HTTP, protobuf or JSON, at /v1/logs, /v1/traces, /v1/metrics, and Prometheus
 * remote write at /api/v1/write (snappy + protobuf, collector/remote_write.h). Bodies may be gzip
 * or deflate encoded (remote write's are snappy's). Answers 200 with what was accepted (for OTLP
 * the Export*ServiceResponse, with partial_success when records were dead-lettered; 204 for
 * remote write), 400 for a body it cannot read at all, 413 over max_body, 415 for an unsupported
 * content type or encoding, and 503 with Retry-After while the pipeline is full (so a sender
 * retries rather than loses). OTLP errors carry a google.rpc.Status in the request's encoding,
 * remote write's are text, /v1/events ones {"error": ...}. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "collector/body.h"
#include "collector/collector.h"
#include "collector/inflate.h"
#include "collector/input.h"
#include "collector/otlp.h"
#include "collector/otlp_intake.h"
#include "collector/otlp_reply.h"
#include "collector/remote_write.h"
#include "core/dlist.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "proto/otlp_services.h"

struct http_opts {
    struct input_common common;
    char *listen;
    int64_t max_body;
    int64_t max_connections;
    int64_t idle_timeout;
    int64_t request_timeout;
};

/* One accepted connection. evhttp has no connection limit, has one timeout for idle
 * connections and requests alike, and restarts it at every byte read, so spillway makes each
 * connection's bufferevent itself (evhttp_set_bevcb) and follows the connection from accept
 * to close: max_connections counts it from the start; between requests evhttp's timeout is
 * idle_timeout; a request's first byte (watched on the input buffer) switches it to
 * request_timeout and starts a deadline that closes a request still arriving a second after
 * that, however slowly it trickles; the request's dispatch switches back. */
struct hconn {
    struct httpin *h;
    struct hconn *prev, *next;       /* every connection, admitted or not */
    struct bufferevent *bev;         /* evhttp's; our reference until attached */
    struct evhttp_connection *evcon; /* set once attached */
    struct event *timer;             /* attach, then the deadline */
    struct evbuffer_cb_entry *watch; /* on bev's input buffer: a request's first byte */
    int admitted;                    /* within max_connections, in h->conns */
    int in_request;                  /* bytes of a request not yet dispatched arrived */
    int headers_seen;                /* its Content-Length was looked at (note_oversized) */
    int reading;                     /* read_ahead is adding to the input buffer */
};

/* The admitted connections by bufferevent (open addressing), so a request finds its own. */
struct conn_set {
    struct hconn **v;
    size_t cap, n;
};

struct httpin {
    struct input *in;
    const struct http_opts *o;
    struct evhttp *http;
    struct buf body; /* decoded body */
    struct buf raw;  /* a body that arrived in pieces, in one */
    struct conn_set conns;
    struct hconn *all;
    struct timeval idle;     /* evhttp's timeout between requests */
    struct timeval request;  /* and during one: a request that stops sending this long */
    struct timeval deadline; /* ours: a second more, from its first byte, for those trickling */
    struct log_limit lim;
    struct log_limit reject_log;
    char err[160]; /* the 400 answer's error, when it is built */
    struct otlp_decoder *otlp;
    struct rw_decoder *rw;
    struct buf answer; /* an OTLP answer's body */
    /* The request being answered (evhttp hands over one at a time): an OTLP signal, -1 for
     * /v1/events, PATH_RW for remote write; and for OTLP the encoding of its body, which its
     * answer takes. */
    int sig;
    enum otlp_encoding enc;
};

enum { PATH_NONE = -3, PATH_RW = -2, PATH_EVENTS = -1 };

static size_t slot(const struct conn_set *s, const void *p)
{
    return (size_t)hash64(&p, sizeof(p)) & (s->cap - 1);
}

static int conn_find(const struct conn_set *s, const struct bufferevent *bev)
{
    for (size_t i = slot(s, bev), k = 0; k < s->cap; i = (i + 1) & (s->cap - 1), k++) {
        if (!s->v[i])
            return -1;
        if (s->v[i]->bev == bev)
            return (int)i;
    }
    return -1;
}

static void conn_insert(struct conn_set *s, struct hconn *c)
{
    size_t i = slot(s, c->bev);
    while (s->v[i])
        i = (i + 1) & (s->cap - 1);
    s->v[i] = c;
    s->n++;
}

/* Removal with backward-shift, so lookups never stop at a hole. */
static void conn_remove(struct conn_set *s, const struct hconn *c)
{
    int at = conn_find(s, c->bev);
    if (at < 0)
        return;
    size_t i = (size_t)at;
    s->v[i] = NULL;
    s->n--;
    for (size_t j = (i + 1) & (s->cap - 1); s->v[j]; j = (j + 1) & (s->cap - 1)) {
        struct hconn *m = s->v[j];
        s->v[j] = NULL;
        s->n--;
        conn_insert(s, m);
    }
}

static void refused(struct httpin *h, const char *why)
{
    counter_add(&h->in->stats.refused, 1);
    if (log_limit_take(&h->lim) >= 0)
        log_warn(why, "{s:s}", "input", h->in->name);
}

/* The connection is gone: evhttp freed it (its close callback), or it never got one. */
static void conn_free(struct hconn *c)
{
    struct httpin *h = c->h;
    if (c->admitted) {
        conn_remove(&h->conns, c);
        atomic_fetch_sub(&h->in->stats.connections, 1);
    }
    DLIST_UNLINK(h->all, c);
    if (c->watch)
        evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->watch);
    if (!c->evcon)
        bufferevent_decref(c->bev);
    event_free(c->timer);
    free(c);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    conn_free(arg);
}

/* The socket is shut down: evhttp sees the end of the stream and frees the connection. */
static void hang_up(struct hconn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

/* A request's first byte: from now on a pause of request_timeout closes the connection
 * (evhttp's timeout), and so does the deadline a second after that, for a request that keeps
 * trickling. */
static void request_begins(struct hconn *c)
{
    c->in_request = 1;
    c->headers_seen = 0;
    evhttp_connection_set_timeout_tv(c->evcon, &c->h->request);
    evtimer_add(c->timer, &c->h->deadline);
}

/* The request arrived whole: the connection is idle until the next one's first byte, unless
 * that is here already (pipelined). */
static void request_ends(struct hconn *c)
{
    c->in_request = 0;
    evtimer_del(c->timer);
    evhttp_connection_set_timeout_tv(c->evcon, &c->h->idle);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)))
        request_begins(c);
}

/* libevent reads a socket 4 KiB at a time (EVBUFFER_MAX_READ in 2.1), so a 200 KB request took
 * fifty turns of the loop, each an epoll_wait, an ioctl and a readv (a fifth of S7J's CPU went to
 * the kernel). When a read brought something, what else the kernel holds is taken here at once,
 * READ_AHEAD at a time and at most 64 of those (1 MiB) per turn; evhttp then parses it as if
 * bufferevent had read it. An end of stream or an error is left for bufferevent's next read to see.
 */
#define READ_AHEAD (16 * 1024)

static void read_ahead(struct hconn *c, struct evbuffer *b)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    c->reading = 1;
    for (int turn = 0; fd >= 0 && turn < 64; turn++) {
        struct evbuffer_iovec v[2];
        struct iovec iov[2];
        int n = evbuffer_reserve_space(b, READ_AHEAD, v, 2);
        for (int i = 0; i < n; i++)
            iov[i] = (struct iovec){v[i].iov_base, v[i].iov_len};
        ssize_t r = n > 0 ? readv(fd, iov, n) : -1;
        if (r <= 0)
            break;
        size_t left = (size_t)r;
        for (int i = 0; i < n; i++) {
            v[i].iov_len = left < v[i].iov_len ? left : v[i].iov_len;
            left -= v[i].iov_len;
        }
        evbuffer_commit_space(b, v, n);
        if ((size_t)r < READ_AHEAD)
            break; /* the kernel had no more */
    }
    c->reading = 0;
}

/* evhttp answers a body over max_body with 413 itself, without calling on_request: so that such
 * a request is counted (rejected) and logged like every other 4xx, its Content-Length is looked
 * at once its headers are in. */
static void note_oversized(struct hconn *c, struct evbuffer *b)
{
    struct evbuffer_ptr end = evbuffer_search(b, "\r\n\r\n", 4, NULL);
    if (end.pos < 0) {
        c->headers_seen = evbuffer_get_length(b) > 65536; /* evhttp refuses those itself */
        return;
    }
    c->headers_seen = 1;
    char head[4096];
    ev_ssize_t n = evbuffer_copyout(b, head, end.pos < 4095 ? (size_t)end.pos : 4095);
    if (n <= 0)
        return;
    head[n] = '\0';
    for (char *p = strchr(head, '\n'); p; p = strchr(p + 1, '\n')) {
        if (strncasecmp(p + 1, "content-length:", 15))
            continue;
        unsigned long long len = strtoull(p + 16, NULL, 10);
        if (len > (unsigned long long)c->h->o->max_body) {
            counter_add(&c->h->in->stats.rejected, 1);
            int64_t sup = log_limit_take(&c->h->reject_log);
            if (sup >= 0)
                log_warn("http request rejected", "{s:s, s:i, s:s, s:I}", "input", c->h->in->name,
                         "status", 413, "error", "body over max_body", "suppressed",
                         (json_int_t)sup);
        }
        return;
    }
}

static void on_input(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    struct hconn *c = arg;
    if (!info->n_added || c->reading)
        return;
    if (!c->in_request)
        request_begins(c);
    read_ahead(c, b);
    if (!c->headers_seen)
        note_oversized(c, b);
}

/* First run, on the loop's turn after the accept and before any read: evhttp has made the
 * connection around our bufferevent (it is the callbacks' argument), so its close callback can
 * be set and its input watched. After that, the deadline of a request. */
static void on_timer(evutil_socket_t fd_unused, short what, void *arg)
{
    (void)fd_unused, (void)what;
    struct hconn *c = arg;
    if (c->evcon) {
        refused(c->h, "http connection closed: request not whole within request_timeout");
        hang_up(c);
        return;
    }
    bufferevent_event_cb eventcb = NULL;
    void *evcon = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, &eventcb, &evcon);
    if (!eventcb || !evcon || evhttp_connection_get_bufferevent(evcon) != c->bev) {
        conn_free(c); /* evhttp gave up on it already */
        return;
    }
    c->evcon = evcon;
    evhttp_connection_set_closecb(c->evcon, on_close, c);
    bufferevent_decref(c->bev);
    if (!c->admitted) {
        hang_up(c);
        return;
    }
    c->watch = evbuffer_add_cb(bufferevent_get_input(c->bev), on_input, c);
    if (!c->watch) {
        refused(c->h, "http connection refused: out of memory");
        hang_up(c);
    } else if (evbuffer_get_length(bufferevent_get_input(c->bev))) {
        request_begins(c);
    }
}

/* evhttp's bufferevent for a new connection (its descriptor is set after). NULL (out of
 * memory) makes evhttp use one of its own, which on_request refuses. */
static struct bufferevent *on_accept(struct event_base *base, void *arg)
{
    struct httpin *h = arg;
    struct hconn *c = calloc(1, sizeof(*c));
    struct event *timer = c ? evtimer_new(base, on_timer, c) : NULL;
    struct bufferevent *bev =
        timer ? bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!bev) {
        refused(h, "http connection refused: out of memory");
        if (timer)
            event_free(timer);
        free(c);
        return NULL;
    }
    bufferevent_incref(bev); /* valid until on_timer, whatever evhttp does before */
    *c = (struct hconn){.h = h, .bev = bev, .timer = timer};
    DLIST_PUSH(h->all, c);
    if ((int64_t)h->conns.n < h->o->max_connections) {
        c->admitted = 1;
        conn_insert(&h->conns, c);
        atomic_fetch_add(&h->in->stats.connections, 1);
    } else {
        refused(h, "http connection refused: max_connections reached");
    }
    event_active(timer, EV_TIMEOUT, 0);
    return bev;
}

static void send_body(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                      const char *body, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    if (b && len)
        evbuffer_add(b, body, len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_send_reply(req, code, reason, b);
    if (b)
        evbuffer_free(b);
}

/* A /v1/events answer (a JSON object, and a newline for curl's sake). */
static void reply(struct evhttp_request *req, int code, const char *reason, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    size_t n = text ? strlen(text) : 0;
    if (text)
        text[n] = '\n'; /* json_dumps's NUL: the body is sent by length */
    send_body(req, code, reason, "application/json", text, text ? n + 1 : 0);
    free(text);
}

/* The answer to an error: a google.rpc.Status for OTLP, in the request's encoding, else
 * {"error": msg}. */
static void reply_status(struct httpin *h, struct evhttp_request *req, int code, const char *reason,
                         const char *msg)
{
    if (h->sig == PATH_RW) { /* as Prometheus' receiver answers: the error as text */
        buf_reset(&h->answer);
        buf_printf(&h->answer, "%s\n", msg);
        send_body(req, code, reason, "text/plain; charset=utf-8", h->answer.data, h->answer.len);
        return;
    }
    if (h->sig < 0) {
        reply(req, code, reason, json_pack("{s:s}", "error", msg));
        return;
    }
    enum grpc_code rpc = code == 503                  ? GRPC_UNAVAILABLE
                         : code == 413                ? GRPC_RESOURCE_EXHAUSTED
                         : code == 404 || code == 405 ? GRPC_UNIMPLEMENTED
                                                      : GRPC_INVALID_ARGUMENT;
    buf_reset(&h->answer);
    otlp_reply_status(&h->answer, h->enc, rpc, msg);
    send_body(req, code, reason, otlp_content_type(h->enc), h->answer.data, h->answer.len);
}

/* A 4xx: counted, and logged (rate-limited) so the operator sees what senders are told. */
static void reply_error(struct httpin *h, struct evhttp_request *req, int code, const char *reason,
                        const char *msg)
{
    counter_add(&h->in->stats.rejected, 1);
    int64_t sup = log_limit_take(&h->reject_log);
    if (sup >= 0)
        log_warn("http request rejected", "{s:s, s:i, s:s, s:I}", "input", h->in->name, "status",
                 code, "error", msg, "suppressed", (json_int_t)sup);
    reply_status(h, req, code, reason, msg);
}

/* 503 with Retry-After: the pipeline is full, or memory ran out; counted as refused. The body
 * was not taken: the sender sends it again. */
static void reply_busy(struct httpin *h, struct evhttp_request *req, const char *msg)
{
    counter_add(&h->in->stats.refused, 1);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
    reply_status(h, req, 503, "Service Unavailable", msg);
}

/* One /v1/events body being handed over (events_body). A body of which no line is a JSON
 * object is not events at all: it gets 400 and, since the sender is told, nothing of it is
 * dead-lettered. So until a line is taken, unreadable lines are only noted; the first line
 * taken dead-letters those before it, and later ones are dead-lettered as they come. A line
 * or element over max_event_size is taken: dead-lettered as too large with its first bytes. */
struct events {
    struct input *in;
    size_t max;      /* max_event_size */
    int taken;       /* a line was taken (an event, or a dead letter as too large) */
    const char *bad; /* the first unreadable line before that, or NULL */
    const char *why; /* its reason */
};

static void event_token(void *ud, int tok)
{
    struct events *x = ud;
    const struct jsontok *t = &x->in->norm.tok;
    size_t s = jsontok_text_start(t, tok), e = jsontok_text_end(t, tok);
    if (e - s > x->max)
        collector_dead(x->in, "too large", t->js + s, x->max);
    else
        collector_json_token(x->in, tok);
}

static void dead_line(void *ud, const char *line, size_t len)
{
    collector_json(ud, line, len); /* a line known to be unreadable: dead-lettered, its reason */
}

static void event_line(void *ud, const char *line, size_t len)
{
    struct events *x = ud;
    const char *why = NULL;
    if (len > x->max) {
        collector_dead(x->in, "too large", line, x->max);
    } else if (x->taken) {
        collector_json(x->in, line, len);
    } else if (collector_json_try(x->in, line, len, &why)) {
        if (!x->bad) {
            x->bad = line;
            x->why = why;
        }
        return;
    }
    if (!x->taken && x->bad)
        body_split_lines(x->bad, (size_t)(line - x->bad), dead_line, x->in);
    x->taken = 1;
}

/* POST /v1/events: a JSON array of objects, or NDJSON (one object per line; a single object,
 * even spread over lines, when the whole body is one). Bad items are dead-lettered; a body
 * with nothing readable is refused (-EINVAL, *err) and nothing of it is kept. */
static int events_body(struct httpin *h, const char *b, size_t n, int *accepted, int *dead,
                       const char **err)
{
    static const struct body_items items = {event_token, event_line};
    struct input *in = h->in;
    struct events x = {.in = in, .max = (size_t)h->o->common.max_event_size};
    uint64_t dead0 = counter_get(&in->stats.dead_letter);
    uint64_t recv0 = counter_get(&in->stats.received);
    int rc = body_split_events(&in->norm.tok, b, n, &items, &x, err);
    if (rc)
        return rc;
    if (!x.taken && x.bad) {
        size_t line = 1;
        for (const char *p = b; (p = memchr(p, '\n', (size_t)(x.bad - p))); p++)
            line++;
        snprintf(h->err, sizeof(h->err), "body is neither JSON nor NDJSON: line %zu: %s", line,
                 x.why);
        *err = h->err;
        return -EINVAL;
    }
    *dead = (int)(counter_get(&in->stats.dead_letter) - dead0);
    *accepted = (int)(counter_get(&in->stats.received) - recv0) - *dead;
    return 0;
}

/* POST /v1/logs, /v1/traces, /v1/metrics: the records decoded and handed over, then the
 * Export*ServiceResponse; a body that does not decode gets 400 (413 when it would decode into
 * too much memory) with a google.rpc.Status, and nothing of it is kept. */
static void otlp_body(struct httpin *h, struct evhttp_request *req, const char *body, size_t n)
{
    struct input *in = h->in;
    struct otlp_intake take;
    otlp_intake_begin(&take, in, (size_t)h->o->common.max_event_size);
    const char *err = "";
    int rc = otlp_decode(h->otlp, h->sig, h->enc, body, n, collector_now(in->col), &take.out, &err);
    collector_commit(in->col);
    if (rc == -ENOMEM) {
        reply_busy(h, req, err);
        return;
    }
    if (rc < 0) {
        reply_error(h, req, rc == -E2BIG ? 413 : 400,
                    rc == -E2BIG ? "Payload Too Large" : "Bad Request", err);
        return;
    }
    char msg[256];
    int64_t dead = otlp_intake_rejected(&take, msg, sizeof(msg));
    buf_reset(&h->answer);
    otlp_reply_export(&h->answer, h->sig, h->enc, dead, dead ? msg : NULL);
    send_body(req, 200, "OK", otlp_content_type(h->enc), h->answer.data, h->answer.len);
}

/* A remote write sample's event, staged; one over max_event_size dead-lettered as too large. */
static void rw_event(void *ud, const char *json, size_t len)
{
    struct httpin *h = ud;
    size_t max = (size_t)h->o->common.max_event_size;
    if (len > max)
        collector_dead(h->in, "too large", json, max);
    else
        collector_event(h->in, json, len);
}

static void rw_invalid(void *ud, const char *why, const char *raw, size_t len)
{
    struct httpin *h = ud;
    size_t max = (size_t)h->o->common.max_event_size;
    collector_dead(h->in, why, raw, len > max ? max : len);
}

/* POST /api/v1/write: a Prometheus remote write request, snappy-compressed protobuf; each sample
 * an event (samples that cannot be, dead-lettered), then 204; a body that is not snappy or not a
 * WriteRequest gets 400, one that decompresses past max_body 413, and nothing of it is kept. */
static void rw_body(struct httpin *h, struct evhttp_request *req, const char *body, size_t n)
{
    struct input *in = h->in;
    const struct rw_out out = {rw_event, rw_invalid, h};
    const char *err = "";
    int rc = rw_decode(h->rw, body, n, (size_t)h->o->max_body, collector_now(in->col), &out, &err);
    collector_commit(in->col);
    if (rc == -ENOMEM) {
        reply_busy(h, req, "out of memory decoding the request");
        return;
    }
    if (rc < 0) {
        reply_error(h, req, rc == -E2BIG ? 413 : 400,
                    rc == -E2BIG ? "Payload Too Large" : "Bad Request", err);
        return;
    }
    send_body(req, 204, "No Content", "text/plain", NULL, 0);
}

/* The encoding a Content-Type names (its media type, before any parameter, in any case), or -1
 * for one OTLP does not use. A request without one is taken as JSON, as before protobuf. */
static int otlp_encoding_of(const char *ctype)
{
    if (!ctype)
        return OTLP_JSON;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    size_t n = strcspn(ctype, ";");
    while (n && (ctype[n - 1] == ' ' || ctype[n - 1] == '\t'))
        n--;
    if (n == strlen("application/json") && !strncasecmp(ctype, "application/json", n))
        return OTLP_JSON;
    if ((n == strlen("application/x-protobuf") &&
         !strncasecmp(ctype, "application/x-protobuf", n)) ||
        (n == strlen("application/protobuf") && !strncasecmp(ctype, "application/protobuf", n)))
        return OTLP_PROTOBUF;
    return -1;
}

/* The request body in one piece. evbuffer_pullup would allocate that piece per request: past
 * malloc's mmap threshold (128 KiB) that memory went back to the kernel after each request and
 * page-faulted in again on the next (14% of S7J's CPU). A buffer kept from request to request
 * takes the copy instead. NULL for an empty body. */
static const char *contiguous(struct httpin *h, struct evbuffer *b, size_t n)
{
    if ((size_t)evbuffer_get_contiguous_space(b) >= n)
        return (const char *)evbuffer_pullup(b, -1); /* one chain: nothing moves */
    buf_reset(&h->raw);
    if (buf_reserve(&h->raw, n) || evbuffer_copyout(b, h->raw.data, n) != (ev_ssize_t)n)
        return NULL;
    h->raw.len = n;
    return h->raw.data;
}

static const char *header(struct evhttp_request *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

/* The request's connection is admitted (its deadline starts over for the next request; *conn
 * is it), or the request gets 503 and the connection is closed. */
static int admit(struct httpin *h, struct evhttp_request *req, struct hconn **conn)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    int at = bev ? conn_find(&h->conns, bev) : -1;
    if (at >= 0) {
        *conn = h->conns.v[at];
        if (h->conns.v[at]->evcon)
            request_ends(h->conns.v[at]);
        return 0;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    reply(req, 503, "Service Unavailable", json_pack("{s:s}", "error", "too many connections"));
    return -1;
}

/* The request's body, in one piece and decompressed (gzip, deflate): 0, or -1 once the request
 * is answered (413 over max_body, 415, 400, 503 out of memory). Counts the bytes read. */
static int read_body(struct httpin *h, struct evhttp_request *req, const char **body, size_t *n)
{
    struct evbuffer *ib = evhttp_request_get_input_buffer(req);
    *n = evbuffer_get_length(ib);
    counter_add(&h->in->stats.bytes, *n);
    *body = contiguous(h, ib, *n);
    if (!*body && *n) {
        reply_busy(h, req, "out of memory reading the body");
        return -1;
    }
    const char *enc = header(req, "Content-Encoding");
    if (h->sig == PATH_RW) {
        /* Snappy is remote write's encoding, said or not: decompressed by the decoder. */
        if (enc && strcmp(enc, "snappy")) {
            reply_error(h, req, 415, "Unsupported Media Type",
                        "remote write: Content-Encoding must be snappy");
            return -1;
        }
        return 0;
    }
    if (!enc || !strcmp(enc, "identity"))
        return 0;
    if (strcmp(enc, "gzip") && strcmp(enc, "deflate") && strcmp(enc, "x-gzip")) {
        reply_error(h, req, 415, "Unsupported Media Type",
                    "Content-Encoding must be gzip, deflate or identity");
        return -1;
    }
    buf_reset(&h->body);
    int rc = inflate_body((const unsigned char *)*body, *n, &h->body, (size_t)h->o->max_body);
    if (rc == -E2BIG) {
        reply_error(h, req, 413, "Payload Too Large", "decompressed body over max_body");
        return -1;
    }
    if (rc) {
        reply_error(h, req, 400, "Bad Request", "body is not valid gzip/deflate data");
        return -1;
    }
    *body = h->body.data ? h->body.data : "";
    *n = h->body.len;
    return 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct httpin *h = arg;
    struct input *in = h->in;
    h->sig = PATH_EVENTS;
    h->enc = OTLP_JSON;
    struct hconn *conn;
    if (admit(h, req, &conn))
        return;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    int sig = !path                              ? PATH_NONE
              : !strcmp(path, "/v1/events")      ? PATH_EVENTS
              : !strcmp(path, OTLP_HTTP_LOGS)    ? OTLP_LOGS
              : !strcmp(path, OTLP_HTTP_TRACES)  ? OTLP_TRACES
              : !strcmp(path, OTLP_HTTP_METRICS) ? OTLP_METRICS
              : !strcmp(path, "/api/v1/write")   ? PATH_RW
                                                 : PATH_NONE;
    if (sig == PATH_NONE) {
        reply_error(h, req, 404, "Not Found",
                    "unknown path; POST to /v1/events, /v1/logs, /v1/traces, /v1/metrics or "
                    "/api/v1/write");
        return;
    }
    h->sig = sig;
    int enc = sig >= 0 ? otlp_encoding_of(header(req, "Content-Type")) : OTLP_JSON;
    if (enc < 0) {
        reply_error(h, req, 415, "Unsupported Media Type",
                    "OTLP/HTTP takes Content-Type application/x-protobuf or application/json");
        return;
    }
    h->enc = (enum otlp_encoding)enc;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        reply_error(h, req, 405, "Method Not Allowed", "use POST");
        return;
    }
    if (collector_paused(in->col)) {
        reply_busy(h, req, "pipeline full, retry later");
        return;
    }
    const char *body;
    size_t n;
    if (read_body(h, req, &body, &n))
        return;
    if (sig == PATH_RW) {
        /* A remote write sender keeps a series on one connection (Prometheus: one per shard),
         * in time order: its samples stay in one partition, in that order. */
        collector_begin_stream(in->col, hash64(&conn, sizeof(conn)) | 1);
    } else {
        collector_begin(in->col);
    }
    if (sig >= 0) {
        otlp_body(h, req, body ? body : "", n);
    } else if (sig == PATH_RW) {
        rw_body(h, req, body ? body : "", n);
    } else {
        int accepted = 0, dead = 0;
        const char *err = NULL;
        int rc = events_body(h, body ? body : "", n, &accepted, &dead, &err);
        collector_commit(in->col);
        if (rc)
            reply_error(h, req, 400, "Bad Request", err);
        else
            reply(req, 200, "OK",
                  json_pack("{s:i, s:i}", "accepted", accepted, "dead_letter", dead));
    }
    buf_trim(&h->body, 1 << 20);
    buf_trim(&h->raw, 16 << 20);
    buf_trim(&h->answer, 1 << 16);
}

static int http_start(struct input *in, char *err, size_t errlen)
{
    struct httpin *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    in->priv = h;
    h->in = in;
    h->o = in->opts;
    h->conns.cap = 1;
    while (h->conns.cap < (size_t)h->o->max_connections * 2)
        h->conns.cap <<= 1;
    h->conns.v = calloc(h->conns.cap, sizeof(*h->conns.v));
    h->http = evhttp_new(in->base);
    h->otlp = otlp_decoder_new(in->name, collector_partition_key(in->col));
    h->rw = rw_decoder_new(in->name);
    if (!h->conns.v || !h->http || !h->otlp || !h->rw)
        return -ENOMEM;
    evhttp_set_max_body_size(h->http, h->o->max_body);
    evhttp_set_max_headers_size(h->http, 65536);
    h->idle = time_timeval(h->o->idle_timeout);
    h->request = time_timeval(h->o->request_timeout);
    evhttp_set_timeout_tv(h->http, &h->idle); /* a new connection is idle */
    h->deadline = h->request;
    h->deadline.tv_sec += 1;
    evhttp_set_bevcb(h->http, on_accept, h);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_POST | EVHTTP_REQ_GET | EVHTTP_REQ_PUT);
    evhttp_set_gencb(h->http, on_request, h);
    char host[256];
    const char *colon = strrchr(h->o->listen, ':');
    if (!colon || colon == h->o->listen || (size_t)(colon - h->o->listen) >= sizeof(host)) {
        snprintf(err, errlen, "input %s: listen \"%s\" is not host:port", in->name, h->o->listen);
        return -EINVAL;
    }
    memcpy(host, h->o->listen, (size_t)(colon - h->o->listen));
    host[colon - h->o->listen] = '\0';
    char *h0 = host;
    if (h0[0] == '[') { /* [::1]:4318 */
        h0++;
        h0[strlen(h0) - 1] = '\0';
    }
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535 || !evhttp_bind_socket_with_handle(h->http, h0, (uint16_t)port)) {
        snprintf(err, errlen, "input %s: cannot listen on %s: %s", in->name, h->o->listen,
                 strerror(errno));
        return -EADDRINUSE;
    }
    log_info("input listening", "{s:s, s:s, s:s}", "input", in->name, "type", in->type->cfg.name,
             "address", h->o->listen);
    return 0;
}

static void http_stop(struct input *in)
{
    struct httpin *h = in->priv;
    if (!h || !h->http)
        return;
    evhttp_free(h->http); /* closes the listener and every connection (on_close) */
    h->http = NULL;
    while (h->all) /* accepted, not yet attached */
        conn_free(h->all);
}

static void http_destroy(struct input *in)
{
    struct httpin *h = in->priv;
    if (!h)
        return;
    http_stop(in);
    buf_free(&h->body);
    buf_free(&h->raw);
    buf_free(&h->answer);
    otlp_decoder_free(h->otlp);
    rw_decoder_free(h->rw);
    free(h->conns.v);
    free(h);
    in->priv = NULL;
}

static const struct cfg_key http_keys[] = {
    {"listen", CFG_STRING, offsetof(struct http_opts, listen), NULL,
     "Address to listen on, host:port.", CFG_REQUIRED},
    INPUT_COMMON_KEYS(struct http_opts),
    {"max_body", CFG_SIZE, offsetof(struct http_opts, max_body), "8MiB",
     "Largest request body (after decompression); larger gets 413.", 0, 1024, 1073741824},
    {"max_connections", CFG_INT, offsetof(struct http_opts, max_connections), "1024",
     "Connections held at once; more are closed at once and counted.", 0, 1, 100000},
    {"idle_timeout", CFG_DURATION, offsetof(struct http_opts, idle_timeout), "30s",
     "A connection that sends nothing this long, after opening or between requests "
     "(keep-alive), is closed.",
     0, 1, 3600},
    {"request_timeout", CFG_DURATION, offsetof(struct http_opts, request_timeout), "30s",
     "A request that pauses this long is closed, and so is one not whole a second after that "
     "from its first byte, however slowly it trickles (slowloris).",
     0, 1, 3600},
    {0},
};

/* Pausing is answered per request (503), not by closing sockets: no pause or resume. */
const struct input_type input_http = {
    .cfg = {.name = "http",
            .desc = "HTTP: POST /v1/events (NDJSON or a JSON array), OTLP/HTTP (protobuf or "
                    "JSON) at /v1/logs, /v1/traces, /v1/metrics, Prometheus remote write at "
                    "/api/v1/write; gzip accepted.",
            .size = sizeof(struct http_opts),
            .keys = http_keys},
    .start = http_start,
    .stop = http_stop,
    .destroy = http_destroy,
};
