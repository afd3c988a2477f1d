/* `tail` input: follows the files a glob matches, like `tail -F`. Every poll_interval each open
 * file is read from its position up to what was appended; the glob is re-evaluated to find new
 * files. Rotation by rename is followed (the old file is read to its end, then the new one from
 * its start); copytruncate is detected by the file shrinking. A file is one inode, followed
 * once: when the glob also matches the rotated name (app.log.1 for app.log*), the open file
 * takes that name and keeps its position instead of being read again. Positions (inode +
 * offset of the last complete line handed on) are saved in the store, so a restart
 * neither re-reads nor skips a line, also for a file renamed while spillway was stopped.
 * Polling rather than inotify: simple, and it behaves the same on every filesystem (NFS,
 * overlay). */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/collector.h"
#include "collector/format.h"
#include "collector/input.h"
#include "core/log.h"
#include "core/store.h"
#include "core/timeutil.h"

#define READ_PER_POLL (4u << 20) /* per file per poll: one busy file cannot starve the others */
#define CHUNK         (256 * 1024)

enum { FROM_BEGINNING, FROM_END };
static const char *const read_froms[] = {"beginning", "end", NULL};

struct tail_opts {
    struct input_common common;
    char *path;
    int format;
    int read_from;
    int64_t poll_interval;
    int64_t glob_interval;
    char *path_key;
};

struct tfile {
    char *path;
    int fd;
    ino_t ino;
    uint64_t offset; /* bytes read from the file into the stream */
    uint64_t saved;  /* the position last written to the store */
    int rotated;     /* the path now names another file: read this one to its end */
    int seen;        /* matched by the last glob */
    struct format_stream fs;
    struct tail *t;
    struct tfile *next;
};

struct tail {
    struct input *in;
    const struct tail_opts *o;
    struct event *timer;
    struct tfile *files;
    char *buf;
    int64_t next_glob;
    int64_t next_save;
    int paused;
    int stopped;
    struct log_limit lim;
};

/* The position of the last complete line: what a restart resumes from. */
static uint64_t committed(const struct tfile *f)
{
    size_t carried = format_stream_carried(&f->fs);
    return f->offset - (carried < f->offset ? carried : f->offset);
}

static void save(struct tail *t, struct tfile *f)
{
    uint64_t pos = committed(f);
    /* A rotated file's path belongs to its successor now: never overwrite that position. */
    if (!t->in->store || pos == f->saved || f->rotated)
        return;
    if (store_position_set(t->in->store, t->in->name, f->path, (uint64_t)f->ino, pos) == 0)
        f->saved = pos;
}

/* gone: the file no longer matches the glob (deleted, or renamed out of it) and was read to its
 * end; its position would only mislead a later file that reuses the inode. */
static void tfile_close(struct tail *t, struct tfile *f, int gone)
{
    if (gone && t->in->store)
        store_position_delete(t->in->store, t->in->name, f->path);
    else
        save(t, f);
    if (f->fd >= 0)
        close(f->fd);
    format_stream_free(&f->fs);
    free(f->path);
    free(f);
}

static void init_stream(struct tail *t, struct tfile *f)
{
    format_stream_init(&f->fs, t->in, format_at(t->o->format), (size_t)t->o->common.max_event_size);
}

/* A file renamed while spillway was stopped (app.log -> app.log.1) resumes from the position
 * saved under its old name, provided that name now holds another file. */
static int renamed_position(struct tail *t, const struct stat *st, uint64_t *ino, uint64_t *off)
{
    struct buf old = {0};
    uint64_t o = 0;
    struct stat now;
    int found =
        t->in->store &&
        store_position_by_inode(t->in->store, t->in->name, (uint64_t)st->st_ino, &old, &o) == 1 &&
        buf_append(&old, "", 1) == 0 && (stat(old.data, &now) < 0 || now.st_ino != st->st_ino);
    if (found) {
        *ino = (uint64_t)st->st_ino;
        *off = o;
    }
    buf_free(&old);
    return found;
}

/* Opens path and decides where to start: the saved position when it is the same file and not
 * shorter than it, else the beginning (a new file) or the end (read_from: end, first sight). */
