#include "collector/grpc.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/inflate.h"
#include "core/base64.h"
#include "core/dlist.h"
#include "core/timeutil.h"

#define PREFIX 5 /* a message's prefix: compressed flag (1 byte), length (4 bytes, big endian) */

/* One call: its request headers and message as they arrive, then its answer. */
struct call {
    struct grpc_conn *c;
    int32_t id;
    char path[160];     /* :path; a longer one names no method spillway has */
    int post;           /* :method POST */
    int grpc;           /* content-type application/grpc (or +proto, ;params) */
    int gzip;           /* grpc-encoding: gzip */
    int64_t started_ns; /* when its request began (again when a pause ends) */
    int64_t active_ns;  /* the last time the call moved: a byte of it read or a frame sent */
    int whole;          /* the request message arrived whole, or the call was answered before */
    int answered;       /* a reply was submitted */
    int discard;        /* request bytes are dropped from now on (answered early) */
    struct buf msg;     /* the request as it arrives: prefix, then the message */
    size_t held;        /* bytes read and not acknowledged: paused, or over the budget */
    struct buf resp;    /* the answer's DATA: prefix and response message */
    size_t resp_off;
    char status[12];
    struct call *prev, *next;
};

struct grpc_conn {
    nghttp2_session *h2;
    struct grpc_limits lim;
    struct grpc_handler h;
    struct call *calls;
    int ncalls;
    int paused;
    size_t buffered;     /* request bytes gathered by the calls not yet whole */
    int nomem;           /* a callback ran out of memory: the connection cannot go on */
    size_t budget;       /* past this, request bytes are not acknowledged (memory per connection) */
    struct buf inflated; /* a compressed request, inflated (reused) */
    struct buf scratch;  /* grpc-message and grpc-status-details-bin, encoded (reused) */
};

static struct call *call_of(struct grpc_conn *c, int32_t id)
{
    return nghttp2_session_get_stream_user_data(c->h2, id);
}

/* Request bytes read: acknowledged (the client may send as many more) unless the pipeline is
 * full (paused) or the connection's calls already hold its budget of request bytes; those are
 * held back, and acknowledged by release() once the pause ends or calls complete. The bytes of
 * a call answered before its request ended (too large, not gRPC) are dropped and count for the
 * connection only, so that call's own window runs out and its client, which has the answer,
 * stops, while the other calls go on. */
static void ack(struct grpc_conn *c, struct call *call, size_t n)
{
    if (!call || call->discard)
        nghttp2_session_consume_connection(c->h2, n);
    else if (c->paused || c->buffered > c->budget)
        call->held += n;
    else
        nghttp2_session_consume(c->h2, call->id, n);
}

/* Acknowledges what calls held back, when the pause is over and the budget allows. */
static void release(struct grpc_conn *c)
{
    for (struct call *call = c->calls; call && !c->paused; call = call->next) {
        if (call->held && c->buffered <= c->budget) {
            nghttp2_session_consume(c->h2, call->id, call->held);
            call->held = 0;
        }
    }
}

/* A call's gathered request is done with (handed over, or dropped): its memory goes. */
static void drop_request(struct grpc_conn *c, struct call *call)
{
    c->buffered -= call->msg.len;
    buf_free(&call->msg);
    if (call->held && call->discard) {
        nghttp2_session_consume_connection(c->h2, call->held);
        call->held = 0;
    }
}

/* gRPC's percent-encoding of grpc-message: bytes outside printable ASCII, and '%'. */
static int percent_encode(struct buf *out, const char *s)
{
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '%')
            rc = buf_printf(out, "%%%02X", *p);
        else
            rc = buf_putc(out, (char)*p);
    }
    return rc;
}

#define NV(n, v, vl)                                                                               \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE                  \
    }

/* The answer's trailers (or, with headers, a trailers-only answer): grpc-status, then
 * grpc-message and grpc-status-details-bin when there are. scratch holds their encodings:
 * message at [0, mlen), details after it. */
static size_t trailers(nghttp2_nv *nv, const struct call *call, const struct buf *scratch,
                       size_t mlen)
{
    size_t n = 0;
    nv[n++] = (nghttp2_nv)NV("grpc-status", call->status, strlen(call->status));
    if (mlen)
        nv[n++] = (nghttp2_nv)NV("grpc-message", scratch->data, mlen);
    if (scratch->len > mlen)
        nv[n++] =
            (nghttp2_nv)NV("grpc-status-details-bin", scratch->data + mlen, scratch->len - mlen);
    return n;
}

