/* Stream inputs: `tcp` (listen host:port) and `unix` (a stream socket at path), in any format of
 * the registry (collector/format.h), framed as the format says. One read of up to READ_CHUNK
 * bytes per wake-up feeds the connection's format_stream; the collector flushes once
 * per read. Pausing removes the read events, so unread data stays in the kernel and TCP flow
 * control slows the sender down. */
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "collector/collector.h"
#include "collector/format.h"
#include "collector/input.h"
#include "collector/listen.h"
#include "core/dlist.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/timeutil.h"

/* 256 KiB per read: about a thousand 250-byte events per syscall. */
#define READ_CHUNK (256 * 1024)
/* On stop, what the kernel still holds is read, up to this much per connection. */
#define STOP_DRAIN_MAX (64u << 20)

struct stream_opts {
    struct input_common common; /* first: the collector reads it generically */
    char *listen;
    char *path;
    char *mode;
    int format;
    int64_t max_connections;
    int64_t idle_timeout;
};

struct conn {
    struct stream *st;
    evutil_socket_t fd;
    struct event *ev;
    struct format_stream fs;
    struct conn *prev, *next;
};

struct stream {
    struct input *in;
    const struct stream_opts *o;
    struct evconnlistener *lis;
    struct conn *conns;
    int64_t nconns;
    char *rbuf;
    int paused;
    int stopped;
    int is_unix;
    struct log_limit refuse_log;
};

static void conn_close(struct conn *cn)
{
    struct stream *st = cn->st;
    DLIST_UNLINK(st->conns, cn);
    st->nconns--;
    atomic_fetch_sub(&st->in->stats.connections, 1);
    event_free(cn->ev);
    evutil_closesocket(cn->fd);
    format_stream_free(&cn->fs);
    free(cn);
}

static void conn_arm(struct conn *cn)
{
    int64_t t = cn->st->o->idle_timeout;
    struct timeval tv = time_timeval(t);
    event_add(cn->ev, t > 0 ? &tv : NULL);
}

