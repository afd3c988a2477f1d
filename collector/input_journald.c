/* `journald`: the systemd journal through libsystemd's sd-journal, the local journal or a
 * directory of journal files (as journalctl -D), optionally narrowed by matches
 * (`_SYSTEMD_UNIT=nginx.service`: the same field OR'ed, different fields AND'ed, as
 * journalctl). Entries are read on a timer (poll_interval), up to BATCH a wake-up, each a
 * canonical event: PRIORITY the level, MESSAGE, _HOSTNAME the host, SYSLOG_IDENTIFIER (else
 * _SYSTEMD_UNIT) the service, every other field kept by its journal name. The cursor of the last
 * entry handed on is saved in the store every second and at stop, so a restart resumes after it
 * (after a crash, up to the last second of entries is read again). A read error (a corrupt
 * journal file or entry) is counted, logged, and reading goes on past it. Only this file
 * includes sd-journal.h. */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>
/* sd-journal.h brings syslog.h, whose LOG_DEBUG and LOG_INFO are spillway's log levels' names
 * (core/log.h): the levels here are spillway's. */
#undef LOG_DEBUG
#undef LOG_INFO

#include "collector/collector.h"
#include "collector/format_syslog.h"
#include "collector/input.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/store.h"
#include "core/timeutil.h"

/* Entries per wake-up: a backlog is read in slices, so the loop serves the other inputs. */
#define BATCH 4096
/* Read errors tolerated in a row before the input waits for the next poll. */
#define MAX_ERRORS_IN_A_ROW 16

static const char *const read_froms[] = {"head", "tail", NULL};

struct journald_opts {
    struct input_common common; /* first: the collector reads it generically */
    char *path;
    struct cfg_strlist matches;
    int read_from;
    int64_t poll_interval;
};

struct jd {
    struct input *in;
    const struct journald_opts *o;
    sd_journal *j;
    struct event *tick;
    struct buf ev, rest;                 /* the event, and its fields not mapped */
    struct buf msg, host, service, unit; /* the mapped fields' values */
    char *cursor;                        /* of the last entry handed on (sd-journal's) */
    int dirty;                           /* cursor not saved yet */
    int current;                         /* the read pointer is on an entry not handed on */
    int paused, stopped;
    int64_t next_save;
    char **checked; /* journal files of the directory looked at already */
    int nchecked, checked_cap;
    struct log_limit lim;
};

static void read_error(struct jd *jd, int rc);

static int field_is(const char *d, size_t len, const char *name, size_t n)
{
    return len > n && d[n] == '=' && memcmp(d, name, n) == 0;
}
#define FIELD_IS(d, len, lit) field_is(d, len, lit, sizeof(lit) - 1)

static void set(struct buf *b, const char *v, size_t n)
{
    buf_reset(b);
    buf_append(b, v, n);
}

/* One pass over the entry's fields: the mapped ones kept aside, the others written as members
 * into jd->rest (the data sd-journal hands over is valid only until the next field). */
