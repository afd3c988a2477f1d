/* `spillway ctl`: the admin socket's command-line client. It turns arguments into one JSON
 * request, prints the response for people (or as is with --json), and exits 0 when the
 * response says ok, 1 when it carries an error, 2 on usage or connection problems. */
#include "ctl/ctl.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <termios.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/timeutil.h"

#define DEFAULT_SOCKET "run/admin.sock"

static const char usage[] =
    "usage: spillway ctl [-s SOCKET] [--json] <command> [args]\n"
    "\n"
    "commands:\n"
    "  stats                         counters per input, partition, route and sink\n"
    "  routes                        the route table with effective values and their origin\n"
    "  sample ROUTE RATE [--for D]   dial a route's sampling rate (0..1), reverting after D\n"
    "  sample ROUTE reset            back to the configured sampling rate\n"
    "  route enable|disable ROUTE    turn a route on or off\n"
    "  route reset ROUTE             back to the configured enabled state\n"
    "  reload                        re-read the route scripts\n"
    "  sinks                         every sink's state, counters and latency\n"
    "  compare A B [--settle S]      two sinks side by side: counters, latency, same events?\n"
    "  audit [-n N]                  the last N changes: who, when, what, from what\n"
    "  tap ROUTE [-n N] [--before]   stream a route's live events (after its transform)\n"
    "  top [-n N]                    live dashboard (plain lines when not on a terminal)\n"
    "  config                        the effective config, secrets redacted\n"
    "  version                       the running spillway's version\n"
    "\n"
    "The socket is run/admin.sock unless -s or SPILLWAY_ADMIN_SOCKET names another.\n";

static int connect_socket(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "spillway ctl: socket path too long: %s\n", path);
        return -1;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        fprintf(stderr,
                "spillway ctl: cannot connect to %s: %s (is spillway running? -s names "
                "another socket)\n",
                path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Sends one request line and reads one response line. */
static json_t *roundtrip(const char *path, json_t *req)
{
    int fd = connect_socket(path);
    if (fd < 0)
        return NULL;
    char *text = json_dumps(req, JSON_COMPACT);
    size_t n = strlen(text);
    text[n] = '\n';
    /* A server that refuses us (peer uid) answers and closes, maybe before our request is
     * written: no SIGPIPE, and its answer is still read. */
    ssize_t w = send(fd, text, n + 1, MSG_NOSIGNAL);
    int werr = errno;
    free(text);
    struct buf in = {0};
    char chunk[65536];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof(chunk))) > 0) {
        buf_append(&in, chunk, (size_t)r);
        if (memchr(chunk, '\n', (size_t)r))
            break;
    }
    close(fd);
    json_error_t err;
    json_t *resp = in.len ? json_loadb(in.data, in.len, JSON_DISABLE_EOF_CHECK, &err) : NULL;
    if (!resp && w != (ssize_t)n + 1)
        fprintf(stderr, "spillway ctl: write failed: %s\n", strerror(werr));
    else if (!resp)
        fprintf(stderr, "spillway ctl: no valid response from %s\n", path);
    buf_free(&in);
    return resp;
}

static const char *origin_text(json_t *o, char *buf, size_t len)
{
    if (json_is_string(o))
        return json_string_value(o);
    const char *exp = json_string_value(json_object_get(o, "expires_at"));
    snprintf(buf, len, "runtime (uid %lld at %s%s%s)",
             (long long)json_integer_value(json_object_get(o, "uid")),
             json_string_value(json_object_get(o, "set_at")), exp ? ", reverts at " : "",
             exp ? exp : "");
    return buf;
}

