/* `spillway ctl top`: the stats document once a second, drawn as a table per stage. Each table
 * shows the rates in and out (the fields the counters' tables in core/stats.c mark as the
 * stage's balance: what came in, and the first of what went out), then the fields they mark
 * for top, then what top works out itself (how full a ring is, the spill backlog, a sink's
 * state). On a terminal it redraws in place and takes keys (s: sort, q: quit); otherwise it
 * prints plain tables. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <termios.h>
#include <unistd.h>

#include "core/stats.h"
#include "core/timeutil.h"
#include "ctl/ctl_int.h"

/* Every table follows the same sort key. */
enum { SORT_NAME, SORT_RATE, SORT_KEYS };
static const char *const sort_names[] = {"name", "rate"};

/* One table: a stage's counters (and the second table of the same stage, if any), with the
 * columns top adds itself. */
struct view {
    const char *title;
    const struct stat_stage *counts, *more;
    void (*extra_head)(void);
    void (*extra)(json_t *v);
};

/* The field of st marked flag (the first one), or NULL. */
static const char *marked(const struct stat_stage *st, unsigned flag)
{
    for (const struct stat_field *f = st->fields; f->name; f++) {
        if (f->flags & flag)
            return f->name;
    }
    return NULL;
}

/* The per-second change of field f of element i of a stage between two stats documents.
 * Elements are matched by position after checking they name the same thing: the lists only
 * change with a restart. */
static double rate_at(const struct stat_stage *st, json_t *now, json_t *prev, size_t i,
                      const char *f, double dt)
{
    json_t *x = json_array_get(json_object_get(now, st->key), i);
    json_t *y = prev ? json_array_get(json_object_get(prev, st->key), i) : NULL;
    if (!f || !x || !y || dt <= 0 ||
        !json_equal(json_object_get(x, st->id), json_object_get(y, st->id)))
        return 0;
    return (double)(ctl__ival(stat_fields_of(st, x), f) - ctl__ival(stat_fields_of(st, y), f)) / dt;
}

/* The rows' order: config order by name (partitions by number), or by the rate of the field
 * the table marks for sorting, highest first. The caller frees the array. */
