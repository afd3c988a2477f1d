/* `forward`: the Fluent forward protocol v1 (what Fluent Bit, Fluentd, Docker's fluentd log
 * driver and the fluent-logger libraries send) over TCP and a Unix stream socket. Each
 * connection has its decoder (collector/forward.h); what the decoder hands over is staged as
 * any input's records, and a message's `chunk` is acknowledged only after the collector's commit
 * has moved the read's records into the rings: at once when the commit left nothing staged,
 * else when the pipeline takes them (the inputs resume), never for records it dropped. A
 * sender that waits for acks therefore sends again what a crash took before its ack. With
 * shared_key, a connection opens with HELO and reads nothing but a PING until one passed
 * (collector/forward_reply.h). Backpressure as the tcp input: pausing stops reading. */
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/collector.h"
#include "collector/forward.h"
#include "collector/forward_reply.h"
#include "collector/input.h"
#include "collector/listen.h"
#include "core/dlist.h"
#include "core/log.h"
#include "core/timeutil.h"

#define READ_CHUNK     (256 * 1024) /* as the tcp input: about a thousand records a syscall */
#define STOP_DRAIN_MAX (64u << 20)
#define OUT_MAX        (1u << 20) /* replies a sender leaves unread before it is cut off */

struct forward_opts {
    struct input_common common; /* first: the collector reads it generically */
    char *listen;
    char *path;
    char *mode;
    int64_t max_connections;
    int64_t idle_timeout;
    int64_t max_message_size;
    char *shared_key;
    char *self_hostname;
};

struct fconn {
    struct fwd *f;
    evutil_socket_t fd;
    struct event *rev, *wev;
    struct forward_decoder *dec;
    struct buf out;  /* replies being written */
    struct buf acks; /* acks of records staged, sent once they are in the pipeline */
    unsigned char nonce[FORWARD_NONCE];
    int closing; /* close once out is written */
    struct fconn *prev, *next;
};

struct fwd {
    struct input *in;
    const struct forward_opts *o;
    struct evconnlistener *tcp, *unx;
    struct forward_config dcfg;
    struct forward_handler h;
    struct fconn *conns;
    int64_t nconns;
    char *rbuf;
    char hostname[256];
    int paused, stopped;
    struct log_limit log;
};

static void conn_close(struct fconn *cn)
{
    struct fwd *f = cn->f;
    DLIST_UNLINK(f->conns, cn);
    f->nconns--;
    atomic_fetch_sub(&f->in->stats.connections, 1);
    event_free(cn->rev);
    event_free(cn->wev);
    evutil_closesocket(cn->fd);
    forward_decoder_free(cn->dec);
    buf_free(&cn->out);
    buf_free(&cn->acks);
    free(cn);
}

static void conn_arm(struct fconn *cn)
{
    int64_t t = cn->f->o->idle_timeout;
    struct timeval tv = time_timeval(t);
    event_add(cn->rev, t > 0 ? &tv : NULL);
}

/* Writes what it can of the replies; the rest waits for the socket to take more. Returns -1
 * when the connection is to be closed. */
static int conn_flush(struct fconn *cn)
{
    while (cn->out.len) {
        ssize_t n = write(cn->fd, cn->out.data, cn->out.len);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            event_add(cn->wev, NULL);
            return cn->out.len > OUT_MAX ? -1 : 0;
        }
        if (n <= 0)
            return -1;
        memmove(cn->out.data, cn->out.data + n, cn->out.len - (size_t)n);
        cn->out.len -= (size_t)n;
    }
    buf_trim(&cn->out, 65536);
    return cn->closing ? -1 : 0;
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    struct fconn *cn = arg;
    if (conn_flush(cn))
        conn_close(cn);
}

/* The records of the acks waiting are in the pipeline: the acks go out, with any other reply. */
static int send_acks(struct fconn *cn)
{
    if (cn->acks.len) {
        buf_append(&cn->out, cn->acks.data, cn->acks.len);
        buf_reset(&cn->acks);
    }
    return conn_flush(cn);
}

/* --- The decoder's handler (ud: the connection). */

static void h_event(void *ud, const char *json, size_t len, const char *key, size_t klen)
{
    struct fconn *cn = ud;
    collector_event_keyed(cn->f->in, json, len, key, klen);
}

static void h_dead(void *ud, const char *reason, const char *raw, size_t len)
{
    struct fconn *cn = ud;
    collector_dead(cn->f->in, reason, raw, len);
}

static void h_ack(void *ud, const char *chunk, size_t len)
{
    struct fconn *cn = ud;
    forward_reply_ack(&cn->acks, chunk, len);
}

static int h_ping(void *ud, const struct forward_ping *p)
{
    struct fconn *cn = ud;
    struct fwd *f = cn->f;
    if (!*f->o->shared_key)
        return 0; /* no handshake asked for: a PING is let through */
    int rc = forward_reply_pong(&cn->out, p, cn->nonce, f->o->shared_key, f->hostname);
    if (rc)
        cn->closing = 1;
    return rc ? -1 : 0;
}

