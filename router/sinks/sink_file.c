/* `file` and `stdout` sinks: NDJSON, one event per line, written in batches (one write(2) per
 * span of records, not per event). A failed write keeps its place in the batch, so a retry
 * continues where the failure was and never writes a line twice or splits one. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "log.h"
#include "ring.h"
#include "sink.h"

struct file_opts {
    struct sink_common common;
    char *path;
};

struct file_sink {
    int fd;
    int owns_fd;
    struct buf wbuf;
    size_t woff; /* bytes of wbuf already written */
    struct log_limit lim;
};

static int file_open_fd(struct sink *s, char *err, size_t errlen)
{
    const struct file_opts *o = s->opts;
    struct file_sink *f = s->priv;
    int rc = fs_mkdir_parent(o->path);
    if (rc) {
        snprintf(err, errlen, "sink %s: cannot create the directory of %s: %s", s->name, o->path,
                 strerror(-rc));
        return rc;
    }
    int fd = open(o->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "sink %s: cannot open %s: %s", s->name, o->path, strerror(e));
        return -e;
    }
    f->fd = fd;
    f->owns_fd = 1;
    return 0;
}

static int file_open(struct sink *s, char *err, size_t errlen)
{
    struct file_sink *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    s->priv = f;
    f->fd = -1;
    if (strcmp(s->type, "stdout") == 0) {
        f->fd = 1;
        return 0;
    }
    return file_open_fd(s, err, errlen);
}

/* Lays the records out as lines in wbuf. */
static void format_lines(struct file_sink *f, const char *span, size_t len)
{
    buf_reset(&f->wbuf);
    f->woff = 0;
    buf_reserve(&f->wbuf, len);
    for (size_t off = 0; off < len;) {
        const struct ring_rec *r = (const struct ring_rec *)(span + off);
        buf_append(&f->wbuf, RING_REC_DATA(r), r->len);
        buf_putc(&f->wbuf, '\n');
        off += RING_REC_SIZE(r->len);
    }
}

static enum sink_result file_write(struct sink *s, const char *span, size_t len, uint64_t nrec)
{
    struct file_sink *f = s->priv;
    if (f->woff == 0 && f->wbuf.len == 0)
        format_lines(f, span, len);
    while (f->woff < f->wbuf.len) {
        ssize_t w = write(f->fd, f->wbuf.data + f->woff, f->wbuf.len - f->woff);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (log_limit_take(&f->lim) >= 0)
                log_error("sink write failed", "{s:s, s:s}", "sink", s->name, "error",
                          strerror(errno));
            return SINK_RETRY;
        }
        f->woff += (size_t)w;
    }
    counter_add(&s->stats.bytes, f->wbuf.len);
    buf_reset(&f->wbuf);
    f->woff = 0;
    buf_trim(&f->wbuf, 4 << 20);
    return SINK_OK;
}

static void file_reopen(struct sink *s)
{
    struct file_sink *f = s->priv;
    if (!f->owns_fd)
        return;
    char err[256];
    int old = f->fd;
    if (file_open_fd(s, err, sizeof(err)) == 0) {
        close(old);
        log_info("sink reopened", "{s:s}", "sink", s->name);
    } else {
        f->fd = old;
        log_error("sink reopen failed", "{s:s, s:s}", "sink", s->name, "error", err);
    }
}

static void file_close(struct sink *s)
{
    struct file_sink *f = s->priv;
    if (!f)
        return;
    if (f->owns_fd && f->fd >= 0)
        close(f->fd);
    buf_free(&f->wbuf);
    free(f);
    s->priv = NULL;
}

static const struct sink_ops file_ops = {
    .open = file_open,
    .write = file_write,
    .reopen = file_reopen,
    .close = file_close,
};

static const struct cfg_key file_keys[] = {
    {"path", CFG_STRING, offsetof(struct file_opts, path), NULL,
     "File to append NDJSON to; its directory is created.", CFG_REQUIRED},
    SINK_COMMON_KEYS(struct file_opts),
    {0},
};

static const struct cfg_key stdout_keys[] = {
    SINK_COMMON_KEYS(struct file_opts),
    {0},
};

const struct cfg_section sink_file_section = {
    .name = "file",
    .desc = "Appends NDJSON (one event per line) to a file. SIGHUP reopens it (logrotate).",
    .size = sizeof(struct file_opts),
    .keys = file_keys,
    .impl = &file_ops,
};

const struct cfg_section sink_stdout_section = {
    .name = "stdout",
    .desc = "Writes NDJSON to standard output.",
    .size = sizeof(struct file_opts),
    .keys = stdout_keys,
    .impl = &file_ops,
};
