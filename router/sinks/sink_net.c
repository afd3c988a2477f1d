/* `tcp` and `unix` sinks: NDJSON over a stream socket, so one spillway can feed another (its
 * tcp or unix input). Connects on first use and after any error; each batch is one buffer
 * written until done, with a timeout so a peer that stops reading cannot hang the sink thread
 * forever. After a failure mid-batch the resend starts at the interrupted line (the peer sees
 * the broken fragment as one bad record, dead-lettered there), never mid-line. */
#include <errno.h>
#include <event2/util.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/ring.h"
#include "core/timeutil.h"
#include "router/sinks/sink.h"

struct net_opts {
    struct sink_common common;
    char *address;
    char *path;
    int64_t connect_timeout;
    int64_t write_timeout;
};

struct net_sink {
    int fd;
    const char *peer; /* the address or path, for messages */
    struct sockaddr_storage sa;
    socklen_t salen;
    struct buf wbuf;
    size_t woff;
    struct log_limit lim;
};

static int net_open(struct sink *s, char *err, size_t errlen)
{
    const struct net_opts *o = s->opts;
    struct net_sink *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    s->priv = n;
    n->fd = -1;
    n->peer = s->type == &sink_unix ? o->path : o->address;
    if (s->type == &sink_unix) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&n->sa;
        sun->sun_family = AF_UNIX;
        if (strlen(o->path) >= sizeof(sun->sun_path)) {
            snprintf(err, errlen, "sink %s: path too long", s->name);
            return -ENAMETOOLONG;
        }
        strcpy(sun->sun_path, o->path);
        n->salen = sizeof(*sun);
        return 0;
    }
    int len = sizeof(n->sa);
    if (evutil_parse_sockaddr_port(o->address, (struct sockaddr *)&n->sa, &len) < 0) {
        snprintf(err, errlen, "sink %s: address \"%s\" is not host:port", s->name, o->address);
        return -EINVAL;
    }
    n->salen = (socklen_t)len;
    return 0;
}

static void disconnect(struct net_sink *n)
{
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
}

/* Waits until fd is ready for ev, or has an error to report (the caller's next call returns
 * it); -ETIMEDOUT when neither happened within timeout_ns. */
static int wait_fd(int fd, short ev, int64_t timeout_ns)
{
    struct pollfd p = {fd, ev, 0};
    int rc;
    do {
        rc = poll(&p, 1, (int)(timeout_ns / 1000000));
    } while (rc < 0 && errno == EINTR);
    return rc > 0 ? 0 : -ETIMEDOUT;
}