static void print_routes(json_t *routes)
{
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        char o1[160], o2[160];
        printf("%-16s %-8s rate %-8g [%s]  enabled: %s\n",
               json_string_value(json_object_get(r, "name")),
               json_is_true(json_object_get(r, "enabled")) ? "on" : "off",
               json_real_value(json_object_get(r, "sample_rate")),
               origin_text(json_object_get(r, "sample_rate_origin"), o1, sizeof(o1)),
               origin_text(json_object_get(r, "enabled_origin"), o2, sizeof(o2)));
        const char *script = json_string_value(json_object_get(r, "script"));
        const char *serr = json_string_value(json_object_get(r, "script_error"));
        char *sinks = json_dumps(json_object_get(r, "sinks"), JSON_COMPACT);
        char *shadow = json_dumps(json_object_get(r, "shadow"), JSON_COMPACT);
        printf("  script %s  sinks %s  shadow %s\n", script && *script ? script : "(none)", sinks,
               shadow);
        free(sinks);
        free(shadow);
        if (serr && *serr)
            printf("  last reload failed: %s\n", serr);
        json_t *c = json_object_get(r, "counters");
        printf("  in %lld  kept %lld  filtered %lld  errors %lld\n",
               (long long)json_integer_value(json_object_get(c, "in")),
               (long long)json_integer_value(json_object_get(c, "kept")),
               (long long)json_integer_value(json_object_get(c, "filtered")),
               (long long)json_integer_value(json_object_get(c, "errors")));
    }
}

static long long ival(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* The last line of `stats`: "balanced", or where the counters disagree and by how much. */
static void print_balance(json_t *b)
{
    const char *state = json_string_value(json_object_get(b, "state"));
    if (!state)
        return; /* an older server */
    if (!strcmp(state, "balanced")) {
        printf("balance: balanced (%zu checks: every record counted out, held, dropped or "
               "dead-lettered)\n",
               json_array_size(json_object_get(b, "checks")));
        return;
    }
    const char *stage = json_string_value(json_object_get(b, "stage"));
    long long by = ival(b, "difference");
    if (!strcmp(state, "in_flight"))
        printf("balance: in flight (events moving; %lld at %s): exact once the flow stops\n", by,
               stage);
    else
        printf("balance: UNBALANCED by %lld at %s\n", by, stage);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(b, "checks"), i, c)
    {
        if (ival(c, "difference"))
            printf("  %-24s %s: %lld vs %lld (difference %lld)\n",
                   json_string_value(json_object_get(c, "stage")),
                   json_string_value(json_object_get(c, "rule")), ival(c, "left"), ival(c, "right"),
                   ival(c, "difference"));
    }
}

static void print_stats(json_t *resp)
{
    size_t i;
    json_t *v;
    printf("inputs\n");
    json_array_foreach(json_object_get(resp, "inputs"), i, v)
        printf("  %-14s received %-10lld accepted %-10lld dead_letter %-8lld dropped %lld\n",
               json_string_value(json_object_get(v, "name")), ival(v, "received"),
               ival(v, "accepted"), ival(v, "dead_letter"), ival(v, "dropped"));
    printf("partitions\n");
    json_array_foreach(json_object_get(resp, "partitions"), i, v)
    {
        printf("  %-14lld in %-10lld out %-10lld held %-8lld dropped %-8lld dead_letters %lld",
               ival(v, "partition"), ival(v, "in"), ival(v, "out"), ival(v, "held"),
               ival(v, "dropped"), ival(v, "dead_letters"));
        if (json_object_get(v, "spilled")) /* when_full: spill */
            printf("  %s spilled %lld replayed %lld refused %lld lost %lld duplicates %lld",
                   json_is_true(json_object_get(v, "spilling")) ? "SPILLING" : "in memory",
                   ival(v, "spilled"), ival(v, "replayed"), ival(v, "spill_refused"),
                   ival(v, "spill_lost"), ival(v, "spill_duplicates"));
        putchar('\n');
    }
    printf("routes\n");
    json_array_foreach(json_object_get(resp, "routes"), i, v)
    {
        json_t *c = json_object_get(v, "counters");
        printf("  %-14s in %-10lld kept %-10lld filtered %-8lld (sampled out %lld) errors %lld\n",
               json_string_value(json_object_get(v, "name")), ival(c, "in"), ival(c, "kept"),
               ival(c, "filtered"), ival(c, "sampled_out"), ival(c, "errors"));
    }
    printf("sinks\n");
    json_array_foreach(json_object_get(resp, "sinks"), i, v)
        printf("  %-14s in %-10lld delivered %-10lld failed %-6lld queued %-8lld dropped: queue "
               "full %lld, shadow %lld, shutdown %lld\n",
               json_string_value(json_object_get(v, "name")), ival(v, "in"), ival(v, "delivered"),
               ival(v, "failed"), ival(v, "queued"), ival(v, "dropped_queue_full"),
               ival(v, "dropped_shadow"), ival(v, "dropped_shutdown"));
    json_t *r = json_object_get(resp, "router");
    printf("router: unrouted %lld  dead_letter %lld  dead_letter_unsunk %lld  reloads %lld  "
           "reload_errors %lld\n",
           ival(r, "unrouted"), ival(r, "dead_letter"), ival(r, "dead_letter_unsunk"),
           ival(r, "reloads"), ival(r, "reload_errors"));
    print_balance(json_object_get(resp, "balance"));
}