static struct tfile *tfile_open(struct tail *t, const char *path, int first_scan)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return NULL;
    }
    struct tfile *f = calloc(1, sizeof(*f));
    if (!f) {
        close(fd);
        return NULL;
    }
    f->path = strdup(path);
    f->fd = fd;
    f->ino = st.st_ino;
    f->t = t;
    init_stream(t, f);
    uint64_t ino = 0, off = 0;
    int known =
        t->in->store && store_position_get(t->in->store, t->in->name, path, &ino, &off) == 1;
    int renamed = 0;
    if (!(known && ino == (uint64_t)st.st_ino))
        known = (renamed = renamed_position(t, &st, &ino, &off)) || known;
    if (known && ino == (uint64_t)st.st_ino && off <= (uint64_t)st.st_size)
        f->offset = off;
    else if (!known && first_scan && t->o->read_from == FROM_END)
        f->offset = (uint64_t)st.st_size;
    else
        f->offset = 0;
    /* A position found under another name is saved under this one at the next save. */
    f->saved = known && !renamed && ino == (uint64_t)st.st_ino ? off : (uint64_t)-1;
    lseek(fd, (off_t)f->offset, SEEK_SET);
    log_info("tailing file", "{s:s, s:s, s:I}", "input", t->in->name, "path", path, "offset",
             (json_int_t)f->offset);
    return f;
}

static struct tfile *find(struct tail *t, const char *path, int current_only)
{
    for (struct tfile *f = t->files; f; f = f->next) {
        if (!strcmp(f->path, path) && !(current_only && f->rotated))
            return f;
    }
    return NULL;
}

/* A path the glob matches that is not followed under that name: is it a followed file by
 * another name? Renamed (its old name no longer holds it): it takes the new name, keeping its
 * position. A second name for it (a link): 1, so that it is not read twice. */
static int known_inode(struct tail *t, const char *path)
{
    struct stat st, cur;
    if (stat(path, &st) < 0)
        return 0;
    for (struct tfile *f = t->files; f; f = f->next) {
        if (f->ino != st.st_ino)
            continue;
        if (stat(f->path, &cur) == 0 && cur.st_ino == f->ino && !f->rotated)
            return 1;
        char *np = strdup(path);
        if (!np)
            return 1;
        log_info("file renamed: following it under its new name", "{s:s, s:s, s:s}", "input",
                 t->in->name, "from", f->path, "to", path);
        free(f->path);
        f->path = np;
        f->rotated = 0;
        f->seen = 1;
        f->saved = (uint64_t)-1;
        return 1;
    }
    return 0;
}

static void scan(struct tail *t, int first)
{
    glob_t g;
    int rc = glob(t->o->path, GLOB_NOSORT, NULL, &g);
    if (rc && rc != GLOB_NOMATCH) { /* out of memory or a read error: nothing is known */
        if (log_limit_take(&t->lim) >= 0)
            log_warn("tail: the glob failed; following the files already open", "{s:s, s:s}",
                     "input", t->in->name, "path", t->o->path);
        return;
    }
    for (struct tfile *f = t->files; f; f = f->next)
        f->seen = 0;
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) {
        const char *p = g.gl_pathv[i];
        struct tfile *f = find(t, p, 1);
        if (f) {
            f->seen = 1;
            struct stat st;
            /* Renamed away and replaced: keep the old one to its end, open the new one. */
            if (stat(p, &st) == 0 && st.st_ino != f->ino) {
                f->rotated = 1;
                f = NULL;
            }
        }
        if (!f && !known_inode(t, p)) {
            struct tfile *nf = tfile_open(t, p, first);
            if (nf) {
                nf->seen = 1;
                nf->next = t->files;
                t->files = nf;
            }
        }
    }
    if (rc == 0)
        globfree(&g);
}

/* The file's path no longer names it (deleted, or renamed away): its position is of no use. A
 * file only unmatched by the glob (its pattern, or a glob that found nothing while a directory
 * could not be read) keeps its position. */
static int file_gone(const struct tfile *f)
{
    struct stat st;
    return stat(f->path, &st) < 0 ? errno == ENOENT : st.st_ino != f->ino;
}