/* The answer's DATA, then its trailers (grpc-status 0). */
static ssize_t read_resp(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct call *call = src->ptr;
    size_t n = call->resp.len - call->resp_off;
    if (n > length)
        n = length;
    memcpy(buf, call->resp.data + call->resp_off, n);
    call->resp_off += n;
    if (call->resp_off == call->resp.len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_nv nv[1] = {NV("grpc-status", call->status, strlen(call->status))};
        if (nghttp2_submit_trailer(s, id, nv, 1))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

/* An answer without a gRPC status: the request was not gRPC at all. */
static void reply_http(struct grpc_conn *c, struct call *call, int http, const char *why)
{
    char st[8];
    snprintf(st, sizeof(st), "%d", http);
    nghttp2_nv nv[1] = {NV(":status", st, strlen(st))};
    call->answered = call->discard = 1;
    nghttp2_submit_response(c->h2, call->id, nv, 1, NULL);
    drop_request(c, call);
    if (c->h.refused)
        c->h.refused(c->h.ud, http, GRPC_OK, why);
}

int grpc_conn_reply(struct grpc_conn *c, int32_t id, enum grpc_code status, const char *message,
                    const char *resp, size_t resp_len, const char *details, size_t details_len)
{
    struct call *call = call_of(c, id);
    if (!call || call->answered)
        return 0;
    snprintf(call->status, sizeof(call->status), "%d", status);
    nghttp2_nv nv[6] = {NV(":status", "200", 3), NV("content-type", "application/grpc", 16),
                        NV("grpc-accept-encoding", "gzip", 4)};
    if (status == GRPC_OK) {
        unsigned char prefix[PREFIX] = {0, (unsigned char)(resp_len >> 24),
                                        (unsigned char)(resp_len >> 16),
                                        (unsigned char)(resp_len >> 8), (unsigned char)resp_len};
        buf_reset(&call->resp);
        if (buf_append(&call->resp, prefix, PREFIX) || buf_append(&call->resp, resp, resp_len))
            return -ENOMEM;
        nghttp2_data_provider prd = {.source.ptr = call, .read_callback = read_resp};
        if (nghttp2_submit_response(c->h2, id, nv, 3, &prd))
            return -ENOMEM;
        call->answered = 1;
        return 0;
    }
    /* An error: trailers-only (one HEADERS frame that ends the stream). */
    struct buf *sc = &c->scratch;
    buf_reset(sc);
    if (message && percent_encode(sc, message))
        return -ENOMEM;
    size_t mlen = sc->len;
    if (details && details_len && base64_append(sc, details, details_len))
        return -ENOMEM;
    size_t n = 3 + trailers(nv + 3, call, sc, mlen);
    if (nghttp2_submit_response(c->h2, id, nv, n, NULL))
        return -ENOMEM;
    call->answered = 1;
    call->discard = 1; /* what the client still sends is dropped (see ack) */
    drop_request(c, call);
    return 0;
}

/* An error the server decides itself, counted through the handler. */
static void refuse(struct grpc_conn *c, struct call *call, enum grpc_code st, const char *why)
{
    grpc_conn_reply(c, call->id, st, why, NULL, 0, NULL, 0);
    if (c->h.refused)
        c->h.refused(c->h.ud, 200, st, why);
}

/* The length a message's prefix says (big endian, after the compressed flag). */
static size_t prefix_length(const char *msg)
{
    const unsigned char *m = (const unsigned char *)msg;
    return (size_t)m[1] << 24 | (size_t)m[2] << 16 | (size_t)m[3] << 8 | m[4];
}

/* The request ended: its one message goes to the handler, or the call is refused. */
static void request_done(struct grpc_conn *c, struct call *call)
{
    if (call->answered || call->whole || call->discard)
        return;
    call->whole = 1;
    call->active_ns = time_mono_ns(); /* from now on, the answer is what must move */
    const unsigned char *m = (const unsigned char *)call->msg.data;
    if (call->msg.len < PREFIX) {
        refuse(c, call, GRPC_INVALID_ARGUMENT,
               call->msg.len ? "request message cut short" : "no request message");
        return;
    }
    size_t len = prefix_length(call->msg.data);
    if (call->msg.len != PREFIX + len) {
        refuse(c, call, GRPC_INVALID_ARGUMENT, "request message cut short");
        return;
    }
    const char *msg = call->msg.data + PREFIX;
    if (m[0] == 1) {
        if (!call->gzip) {
            refuse(c, call, GRPC_UNIMPLEMENTED,
                   "message compressed, but grpc-encoding is not gzip (the one supported)");
            return;
        }
        buf_reset(&c->inflated);
        int rc = inflate_body((const unsigned char *)msg, len, &c->inflated, c->lim.max_message);
        if (rc) {
            refuse(c, call, rc == -E2BIG ? GRPC_RESOURCE_EXHAUSTED : GRPC_INVALID_ARGUMENT,
                   rc == -E2BIG    ? "message larger than max_message_size once inflated"
                   : rc == -ENOMEM ? "out of memory inflating the message"
                                   : "message is not gzip");
            return;
        }
        msg = c->inflated.data ? c->inflated.data : "";
        len = c->inflated.len;
    } else if (m[0] != 0) {
        refuse(c, call, GRPC_INVALID_ARGUMENT, "bad message prefix (compressed flag)");
        return;
    }
    c->h.call(c->h.ud, c, call->id, call->path, msg, len);
    drop_request(c, call);
    buf_trim(&c->inflated, 64 * 1024);
    release(c);
}

/* Request bytes: gathered (at most one message of max_message bytes and its prefix). */

/* Request bytes: gathered (one message of at most max_message bytes and its prefix), or the
 * call refused as soon as its prefix says too much. */
static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    struct grpc_conn *c = ud;
    struct call *call = call_of(c, id);
    if (call && !call->discard) {
        call->active_ns = time_mono_ns();
        if (buf_append(&call->msg, data, len)) {
            refuse(c, call, GRPC_RESOURCE_EXHAUSTED, "out of memory reading the message");
        } else {
            c->buffered += len;
            size_t want = call->msg.len >= PREFIX ? prefix_length(call->msg.data) : 0;
            if (want > c->lim.max_message) {
                char why[96];
                snprintf(why, sizeof(why), "message of %zu bytes, over max_message_size (%zu)",
                         want, c->lim.max_message);
                refuse(c, call, GRPC_RESOURCE_EXHAUSTED, why);
            } else if (call->msg.len > PREFIX + want && call->msg.len >= PREFIX) {
                refuse(c, call, GRPC_INVALID_ARGUMENT, "more than one request message (unary)");
            }
        }
    }
    ack(c, call, len);
    return 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct grpc_conn *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct call *call = calloc(1, sizeof(*call));
    if (!call) {
        c->nomem = 1;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    call->c = c;
    call->id = f->hd.stream_id;
    call->started_ns = call->active_ns = time_mono_ns();
    DLIST_PUSH(c->calls, call);
    c->ncalls++;
    nghttp2_session_set_stream_user_data(s, call->id, call);
    return 0;
}

static int is(const uint8_t *v, size_t vl, const char *s)
{
    return vl == strlen(s) && memcmp(v, s, vl) == 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
    struct grpc_conn *c = ud;
    struct call *call = call_of(c, f->hd.stream_id);
    if (!call || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (is(name, nl, ":method")) {
        call->post = is(v, vl, "POST");
    } else if (is(name, nl, ":path")) {
        size_t n = vl < sizeof(call->path) - 1 ? vl : sizeof(call->path) - 1;
        memcpy(call->path, v, n);
        call->path[n] = '\0';
    } else if (is(name, nl, "content-type")) {
        /* application/grpc, application/grpc+proto, application/grpc;charset=... */
        call->grpc = vl >= 16 && memcmp(v, "application/grpc", 16) == 0 &&
                     (vl == 16 || v[16] == '+' || v[16] == ';');
    } else if (is(name, nl, "grpc-encoding")) {
        call->gzip = is(v, vl, "gzip");
    }
    return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct grpc_conn *c = ud;
    struct call *call = call_of(c, f->hd.stream_id);
    if (!call)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (!call->post) {
            reply_http(c, call, 405, "not a POST");
            return 0;
        }
        if (!call->grpc) {
            reply_http(c, call, 415, "content-type is not application/grpc");
            return 0;
        }
    }
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        request_done(c, call);
    return 0;
}

/* A frame of a call went out: the call moves (its answer is read by the client). */
static int on_sent(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct call *call = call_of(ud, f->hd.stream_id);
    if (call)
        call->active_ns = time_mono_ns();
    return 0;
}

/* A frame nghttp2 refused. Counted here: a request past max_concurrent_streams, which nghttp2
 * refuses with RST_STREAM REFUSED_STREAM while the client has not yet acknowledged the limit,
 * and with a GOAWAY (PROTOCOL_ERROR) once it has (it broke the limit it agreed to). */
static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *f, int lib_error, void *ud)
{
    struct grpc_conn *c = ud;
    if (f->hd.type == NGHTTP2_HEADERS && !call_of(c, f->hd.stream_id) &&
        (lib_error == NGHTTP2_ERR_REFUSED_STREAM || (uint32_t)c->ncalls >= c->lim.max_streams) &&
        c->h.refused)
        c->h.refused(c->h.ud, 0, GRPC_UNAVAILABLE, "call over max_concurrent_streams");
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t error, void *ud)
{
    struct grpc_conn *c = ud;
    struct call *call = call_of(c, id);
    if (!call)
        return 0;
    if (call->held) /* the call is gone: what it held back counts for the connection only */
        nghttp2_session_consume_connection(s, call->held);
    c->buffered -= call->msg.len;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    DLIST_UNLINK(c->calls, call);
    c->ncalls--;
    buf_free(&call->msg);
    buf_free(&call->resp);
    free(call);
    return 0;
}

struct grpc_conn *grpc_conn_new(const struct grpc_limits *lim, const struct grpc_handler *h)
{
    struct grpc_conn *c = calloc(1, sizeof(*c));
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    if (!c || nghttp2_session_callbacks_new(&cb) || nghttp2_option_new(&opt))
        goto fail;
    c->lim = *lim;
    c->h = *h;
    /* Two largest messages in the making: one large call can always complete. */
    c->budget = 2 * lim->max_message;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_sent);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
    /* Request bytes are acknowledged by the server (ack), not as soon as they are read: that is
     * how a full pipeline slows the clients down. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    if (nghttp2_session_server_new2(&c->h2, cb, c, opt))
        goto fail;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, lim->window},
    };
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2) ||
        nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, (int32_t)lim->window))
        goto fail;
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    return c;
fail:
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    grpc_conn_free(c);
    return NULL;
}

void grpc_conn_free(struct grpc_conn *c)
{
    if (!c)
        return;
    nghttp2_session_del(c->h2); /* frees its streams without calling on_close: */
    while (c->calls) {          /* the calls are freed here */
        struct call *call = c->calls;
        DLIST_UNLINK(c->calls, call);
        buf_free(&call->msg);
        buf_free(&call->resp);
        free(call);
    }
    buf_free(&c->inflated);
    buf_free(&c->scratch);
    free(c);
}

