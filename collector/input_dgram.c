/* Datagram inputs: `udp` (listen host:port) and `unix_dgram` (a datagram socket at path, as
 * /dev/log is), one message per datagram in any format of the registry (syslog by default;
 * `statsd` is udp with format statsd). Datagrams are read in
 * batches with recvmmsg (one syscall for up to BATCH datagrams). UDP has no flow control: when
 * the pipeline is full the socket is still drained and what is read is counted as dropped, and
 * what the kernel itself drops when the receive buffer is full is counted as `overflow` (its
 * SO_RXQ_OVFL counter, delivered with every datagram). */
#include <errno.h>
#include <event2/event.h>
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
#include "core/fsutil.h"
#include "core/log.h"

#define BATCH        32
#define MAX_DGRAM    65535
#define READS_PER_CB 16 /* batches per wake-up, so one flood cannot starve the loop */

struct dgram_opts {
    struct input_common common;
    char *listen;
    char *path;
    char *mode;
    int format;
    int64_t receive_buffer;
};

struct dgram {
    struct input *in;
    const struct dgram_opts *o;
    evutil_socket_t fd;
    struct event *ev;
    char *bufs;
    size_t slot;
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    char ctl[BATCH][CMSG_SPACE(sizeof(uint32_t))];
    uint32_t kernel_drops; /* the socket's SO_RXQ_OVFL count last seen */
    int paused;
    int is_unix;
    const struct format *fmt;
    struct log_limit drop_log;
};

/* A datagram without the newline or NUL senders often end it with; 0 when nothing is left. A
 * binary format's datagram (compressed GELF may end in either byte) is taken as it came. */
static size_t trimmed(const struct format *f, const char *data, size_t len)
{
    while (!f->binary && len && (data[len - 1] == '\n' || data[len - 1] == '\0'))
        len--;
    return len;
}

static void handle(struct dgram *d, const char *data, size_t len, int truncated)
{
    struct input *in = d->in;
    if (len == 0)
        return;
    const struct format *f = format_for(d->fmt, data[0]);
    if ((len = trimmed(f, data, len)) == 0)
        return;
    if (!d->is_unix)
        collector_next_message(in->col);
    if (truncated)
        collector_dead(in, "too large", data, len);
    else
        f->decode(in, data, len);
}

/* Datagrams read while the pipeline is full, counted as received and dropped: as many records as
 * each would have made (a statsd datagram holds several lines). */
static void drop(struct dgram *d, int n)
{
    uint64_t records = 0;
    for (int i = 0; i < n; i++) {
        const char *data = d->iov[i].iov_base;
        size_t len = d->msgs[i].msg_len;
        const struct format *f = len ? format_for(d->fmt, data[0]) : d->fmt;
        len = trimmed(f, data, len);
        if (d->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
            records += len > 0; /* read, it would be one record: dead-lettered as too large */
        else if (len)
            records += format_records(f, data, len);
    }
    counter_add(&d->in->stats.received, records);
    counter_add(&d->in->stats.dropped, records);
    int64_t sup = log_limit_take(&d->drop_log);
    if (sup >= 0)
        log_warn("pipeline full: datagrams dropped (UDP cannot push back)", "{s:s, s:I}", "input",
                 d->in->name, "suppressed", (json_int_t)sup);
}

/* The kernel's count of datagrams it dropped for this socket (receive buffer full) comes with
 * each datagram once SO_RXQ_OVFL is on; what it grew by since the last one is counted. */
static void kernel_drops(struct dgram *d, struct msghdr *mh)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL)
            continue;
        uint32_t total;
        memcpy(&total, CMSG_DATA(c), sizeof(total));
        uint32_t grew = total - d->kernel_drops; /* wraps like the kernel's counter */
        d->kernel_drops = total;
        if (!grew)
            continue;
        counter_add(&d->in->stats.overflow, grew);
        int64_t sup = log_limit_take(&d->drop_log);
        if (sup >= 0)
            log_warn("receive buffer full: the kernel dropped datagrams (raise receive_buffer)",
                     "{s:s, s:I, s:I}", "input", d->in->name, "dropped", (json_int_t)grew,
                     "suppressed", (json_int_t)sup);
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct dgram *d = arg;
    /* UDP datagrams spread round robin (a keyless one goes to the next partition); a unix
     * datagram socket's senders are local processes (syslog(3) through /dev/log), whose
     * messages keep their order as one stream. */
    if (d->is_unix)
        collector_begin_stream(d->in->col, (uint64_t)(uintptr_t)d);
    else
        collector_begin_messages(d->in->col);
    for (int round = 0; round < READS_PER_CB; round++) {
        for (int i = 0; i < BATCH; i++) {
            d->iov[i].iov_base = d->bufs + (size_t)i * d->slot;
            d->iov[i].iov_len = d->slot;
            memset(&d->msgs[i].msg_hdr, 0, sizeof(d->msgs[i].msg_hdr));
            d->msgs[i].msg_hdr.msg_iov = &d->iov[i];
            d->msgs[i].msg_hdr.msg_iovlen = 1;
            d->msgs[i].msg_hdr.msg_control = d->ctl[i];
            d->msgs[i].msg_hdr.msg_controllen = sizeof(d->ctl[i]);
        }
        int n = recvmmsg(fd, d->msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        kernel_drops(d, &d->msgs[n - 1].msg_hdr);
        uint64_t bytes = 0;
        for (int i = 0; i < n; i++)
            bytes += d->msgs[i].msg_len;
        counter_add(&d->in->stats.bytes, bytes);
        if (d->paused || collector_paused(d->in->col)) {
            drop(d, n);
            continue;
        }
        for (int i = 0; i < n; i++)
            handle(d, d->iov[i].iov_base, d->msgs[i].msg_len,
                   (d->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0);
        if (n < BATCH)
            break;
    }
    collector_commit(d->in->col);
}

static int bind_udp(struct dgram *d, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    if (evutil_parse_sockaddr_port(d->o->listen, (struct sockaddr *)&ss, &sslen) < 0) {
        snprintf(err, errlen, "input %s: listen \"%s\" is not host:port", d->in->name,
                 d->o->listen);
        return -EINVAL;
    }
    d->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->fd < 0 || bind(d->fd, (struct sockaddr *)&ss, (socklen_t)sslen) < 0) {
        int e = errno;
        snprintf(err, errlen, "input %s: cannot listen on udp %s: %s", d->in->name, d->o->listen,
                 strerror(e));
        return -e;
    }
    return 0;
}