static void fields(struct jd *jd, int *priority, int64_t *source_ns, int *has_msg)
{
    const void *data;
    size_t len;
    int have_msg = 0, have_host = 0, have_id = 0, have_unit = 0;
    buf_reset(&jd->rest);
    *priority = -1;
    *source_ns = -1;
    int r;
    while ((r = sd_journal_enumerate_data(jd->j, &data, &len)) > 0) {
        const char *d = data;
        const char *eq = memchr(d, '=', len);
        if (!eq)
            continue;
        size_t n = (size_t)(eq - d), vlen = len - n - 1;
        const char *v = eq + 1;
        if (!have_msg && FIELD_IS(d, len, "MESSAGE")) {
            set(&jd->msg, v, vlen);
            have_msg = 1;
            continue;
        }
        if (*priority < 0 && FIELD_IS(d, len, "PRIORITY") && vlen == 1 && v[0] >= '0' &&
            v[0] <= '7') {
            *priority = v[0] - '0';
            continue;
        }
        if (!have_host && FIELD_IS(d, len, "_HOSTNAME")) {
            set(&jd->host, v, vlen);
            have_host = 1;
            continue;
        }
        if (!have_id && FIELD_IS(d, len, "SYSLOG_IDENTIFIER")) {
            set(&jd->service, v, vlen);
            have_id = 1;
            continue;
        }
        if (!have_unit && FIELD_IS(d, len, "_SYSTEMD_UNIT")) {
            set(&jd->unit, v, vlen);
            have_unit = 1;
            continue; /* written below: kept unless it became the service */
        }
        if (FIELD_IS(d, len, "_SOURCE_REALTIME_TIMESTAMP")) {
            char num[32];
            snprintf(num, sizeof(num), "%.*s", (int)(vlen < 31 ? vlen : 31), v);
            char *end;
            long long us = strtoll(num, &end, 10);
            if (*end == '\0' && us > 0 && us < INT64_MAX / 1000)
                *source_ns = (int64_t)us * 1000;
        }
        buf_putc(&jd->rest, ',');
        jsonw_string(&jd->rest, d, n);
        buf_putc(&jd->rest, ':');
        jsonw_string(&jd->rest, v, vlen);
    }
    if (r < 0) /* a field that cannot be read: the entry goes on with those that could */
        read_error(jd, r);
    if (!have_host)
        buf_reset(&jd->host);
    if (!have_id)
        buf_reset(&jd->service);
    if (have_unit && have_id) { /* the identifier is the service: the unit stays a field */
        buf_puts(&jd->rest, ",\"_SYSTEMD_UNIT\":");
        jsonw_string(&jd->rest, jd->unit.data ? jd->unit.data : "", jd->unit.len);
    } else if (have_unit) {
        set(&jd->service, jd->unit.data, jd->unit.len);
    }
    *has_msg = have_msg;
}

static void member(struct buf *o, const char *name, const struct buf *v)
{
    buf_putc(o, ',');
    buf_puts(o, name);
    buf_putc(o, ':');
    jsonw_string(o, v->data ? v->data : "", v->len);
}

/* The entry under the read pointer as a canonical event, handed to the collector. */
static void entry(struct jd *jd)
{
    int priority;
    int64_t source_ns;
    uint64_t usec = 0;
    int have_msg;
    fields(jd, &priority, &source_ns, &have_msg);
    int64_t ns = source_ns;
    if (ns < 0 && sd_journal_get_realtime_usec(jd->j, &usec) >= 0)
        ns = (int64_t)usec * 1000;
    const struct recv_time *rt = collector_now(jd->in->col);
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(ns >= 0 ? ns : rt->ns, ts);
    struct buf *o = &jd->ev;
    buf_reset(o);
    buf_puts(o, "{\"timestamp\":\"");
    buf_append(o, ts, TIME_RFC3339_LEN);
    buf_puts(o, "\",\"kind\":\"log\",\"source\":");
    jsonw_string(o, jd->in->name, strlen(jd->in->name));
    if (jd->host.len)
        member(o, "\"host\"", &jd->host);
    if (jd->service.len)
        member(o, "\"service\"", &jd->service);
    if (priority >= 0) {
        buf_puts(o, ",\"level\":");
        jsonw_string(o, syslog_levels[priority], strlen(syslog_levels[priority]));
        buf_printf(o, ",\"severity\":%d", priority);
    }
    if (have_msg)
        member(o, "\"message\"", &jd->msg);
    buf_append(o, jd->rest.data, jd->rest.len);
    buf_puts(o, ",\"received_at\":\"");
    buf_append(o, rt->text, TIME_RFC3339_LEN);
    buf_puts(o, "\"}");
    collector_event(jd->in, o->data, o->len);
}

static void read_error(struct jd *jd, int rc)
{
    counter_add(&jd->in->stats.read_errors, 1);
    int64_t sup = log_limit_take(&jd->lim);
    if (sup >= 0)
        log_warn("journal read error (a corrupt journal file or entry?): going on past it",
                 "{s:s, s:s, s:I}", "input", jd->in->name, "error", strerror(-rc), "suppressed",
                 (json_int_t)sup);
}

/* sd-journal leaves out a directory's journal file it cannot open (a corrupt header) without a
 * word: each file is opened alone once, when it appears, and one that fails is counted and
 * logged. */