/* The stream cannot go on: what could not be read is dead-lettered, the connection counted,
 * logged (rate-limited) and closed. */
static void protocol_error(struct fconn *cn, const char *err, const char *raw, size_t len)
{
    struct input *in = cn->f->in;
    counter_add(&in->stats.protocol_errors, 1);
    if (len)
        collector_dead(in, err, raw, len);
    int64_t sup = log_limit_take(&cn->f->log);
    if (sup >= 0)
        log_warn("forward connection closed", "{s:s, s:s, s:I}", "input", in->name, "error", err,
                 "suppressed", (json_int_t)sup);
    cn->closing = 1;
}

/* Reads once; returns bytes read, 0 at end of stream, -1 on error, -2 when nothing is there. */
static ssize_t conn_read(struct fconn *cn)
{
    struct fwd *f = cn->f;
    ssize_t n = read(cn->fd, f->rbuf, READ_CHUNK);
    const char *err, *raw;
    size_t rawlen;
    if (n > 0) {
        counter_add(&f->in->stats.bytes, (uint64_t)n);
        if (forward_feed(cn->dec, f->rbuf, (size_t)n, collector_now(f->in->col), &err, &raw,
                         &rawlen))
            protocol_error(cn, err, raw, rawlen);
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return -2;
    if ((rawlen = forward_partial(cn->dec, &raw)) > 0)
        protocol_error(cn,
                       "forward: connection closed in the middle of a message (truncated "
                       "msgpack)",
                       raw, rawlen);
    return n == 0 ? 0 : -1;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct fconn *cn = arg;
    struct fwd *f = cn->f;
    if (what & EV_TIMEOUT) {
        conn_close(cn);
        return;
    }
    struct input *in = f->in;
    collector_begin_stream(in->col, (uint64_t)(uintptr_t)cn);
    uint64_t dropped = counter_get(&in->stats.dropped);
    ssize_t n = conn_read(cn);
    collector_commit(in->col);
    if (cn->acks.len && counter_get(&in->stats.dropped) != dropped) {
        /* The pipeline dropped records of this read (drop_newest): they are not acknowledged,
         * so a sender that waits for acks sends them again. */
        buf_reset(&cn->acks);
        int64_t sup = log_limit_take(&f->log);
        if (sup >= 0)
            log_warn("forward: records dropped by a full pipeline are not acknowledged", "{s:s}",
                     "input", in->name);
    }
    int bad = !collector_paused(in->col) ? send_acks(cn) : conn_flush(cn);
    if (n == 0 || n == -1 || bad || (cn->closing && !cn->out.len))
        conn_close(cn);
    else if (cn->closing)
        event_del(cn->rev); /* the last replies go out, then it closes */
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct fwd *f = arg;
    if (f->stopped || f->nconns >= f->o->max_connections) {
        counter_add(&f->in->stats.refused, 1);
        int64_t sup = log_limit_take(&f->log);
        if (sup >= 0)
            log_warn("connection refused: max_connections reached", "{s:s, s:I}", "input",
                     f->in->name, "suppressed", (json_int_t)sup);
        evutil_closesocket(fd);
        return;
    }
    struct fconn *cn = calloc(1, sizeof(*cn));
    if (!cn) {
        evutil_closesocket(fd);
        return;
    }
    cn->f = f;
    cn->fd = fd;
    cn->dec = forward_decoder_new(&f->dcfg, &f->h, cn);
    cn->rev = event_new(f->in->base, fd, EV_READ | EV_PERSIST, on_read, cn);
    cn->wev = event_new(f->in->base, fd, EV_WRITE, on_write, cn);
    if (!cn->dec || !cn->rev || !cn->wev ||
        (*f->o->shared_key && forward_reply_helo(&cn->out, cn->nonce))) {
        forward_decoder_free(cn->dec);
        if (cn->rev)
            event_free(cn->rev);
        if (cn->wev)
            event_free(cn->wev);
        buf_free(&cn->out);
        free(cn);
        evutil_closesocket(fd);
        return;
    }
    DLIST_PUSH(f->conns, cn);
    f->nconns++;
    counter_add(&f->in->stats.connections, 1);
    if (!f->paused)
        conn_arm(cn);
    if (conn_flush(cn))
        conn_close(cn);
}

static int forward_start(struct input *in, char *err, size_t errlen)
{
    struct fwd *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    in->priv = f;
    f->in = in;
    f->o = in->opts;
    if (!*f->o->listen && !*f->o->path) {
        snprintf(err, errlen,
                 "input %s: forward needs listen (host:port) or path (a Unix "
                 "socket), or both",
                 in->name);
        return -EINVAL;
    }
    snprintf(f->hostname, sizeof(f->hostname), "%s", f->o->self_hostname);
    if (!*f->hostname && gethostname(f->hostname, sizeof(f->hostname) - 1) < 0)
        snprintf(f->hostname, sizeof(f->hostname), "spillway");
    f->dcfg = (struct forward_config){.source = in->name,
                                      .aliases = input_aliases(&f->o->common),
                                      .partition_key = in->norm.key,
                                      .max_message = (size_t)f->o->max_message_size,
                                      .need_ping = *f->o->shared_key != '\0'};
    f->h = (struct forward_handler){h_event, h_dead, h_ack, h_ping};
    f->rbuf = malloc(READ_CHUNK);
    if (!f->rbuf)
        return -ENOMEM;
    int rc = 0;
    if (*f->o->listen)
        rc = listen_tcp(in, f->o->listen, on_accept, f, &f->tcp, err, errlen);
    if (rc == 0 && *f->o->path)
        rc = listen_unix(in, f->o->path, f->o->mode, on_accept, f, &f->unx, err, errlen);
    if (rc == 0)
        log_info("input listening", "{s:s, s:s, s:s, s:s}", "input", in->name, "type",
                 in->type->cfg.name, "address", f->o->listen, "path", f->o->path);
    return rc;
}

static void forward_pause(struct input *in)
{
    struct fwd *f = in->priv;
    if (!f || f->paused)
        return;
    f->paused = 1;
    for (struct fconn *cn = f->conns; cn; cn = cn->next)
        event_del(cn->rev);
}

/* The pipeline took what was staged: the acks waiting go out, and reading goes on. */
static void forward_resume(struct input *in)
{
    struct fwd *f = in->priv;
    if (!f || !f->paused || f->stopped)
        return;
    f->paused = 0;
    for (struct fconn *cn = f->conns, *next; cn; cn = next) {
        next = cn->next;
        if (send_acks(cn))
            conn_close(cn);
        else if (!cn->closing)
            conn_arm(cn);
    }
}

/* As the tcp input: what the senders already wrote is read (and acknowledged once in the
 * rings), then the connections close. */
static void forward_stop(struct input *in)
{
    struct fwd *f = in->priv;
    if (!f || f->stopped)
        return;
    f->stopped = 1;
    if (f->tcp)
        evconnlistener_free(f->tcp);
    if (f->unx) {
        evconnlistener_free(f->unx);
        unlink(f->o->path);
    }
    f->tcp = f->unx = NULL;
    int reading = 1;
    while (f->conns) {
        struct fconn *cn = f->conns;
        size_t total = 0;
        ssize_t n;
        collector_begin_stream(in->col, (uint64_t)(uintptr_t)cn);
        while (reading && !cn->closing && total < STOP_DRAIN_MAX && (n = conn_read(cn)) > 0) {
            total += (size_t)n;
            reading = collector_stop_commit(in->col) == 0;
        }
        if (collector_stop_commit(in->col) == 0)
            send_acks(cn);
        conn_close(cn);
    }
}

static void forward_destroy(struct input *in)
{
    struct fwd *f = in->priv;
    if (!f)
        return;
    forward_stop(in);
    free(f->rbuf);
    free(f);
    in->priv = NULL;
}

static const struct cfg_key forward_keys[] = {
    {"listen", CFG_STRING, offsetof(struct forward_opts, listen), "",
     "TCP address to listen on, host:port (the forward protocol's port is 24224)."},
    {"path", CFG_STRING, offsetof(struct forward_opts, path), "",
     "A Unix stream socket to listen on too (or instead)."},
    {"mode", CFG_STRING, offsetof(struct forward_opts, mode), "0660",
     "Permissions of the Unix socket file (octal)."},
    INPUT_COMMON_KEYS(struct forward_opts),
    {"max_message_size", CFG_SIZE, offsetof(struct forward_opts, max_message_size), "16MiB",
     "Largest forward message (a Forward or PackedForward chunk), and what its gzip entries may "
     "inflate to; a larger one closes the connection.",
     0, 1024, 1073741824},
    {"shared_key", CFG_STRING, offsetof(struct forward_opts, shared_key), "",
     "Shared-key authentication (HELO, PING, PONG): senders must know it. Empty: none.",
     CFG_SECRET},
    {"self_hostname", CFG_STRING, offsetof(struct forward_opts, self_hostname), "",
     "The name spillway gives in the handshake's PONG (empty: the host's name)."},
    {"max_connections", CFG_INT, offsetof(struct forward_opts, max_connections), "1024",
     "Connections held at once; more are refused and counted.", 0, 1, 1000000},
    {"idle_timeout", CFG_DURATION, offsetof(struct forward_opts, idle_timeout), "0s",
     "Close a connection idle this long; 0 keeps it open."},
    {0},
};

const struct input_type input_forward = {
    .cfg = {.name = "forward",
            .desc = "The Fluent forward protocol v1 (Fluent Bit, Fluentd, Docker's fluentd "
                    "driver) over TCP and a Unix socket: all modes, acks, shared-key auth.",
            .size = sizeof(struct forward_opts),
            .keys = forward_keys},
    .start = forward_start,
    .pause = forward_pause,
    .resume = forward_resume,
    .stop = forward_stop,
    .destroy = forward_destroy,
};
