/* `otlp_grpc` input: OTLP over gRPC, what the OpenTelemetry SDKs (Java, .NET, Go by default)
 * and the OpenTelemetry Collector's `otlp` exporter send: the Export methods of
 * opentelemetry.proto.collector.{logs,trace,metrics}.v1, over HTTP/2 without TLS (h2c, prior
 * knowledge). Each connection is a grpc_conn (collector/grpc.h) fed from the collector's event
 * loop; a whole request is decoded by the OTLP decoder (collector/otlp.h) into events, as the
 * http input does for OTLP/HTTP, and answered with the Export*ServiceResponse (partial success
 * for records dead-lettered). Backpressure: while the pipeline is full, calls are answered
 * UNAVAILABLE with a RetryInfo (the SDKs retry after it) and request bytes are not acknowledged,
 * so HTTP/2 flow control stops the clients. A connection idle for idle_timeout is closed (after
 * a GOAWAY), a call not whole within request_timeout is cancelled, and a client that does not
 * read its answers is cut off once they pile up. SIGTERM sends a GOAWAY to every connection and
 * lets the calls in flight finish while the stop allows. */
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "collector/collector.h"
#include "collector/grpc.h"
#include "collector/input.h"
#include "collector/otlp.h"
#include "collector/otlp_intake.h"
#include "collector/otlp_reply.h"
#include "core/dlist.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "proto/otlp_services.h"

#define READ_CHUNK (64 * 1024)
#define OUT_MAX    (4u << 20) /* answers a client has not read: past this, it is not read either */
#define WINDOW     (1u << 20) /* receive window per call and per connection */
#define RETRY_S    1          /* the delay UNAVAILABLE asks for while the pipeline is full */

struct grpc_opts {
    struct input_common common;
    char *listen;
    int64_t max_message_size;
    int64_t max_concurrent_streams;
    int64_t max_connections;
    int64_t idle_timeout;
    int64_t request_timeout;
};

struct gconn {
    struct grpcin *g;
    evutil_socket_t fd;
    struct event *rev, *wev;
    struct grpc_conn *h2;
    struct buf out; /* to write: out.data[out_off, out.len) */
    size_t out_off;
    int64_t active_ns;  /* the last byte read or written */
    int64_t blocked_ns; /* since when the socket takes nothing of what is to write (0: it does) */
    int reading;        /* rev is armed */
    int closing;        /* close once out is written */
    struct gconn *prev, *next;
};

struct grpcin {
    struct input *in;
    const struct grpc_opts *o;
    struct evconnlistener *lis;
    struct event *tick;
    struct gconn *conns;
    int64_t nconns;
    char *rbuf;
    int paused, stopped, stopping;
    struct otlp_decoder *otlp;
    struct buf answer;  /* an Export*ServiceResponse, or a google.rpc.Status */
    struct buf details; /* a google.rpc.Status with RetryInfo */
    struct log_limit lim;
};

static const struct {
    const char *path;
    enum otlp_signal sig;
} methods[] = {
    {OTLP_GRPC_LOGS, OTLP_LOGS},
    {OTLP_GRPC_TRACES, OTLP_TRACES},
    {OTLP_GRPC_METRICS, OTLP_METRICS},
};

static void conn_close(struct gconn *cn);
static void conn_flush(struct gconn *cn);

static void arm_read(struct gconn *cn, int on)
{
    if (on == cn->reading)
        return;
    cn->reading = on;
    if (on)
        event_add(cn->rev, NULL);
    else
        event_del(cn->rev);
}

/* A connection is read while what is to be written to it goes out: a client that does not read
 * its answers is not read either (its requests wait in the kernel, then in the client), and is
 * cut off after idle_timeout of that (on_tick). After the stop, drain() reads by itself. */
static void update_reading(struct gconn *cn)
{
    arm_read(cn, !cn->closing && !cn->g->stopped && !cn->blocked_ns);
}

static void reply(struct gconn *cn, int32_t id, enum grpc_code st, const char *why)
{
    struct grpcin *g = cn->g;
    const char *details = NULL;
    size_t dlen = 0;
    if (st == GRPC_UNAVAILABLE) {
        buf_reset(&g->details);
        if (otlp_reply_retry(&g->details, why, RETRY_S) == 0) {
            details = g->details.data;
            dlen = g->details.len;
        }
    }
    grpc_conn_reply(cn->h2, id, st, why, NULL, 0, details, dlen);
}