static void check_files(struct jd *jd)
{
    DIR *dir = *jd->o->path ? opendir(jd->o->path) : NULL;
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        size_t n = strlen(e->d_name);
        if (!(n > 8 && !strcmp(e->d_name + n - 8, ".journal")) &&
            !(n > 9 && !strcmp(e->d_name + n - 9, ".journal~")))
            continue;
        int seen = 0;
        for (int i = 0; i < jd->nchecked && !seen; i++)
            seen = !strcmp(jd->checked[i], e->d_name);
        if (seen)
            continue;
        if (jd->nchecked == jd->checked_cap) {
            int cap = jd->checked_cap ? jd->checked_cap * 2 : 16;
            char **c = realloc(jd->checked, (size_t)cap * sizeof(*c));
            if (!c)
                break;
            jd->checked = c;
            jd->checked_cap = cap;
        }
        if (!(jd->checked[jd->nchecked] = strdup(e->d_name)))
            break;
        jd->nchecked++;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", jd->o->path, e->d_name);
        sd_journal *one = NULL;
        int rc = sd_journal_open_files(&one, (const char *[]){path, NULL}, 0);
        if (rc < 0) {
            counter_add(&jd->in->stats.read_errors, 1);
            log_warn("journal file cannot be read (corrupt?): its entries are skipped",
                     "{s:s, s:s, s:s}", "input", jd->in->name, "file", path, "error",
                     strerror(-rc));
        }
        sd_journal_close(one);
    }
    if (dir)
        closedir(dir);
}

static void save(struct jd *jd)
{
    if (!jd->dirty || !jd->cursor || !jd->in->store)
        return;
    if (store_cursor_set(jd->in->store, jd->in->name, jd->cursor) == 0)
        jd->dirty = 0;
}

/* Reads what the journal has, up to BATCH entries; returns how many were read. */
static int drain(struct jd *jd)
{
    int n = 0, errors = 0;
    if (sd_journal_process(jd->j) == SD_JOURNAL_INVALIDATE) /* files came or went */
        check_files(jd);
    collector_begin_stream(jd->in->col, (uint64_t)(uintptr_t)jd);
    while (n < BATCH) {
        int r = jd->current ? 1 : sd_journal_next(jd->j);
        jd->current = 0;
        if (r == 0)
            break;
        if (r < 0) {
            read_error(jd, r);
            if (++errors >= MAX_ERRORS_IN_A_ROW)
                break;
            continue;
        }
        errors = 0;
        entry(jd);
        n++;
    }
    collector_commit(jd->in->col);
    char *c = NULL;
    if (n > 0 && sd_journal_get_cursor(jd->j, &c) >= 0) {
        free(jd->cursor);
        jd->cursor = c;
        jd->dirty = 1;
    }
    return n;
}

static void arm(struct jd *jd, int now)
{
    struct timeval tv = now ? (struct timeval){0, 0} : time_timeval(jd->o->poll_interval);
    evtimer_add(jd->tick, &tv);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct jd *jd = arg;
    int n = drain(jd);
    int64_t now = time_mono_ns();
    if (now >= jd->next_save) {
        save(jd);
        jd->next_save = now + 1000000000;
    }
    if (!jd->paused && !jd->stopped)
        arm(jd, n == BATCH);
}

/* Where to start: after the saved cursor (the entry it names is skipped when it is still
 * there), else the head or the tail as read_from says. */
static int seek(struct jd *jd)
{
    struct buf c = {0};
    int found = jd->in->store ? store_cursor_get(jd->in->store, jd->in->name, &c) : 0;
    int rc = 0;
    if (found == 1 && buf_putc(&c, '\0') == 0 && sd_journal_seek_cursor(jd->j, c.data) >= 0) {
        int r = sd_journal_next(jd->j);
        /* The cursor's entry was handed on already; another one (it is gone) was not. */
        jd->current = r > 0 && sd_journal_test_cursor(jd->j, c.data) <= 0;
        log_info("journald: resuming after the saved cursor", "{s:s}", "input", jd->in->name);
    } else if (jd->o->read_from == 1) {
        rc = sd_journal_seek_tail(jd->j);
        if (rc >= 0)
            sd_journal_previous(jd->j); /* on the last entry: the next one is new */
    } else {
        rc = sd_journal_seek_head(jd->j);
    }
    buf_free(&c);
    return rc;
}

