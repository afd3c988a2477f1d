/* The gRPC server session (collector/grpc.h) fed bytes as if read from a connection: HTTP/2
 * through nghttp2, the gRPC framing, gzip messages, and calls of the three OTLP Export methods
 * decoded by the real decoder (collector/otlp.h) into a null output and answered as the
 * otlp_grpc input answers them, some at once, some after the next read (as a call answered
 * later would be).
 *
 * Input: byte 0 picks the size of the reads (1 to 64 bytes, or 4 KiB) and whether the session
 * is paused for some of them (flow control held back, then given back); the rest is what the
 * client sent. After the last read the calls still waiting are answered, those whose request
 * never came whole are expired, a GOAWAY is sent, and what the session has to send is drained.
 *
 * What must hold: no crash, no read past the input, no leak (the session frees every call it
 * made); a call is handed to the handler at most once, on an odd (client) stream, with a path;
 * no more calls are open at once than max_concurrent_streams; none is still arriving once every
 * call expired; what the session sends stays
 * bounded by what was read (an answer per request, a PING ACK per PING: at most 64 bytes out
 * per byte in, plus the SETTINGS and a GOAWAY); every call answered at once is answered in what
 * the session sends (its response HEADERS, or a RST_STREAM), unless the client reset that
 * stream or the session was closed (the client broke HTTP/2); once the session reports an error it
 * is not fed again, as the input closes the connection. */
#include "fuzz.h"
#include "collector/grpc.h"
#include "collector/otlp.h"
#include "collector/otlp_reply.h"
#include "proto/otlp_services.h"

#define MAX_STREAMS 8
#define MAX_HANDED  4096

static const struct {
    const char *path;
    enum otlp_signal sig;
} methods[] = {
    {OTLP_GRPC_LOGS, OTLP_LOGS},
    {OTLP_GRPC_TRACES, OTLP_TRACES},
    {OTLP_GRPC_METRICS, OTLP_METRICS},
};

struct ctx {
    struct otlp_decoder *otlp;
    int32_t at_once[MAX_HANDED]; /* calls answered in on_call */
    int nat_once;
    struct buf answer;
    int32_t handed[MAX_HANDED];
    int nhanded;
    struct {
        int32_t id;
        enum grpc_code st;
    } later[MAX_STREAMS * 4]; /* calls answered after the next read */
    int nlater;
    long events;
};

static void on_event(void *ud, const char *json, size_t len, const char *key, size_t klen)
{
    struct ctx *x = ud;
    x->events++;
}

static void on_invalid(void *ud, const char *why, const char *raw, size_t len)
{
}

/* Decodes call id's request as the otlp_grpc input would. Returns the status to answer with;
 * err is the decoder's reason. */
static enum grpc_code decode(struct ctx *x, int sig, const char *msg, size_t len, const char **err)
{
    *err = "unknown method";
    if (sig < 0)
        return GRPC_UNIMPLEMENTED;
    struct recv_time rt = fuzz_recv_time();
    const struct otlp_out out = {on_event, on_invalid, x};
    int n = otlp_decode(x->otlp, (enum otlp_signal)sig, OTLP_PROTOBUF, msg, len, &rt, &out, err);
    FUZZ_CHECK(n >= 0 || (*err && **err), "a refused request without a reason");
    return n >= 0 ? GRPC_OK : n == -E2BIG ? GRPC_RESOURCE_EXHAUSTED : GRPC_INVALID_ARGUMENT;
}

/* Answers call id: OK with the Export response (for sig), or st with why. */
static void answer(struct ctx *x, struct grpc_conn *c, int32_t id, int sig, enum grpc_code st,
                   const char *why)
{
    if (st != GRPC_OK) {
        FUZZ_CHECK(grpc_conn_reply(c, id, st, why, NULL, 0, NULL, 0) == 0,
                   "grpc_conn_reply failed");
        return;
    }
    buf_reset(&x->answer);
    FUZZ_CHECK(otlp_reply_export(&x->answer, (enum otlp_signal)sig, OTLP_PROTOBUF, 0, NULL) == 0,
               "otlp_reply_export failed");
    FUZZ_CHECK(grpc_conn_reply(c, id, GRPC_OK, NULL, x->answer.data ? x->answer.data : "",
                               x->answer.len, NULL, 0) == 0,
               "grpc_conn_reply failed");
}