static size_t *row_order(const struct view *vw, json_t *st, json_t *prev, double dt, int sort)
{
    const struct stat_stage *s = vw->counts;
    json_t *a = json_object_get(st, s->key);
    size_t n = json_array_size(a);
    size_t *order = calloc(n + 1, sizeof(size_t));
    double *rate = calloc(n + 1, sizeof(double));
    if (!order || !rate) {
        free(rate);
        free(order);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        rate[i] = rate_at(s, st, prev, i, marked(s, STAT_SORT), dt);
    }
    for (size_t i = 0; i < n; i++) { /* a handful of rows: selection sort */
        for (size_t j = i + 1; j < n; j++) {
            const char *na =
                json_string_value(json_object_get(json_array_get(a, order[i]), "name"));
            const char *nb =
                json_string_value(json_object_get(json_array_get(a, order[j]), "name"));
            int swap = sort == SORT_RATE ? rate[order[j]] > rate[order[i]]
                                         : na && nb && strcmp(nb, na) < 0;
            if (swap) {
                size_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
    }
    free(rate);
    return order;
}

static void top_heads(const struct stat_stage *st)
{
    for (const struct stat_field *f = st ? st->fields : NULL; f && f->name; f++) {
        if (f->flags & STAT_TOP)
            printf(" %12s", f->name);
    }
}

static void top_values(const struct stat_stage *st, json_t *v)
{
    if (!st)
        return;
    json_t *c = stat_fields_of(st, v);
    for (const struct stat_field *f = st->fields; f->name; f++) {
        if (!(f->flags & STAT_TOP))
            continue;
        json_t *x = json_object_get(c, f->name);
        if (json_is_integer(x))
            printf(" %12lld", (long long)json_integer_value(x));
        else if (json_is_number(x))
            printf(" %12g", json_number_value(x));
        else
            printf(" %12s", "-");
    }
}

static void draw_view(const struct view *vw, json_t *st, json_t *prev, double dt, int sort)
{
    const struct stat_stage *s = vw->counts;
    printf("%-22s %10s %10s", vw->title, "in/s", "out/s");
    top_heads(s);
    top_heads(vw->more);
    if (vw->extra_head)
        vw->extra_head();
    putchar('\n');
    json_t *arr = json_object_get(st, s->key);
    size_t *ord = row_order(vw, st, prev, dt, sort);
    for (size_t k = 0; ord && k < json_array_size(arr); k++) {
        json_t *v = json_array_get(arr, ord[k]);
        char id[32];
        printf("%-22s", stat_id_of(s, v, id, sizeof(id)));
        printf(" %10.0f %10.0f", rate_at(s, st, prev, ord[k], marked(s, STAT_IN), dt),
               rate_at(s, st, prev, ord[k], marked(s, STAT_OUT), dt));
        top_values(s, v);
        top_values(vw->more, v);
        if (vw->extra)
            vw->extra(v);
        putchar('\n');
    }
    free(ord);
    putchar('\n');
}

static void partition_head(void)
{
    printf(" %8s %16s", "fill %", "spill backlog");
}

static void partition_extra(json_t *v)
{
    char backlog[48] = "-"; /* spilled, not yet replayed (nor lost) */
    if (json_object_get(v, "spilled")) {
        /* spill_lost counts Kafka records: copies retention deleted too (docs/pipeline.md) */
        long long left =
            ctl__ival(v, "spilled") - ctl__ival(v, "replayed") - ctl__ival(v, "spill_lost");
        snprintf(backlog, sizeof(backlog), "%s%lld",
                 json_is_true(json_object_get(v, "spilling")) ? "spilling " : "",
                 left > 0 ? left : 0);
    }
    printf(" %7.1f%% %16s",
           100.0 * (double)ctl__ival(v, "bytes_held") / (double)(ctl__ival(v, "capacity") ?: 1),
           backlog);
}

static void sink_head(void)
{
    printf(" %s", "state");
}

static void sink_extra(json_t *v)
{
    printf(" %s", json_string_value(json_object_get(v, "state")));
}

static const struct view views[] = {
    {"INPUT", &stat_inputs, NULL, NULL, NULL},
    {"PARTITION", &stat_partitions, &stat_spill, partition_head, partition_extra},
    {"ROUTE", &stat_route_counters, &stat_routes, NULL, NULL},
    {"SINK", &stat_sinks, NULL, sink_head, sink_extra},
};

static void draw_top(json_t *st, json_t *prev, double dt, int tty, int sort)
{
    if (tty)
        printf("\033[H\033[2J");
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(time_now_ns(), ts);
    json_t *mem = json_object_get(st, "memory");
    const char *bal = json_string_value(json_object_get(json_object_get(st, "balance"), "state"));
    printf("spillway top  %s  memory %.1f / %.1f MiB  balance %s   (q quit, s sort: by %s)\n\n", ts,
           (double)ctl__ival(mem, "held_bytes") / 1048576.0,
           (double)ctl__ival(mem, "limit") / 1048576.0, bal ? bal : "-", sort_names[sort]);
    for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
        draw_view(&views[i], st, prev, dt, sort);
    fflush(stdout);
}

/* Waits until the next refresh (deadline, CLOCK_MONOTONIC ns) for keys on stdin, redrawing at
 * once when the sort key changes. Returns 1 on q. Without a terminal, or once stdin is at its
 * end (*keys cleared), it only waits: a closed stdin never makes it spin. */
static int top_keys(int *keys, int64_t deadline, int *sort, json_t *st, json_t *prev, double dt)
{
    for (int64_t left; (left = deadline - time_mono_ns()) > 0;) {
        fd_set fds;
        FD_ZERO(&fds);
        if (*keys)
            FD_SET(0, &fds);
        struct timeval tv = time_timeval(left);
        if (select(*keys ? 1 : 0, &fds, NULL, NULL, &tv) <= 0)
            continue; /* timeout, or a signal: the loop checks the time left */
        char c;
        ssize_t r = read(0, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r != 1) {
            *keys = 0; /* end of input (or a hung-up terminal): no more keys, refresh goes on */
            continue;
        }
        if (c == 'q' || c == 'Q')
            return 1;
        if (c == 's' || c == 'S') {
            *sort = (*sort + 1) % SORT_KEYS;
            draw_top(st, prev, dt, 1, *sort);
        }
    }
    return 0;
}

int ctl__top(const char *path, int iterations)
{
    int tty = isatty(1) && isatty(0);
    struct termios saved, raw;
    if (tty && tcgetattr(0, &saved) == 0) {
        raw = saved;
        raw.c_lflag &= ~(unsigned)(ICANON | ECHO);
        tcsetattr(0, TCSANOW, &raw);
    } else {
        tty = 0;
    }
    json_t *prev = NULL, *cur = NULL;
    int64_t tcur = 0;
    int sort = SORT_NAME, keys = tty, rc = 0;
    for (int it = 0; iterations <= 0 || it < iterations; it++) {
        json_t *req = json_pack("{s:s}", "cmd", "stats");
        json_t *st = ctl__roundtrip(path, req);
        json_decref(req);
        if (!st) {
            rc = 2;
            break;
        }
        int64_t now = time_mono_ns();
        json_decref(prev);
        prev = cur;
        cur = st;
        double dt = prev ? (double)(now - tcur) / 1e9 : 0;
        tcur = now;
        if (tty || prev) /* plain mode prints from the second sample, when rates exist */
            draw_top(cur, prev, dt, tty, sort);
        if (iterations > 0 && it + 1 >= iterations)
            break;
        if (top_keys(&keys, now + 1000000000LL, &sort, cur, prev, dt))
            break;
    }
    json_decref(prev);
    json_decref(cur);
    if (tty)
        tcsetattr(0, TCSANOW, &saved);
    return rc;
}