/* A whole Export request: its records handed to the collector, then the answer. */
static void on_call(void *ud, struct grpc_conn *h2, int32_t id, const char *path, const char *msg,
                    size_t len)
{
    struct gconn *cn = ud;
    struct grpcin *g = cn->g;
    struct input *in = g->in;
    int sig = -1;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (!strcmp(path, methods[i].path))
            sig = (int)methods[i].sig;
    }
    if (sig < 0) {
        counter_add(&in->stats.rejected, 1);
        char why[224];
        snprintf(why, sizeof(why), "unknown method %s", path);
        reply(cn, id, GRPC_UNIMPLEMENTED, why);
        return;
    }
    /* While stopping, the collector no longer pauses: a call waits for room in the rings
     * (collector_stop_commit) instead. */
    if (g->paused && !g->stopping) {
        counter_add(&in->stats.refused, 1);
        reply(cn, id, GRPC_UNAVAILABLE, "pipeline full: retry later");
        return;
    }
    collector_begin(in->col);
    struct otlp_intake take;
    otlp_intake_begin(&take, in, (size_t)g->o->common.max_event_size);
    const char *err = "";
    int rc = otlp_decode(g->otlp, (enum otlp_signal)sig, OTLP_PROTOBUF, msg, len,
                         collector_now(in->col), &take.out, &err);
    if (!g->stopping) {
        collector_commit(in->col);
    } else if (collector_stop_commit(in->col)) {
        /* No room before the stop's time ran out: what stays staged is dropped at the stop
         * (counted), so the client must not be told it was taken. */
        counter_add(&in->stats.refused, 1);
        reply(cn, id, GRPC_UNAVAILABLE, "stopping: retry elsewhere");
        return;
    }
    if (rc == -ENOMEM) {
        counter_add(&in->stats.refused, 1);
        reply(cn, id, GRPC_UNAVAILABLE, err);
        return;
    }
    if (rc < 0) {
        counter_add(&in->stats.rejected, 1);
        reply(cn, id, rc == -E2BIG ? GRPC_RESOURCE_EXHAUSTED : GRPC_INVALID_ARGUMENT, err);
        return;
    }
    char partial[256];
    int64_t rejected = otlp_intake_rejected(&take, partial, sizeof(partial));
    buf_reset(&g->answer);
    if (otlp_reply_export(&g->answer, (enum otlp_signal)sig, OTLP_PROTOBUF, rejected,
                          rejected ? partial : NULL) ||
        grpc_conn_reply(h2, id, GRPC_OK, NULL, g->answer.data ? g->answer.data : "", g->answer.len,
                        NULL, 0))
        reply(cn, id, GRPC_UNAVAILABLE, "out of memory answering");
}

/* A call the gRPC layer refused itself: not gRPC, too large, cut short, too slow (rejected), or
 * over max_concurrent_streams (UNAVAILABLE: refused, as the calls answered so while the pipeline
 * is full). */
static void on_refused(void *ud, int http_status, enum grpc_code st, const char *why)
{
    struct gconn *cn = ud;
    struct grpcin *g = cn->g;
    counter_add(st == GRPC_UNAVAILABLE ? &g->in->stats.refused : &g->in->stats.rejected, 1);
    int64_t sup = log_limit_take(&g->lim);
    if (sup >= 0)
        log_warn("otlp_grpc call refused", "{s:s, s:i, s:i, s:s, s:I}", "input", g->in->name,
                 "http_status", http_status, "grpc_status", (int)st, "error", why, "suppressed",
                 (json_int_t)sup);
}

/* Takes what the session has to send into out, up to OUT_MAX bytes not yet written: past that
 * the client is not reading its answers, and the connection is not read either (update_reading)
 * until it does, so what a client that never reads makes spillway hold stays under OUT_MAX plus
 * the answers to one read. Answers left in nghttp2's own queue would not be bounded: the first
 * version took from it only once out was all written, so out never reached OUT_MAX, the
 * connection was read on and nghttp2 queued answers without end (63 MB of calls read from a
 * client that read nothing, test_otlp_grpc.test_a_client_that_never_reads). Returns -1 when
 * the session failed. */
static int conn_take(struct gconn *cn)
{
    size_t pending = cn->out.len - cn->out_off;
    if (pending >= OUT_MAX)
        return 0;
    if (cn->out_off && (pending == 0 || cn->out_off >= pending)) { /* slide the rest down */
        memmove(cn->out.data, cn->out.data + cn->out_off, pending);
        cn->out.len = pending;
        cn->out_off = 0;
    }
    return grpc_conn_send(cn->h2, &cn->out, OUT_MAX - pending) < 0 ? -1 : 0;
}