static int journald_start(struct input *in, char *err, size_t errlen)
{
    struct jd *jd = calloc(1, sizeof(*jd));
    if (!jd)
        return -ENOMEM;
    in->priv = jd;
    jd->in = in;
    jd->o = in->opts;
    int rc = *jd->o->path ? sd_journal_open_directory(&jd->j, jd->o->path, 0)
                          : sd_journal_open(&jd->j, SD_JOURNAL_LOCAL_ONLY);
    if (rc < 0) {
        snprintf(err, errlen, "input %s: cannot open the journal%s%s: %s", in->name,
                 *jd->o->path ? " in " : "", jd->o->path, strerror(-rc));
        return rc;
    }
    for (int i = 0; i < jd->o->matches.n; i++) {
        const char *m = jd->o->matches.v[i];
        if (!strchr(m, '=') || (rc = sd_journal_add_match(jd->j, m, 0)) < 0) {
            snprintf(err, errlen, "input %s: match \"%s\" is not FIELD=value", in->name, m);
            return -EINVAL;
        }
    }
    sd_journal_get_fd(jd->j); /* watches the files (inotify): sd_journal_process sees news */
    check_files(jd);
    if ((rc = seek(jd)) < 0) {
        snprintf(err, errlen, "input %s: cannot seek the journal: %s", in->name, strerror(-rc));
        return rc;
    }
    jd->tick = evtimer_new(in->base, on_tick, jd);
    if (!jd->tick)
        return -ENOMEM;
    arm(jd, 1);
    log_info("input reading", "{s:s, s:s, s:s}", "input", in->name, "type", in->type->cfg.name,
             "journal", *jd->o->path ? jd->o->path : "local");
    return 0;
}

static void journald_pause(struct input *in)
{
    struct jd *jd = in->priv;
    if (!jd || jd->paused)
        return;
    jd->paused = 1;
    if (jd->tick)
        evtimer_del(jd->tick);
}

static void journald_resume(struct input *in)
{
    struct jd *jd = in->priv;
    if (!jd || !jd->paused || jd->stopped)
        return;
    jd->paused = 0;
    if (jd->tick)
        arm(jd, 1);
}

/* What the journal has when spillway stops stays there: the cursor says where to go on. */
static void journald_stop(struct input *in)
{
    struct jd *jd = in->priv;
    if (!jd || jd->stopped)
        return;
    jd->stopped = 1;
    if (jd->tick)
        evtimer_del(jd->tick);
    save(jd);
}

static void journald_destroy(struct input *in)
{
    struct jd *jd = in->priv;
    if (!jd)
        return;
    journald_stop(in);
    if (jd->tick)
        event_free(jd->tick);
    if (jd->j)
        sd_journal_close(jd->j);
    free(jd->cursor);
    for (int i = 0; i < jd->nchecked; i++)
        free(jd->checked[i]);
    free(jd->checked);
    buf_free(&jd->ev);
    buf_free(&jd->rest);
    buf_free(&jd->msg);
    buf_free(&jd->host);
    buf_free(&jd->service);
    buf_free(&jd->unit);
    free(jd);
    in->priv = NULL;
}

static const struct cfg_key journald_keys[] = {
    {"path", CFG_STRING, offsetof(struct journald_opts, path), "",
     "A directory of journal files (as journalctl -D); empty: the local journal."},
    {"matches", CFG_STRLIST, offsetof(struct journald_opts, matches), NULL,
     "Only entries with these FIELD=value (_SYSTEMD_UNIT=nginx.service): the same field OR'ed, "
     "different fields AND'ed, as journalctl."},
    {"read_from", CFG_ENUM, offsetof(struct journald_opts, read_from), "head",
     "Where a first start (no saved cursor) begins: head (everything the journal has) or tail "
     "(new entries only).",
     0, 0, 0, read_froms},
    {"poll_interval", CFG_DURATION, offsetof(struct journald_opts, poll_interval), "250ms",
     "How often the journal is read for new entries.", 0, 0.001, 60},
    INPUT_COMMON_KEYS(struct journald_opts),
    {0},
};

const struct input_type input_journald = {
    .cfg = {.name = "journald",
            .desc = "The systemd journal (local, or a directory of journal files) through "
                    "sd-journal, resuming from its saved cursor.",
            .size = sizeof(struct journald_opts),
            .keys = journald_keys},
    .start = journald_start,
    .pause = journald_pause,
    .resume = journald_resume,
    .stop = journald_stop,
    .destroy = journald_destroy,
};