/* Reads once; returns bytes read, 0 at end of stream, -1 on error, -2 when nothing is there. */
static ssize_t conn_read(struct conn *cn)
{
    struct stream *st = cn->st;
    ssize_t n = read(cn->fd, st->rbuf, READ_CHUNK);
    if (n > 0) {
        counter_add(&st->in->stats.bytes, (uint64_t)n);
        format_stream_feed(&cn->fs, st->rbuf, (size_t)n);
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return -2;
    format_stream_finish(&cn->fs);
    return n == 0 ? 0 : -1;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *cn = arg;
    struct stream *st = cn->st;
    if (what & EV_TIMEOUT) {
        log_debug("idle connection closed", "{s:s}", "input", st->in->name);
        conn_close(cn);
        return;
    }
    collector_begin_stream(st->in->col, (uint64_t)(uintptr_t)cn);
    ssize_t n = conn_read(cn);
    collector_commit(st->in->col);
    if (n == 0 || n == -1)
        conn_close(cn);
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct stream *st = arg;
    if (st->stopped || st->nconns >= st->o->max_connections) {
        counter_add(&st->in->stats.refused, 1);
        int64_t sup = log_limit_take(&st->refuse_log);
        if (sup >= 0)
            log_warn("connection refused: max_connections reached", "{s:s, s:I, s:I}", "input",
                     st->in->name, "max_connections", (json_int_t)st->o->max_connections,
                     "suppressed", (json_int_t)sup);
        evutil_closesocket(fd);
        return;
    }
    struct conn *cn = calloc(1, sizeof(*cn));
    if (!cn) {
        evutil_closesocket(fd);
        return;
    }
    cn->st = st;
    cn->fd = fd;
    format_stream_init(&cn->fs, st->in, format_at(st->o->format),
                       (size_t)st->o->common.max_event_size);
    cn->ev = event_new(st->in->base, fd, EV_READ | EV_PERSIST, on_read, cn);
    if (!cn->ev) {
        free(cn);
        evutil_closesocket(fd);
        return;
    }
    DLIST_PUSH(st->conns, cn);
    st->nconns++;
    counter_add(&st->in->stats.connections, 1);
    if (!st->paused)
        conn_arm(cn);
}

static void on_listen_error(struct evconnlistener *lis, void *arg)
{
    struct stream *st = arg;
    int64_t sup = log_limit_take(&st->refuse_log);
    if (sup >= 0)
        log_error("accept failed", "{s:s, s:s}", "input", st->in->name, "error", strerror(errno));
}

static int stream_start(struct input *in, char *err, size_t errlen)
{
    struct stream *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    in->priv = st;
    st->in = in;
    st->o = in->opts;
    st->is_unix = in->type == &input_unix;
    st->rbuf = malloc(READ_CHUNK);
    if (!st->rbuf)
        return -ENOMEM;
    int rc = st->is_unix
                 ? listen_unix(in, st->o->path, st->o->mode, on_accept, st, &st->lis, err, errlen)
                 : listen_tcp(in, st->o->listen, on_accept, st, &st->lis, err, errlen);
    if (rc == 0)
        evconnlistener_set_error_cb(st->lis, on_listen_error);
    if (rc == 0)
        log_info("input listening", "{s:s, s:s, s:s}", "input", in->name, "type",
                 in->type->cfg.name, "address", st->is_unix ? st->o->path : st->o->listen);
    return rc;
}

static void stream_pause(struct input *in)
{
    struct stream *st = in->priv;
    if (!st || st->paused)
        return;
    st->paused = 1;
    for (struct conn *cn = st->conns; cn; cn = cn->next)
        event_del(cn->ev);
}

static void stream_resume(struct input *in)
{
    struct stream *st = in->priv;
    if (!st || !st->paused || st->stopped)
        return;
    st->paused = 0;
    for (struct conn *cn = st->conns; cn; cn = cn->next)
        conn_arm(cn);
}

/* Closes the listener, then reads what each connection's sender already handed to the kernel
 * (so a stop right after a client finished sending loses nothing), and closes it. */
static void stream_stop(struct input *in)
{
    struct stream *st = in->priv;
    if (!st || st->stopped)
        return;
    st->stopped = 1;
    if (st->lis) {
        evconnlistener_free(st->lis);
        st->lis = NULL;
        if (st->is_unix)
            unlink(st->o->path);
    }
    int reading = 1;
    while (st->conns) {
        struct conn *cn = st->conns;
        size_t total = 0;
        ssize_t n = -2;
        collector_begin_stream(in->col, (uint64_t)(uintptr_t)cn);
        while (reading && total < STOP_DRAIN_MAX && (n = conn_read(cn)) > 0) {
            total += (size_t)n;
            reading = collector_stop_commit(in->col) == 0; /* room in the rings, in time */
        }
        if (n == -2)
            format_stream_finish(&cn->fs);
        collector_stop_commit(in->col);
        conn_close(cn);
    }
    if (!reading)
        log_warn("stopping: no time left to read what the senders still send; the rest is "
                 "left unread",
                 "{s:s}", "input", in->name);
}

static void stream_destroy(struct input *in)
{
    struct stream *st = in->priv;
    if (!st)
        return;
    stream_stop(in);
    free(st->rbuf);
    free(st);
    in->priv = NULL;
}

/* clang-format off */
#define STREAM_KEYS_COMMON                                                                         \
    INPUT_COMMON_KEYS(struct stream_opts),                                                         \
    FORMAT_KEY(struct stream_opts, "ndjson"),                                                      \
    {"max_connections", CFG_INT, offsetof(struct stream_opts, max_connections), "1024",            \
     "Connections held at once; more are refused and counted.", 0, 1, 1000000},                   \
    {"idle_timeout", CFG_DURATION, offsetof(struct stream_opts, idle_timeout), "0s",               \
     "Close a connection idle this long; 0 keeps it open."}
/* clang-format on */

static const struct cfg_key tcp_keys[] = {
    {"listen", CFG_STRING, offsetof(struct stream_opts, listen), NULL,
     "Address to listen on, host:port ([::1]:5170 for IPv6).", CFG_REQUIRED},
    STREAM_KEYS_COMMON,
    {0},
};

static const struct cfg_key unix_keys[] = {
    {"path", CFG_STRING, offsetof(struct stream_opts, path), NULL,
     "Path of the stream socket; a stale socket file there is replaced.", CFG_REQUIRED},
    {"mode", CFG_STRING, offsetof(struct stream_opts, mode), "0660",
     "Permissions of the socket file (octal)."},
    STREAM_KEYS_COMMON,
    {0},
};

#define STREAM_OPS                                                                                 \
    .start = stream_start, .pause = stream_pause, .resume = stream_resume, .stop = stream_stop,    \
    .destroy = stream_destroy

const struct input_type input_tcp = {
    .cfg = {.name = "tcp",
            .desc = "A TCP listener for NDJSON, syslog or any other format, any number of "
                    "connections.",
            .size = sizeof(struct stream_opts),
            .keys = tcp_keys},
    STREAM_OPS,
};

const struct input_type input_unix = {
    .cfg = {.name = "unix",
            .desc = "A Unix stream socket for NDJSON, syslog or any other format.",
            .size = sizeof(struct stream_opts),
            .keys = unix_keys},
    STREAM_OPS,
};