static void print_audit(json_t *rows)
{
    size_t i;
    json_t *a;
    json_array_foreach(rows, i, a)
    {
        const char *oldv = json_string_value(json_object_get(a, "old_value"));
        const char *newv = json_string_value(json_object_get(a, "new_value"));
        printf("%s  uid %-6lld pid %-7lld %-15s %-16s %s -> %s\n",
               json_string_value(json_object_get(a, "at")), ival(a, "uid"), ival(a, "pid"),
               json_string_value(json_object_get(a, "command")),
               json_string_value(json_object_get(a, "target")) ?: "", oldv ? oldv : "-",
               newv ? newv : "-");
    }
}

static void print_sink_line(json_t *v)
{
    const char *err = json_string_value(json_object_get(v, "last_error"));
    const char *state = json_string_value(json_object_get(v, "state"));
    /* A sink that is up again keeps its last error for the record: say it is history. */
    const char *label = state && strcmp(state, "up") == 0 ? "  earlier error: " : "  last error: ";
    printf("%-14s %-6s %-12s in %-9lld delivered %-9lld bytes %-11lld failed %-6lld dropped "
           "%-6lld retries %-5lld queued %-7lld p50 %.1fms p99 %.1fms%s%s\n",
           json_string_value(json_object_get(v, "name")),
           json_string_value(json_object_get(v, "type")), state, ival(v, "in"),
           ival(v, "delivered"), ival(v, "bytes"), ival(v, "failed"), ival(v, "dropped"),
           ival(v, "retries"), ival(v, "queued"),
           json_real_value(json_object_get(v, "latency_p50_ms")),
           json_real_value(json_object_get(v, "latency_p99_ms")), err && *err ? label : "",
           err && *err ? err : "");
}

static void print_compare(json_t *resp)
{
    print_sink_line(json_object_get(resp, "a"));
    print_sink_line(json_object_get(resp, "b"));
    size_t i;
    json_t *w;
    printf("window (received_at)          %-10s %-10s\n", "a", "b");
    json_array_foreach(json_object_get(resp, "windows"), i, w)
        printf("  %-27s %-10lld %-10lld %s\n", json_string_value(json_object_get(w, "window")),
               ival(w, "a"), ival(w, "b"),
               !json_is_true(json_object_get(w, "settled")) ? "in flight"
               : json_is_true(json_object_get(w, "same"))   ? "same events"
                                                            : "DIFFERENT");
    printf("%s\n", json_is_true(json_object_get(resp, "same_events"))
                       ? "both sinks accepted the same events (settled windows)"
                       : "the sinks accepted DIFFERENT events");
}

static const char *reset_note(json_t *resp)
{
    return json_is_true(json_object_get(resp, "reset")) ? " (configured value, override cleared)\n"
                                                        : "\n";
}