/* Writes what is pending, and what the session has to send, as far as the socket takes it. */
static void conn_flush(struct gconn *cn)
{
    for (;;) {
        if (conn_take(cn) < 0) {
            cn->closing = 1;
            break;
        }
        if (cn->out_off == cn->out.len)
            break;
        ssize_t w =
            send(cn->fd, cn->out.data + cn->out_off, cn->out.len - cn->out_off, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!cn->blocked_ns)
                cn->blocked_ns = time_mono_ns();
            break;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) { /* the peer is gone: nothing more can be written */
            buf_reset(&cn->out);
            cn->out_off = 0;
            cn->closing = 1;
            break;
        }
        cn->out_off += (size_t)w;
        cn->active_ns = time_mono_ns();
        cn->blocked_ns = 0;
    }
    if (cn->out_off == cn->out.len) { /* all written: keep at most a small buffer */
        buf_reset(&cn->out);
        cn->out_off = 0;
        buf_trim(&cn->out, 256 * 1024);
    }
    /* While stopping, the loop no longer runs: drain() polls the sockets itself. */
    if (cn->out_off < cn->out.len && !cn->g->stopped)
        event_add(cn->wev, NULL);
    else
        event_del(cn->wev);
    update_reading(cn);
}

/* Whether the connection is finished: closed by its peer or by us, with nothing left to write. */
static int conn_finished(struct gconn *cn)
{
    return cn->out_off == cn->out.len && (cn->closing || grpc_conn_done(cn->h2));
}

/* Reads once into the session. Returns 1 when something was read, 0 when nothing was there, -1
 * at the end of the connection or on a protocol error. */
static int conn_read(struct gconn *cn)
{
    struct grpcin *g = cn->g;
    ssize_t n = read(cn->fd, g->rbuf, READ_CHUNK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    counter_add(&g->in->stats.bytes, (uint64_t)n);
    cn->active_ns = time_mono_ns();
    int rc = grpc_conn_recv(cn->h2, g->rbuf, (size_t)n);
    if (rc) {
        counter_add(&g->in->stats.rejected, 1);
        int64_t sup = log_limit_take(&g->lim);
        if (sup >= 0)
            log_warn(rc == -ENOMEM ? "otlp_grpc connection closed: out of memory"
                                   : "otlp_grpc connection closed: not HTTP/2 (h2c with prior "
                                     "knowledge)",
                     "{s:s, s:I}", "input", g->in->name, "suppressed", (json_int_t)sup);
        cn->closing = 1; /* its GOAWAY is still sent */
        return -1;
    }
    return 1;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct gconn *cn = arg;
    if (conn_read(cn) < 0)
        cn->closing = 1;
    conn_flush(cn);
    if (conn_finished(cn))
        conn_close(cn);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    struct gconn *cn = arg;
    conn_flush(cn);
    if (conn_finished(cn))
        conn_close(cn);
}

static void conn_close(struct gconn *cn)
{
    struct grpcin *g = cn->g;
    DLIST_UNLINK(g->conns, cn);
    g->nconns--;
    atomic_fetch_sub(&g->in->stats.connections, 1);
    event_free(cn->rev);
    event_free(cn->wev);
    evutil_closesocket(cn->fd);
    grpc_conn_free(cn->h2);
    buf_free(&cn->out);
    free(cn);
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct grpcin *g = arg;
    if (g->stopped || g->nconns >= g->o->max_connections) {
        counter_add(&g->in->stats.refused, 1);
        int64_t sup = log_limit_take(&g->lim);
        if (sup >= 0)
            log_warn("connection refused: max_connections reached", "{s:s, s:I, s:I}", "input",
                     g->in->name, "max_connections", (json_int_t)g->o->max_connections,
                     "suppressed", (json_int_t)sup);
        evutil_closesocket(fd);
        return;
    }
    struct gconn *cn = calloc(1, sizeof(*cn));
    struct grpc_limits lim = {(size_t)g->o->max_message_size,
                              (uint32_t)g->o->max_concurrent_streams, WINDOW};
    struct grpc_handler h = {on_call, on_refused, cn};
    if (!cn || !(cn->h2 = grpc_conn_new(&lim, &h)) ||
        !(cn->rev = event_new(g->in->base, fd, EV_READ | EV_PERSIST, on_read, cn)) ||
        !(cn->wev = event_new(g->in->base, fd, EV_WRITE | EV_PERSIST, on_write, cn))) {
        if (cn) {
            grpc_conn_free(cn->h2);
            if (cn->rev)
                event_free(cn->rev);
            free(cn);
        }
        evutil_closesocket(fd);
        return;
    }
    cn->g = g;
    cn->fd = fd;
    cn->active_ns = time_mono_ns();
    grpc_conn_pause(cn->h2, g->paused);
    DLIST_PUSH(g->conns, cn);
    g->nconns++;
    counter_add(&g->in->stats.connections, 1);
    conn_flush(cn); /* the server's SETTINGS */
}

/* Once a second: calls that trickle are cancelled, idle connections closed (with a GOAWAY),
 * and a client that has read nothing of its answers for idle_timeout is cut off: its answers
 * wait in out (the socket takes no more), or in nghttp2 behind the flow-control window the
 * client does not open (calls open, none of them waiting for request bytes). The second kind
 * was held for ever, each of its answered calls still open (test_otlp_grpc.
 * test_answers_that_wait_hold_no_request). */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct grpcin *g = arg;
    int64_t now = time_mono_ns();
    for (struct gconn *cn = g->conns, *next; cn; cn = next) {
        next = cn->next;
        grpc_conn_expire(cn->h2, now, g->o->request_timeout);
        if (cn->blocked_ns && now - cn->blocked_ns >= g->o->idle_timeout) {
            conn_close(cn); /* it has read nothing of its answers all this time */
            continue;
        }
        if (now - cn->active_ns >= g->o->idle_timeout) {
            if (grpc_conn_calls(cn->h2) && !grpc_conn_arriving(cn->h2)) {
                conn_close(cn); /* its calls wait for it to take their answers: it does not */
                continue;
            }
            if (!grpc_conn_calls(cn->h2)) {
                grpc_conn_goaway(cn->h2);
                cn->closing = 1;
            }
        }
        conn_flush(cn);
        if (conn_finished(cn))
            conn_close(cn);
    }
}