/* Reads what was appended; returns 1 when the file is finished (rotated or gone, at EOF). */
static int pump(struct tail *t, struct tfile *f)
{
    struct stat st;
    if (fstat(f->fd, &st) == 0 && (uint64_t)st.st_size < f->offset) {
        log_warn("file truncated: reading it again from the start", "{s:s, s:s}", "input",
                 t->in->name, "path", f->path);
        f->offset = 0;
        lseek(f->fd, 0, SEEK_SET);
        format_stream_free(&f->fs);
        init_stream(t, f);
    }
    size_t total = 0;
    for (;;) {
        ssize_t n = read(f->fd, t->buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        counter_add(&t->in->stats.bytes, (uint64_t)n);
        f->offset += (uint64_t)n;
        format_stream_feed(&f->fs, t->buf, (size_t)n);
        total += (size_t)n;
        if (total >= READ_PER_POLL)
            return 0;
    }
    if (f->rotated || !f->seen) {
        format_stream_finish(&f->fs); /* nothing more will be appended to it */
        return 1;
    }
    return 0;
}

static void poll_files(struct tail *t)
{
    int64_t now = time_mono_ns();
    if (now >= t->next_glob) {
        scan(t, 0);
        t->next_glob = now + t->o->glob_interval;
    }
    for (struct tfile **pp = &t->files; *pp;) {
        struct tfile *f = *pp;
        collector_begin_stream(t->in->col, (uint64_t)f->ino);
        collector_field(t->in->col, t->o->path_key, f->path);
        if (!t->paused && pump(t, f)) {
            *pp = f->next;
            tfile_close(t, f, !f->rotated && file_gone(f));
            continue;
        }
        pp = &f->next;
    }
    collector_field(t->in->col, NULL, NULL);
    collector_commit(t->in->col);
    if (now >= t->next_save) {
        for (struct tfile *f = t->files; f; f = f->next)
            save(t, f);
        t->next_save = now + 1000000000;
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    poll_files(arg);
}

static int tail_start(struct input *in, char *err, size_t errlen)
{
    struct tail *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    in->priv = t;
    t->in = in;
    t->o = in->opts;
    t->buf = malloc(CHUNK);
    struct timeval tv = time_timeval(t->o->poll_interval);
    t->timer = event_new(in->base, -1, EV_PERSIST, on_timer, t);
    if (!t->buf || !t->timer || event_add(t->timer, &tv) < 0)
        return -ENOMEM;
    scan(t, 1);
    t->next_glob = time_mono_ns() + t->o->glob_interval;
    log_info("input watching files", "{s:s, s:s}", "input", in->name, "path", t->o->path);
    (void)err;
    (void)errlen;
    return 0;
}

static void tail_pause(struct input *in)
{
    struct tail *t = in->priv;
    if (t)
        t->paused = 1;
}

static void tail_resume(struct input *in)
{
    struct tail *t = in->priv;
    if (t)
        t->paused = 0;
}

/* Saves every position. What was already read is in the pipeline and will be drained; a
 * partial last line stays in the file, to be read whole after a restart. */
static void tail_stop(struct input *in)
{
    struct tail *t = in->priv;
    if (!t || t->stopped)
        return;
    t->stopped = 1;
    if (t->timer)
        event_del(t->timer);
    for (struct tfile *f = t->files; f; f = f->next)
        save(t, f);
}

static void tail_destroy(struct input *in)
{
    struct tail *t = in->priv;
    if (!t)
        return;
    tail_stop(in);
    while (t->files) {
        struct tfile *f = t->files;
        t->files = f->next;
        tfile_close(t, f, 0);
    }
    if (t->timer)
        event_free(t->timer);
    free(t->buf);
    free(t);
    in->priv = NULL;
}

static const struct cfg_key tail_keys[] = {
    {"path", CFG_STRING, offsetof(struct tail_opts, path), NULL,
     "Files to follow: a glob such as /var/log/app/*.log.", CFG_REQUIRED},
    INPUT_COMMON_KEYS(struct tail_opts),
    FORMAT_KEY(struct tail_opts, "line"),
    {"read_from", CFG_ENUM, offsetof(struct tail_opts, read_from), "beginning",
     "Where to start in a file seen for the first time at start-up (files that appear later "
     "are always read from the beginning; known files resume from their saved position).",
     0, 0, 0, read_froms},
    {"poll_interval", CFG_DURATION, offsetof(struct tail_opts, poll_interval), "250ms",
     "How often files are checked for new data.", 0, 0.001, 60},
    {"glob_interval", CFG_DURATION, offsetof(struct tail_opts, glob_interval), "1s",
     "How often the glob is evaluated again for new or rotated files.", 0, 0.01, 3600},
    {"path_key", CFG_STRING, offsetof(struct tail_opts, path_key), "file",
     "Field that receives the path of the file an event was read from (\"\": none). An event "
     "that has the field already keeps its own."},
    {0},
};

const struct input_type input_tail = {
    .cfg = {.name = "tail",
            .desc = "Follows files matched by a glob, across rotation and restarts (positions in "
                    "SQLite).",
            .size = sizeof(struct tail_opts),
            .keys = tail_keys},
    .start = tail_start,
    .pause = tail_pause,
    .resume = tail_resume,
    .stop = tail_stop,
    .destroy = tail_destroy,
};