static void on_call(void *ud, struct grpc_conn *c, int32_t id, const char *path, const char *msg,
                    size_t len)
{
    struct ctx *x = ud;
    FUZZ_CHECK(id > 0 && (id & 1), "a call on stream %d, not a client's", id);
    FUZZ_CHECK(path, "a call without a path");
    for (int i = 0; i < x->nhanded; i++)
        FUZZ_CHECK(x->handed[i] != id, "stream %d handed over twice", id);
    FUZZ_CHECK(x->nhanded < MAX_HANDED, "more calls than the input could hold");
    x->handed[x->nhanded++] = id;
    int sig = -1;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (!strcmp(path, methods[i].path))
            sig = (int)methods[i].sig;
    }
    const char *why = "";
    enum grpc_code st = decode(x, sig, msg, len, &why);
    /* Every third call is answered after the next read (its status kept, the reason not: the
     * decoder's text lives until its next decode); the others at once. */
    if (id % 3 == 0 && x->nlater < (int)(sizeof(x->later) / sizeof(x->later[0]))) {
        x->later[x->nlater].id = id;
        x->later[x->nlater++].st = st;
        return;
    }
    answer(x, c, id, sig, st, why);
    x->at_once[x->nat_once++] = id;
}

static void on_refused(void *ud, int http_status, enum grpc_code st, const char *why)
{
    FUZZ_CHECK(why && *why, "a refusal without a reason");
}

static void answer_later(struct ctx *x, struct grpc_conn *c)
{
    for (int i = 0; i < x->nlater; i++)
        answer(x, c, x->later[i].id, OTLP_LOGS, x->later[i].st, "answered later");
    x->nlater = 0;
}

/* Streams seen in a run of HTTP/2 frames (what the session sent, or the client's frames after
 * its preface): a HEADERS frame, an end (END_STREAM or RST_STREAM), a RST_STREAM. */
struct seen {
    struct buf rec; /* (stream id, what) pairs */
    struct buf carry;
};

enum { SEEN_HEADERS = 1, SEEN_END = 2, SEEN_RST = 4 };

static void note(struct seen *sn, int32_t id, int what)
{
    int32_t rec[2] = {id, what};
    buf_append(&sn->rec, rec, sizeof(rec));
}

static int noted(const struct seen *sn, int32_t id, int what)
{
    const int32_t *r = (const int32_t *)sn->rec.data;
    for (size_t i = 0; i + 1 < sn->rec.len / sizeof(int32_t); i += 2)
        if (r[i] == id && (r[i + 1] & what))
            return 1;
    return 0;
}

/* Walks the whole frames of data (after what an earlier call left), noting their streams. */
static void walk(struct seen *sn, const char *data, size_t len)
{
    buf_append(&sn->carry, data, len);
    const unsigned char *p = (const unsigned char *)sn->carry.data;
    size_t off = 0;
    while (sn->carry.len - off >= 9) {
        size_t flen = (size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2];
        if (sn->carry.len - off < 9 + flen)
            break;
        int type = p[off + 3], flags = p[off + 4];
        int32_t id = (int32_t)(((uint32_t)p[off + 5] << 24 | (uint32_t)p[off + 6] << 16 |
                                (uint32_t)p[off + 7] << 8 | p[off + 8]) &
                               0x7fffffff);
        if (type == 1) /* HEADERS */
            note(sn, id, SEEN_HEADERS | ((flags & 1) ? SEEN_END : 0));
        else if (type == 0 && (flags & 1)) /* DATA, END_STREAM */
            note(sn, id, SEEN_END);
        else if (type == 3) /* RST_STREAM */
            note(sn, id, SEEN_END | SEEN_RST);
        off += 9 + flen;
    }
    if (off) {
        memmove(sn->carry.data, sn->carry.data + off, sn->carry.len - off);
        sn->carry.len -= off;
    }
}