int grpc_conn_recv(struct grpc_conn *c, const char *data, size_t len)
{
    ssize_t n = nghttp2_session_mem_recv(c->h2, (const uint8_t *)data, len);
    if (n == NGHTTP2_ERR_NOMEM || c->nomem)
        return -ENOMEM;
    return n < 0 ? -EPROTO : 0;
}

ssize_t grpc_conn_send(struct grpc_conn *c, struct buf *out, size_t max)
{
    size_t before = out->len;
    while (out->len - before < max) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(c->h2, &p);
        if (n < 0)
            return n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
        if (n == 0)
            break;
        if (buf_append(out, p, (size_t)n))
            return -ENOMEM;
    }
    return (ssize_t)(out->len - before);
}

int grpc_conn_done(const struct grpc_conn *c)
{
    return !nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2);
}

void grpc_conn_pause(struct grpc_conn *c, int paused)
{
    if (c->paused == paused)
        return;
    c->paused = paused;
    if (paused)
        return;
    /* Calls stalled by the pause start their time again: they could not move. */
    int64_t now = time_mono_ns();
    for (struct call *call = c->calls; call; call = call->next)
        call->started_ns = call->active_ns = now;
    release(c);
}

void grpc_conn_goaway(struct grpc_conn *c)
{
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
}

int grpc_conn_calls(const struct grpc_conn *c)
{
    return c->ncalls;
}

int grpc_conn_arriving(const struct grpc_conn *c)
{
    int n = 0;
    for (const struct call *call = c->calls; call; call = call->next)
        n += !call->whole && !call->discard;
    return n;
}

int grpc_conn_expire(struct grpc_conn *c, int64_t now_ns, int64_t age_ns)
{
    if (c->paused) /* nothing can move while the pipeline is full: not the calls' doing */
        return 0;
    int n = 0;
    for (struct call *call = c->calls; call; call = call->next) {
        /* A request not whole age_ns after it began, however slowly it trickles (a client that
         * sends on after its answer too), or a whole one whose answer has not moved for as long
         * (the client does not read it): the call is reset and its memory goes. */
        if (now_ns - (call->whole ? call->active_ns : call->started_ns) < age_ns)
            continue;
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, call->id, NGHTTP2_CANCEL);
        call->active_ns = now_ns; /* until the reset closes it */
        if (!call->answered && c->h.refused)
            c->h.refused(c->h.ud, 0, GRPC_CANCELLED, "request not whole in time");
        call->answered = call->discard = 1;
        drop_request(c, call);
        n++;
    }
    return n;
}
