/* `file` and `stdout` sinks: NDJSON, one event per line, written in batches (one write(2) per
 * megabyte or so of records, not per event). A failed write keeps its place in the batch, so a
 * retry continues where the failure was and never writes a line twice or splits one. Files rotate
 * by size and/or age between batches (never inside a line): path -> path.1 -> ... -> path.N.
 * stdout can also print a short human form. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/fsutil.h"
#include "core/jsontok.h"
#include "core/log.h"
#include "core/ring.h"
#include "core/timeutil.h"
#include "router/sinks/sink.h"

static const char *const fsync_modes[] = {"none", "batch", NULL};
static const char *const page_cache_modes[] = {"drop", "keep", NULL};

/* page_cache: drop. What was written is handed to the disk every DROP_WINDOW bytes and, one
 * window later, dropped from the page cache: a log file is written once and read rarely, so
 * its pages would only push out memory the rest of the machine uses (and, in a container,
 * count against its memory limit). It is also cheaper: a page the kernel has to find for new
 * data costs more than the copy into it (on this project's VM, 1 GiB written in 256 KiB writes:
 * 0.74-1.20 CPU s kept, 0.33-0.40 dropped; docs/sinks.md). */
#define DROP_WINDOW (8u << 20)
static const char *const stdout_formats[] = {"json", "text", NULL};

struct file_opts {
    struct sink_common common;
    char *path;
    int64_t max_size;
    int64_t max_age;
    int64_t keep;
    int fsync;
    int page_cache; /* 0: drop, 1: keep */
    int format;     /* stdout: json or text */
};

struct file_sink {
    int fd;
    int owns_fd;
    uint64_t size;      /* bytes in the current file */
    uint64_t synced;    /* page_cache drop: written back up to here (asked for) */
    uint64_t dropped;   /* and dropped from the page cache up to here */
    int64_t started_ns; /* when the current file got its first byte (or was opened non-empty) */
    struct buf wbuf;
    size_t woff;     /* bytes of wbuf already written */
    size_t span_off; /* bytes of the span being written that are laid out in wbuf */
    struct jsontok tok;
    struct buf field;
    struct log_limit lim;
};

/* A crash (kill -9, power loss) can leave the file ending in half a line: end it, so the next
 * event starts on a line of its own and only the cut line is unreadable. */
static void end_cut_line(const struct sink *s, int fd, uint64_t *size)
{
    char last;
    if (*size == 0 || pread(fd, &last, 1, (off_t)(*size - 1)) != 1 || last == '\n')
        return;
    if (write(fd, "\n", 1) == 1) {
        (*size)++;
        log_warn("file sink: ended a line cut short by an earlier crash", "{s:s, s:s}", "sink",
                 s->name, "path", ((const struct file_opts *)s->opts)->path);
    }
}

static int open_current(struct sink *s, char *err, size_t errlen)
{
    const struct file_opts *o = s->opts;
    struct file_sink *f = s->priv;
    int rc = fs_mkdir_parent(o->path);
    if (rc) {
        snprintf(err, errlen, "sink %s: cannot create the directory of %s: %s", s->name, o->path,
                 strerror(-rc));
        return rc;
    }
    int fd = open(o->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "sink %s: cannot open %s: %s", s->name, o->path, strerror(e));
        return -e;
    }
    struct stat st;
    f->size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    end_cut_line(s, fd, &f->size);
    f->synced = f->dropped = f->size; /* what was there before is not ours to drop */
    f->fd = fd;
    f->owns_fd = 1;
    f->started_ns = time_mono_ns();
    return 0;
}

static int file_open(struct sink *s, char *err, size_t errlen)
{
    struct file_sink *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    s->priv = f;
    f->fd = -1;
    if (s->type == &sink_stdout) {
        f->fd = 1;
        return 0;
    }
    return open_current(s, err, errlen);
}

/* path -> path.1 -> path.2 ... keeping `keep` old files, then a fresh path. */
static void rotate(struct sink *s)
{
    const struct file_opts *o = s->opts;
    struct file_sink *f = s->priv;
    char from[4096], to[4096];
    for (int64_t i = o->keep; i >= 1; i--) {
        snprintf(from, sizeof(from), i == 1 ? "%s" : "%s.%lld", o->path, (long long)(i - 1));
        snprintf(to, sizeof(to), "%s.%lld", o->path, (long long)i);
        if (i == o->keep)
            unlink(to);
        rename(from, to);
    }
    if (o->keep == 0)
        unlink(o->path);
    char err[256];
    int old = f->fd;
    if (open_current(s, err, sizeof(err)) == 0) {
        close(old);
        log_info("file sink rotated", "{s:s, s:s}", "sink", s->name, "path", o->path);
    } else {
        f->fd = old;
        log_error("file sink rotation failed: still writing the old file", "{s:s, s:s}", "sink",
                  s->name, "error", err);
    }
}