/* Takes what the session has to send, walking its frames; returns -1 once it failed. */
static int drain(struct grpc_conn *c, struct buf *out, size_t *sent, struct seen *sn)
{
    for (;;) {
        buf_reset(out);
        ssize_t n = grpc_conn_send(c, out, 64 * 1024);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        *sent += (size_t)n;
        walk(sn, out->data, out->len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const size_t reads[] = {1, 2, 3, 5, 7, 9, 13, 16, 24, 31, 40, 64, 100, 333, 4096, 65536};
    size_t chunk = reads[data[0] & 15];
    int pausing = data[0] & 16, late_drain = data[0] & 32;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    struct ctx x = {0};
    x.otlp = otlp_decoder_new("grpc", "trace_id");
    FUZZ_CHECK(x.otlp, "otlp_decoder_new failed");
    struct grpc_limits lim = {64 * 1024, MAX_STREAMS, 64 * 1024};
    struct grpc_handler h = {on_call, on_refused, &x};
    struct grpc_conn *c = grpc_conn_new(&lim, &h);
    FUZZ_CHECK(c, "grpc_conn_new failed");
    struct buf out = {0};
    struct seen sent_frames = {0}, client_frames = {0};
    size_t sent = 0, fed = 0;
    int failed = drain(c, &out, &sent, &sent_frames) < 0;
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    int h2 = len >= 24 && !memcmp(in, preface, 24);
    if (h2)
        walk(&client_frames, in + 24, len - 24);
    for (size_t off = 0, n = 0; off < len && !failed; off += n, fed += n) {
        n = len - off < chunk ? len - off : chunk;
        if (pausing)
            grpc_conn_pause(c, (int)((off / chunk) & 1));
        failed = grpc_conn_recv(c, in + off, n) < 0;
        FUZZ_CHECK(grpc_conn_arriving(c) <= grpc_conn_calls(c), "more calls arriving than open");
        FUZZ_CHECK(grpc_conn_calls(c) <= MAX_STREAMS, "%d calls open, over %d", grpc_conn_calls(c),
                   MAX_STREAMS);
        answer_later(&x, c);
        /* Sometimes the client's answers wait for several reads, as when its socket is full. */
        if (!late_drain || (off / chunk) % 4 == 3)
            failed |= drain(c, &out, &sent, &sent_frames) < 0;
    }
    answer_later(&x, c);
    grpc_conn_pause(c, 0);
    grpc_conn_expire(c, INT64_MAX / 2, 0);
    FUZZ_CHECK(grpc_conn_arriving(c) == 0, "a call still arriving after every call expired");
    failed |= drain(c, &out, &sent, &sent_frames) < 0;
    /* Closed by nghttp2 itself: the client broke HTTP/2 (answers not yet sent are dropped). */
    int closed = failed || grpc_conn_done(c);
    grpc_conn_goaway(c);
    drain(c, &out, &sent, &sent_frames);
    FUZZ_CHECK(sent <= 64 * fed + 64 * 1024, "%zu bytes sent for %zu read", sent, fed);
    for (int i = 0; i < x.nat_once && !closed; i++) {
        int32_t id = x.at_once[i];
        FUZZ_CHECK(noted(&sent_frames, id, SEEN_HEADERS | SEEN_END) ||
                       noted(&client_frames, id, SEEN_RST),
                   "call %d answered, but no answer was sent and the client did not reset it", id);
    }
    buf_free(&sent_frames.rec);
    buf_free(&sent_frames.carry);
    buf_free(&client_frames.rec);
    buf_free(&client_frames.carry);
    grpc_conn_free(c);
    otlp_decoder_free(x.otlp);
    buf_free(&x.answer);
    buf_free(&out);
    return 0;
}