static int otlp_grpc_start(struct input *in, char *err, size_t errlen)
{
    struct grpcin *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    in->priv = g;
    g->in = in;
    g->o = in->opts;
    g->rbuf = malloc(READ_CHUNK);
    g->otlp = otlp_decoder_new(in->name, collector_partition_key(in->col));
    g->tick = event_new(in->base, -1, EV_PERSIST, on_tick, g);
    struct timeval sec = {1, 0};
    if (!g->rbuf || !g->otlp || !g->tick || event_add(g->tick, &sec))
        return -ENOMEM;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    if (evutil_parse_sockaddr_port(g->o->listen, (struct sockaddr *)&ss, &sslen) < 0) {
        snprintf(err, errlen, "input %s: listen \"%s\" is not host:port", in->name, g->o->listen);
        return -EINVAL;
    }
    g->lis = evconnlistener_new_bind(
        in->base, on_accept, g, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        1024, (struct sockaddr *)&ss, sslen);
    if (!g->lis) {
        int e = errno;
        snprintf(err, errlen, "input %s: cannot listen on %s: %s", in->name, g->o->listen,
                 strerror(e));
        return -e;
    }
    log_info("input listening", "{s:s, s:s, s:s}", "input", in->name, "type", in->type->cfg.name,
             "address", g->o->listen);
    return 0;
}

static void otlp_grpc_pause(struct input *in)
{
    struct grpcin *g = in->priv;
    if (!g || g->paused)
        return;
    g->paused = 1;
    for (struct gconn *cn = g->conns; cn; cn = cn->next)
        grpc_conn_pause(cn->h2, 1);
}

static void otlp_grpc_resume(struct input *in)
{
    struct grpcin *g = in->priv;
    if (!g || !g->paused)
        return;
    g->paused = 0;
    for (struct gconn *cn = g->conns; cn; cn = cn->next) {
        grpc_conn_pause(cn->h2, 0);
        conn_flush(cn); /* the WINDOW_UPDATEs held back */
    }
}

/* The event loop no longer runs: every connection gets a GOAWAY, then the calls in flight are
 * read, handed over and answered (waiting for room in the pipeline) until they are done or the
 * time for reading is over. Every connection is polled: the first version polled the 64 newest,
 * so behind 64 clients hanging in a call an older connection's call was never read, and was
 * lost (test_otlp_grpc.test_sigterm_with_many_connections). */