static int due(const struct sink *s, size_t incoming)
{
    const struct file_opts *o = s->opts;
    const struct file_sink *f = s->priv;
    if (!f->owns_fd || f->size == 0)
        return 0;
    if (o->max_size > 0 && f->size + incoming > (uint64_t)o->max_size)
        return 1;
    return o->max_age > 0 && time_mono_ns() - f->started_ns >= o->max_age;
}

/* "2026-11-27T10:00:00.123456Z ERROR checkout: message" for people watching a terminal. */
static void text_line(struct file_sink *f, const char *json, size_t len)
{
    static const char *const fields[] = {"timestamp", "level", "service", "message"};
    if (jsontok_parse_trusted(&f->tok, json, len) || f->tok.tok[0].type != JSMN_OBJECT) {
        buf_append(&f->wbuf, json, len);
        return;
    }
    int prev = -1; /* the field written last: the separator depends on it */
    for (int i = 0; i < 4; i++) {
        int v = jsontok_find(&f->tok, 0, fields[i], strlen(fields[i]));
        if (v < 0 && i == 2)
            v = jsontok_find(&f->tok, 0, "source", 6);
        if (v < 0)
            continue;
        const jsmntok_t *t = &f->tok.tok[v];
        buf_reset(&f->field);
        if (t->type == JSMN_STRING)
            jsontok_unescape(json + t->start, (size_t)(t->end - t->start), &f->field);
        else
            buf_append(&f->field, json + t->start, (size_t)(t->end - t->start));
        if (prev >= 0)
            buf_puts(&f->wbuf, prev == 2 ? ": " : " ");
        buf_append(&f->wbuf, f->field.data, f->field.len);
        prev = i;
    }
}

/* Lays the span's next records (from span_off, FORMAT_CHUNK bytes of them or one) out as lines
 * in wbuf. A span can be all the sink's queue (tens of MiB): laid out whole, the buffer would
 * grow that far and be trimmed again, new pages each time (S4: 8% of the sink's time). */
#define FORMAT_CHUNK (1u << 20)
static void format_lines(struct sink *s, const char *span, size_t len)
{
    const struct file_opts *o = s->opts;
    struct file_sink *f = s->priv;
    buf_reset(&f->wbuf);
    f->woff = 0;
    const char *p = span + f->span_off, *stop = span + len;
    if ((size_t)(stop - p) > FORMAT_CHUNK)
        stop = p + FORMAT_CHUNK;
    buf_reserve(&f->wbuf, (size_t)(stop - p) + 4096);
    do {
        const struct ring_rec *r = (const struct ring_rec *)p;
        if (o->format == 1)
            text_line(f, RING_REC_DATA(r), r->len);
        else
            buf_append(&f->wbuf, RING_REC_DATA(r), r->len);
        buf_putc(&f->wbuf, '\n');
        p = (const char *)RING_REC_NEXT(r);
    } while (p < stop);
    f->span_off = (size_t)(p - span);
}

/* How much of wbuf to write next: everything, or with max_size the whole lines that still fit
 * in the current file, rotating first when none does. A line is never split across files
 * (one longer than max_size gets a file of its own). */
static size_t chunk(struct sink *s)
{
    const struct file_opts *o = s->opts;
    struct file_sink *f = s->priv;
    const char *p = f->wbuf.data + f->woff;
    size_t left = f->wbuf.len - f->woff;
    if (o->max_size <= 0 || !f->owns_fd)
        return left;
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t room =
            f->size < (uint64_t)o->max_size ? (size_t)(o->max_size - (int64_t)f->size) : 0;
        if (room >= left)
            return left;
        const char *nl = NULL;
        for (size_t i = room; i-- > 0;) {
            if (p[i] == '\n') {
                nl = p + i;
                break;
            }
        }
        if (nl)
            return (size_t)(nl - p) + 1;
        if (f->size == 0)
            break;
        rotate(s);
    }
    const char *nl = memchr(p, '\n', left);
    return nl ? (size_t)(nl - p) + 1 : left;
}

/* page_cache: drop (see DROP_WINDOW). Both calls are advice: a file system that does not
 * support them only keeps its pages. */
static void drop_behind(struct file_sink *f)
{
    if (f->size - f->synced < DROP_WINDOW)
        return;
    sync_file_range(f->fd, (off_t)f->synced, (off_t)(f->size - f->synced), SYNC_FILE_RANGE_WRITE);
    f->synced = f->size;
    if (f->synced - f->dropped < 2 * DROP_WINDOW)
        return;
    /* The window before the newest: its write-back was started a window ago. */
    uint64_t upto = f->synced - DROP_WINDOW;
    off_t off = (off_t)f->dropped, len = (off_t)(upto - f->dropped);
    sync_file_range(f->fd, off, len,
                    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                        SYNC_FILE_RANGE_WAIT_AFTER);
    posix_fadvise(f->fd, off, len, POSIX_FADV_DONTNEED);
    f->dropped = upto;
}