static void print_human(const char *cmd, json_t *resp)
{
    if (!strcmp(cmd, "sinks")) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(resp, "sinks"), i, v) print_sink_line(v);
        return;
    }
    if (!strcmp(cmd, "compare")) {
        print_compare(resp);
        return;
    }
    if (!strcmp(cmd, "routes")) {
        print_routes(json_object_get(resp, "routes"));
    } else if (!strcmp(cmd, "stats")) {
        print_stats(resp);
    } else if (!strcmp(cmd, "audit")) {
        print_audit(json_object_get(resp, "audit"));
    } else if (!strcmp(cmd, "version")) {
        printf("spillway %s\n", json_string_value(json_object_get(resp, "version")));
    } else if (!strcmp(cmd, "config")) {
        char *t = json_dumps(json_object_get(resp, "config"), JSON_INDENT(2));
        puts(t);
        free(t);
    } else if (!strcmp(cmd, "sample")) {
        json_t *rev = json_object_get(resp, "reverts_in_s");
        printf("route %s: sampling rate %g%s", json_string_value(json_object_get(resp, "route")),
               json_real_value(json_object_get(resp, "rate")), rev ? "" : reset_note(resp));
        if (rev)
            printf(" for %gs, then back to the configured rate\n", json_real_value(rev));
    } else if (!strcmp(cmd, "reload")) {
        printf("reloaded %lld script(s)\n", ival(resp, "reloaded"));
    } else if (!strcmp(cmd, "route")) {
        printf("route %s %s%s", json_string_value(json_object_get(resp, "route")),
               json_is_true(json_object_get(resp, "enabled")) ? "enabled" : "disabled",
               reset_note(resp));
    }
    const char *warn = json_string_value(json_object_get(resp, "warning"));
    if (warn)
        fprintf(stderr, "warning: %s\n", warn);
}

/* Builds the request from the command's arguments; NULL (after a message) on bad usage. */
static json_t *build_request(int argc, char **argv)
{
    const char *cmd = argv[0];
    if (!strcmp(cmd, "sample")) {
        if (argc != 3 && !(argc == 5 && !strcmp(argv[3], "--for"))) {
            fprintf(stderr, "usage: spillway ctl sample ROUTE RATE [--for DURATION]\n"
                            "       spillway ctl sample ROUTE reset\n");
            return NULL;
        }
        if (argc == 3 && !strcmp(argv[2], "reset"))
            return json_pack("{s:s, s:s, s:b}", "cmd", "sample", "route", argv[1], "reset", 1);
        char *end;
        double rate = strtod(argv[2], &end);
        int64_t ns;
        int bad = end == argv[2] || *end != '\0';
        if (argc == 5 && time_parse_duration(argv[4], &ns))
            bad = 1;
        if (bad) {
            fprintf(stderr, "spillway ctl sample: RATE is a number in 0..1 and DURATION "
                            "something like 90s, 15m, 2h\n");
            return NULL;
        }
        json_t *r = json_pack("{s:s, s:s, s:f}", "cmd", "sample", "route", argv[1], "rate", rate);
        if (argc == 5)
            json_object_set_new(r, "for", json_string(argv[4]));
        return r;
    }
    if (!strcmp(cmd, "route")) {
        if (argc != 3) {
            fprintf(stderr, "usage: spillway ctl route enable|disable|reset ROUTE\n");
            return NULL;
        }
        return json_pack("{s:s, s:s, s:s}", "cmd", "route", "action", argv[1], "route", argv[2]);
    }
    if (!strcmp(cmd, "audit")) {
        int n = 20;
        if (argc == 3 && !strcmp(argv[1], "-n"))
            n = atoi(argv[2]);
        else if (argc != 1) {
            fprintf(stderr, "usage: spillway ctl audit [-n N]\n");
            return NULL;
        }
        return json_pack("{s:s, s:i}", "cmd", "audit", "n", n);
    }
    if (!strcmp(cmd, "compare")) {
        if (argc != 3 && !(argc == 5 && !strcmp(argv[3], "--settle"))) {
            fprintf(stderr, "usage: spillway ctl compare SINK_A SINK_B [--settle SECONDS]\n");
            return NULL;
        }
        json_t *r = json_pack("{s:s, s:s, s:s}", "cmd", "compare", "a", argv[1], "b", argv[2]);
        if (argc == 5)
            json_object_set_new(r, "settle", json_real(atof(argv[4])));
        return r;
    }
    static const char *const simple[] = {"stats",   "routes", "reload", "config",
                                         "version", "sinks",  NULL};
    for (int i = 0; simple[i]; i++) {
        if (!strcmp(cmd, simple[i])) {
            if (argc != 1) {
                fprintf(stderr, "spillway ctl %s takes no arguments\n", cmd);
                return NULL;
            }
            return json_pack("{s:s}", "cmd", cmd);
        }
    }
    fprintf(stderr, "spillway ctl: unknown command: %s\n\n%s", cmd, usage);
    return NULL;
}

