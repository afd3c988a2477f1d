/* `spillway ctl`: the admin socket's command-line client. It turns arguments into one JSON
 * request, prints the response for people (or as is with --json), and exits 0 when the
 * response says ok, 1 when it carries an error, 2 on usage or connection problems. */
#include "ctl/ctl.h"
#include "ctl/ctl_int.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/stats.h"
#include "core/strlist.h"
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
json_t *ctl__roundtrip(const char *path, json_t *req)
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
    long long by = ctl__ival(b, "difference");
    if (!strcmp(state, "in_flight"))
        printf("balance: in flight (events moving; %lld at %s): exact once the flow stops\n", by,
               stage);
    else
        printf("balance: UNBALANCED by %lld at %s\n", by, stage);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(b, "checks"), i, c)
    {
        if (ctl__ival(c, "difference"))
            printf("  %-24s %s: %lld vs %lld (difference %lld)\n",
                   json_string_value(json_object_get(c, "stage")),
                   json_string_value(json_object_get(c, "rule")), ctl__ival(c, "left"),
                   ctl__ival(c, "right"), ctl__ival(c, "difference"));
    }
}

/* One value of the stats document as text, appended to line: those a stage's table marks (its
 * balance, top's columns, the brief ones) always, the other counters when they are not 0
 * (something to look at: refused connections, loose syslog, spill refusals). --json has every
 * one. */
static void put_value(struct buf *line, const struct stat_field *f, json_t *v, int all)
{
    int marked = f->flags & (STAT_IN | STAT_OUT | STAT_TOP | STAT_BRIEF);
    if (!all && !marked && (f->kind != STAT_COUNTER || json_integer_value(v) == 0))
        return;
    if (json_is_integer(v))
        buf_printf(line, " %s %-9lld", f->name, (long long)json_integer_value(v));
    else if (json_is_real(v))
        buf_printf(line, " %s %-9g", f->name, json_real_value(v));
    else if (json_is_boolean(v))
        buf_printf(line, " %s %-9s", f->name, json_is_true(v) ? "yes" : "no");
}

/* Prints line without the padding at its end, and empties it. */
static void put_line(struct buf *line)
{
    while (line->len && line->data[line->len - 1] == ' ')
        line->len--;
    printf("%.*s\n", (int)line->len, line->data ? line->data : "");
    buf_reset(line);
}

/* Every stage the counters' tables describe (core/stats.c), in their order: a line per element
 * (or one for a single object). */
static void print_stats(json_t *resp)
{
    struct buf line = {0};
    const char *last = NULL;
    for (int i = 0; stat_stages[i]; i++) {
        const struct stat_stage *st = stat_stages[i];
        json_t *doc = json_object_get(resp, st->key);
        if (!doc || (last && !strcmp(last, st->key)))
            continue; /* not configured, or a second table of a stage printed already */
        last = st->key;
        if (!st->id) {
            buf_printf(&line, "%s:", st->key);
            for (const struct stat_field *f = st->fields; f->name; f++)
                put_value(&line, f, json_object_get(doc, f->name), 1);
            put_line(&line);
            continue;
        }
        printf("%s\n", st->key);
        size_t k;
        json_t *v;
        json_array_foreach(doc, k, v)
        {
            char id[32];
            buf_printf(&line, "  %-14s", stat_id_of(st, v, id, sizeof(id)));
            /* Every table of this stage: the ones after it share its key. */
            for (int j = i; stat_stages[j] && !strcmp(stat_stages[j]->key, st->key); j++) {
                json_t *c = stat_fields_of(stat_stages[j], v);
                for (const struct stat_field *f = stat_stages[j]->fields; f->name; f++)
                    put_value(&line, f, json_object_get(c, f->name), 0);
            }
            put_line(&line);
        }
    }
    buf_free(&line);
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
               json_string_value(json_object_get(a, "at")), ctl__ival(a, "uid"),
               ctl__ival(a, "pid"), json_string_value(json_object_get(a, "command")),
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
           json_string_value(json_object_get(v, "type")), state, ctl__ival(v, "in"),
           ctl__ival(v, "delivered"), ctl__ival(v, "bytes"), ctl__ival(v, "failed"),
           ctl__ival(v, "dropped"), ctl__ival(v, "retries"), ctl__ival(v, "queued"),
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
               ctl__ival(w, "a"), ctl__ival(w, "b"),
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
        printf("reloaded %lld script(s)\n", ctl__ival(resp, "reloaded"));
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
    if (str_among(cmd, simple)) {
        if (argc != 1) {
            fprintf(stderr, "spillway ctl %s takes no arguments\n", cmd);
            return NULL;
        }
        return json_pack("{s:s}", "cmd", cmd);
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
        return ctl__top(sock, n);
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
    json_t *resp = ctl__roundtrip(sock, req);
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