static enum sink_result file_write(struct sink *s, const char *span, size_t len, uint64_t nrec)
{
    const struct file_opts *o = s->opts;
    struct file_sink *f = s->priv;
    if (f->span_off == 0 && f->wbuf.len == 0 && o->max_age > 0 && due(s, 0))
        rotate(s); /* a new span: rotation by age happens between spans */
    while (f->woff < f->wbuf.len || f->span_off < len) {
        if (f->woff == f->wbuf.len) {
            counter_add(&s->stats.bytes, f->wbuf.len);
            format_lines(s, span, len);
        }
        size_t n = chunk(s);
        ssize_t w = write(f->fd, f->wbuf.data + f->woff, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            sink_set_error(s, "write %s: %s", f->owns_fd ? o->path : "stdout", strerror(errno));
            if (log_limit_take(&f->lim) >= 0)
                log_error("sink write failed", "{s:s, s:s}", "sink", s->name, "error",
                          strerror(errno));
            return SINK_RETRY;
        }
        /* A file's age counts from its first line: one that sat empty longer than max_age
         * would otherwise be rotated just after that line, holding next to nothing. */
        if (f->size == 0)
            f->started_ns = time_mono_ns();
        f->woff += (size_t)w;
        f->size += (uint64_t)w;
        if (o->page_cache == 0 && f->owns_fd)
            drop_behind(f);
    }
    if (o->fsync == 1 && f->owns_fd && fsync(f->fd) < 0) {
        sink_set_error(s, "fsync %s: %s", o->path, strerror(errno));
        return SINK_RETRY; /* written but not durable: the retry writes nothing, syncs again */
    }
    counter_add(&s->stats.bytes, f->wbuf.len);
    buf_reset(&f->wbuf);
    f->woff = 0;
    f->span_off = 0;
    buf_trim(&f->wbuf, 4 << 20);
    return SINK_OK;
}

/* Idle: rotation by age happens even when nothing is written. */
static enum sink_result file_flush(struct sink *s)
{
    const struct file_opts *o = s->opts;
    struct file_sink *f = s->priv;
    if (f->owns_fd && o->max_age > 0 && f->wbuf.len == 0 && due(s, 0))
        rotate(s);
    return SINK_OK;
}

static void file_reopen(struct sink *s)
{
    struct file_sink *f = s->priv;
    if (!f->owns_fd)
        return;
    char err[256];
    int old = f->fd;
    if (open_current(s, err, sizeof(err)) == 0) {
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
    buf_free(&f->field);
    jsontok_free(&f->tok);
    free(f);
    s->priv = NULL;
}

static const struct cfg_key file_keys[] = {
    {"path", CFG_STRING, offsetof(struct file_opts, path), NULL,
     "File to append NDJSON to; its directory is created.", CFG_REQUIRED},
    SINK_COMMON_KEYS(struct file_opts),
    {"max_size", CFG_SIZE, offsetof(struct file_opts, max_size), "0",
     "Rotate before the file would pass this size (0: no size rotation)."},
    {"max_age", CFG_DURATION, offsetof(struct file_opts, max_age), "0s",
     "Rotate a file this old (0: no time rotation)."},
    {"keep", CFG_INT, offsetof(struct file_opts, keep), "5",
     "Rotated files kept: path.1 (newest) to path.N.", 0, 0, 10000},
    {"fsync", CFG_ENUM, offsetof(struct file_opts, fsync), "none",
     "batch: fsync after every batch, so what is acknowledged survives a power loss.", 0, 0, 0,
     fsync_modes},
    {"page_cache", CFG_ENUM, offsetof(struct file_opts, page_cache), "drop",
     "drop: what was written is handed to the disk every 8 MiB and dropped from the page cache "
     "8 MiB behind the end (a log file is read rarely); keep: left to the kernel.",
     0, 0, 0, page_cache_modes},
    {0},
};

static const struct cfg_key stdout_keys[] = {
    SINK_COMMON_KEYS(struct file_opts),
    {"format", CFG_ENUM, offsetof(struct file_opts, format), "json",
     "json: NDJSON; text: \"TIMESTAMP LEVEL SERVICE: MESSAGE\" for people.", 0, 0, 0,
     stdout_formats},
    {0},
};

#define FILE_OPS                                                                                   \
    .open = file_open, .write = file_write, .flush = file_flush, .reopen = file_reopen,            \
    .close = file_close

const struct sink_type sink_file = {
    .cfg =
        {
            .name = "file",
            .desc =
                "Appends NDJSON (one event per line) to a file, rotating by size or age. SIGHUP "
                "reopens it (logrotate).",
            .size = sizeof(struct file_opts),
            .keys = file_keys,
        },
    FILE_OPS,
};

const struct sink_type sink_stdout = {
    .cfg =
        {
            .name = "stdout",
            .desc = "Writes NDJSON, or a short human form, to standard output.",
            .size = sizeof(struct file_opts),
            .keys = stdout_keys,
        },
    FILE_OPS,
};