/* tap: one request, then a stream of lines until "done" or the connection ends. Events go to
 * stdout (the event JSON only), notices of skipped events to stderr. */
static int do_tap(const char *path, json_t *req, int as_json)
{
    int fd = connect_socket(path);
    if (fd < 0)
        return 2;
    char *text = json_dumps(req, JSON_COMPACT);
    dprintf(fd, "%s\n", text);
    free(text);
    FILE *in = fdopen(fd, "r");
    char *line = NULL;
    size_t cap = 0;
    int rc = 1, first = 1;
    while (getline(&line, &cap, in) > 0) {
        json_t *m = json_loads(line, 0, NULL);
        if (!m)
            continue;
        if (first) {
            first = 0;
            if (!json_is_true(json_object_get(m, "ok"))) {
                fprintf(stderr, "spillway ctl tap: %s\n",
                        json_string_value(json_object_get(m, "error")));
                json_decref(m);
                break;
            }
            rc = 0;
        } else if (json_object_get(m, "event")) {
            if (as_json) {
                fputs(line, stdout);
            } else {
                /* The event's text as the server sent it ({"stage":..,"event":TEXT}): parsed and
                 * dumped again, jansson would print 0.1 as 0.10000000000000001. */
                const char *ev = strstr(line, "\"event\":") + 8;
                size_t n = strlen(ev);
                while (n && (ev[n - 1] == '\n' || ev[n - 1] == '\r' || ev[n - 1] == ' '))
                    n--;
                printf("%.*s\n", (int)(n ? n - 1 : 0), ev); /* without the envelope's '}' */
            }
            fflush(stdout);
        } else if (json_object_get(m, "done")) {
            json_decref(m);
            break;
        } else if (json_object_get(m, "skipped")) {
            fprintf(stderr, "spillway ctl tap: %lld events skipped (the tap could not keep up)\n",
                    (long long)json_integer_value(json_object_get(m, "skipped")));
        }
        json_decref(m);
    }
    free(line);
    fclose(in);
    return rc;
}

/* `top`'s sort keys: every table follows the same one. */
enum { SORT_NAME, SORT_RATE, SORT_KEYS };
static const char *const sort_names[] = {"name", "rate"};

/* The per-second change of counter f of element i of array arr between two stats documents
 * (routes keep theirs under "counters"). Elements are matched by position after checking they
 * name the same thing: the lists only change with a restart. */
static double rate_at(json_t *now, json_t *prev, const char *arr, size_t i, const char *f,
                      double dt)
{
    json_t *x = json_array_get(json_object_get(now, arr), i);
    json_t *y = prev ? json_array_get(json_object_get(prev, arr), i) : NULL;
    if (!x || !y || dt <= 0 ||
        !json_equal(json_object_get(x, "name") ?: json_object_get(x, "partition"),
                    json_object_get(y, "name") ?: json_object_get(y, "partition")))
        return 0;
    json_t *cx = json_object_get(x, "counters") ?: x, *cy = json_object_get(y, "counters") ?: y;
    return (double)(ival(cx, f) - ival(cy, f)) / dt;
}

/* One table's row order: config order by name (partitions by number), or by the rate of
 * counter f, highest first. The caller frees the array. */