static int bind_unix(struct dgram *d, char *err, size_t errlen)
{
    const char *path = d->o->path;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char *end;
    long mode = strtol(d->o->mode, &end, 8);
    if (*end || mode < 0 || mode > 0777) {
        snprintf(err, errlen, "input %s: mode \"%s\" is not an octal permission like 0666",
                 d->in->name, d->o->mode);
        return -EINVAL;
    }
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "input %s: socket path too long: %s", d->in->name, path);
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, path);
    int rc = fs_mkdir_parent(path);
    if (rc == 0) {
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(path); /* a datagram socket cannot be probed for a live owner */
    }
    d->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (rc || d->fd < 0 || bind(d->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        chmod(path, (mode_t)mode) < 0) {
        int e = rc ? -rc : errno;
        snprintf(err, errlen, "input %s: cannot bind %s: %s", d->in->name, path, strerror(e));
        return -e;
    }
    return 0;
}

static int dgram_start(struct input *in, char *err, size_t errlen)
{
    struct dgram *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    in->priv = d;
    d->in = in;
    d->o = in->opts;
    d->fd = -1;
    d->is_unix = in->type == &input_unix_dgram;
    d->fmt = format_at(d->o->format);
    /* One byte more than the limit, so a longer datagram shows as MSG_TRUNC. */
    d->slot = (size_t)d->o->common.max_event_size + 1;
    if (d->slot > MAX_DGRAM + 1)
        d->slot = MAX_DGRAM + 1;
    d->bufs = malloc(d->slot * BATCH);
    if (!d->bufs)
        return -ENOMEM;
    int rc = d->is_unix ? bind_unix(d, err, errlen) : bind_udp(d, err, errlen);
    if (rc)
        return rc;
    int rcvbuf = (int)d->o->receive_buffer, one = 1;
    if (rcvbuf > 0)
        setsockopt(d->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (!d->is_unix && setsockopt(d->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) < 0)
        log_warn("cannot count the kernel's datagram drops (SO_RXQ_OVFL)", "{s:s, s:s}", "input",
                 in->name, "error", strerror(errno));
    d->ev = event_new(in->base, d->fd, EV_READ | EV_PERSIST, on_read, d);
    if (!d->ev || event_add(d->ev, NULL) < 0)
        return -ENOMEM;
    log_info("input listening", "{s:s, s:s, s:s}", "input", in->name, "type", in->type->cfg.name,
             "address", d->is_unix ? d->o->path : d->o->listen);
    return 0;
}

/* Paused datagram inputs keep reading: see the comment at the top. */
static void dgram_pause(struct input *in)
{
    struct dgram *d = in->priv;
    if (d)
        d->paused = 1;
}

static void dgram_resume(struct input *in)
{
    struct dgram *d = in->priv;
    if (d)
        d->paused = 0;
}

static void dgram_stop(struct input *in)
{
    struct dgram *d = in->priv;
    if (!d || d->fd < 0)
        return;
    if (d->ev) {
        /* What the kernel already holds is read once more before closing. */
        on_read(d->fd, EV_READ, d);
        event_free(d->ev);
        d->ev = NULL;
    }
    close(d->fd);
    d->fd = -1;
    if (d->is_unix)
        unlink(d->o->path);
}

static void dgram_destroy(struct input *in)
{
    struct dgram *d = in->priv;
    if (!d)
        return;
    dgram_stop(in);
    free(d->bufs);
    free(d);
    in->priv = NULL;
}

#define DGRAM_OPS                                                                                  \
    .start = dgram_start, .pause = dgram_pause, .resume = dgram_resume, .stop = dgram_stop,        \
    .destroy = dgram_destroy

/* clang-format off */
#define DGRAM_KEYS_COMMON                                                                          \
    {"max_event_size", CFG_SIZE, offsetof(struct dgram_opts, common.max_event_size), "64KiB",      \
     "Longest datagram; a longer one is dead-lettered as \"too large\".", 0, 16, 65536},          \
    {"aliases", CFG_STRMAP, offsetof(struct dgram_opts, common.aliases), NULL,                     \
     "For format ndjson: source field names mapped to canonical ones."},                           \
    FORMAT_KEY(struct dgram_opts, "syslog"),                                                       \
    {"receive_buffer", CFG_SIZE, offsetof(struct dgram_opts, receive_buffer), "4MiB",              \
     "Kernel receive buffer (SO_RCVBUF) to absorb bursts; 0 keeps the system default.",            \
     0, 0, 268435456}
/* clang-format on */

static const struct cfg_key udp_keys[] = {
    {"listen", CFG_STRING, offsetof(struct dgram_opts, listen), NULL,
     "Address to listen on, host:port.", CFG_REQUIRED},
    DGRAM_KEYS_COMMON,
    {0},
};

static const struct cfg_key unix_dgram_keys[] = {
    {"path", CFG_STRING, offsetof(struct dgram_opts, path), NULL,
     "Path of the datagram socket (as /dev/log).", CFG_REQUIRED},
    {"mode", CFG_STRING, offsetof(struct dgram_opts, mode), "0666",
     "Permissions of the socket file (octal)."},
    DGRAM_KEYS_COMMON,
    {0},
};

const struct input_type input_udp = {
    .cfg = {.name = "udp",
            .desc = "UDP datagrams, one message each: syslog (RFC 5424 / RFC 3164), a JSON "
                    "object, statsd lines or any other format.",
            .size = sizeof(struct dgram_opts),
            .keys = udp_keys},
    DGRAM_OPS,
};

static const struct cfg_key statsd_keys[] = {
    {"listen", CFG_STRING, offsetof(struct dgram_opts, listen), NULL,
     "Address to listen on, host:port (statsd's usual port is 8125).", CFG_REQUIRED},
    FORMAT_KEY(struct dgram_opts, "statsd"),
    {"max_event_size", CFG_SIZE, offsetof(struct dgram_opts, common.max_event_size), "64KiB",
     "Longest datagram; a longer one is dead-lettered as \"too large\".", 0, 16, 65536},
    {"receive_buffer", CFG_SIZE, offsetof(struct dgram_opts, receive_buffer), "4MiB",
     "Kernel receive buffer (SO_RCVBUF) to absorb bursts; 0 keeps the system default.", 0, 0,
     268435456},
    {0},
};

const struct input_type input_statsd = {
    .cfg = {.name = "statsd",
            .desc = "StatsD over UDP (counters, gauges, timers, histograms, sets, distributions, "
                    "sample rates, DogStatsD tags) as kind: metric events: udp with format statsd.",
            .size = sizeof(struct dgram_opts),
            .keys = statsd_keys},
    DGRAM_OPS,
};

const struct input_type input_unix_dgram = {
    .cfg = {.name = "unix_dgram",
            .desc = "A Unix datagram socket, as /dev/log: syslog, JSON or any other format per "
                    "datagram.",
            .size = sizeof(struct dgram_opts),
            .keys = unix_dgram_keys},
    DGRAM_OPS,
};