static void drain(struct grpcin *g)
{
    g->stopping = 1;
    for (struct gconn *cn = g->conns; cn; cn = cn->next) {
        grpc_conn_goaway(cn->h2);
        conn_flush(cn);
    }
    struct pollfd *fds = calloc((size_t)g->nconns + 1, sizeof(*fds));
    struct gconn **who = calloc((size_t)g->nconns + 1, sizeof(*who));
    while (fds && who && g->conns && collector_stop_commit(g->in->col) == 0) {
        if (g->paused) { /* the rings took what was staged: the held bytes may come */
            g->paused = 0;
            for (struct gconn *cn = g->conns; cn; cn = cn->next) {
                grpc_conn_pause(cn->h2, 0);
                conn_flush(cn);
            }
        }
        nfds_t n = 0;
        for (struct gconn *cn = g->conns; cn; cn = cn->next) {
            fds[n] = (struct pollfd){cn->fd, POLLIN | (cn->out_off < cn->out.len ? POLLOUT : 0)};
            who[n++] = cn;
        }
        if (poll(fds, n, 100) < 0 && errno != EINTR)
            break;
        for (nfds_t i = 0; i < n; i++) {
            struct gconn *cn = who[i];
            if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) && conn_read(cn) < 0)
                cn->closing = 1;
            conn_flush(cn);
            if (conn_finished(cn))
                conn_close(cn);
        }
    }
    free(fds);
    free(who);
    while (g->conns)
        conn_close(g->conns);
}

static void otlp_grpc_stop(struct input *in)
{
    struct grpcin *g = in->priv;
    if (!g || g->stopped)
        return;
    g->stopped = 1;
    if (g->lis) {
        evconnlistener_free(g->lis);
        g->lis = NULL;
    }
    if (g->tick) {
        event_free(g->tick);
        g->tick = NULL;
    }
    drain(g);
}

static void otlp_grpc_destroy(struct input *in)
{
    struct grpcin *g = in->priv;
    if (!g)
        return;
    otlp_grpc_stop(in);
    otlp_decoder_free(g->otlp);
    buf_free(&g->answer);
    buf_free(&g->details);
    free(g->rbuf);
    free(g);
    in->priv = NULL;
}

static const struct cfg_key otlp_grpc_keys[] = {
    {"listen", CFG_STRING, offsetof(struct grpc_opts, listen), NULL,
     "Address to listen on, host:port (OTLP/gRPC's usual port is 4317).", CFG_REQUIRED},
    INPUT_COMMON_KEYS(struct grpc_opts),
    {"max_message_size", CFG_SIZE, offsetof(struct grpc_opts, max_message_size), "4MiB",
     "Largest request message (after gzip); a larger one is answered RESOURCE_EXHAUSTED.", 0, 1024,
     268435456},
    {"max_concurrent_streams", CFG_INT, offsetof(struct grpc_opts, max_concurrent_streams), "100",
     "Calls in flight at once on one connection.", 0, 1, 10000},
    {"max_connections", CFG_INT, offsetof(struct grpc_opts, max_connections), "1024",
     "Connections held at once; more are refused and counted.", 0, 1, 100000},
    {"idle_timeout", CFG_DURATION, offsetof(struct grpc_opts, idle_timeout), "5m",
     "A connection with no call and no byte this long is closed (GOAWAY); one whose client reads "
     "none of its answers this long is cut off.",
     0, 1, 86400},
    {"request_timeout", CFG_DURATION, offsetof(struct grpc_opts, request_timeout), "30s",
     "A call whose request is not whole this long after it began is cancelled, and so is one "
     "whose answer the client leaves unread this long (the time stops while the pipeline is "
     "full).",
     0, 1, 3600},
    {0},
};

const struct input_type input_otlp_grpc = {
    .cfg = {.name = "otlp_grpc",
            .desc = "OTLP/gRPC (the OpenTelemetry SDKs' and Collector's default): the Export "
                    "methods for logs, traces and metrics, h2c, gzip.",
            .size = sizeof(struct grpc_opts),
            .keys = otlp_grpc_keys},
    .start = otlp_grpc_start,
    .pause = otlp_grpc_pause,
    .resume = otlp_grpc_resume,
    .stop = otlp_grpc_stop,
    .destroy = otlp_grpc_destroy,
};