static size_t *table_order(json_t *st, json_t *prev, const char *arr, const char *f, double dt,
                           int sort)
{
    json_t *a = json_object_get(st, arr);
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
        rate[i] = rate_at(st, prev, arr, i, f, dt);
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

/* A table's rows in order: row k is element ord[k] of the stats array arr. */
struct top_table {
    json_t *arr;
    size_t *ord, n;
};

static struct top_table top_table(json_t *st, json_t *prev, const char *arr, const char *f,
                                  double dt, int sort)
{
    struct top_table t = {json_object_get(st, arr), table_order(st, prev, arr, f, dt, sort), 0};
    t.n = t.ord ? json_array_size(t.arr) : 0;
    return t;
}

static void top_inputs(json_t *st, json_t *prev, double dt, int sort)
{
    printf("%-22s %10s %10s %12s %8s %10s\n", "INPUT", "in/s", "out/s", "received", "dead",
           "dropped");
    struct top_table t = top_table(st, prev, "inputs", "received", dt, sort);
    for (size_t k = 0; k < t.n; k++) {
        json_t *v = json_array_get(t.arr, t.ord[k]);
        printf("%-22s %10.0f %10.0f %12lld %8lld %10lld\n",
               json_string_value(json_object_get(v, "name")),
               rate_at(st, prev, "inputs", t.ord[k], "received", dt),
               rate_at(st, prev, "inputs", t.ord[k], "accepted", dt), ival(v, "received"),
               ival(v, "dead_letter"), ival(v, "dropped"));
    }
    free(t.ord);
}

static void top_partitions(json_t *st, json_t *prev, double dt, int sort)
{
    printf("\n%-22s %10s %10s %12s %8s %10s %16s\n", "PARTITION", "in/s", "out/s", "held", "fill %",
           "dropped", "spill backlog");
    struct top_table t = top_table(st, prev, "partitions", "in", dt, sort);
    for (size_t k = 0; k < t.n; k++) {
        json_t *v = json_array_get(t.arr, t.ord[k]);
        char backlog[48] = "-"; /* spilled, not yet replayed (nor lost) */
        if (json_object_get(v, "spilled")) {
            /* spill_lost counts Kafka records: copies retention deleted too (docs/pipeline.md) */
            long long left = ival(v, "spilled") - ival(v, "replayed") - ival(v, "spill_lost");
            snprintf(backlog, sizeof(backlog), "%s%lld",
                     json_is_true(json_object_get(v, "spilling")) ? "spilling " : "",
                     left > 0 ? left : 0);
        }
        printf("%-22lld %10.0f %10.0f %12lld %7.1f%% %10lld %16s\n", ival(v, "partition"),
               rate_at(st, prev, "partitions", t.ord[k], "in", dt),
               rate_at(st, prev, "partitions", t.ord[k], "out", dt), ival(v, "held"),
               100.0 * (double)ival(v, "bytes_held") / (double)(ival(v, "capacity") ?: 1),
               ival(v, "dropped"), backlog);
    }
    free(t.ord);
}

static void top_routes(json_t *st, json_t *prev, double dt, int sort)
{
    printf("\n%-22s %10s %10s %12s %8s\n", "ROUTE", "in/s", "kept/s", "rate", "errors");
    struct top_table t = top_table(st, prev, "routes", "in", dt, sort);
    for (size_t k = 0; k < t.n; k++) {
        json_t *v = json_array_get(t.arr, t.ord[k]);
        printf("%-22s %10.0f %10.0f %12g %8lld\n", json_string_value(json_object_get(v, "name")),
               rate_at(st, prev, "routes", t.ord[k], "in", dt),
               rate_at(st, prev, "routes", t.ord[k], "kept", dt),
               json_real_value(json_object_get(v, "sample_rate")),
               ival(json_object_get(v, "counters"), "errors"));
    }
    free(t.ord);
}

static void top_sinks(json_t *st, json_t *prev, double dt, int sort)
{
    printf("\n%-22s %10s %10s %12s %8s %10s %s\n", "SINK", "in/s", "out/s", "queued", "failed",
           "dropped", "state");
    struct top_table t = top_table(st, prev, "sinks", "delivered", dt, sort);
    for (size_t k = 0; k < t.n; k++) {
        json_t *v = json_array_get(t.arr, t.ord[k]);
        printf("%-22s %10.0f %10.0f %12lld %8lld %10lld %s\n",
               json_string_value(json_object_get(v, "name")),
               rate_at(st, prev, "sinks", t.ord[k], "in", dt),
               rate_at(st, prev, "sinks", t.ord[k], "delivered", dt), ival(v, "queued"),
               ival(v, "failed"), ival(v, "dropped"),
               json_string_value(json_object_get(v, "state")));
    }
    free(t.ord);
}

static void draw_top(json_t *st, json_t *prev, double dt, int tty, int sort)
{
    if (tty)
        printf("\033[H\033[2J");
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(time_now_ns(), ts);
    json_t *mem = json_object_get(st, "memory");
    const char *bal = json_string_value(json_object_get(json_object_get(st, "balance"), "state"));
    printf("spillway top  %s  memory %.1f / %.1f MiB  balance %s   (q quit, s sort: by %s)\n\n", ts,
           (double)ival(mem, "held_bytes") / 1048576.0, (double)ival(mem, "limit") / 1048576.0,
           bal ? bal : "-", sort_names[sort]);
    top_inputs(st, prev, dt, sort);
    top_partitions(st, prev, dt, sort);
    top_routes(st, prev, dt, sort);
    top_sinks(st, prev, dt, sort);
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

static int do_top(const char *path, int iterations)
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
        json_t *st = roundtrip(path, req);
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

int ctl_main(int argc, char **argv)
{
    const char *path = getenv("SPILLWAY_ADMIN_SOCKET");
    int as_json = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if ((!strcmp(argv[i], "-s") || !strcmp(argv[i], "--socket")) && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "--json")) {
            as_json = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return 0;
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    /* --json may also follow the command. */
    for (int j = i; j < argc; j++) {
        if (!strcmp(argv[j], "--json")) {
            as_json = 1;
            memmove(&argv[j], &argv[j + 1], (size_t)(argc - j - 1) * sizeof(char *));
            argc--;
            j--;
        }
    }
    const char *sock = path && *path ? path : DEFAULT_SOCKET;
    if (!strcmp(argv[i], "top")) {
        int n = 0;
        if (argc - i == 3 && !strcmp(argv[i + 1], "-n"))
            n = atoi(argv[i + 2]);
        else if (argc - i != 1) {
            fprintf(stderr, "usage: spillway ctl top [-n ITERATIONS]\n");
            return 2;
        }
        return do_top(sock, n);
    }
    if (!strcmp(argv[i], "tap")) {
        int n = 0, before = 0;
        const char *route = NULL;
        for (int j = i + 1; j < argc; j++) {
            if (!strcmp(argv[j], "-n") && j + 1 < argc)
                n = atoi(argv[++j]);
            else if (!strcmp(argv[j], "--before"))
                before = 1;
            else if (!route)
                route = argv[j];
            else
                route = NULL, j = argc;
        }
        if (!route) {
            fprintf(stderr, "usage: spillway ctl tap ROUTE [-n N] [--before]\n");
            return 2;
        }
        json_t *req = json_pack("{s:s, s:s, s:i, s:b}", "cmd", "tap", "route", route, "n", n,
                                "before", before);
        int rc = do_tap(sock, req, as_json);
        json_decref(req);
        return rc;
    }
    json_t *req = build_request(argc - i, argv + i);
    if (!req)
        return 2;
    json_t *resp = roundtrip(sock, req);
    json_decref(req);
    if (!resp)
        return 2;
    int okv = json_is_true(json_object_get(resp, "ok"));
    if (as_json) {
        char *t = json_dumps(resp, JSON_COMPACT);
        puts(t);
        free(t);
    } else if (okv) {
        print_human(argv[i], resp);
    } else {
        fprintf(stderr, "spillway ctl %s: %s\n", argv[i],
                json_string_value(json_object_get(resp, "error")));
    }
    json_decref(resp);
    return okv ? 0 : 1;
}