static int connect_peer(struct sink *s, struct net_sink *n)
{
    const struct net_opts *o = s->opts;
    n->fd = socket(n->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (n->fd < 0)
        return -errno;
    if (connect(n->fd, (struct sockaddr *)&n->sa, n->salen) < 0) {
        int e = errno;
        if (e == EINPROGRESS && wait_fd(n->fd, POLLOUT, o->connect_timeout) == 0) {
            socklen_t sl = sizeof(e);
            if (getsockopt(n->fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
                e = errno;
        } else if (e == EINPROGRESS) {
            e = ETIMEDOUT;
        }
        if (e) {
            disconnect(n);
            return -e;
        }
    }
    return 0;
}

/* The peer (another spillway's input) never sends anything, so a readable connection means
 * the peer closed or reset it. Checked before each batch: a write to a connection whose peer
 * has closed it still succeeds once (the reset only comes back in answer to it), which would
 * count a whole batch as delivered that nobody read. A peer that goes away while a batch is in
 * flight can still take that batch with it: there is no acknowledgement to wait for. */
static int peer_gone(int fd)
{
    char scratch[512];
    for (int i = 0; i < 16; i++) { /* a peer that does send: bounded, and otherwise ignored */
        ssize_t r = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
        if (r == 0)
            return 1;
        if (r < 0)
            return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
    return 0;
}

static enum sink_result net_write(struct sink *s, const char *span, size_t len, uint64_t nrec)
{
    const struct net_opts *o = s->opts;
    struct net_sink *n = s->priv;
    if (n->woff == 0 && n->wbuf.len == 0) {
        SINK_FOREACH(r, span, len)
        {
            buf_append(&n->wbuf, RING_REC_DATA(r), r->len);
            buf_putc(&n->wbuf, '\n');
        }
    }
    if (n->fd >= 0 && peer_gone(n->fd)) {
        if (log_limit_take(&n->lim) >= 0)
            log_warn("network sink: the peer closed the connection: reconnecting", "{s:s}", "sink",
                     s->name);
        disconnect(n);
    }
    if (n->fd < 0) {
        int rc = connect_peer(s, n);
        if (rc) {
            sink_set_error(s, "connect %s: %s", n->peer, strerror(-rc));
            return SINK_RETRY;
        }
        /* A new connection: restart the interrupted line, never send its tail alone. */
        while (n->woff > 0 && n->wbuf.data[n->woff - 1] != '\n')
            n->woff--;
    }
    while (n->woff < n->wbuf.len) {
        ssize_t w = send(n->fd, n->wbuf.data + n->woff, n->wbuf.len - n->woff, MSG_NOSIGNAL);
        if (w > 0) {
            n->woff += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            wait_fd(n->fd, POLLOUT, o->write_timeout) == 0)
            continue;
        sink_set_error(s, "send: %s", w < 0 && errno != EAGAIN ? strerror(errno) : "timed out");
        if (log_limit_take(&n->lim) >= 0)
            log_warn("network sink lost its peer: reconnecting", "{s:s}", "sink", s->name);
        disconnect(n);
        return SINK_RETRY;
    }
    counter_add(&s->stats.bytes, n->wbuf.len);
    buf_reset(&n->wbuf);
    n->woff = 0;
    buf_trim(&n->wbuf, 4 << 20);
    return SINK_OK;
}

static void net_close(struct sink *s)
{
    struct net_sink *n = s->priv;
    if (!n)
        return;
    disconnect(n);
    buf_free(&n->wbuf);
    free(n);
    s->priv = NULL;
}

/* clang-format off */
#define NET_KEYS                                                                                   \
    SINK_COMMON_KEYS(struct net_opts),                                                             \
    {"connect_timeout", CFG_DURATION, offsetof(struct net_opts, connect_timeout), "5s",            \
     "Time to connect before retrying.", 0, 0.001, 600},                                           \
    {"write_timeout", CFG_DURATION, offsetof(struct net_opts, write_timeout), "30s",               \
     "A peer that accepts nothing for this long is disconnected and retried.", 0, 0.001, 3600}
/* clang-format on */

static const struct cfg_key tcp_keys[] = {
    {"address", CFG_STRING, offsetof(struct net_opts, address), NULL,
     "host:port to connect to (another spillway's tcp input, say).", CFG_REQUIRED},
    NET_KEYS,
    {0},
};

static const struct cfg_key unix_keys[] = {
    {"path", CFG_STRING, offsetof(struct net_opts, path), NULL, "Unix stream socket to connect to.",
     CFG_REQUIRED},
    NET_KEYS,
    {0},
};

#define NET_OPS .open = net_open, .write = net_write, .close = net_close

const struct sink_type sink_tcp = {
    .cfg =
        {
            .name = "tcp",
            .desc = "NDJSON over TCP, reconnecting as needed (feeds another spillway).",
            .size = sizeof(struct net_opts),
            .keys = tcp_keys,
        },
    NET_OPS,
};

const struct sink_type sink_unix = {
    .cfg =
        {
            .name = "unix",
            .desc = "NDJSON over a Unix stream socket, reconnecting as needed.",
            .size = sizeof(struct net_opts),
            .keys = unix_keys,
        },
    NET_OPS,
};
