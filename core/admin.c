#include "admin.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "collector.h"
#include "config.h"
#include "control.h"
#include "fsutil.h"
#include "log.h"
#include "pipeline.h"
#include "ring.h"
#include "route.h"
#include "router.h"
#include "sink.h"
#include "state.h"
#include "timeutil.h"

#define MAX_REQUEST    (64 * 1024)
#define MAX_UNREAD_OUT (4 * 1024 * 1024)

struct admin {
    struct control *ctl;
    struct evconnlistener *lis;
    char *path;
    struct log_limit lim;
};

struct client {
    struct admin *a;
    struct bufferevent *bev;
    struct router_actor who;
    int closing;
};

typedef json_t *(*cmd_fn)(struct admin *a, struct client *cl, json_t *req);

static json_t *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static json_t *ok(json_t *body)
{
    json_t *o = body ? body : json_object();
    json_object_set_new(o, "ok", json_true());
    return o;
}

/* ---- commands ---- */

static json_t *cmd_version(struct admin *a, struct client *cl, json_t *req)
{
    return ok(json_pack("{s:s}", "version", SPILLWAY_VERSION));
}

static json_t *input_stats(const struct control_deps *d)
{
    json_t *arr = json_array();
    for (int i = 0; d->collector && i < collector_input_count(d->collector); i++) {
        struct input *in = collector_input(d->collector, i);
        const struct input_stats *s = &in->stats;
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                                             "name", in->name, "type", in->type, "received",
                                             (json_int_t)counter_get(&s->received), "bytes",
                                             (json_int_t)counter_get(&s->bytes), "accepted",
                                             (json_int_t)counter_get(&s->accepted), "dead_letter",
                                             (json_int_t)counter_get(&s->dead_letter), "dropped",
                                             (json_int_t)counter_get(&s->dropped), "connections",
                                             (json_int_t)counter_get(&s->connections), "refused",
                                             (json_int_t)counter_get(&s->refused), "rejected",
                                             (json_int_t)counter_get(&s->rejected)));
    }
    return arr;
}

static json_t *partition_stats(const struct control_deps *d, uint64_t *held_bytes)
{
    json_t *arr = json_array();
    for (int i = 0; d->pipeline && i < pipeline_partitions(d->pipeline); i++) {
        const struct partition_stats *s = pipeline_stats(d->pipeline, i);
        struct ring *r = pipeline_ring(d->pipeline, i);
        uint64_t in = counter_get(&s->in), out = counter_get(&s->out);
        *held_bytes += ring_used(r);
        json_array_append_new(
            arr, json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "partition", i, "in",
                           (json_int_t)in, "out", (json_int_t)out, "held", (json_int_t)(in - out),
                           "dropped", (json_int_t)counter_get(&s->dropped), "bytes_held",
                           (json_int_t)ring_used(r), "capacity", (json_int_t)ring_capacity(r)));
    }
    return arr;
}

static json_t *sink_stats(const struct control_deps *d, uint64_t *held_bytes)
{
    json_t *arr = json_array();
    for (int i = 0; d->sinks && i < sinks_count(d->sinks); i++) {
        struct sink *s = sinks_get(d->sinks, i);
        uint64_t in = counter_get(&s->stats.in), delivered = counter_get(&s->stats.delivered),
                 failed = counter_get(&s->stats.failed);
        *held_bytes += ring_used(s->q);
        json_array_append_new(
            arr, json_pack(
                     "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name", s->name, "type",
                     s->type, "in", (json_int_t)in, "delivered", (json_int_t)delivered, "failed",
                     (json_int_t)failed, "dropped", (json_int_t)counter_get(&s->stats.dropped),
                     "retries", (json_int_t)counter_get(&s->stats.retries), "bytes",
                     (json_int_t)counter_get(&s->stats.bytes), "queued_bytes",
                     (json_int_t)ring_used(s->q), "queued", (json_int_t)(in - delivered - failed)));
    }
    return arr;
}

static json_t *cmd_stats(struct admin *a, struct client *cl, json_t *req)
{
    const struct control_deps *d = control_deps(a->ctl);
    uint64_t held = 0;
    json_t *routes = router_routes_json(d->router);
    json_t *r = json_object();
    struct router_stats *rs = router_stats(d->router);
    json_object_set_new(r, "inputs", input_stats(d));
    json_object_set_new(r, "partitions", partition_stats(d, &held));
    json_object_set_new(r, "routes", routes);
    json_object_set_new(r, "sinks", sink_stats(d, &held));
    json_object_set_new(r, "router",
                        json_pack("{s:I, s:I, s:I, s:I, s:I}", "unrouted",
                                  (json_int_t)counter_get(&rs->unrouted), "dead_letter",
                                  (json_int_t)counter_get(&rs->dead_letter), "dead_letter_unsunk",
                                  (json_int_t)counter_get(&rs->dead_unsunk), "reloads",
                                  (json_int_t)counter_get(&rs->reloads), "reload_errors",
                                  (json_int_t)counter_get(&rs->reload_errors)));
    json_object_set_new(r, "memory",
                        json_pack("{s:I, s:I}", "held_bytes", (json_int_t)held, "limit",
                                  (json_int_t)d->cfg->pipeline.memory_limit));
    return ok(r);
}

static json_t *cmd_routes(struct admin *a, struct client *cl, json_t *req)
{
    return ok(json_pack("{s:o}", "routes", router_routes_json(control_deps(a->ctl)->router)));
}

/* "for" as a duration text ("15m") or a number of seconds. */
static int duration_arg(json_t *v, int64_t *ns)
{
    *ns = 0;
    if (!v || json_is_null(v))
        return 0;
    if (json_is_number(v)) {
        double s = json_number_value(v);
        if (s < 0 || s > 1e9)
            return -EINVAL;
        *ns = (int64_t)(s * 1e9);
        return 0;
    }
    if (json_is_string(v))
        return time_parse_duration(json_string_value(v), ns);
    return -EINVAL;
}

static json_t *cmd_sample(struct admin *a, struct client *cl, json_t *req)
{
    const char *route = json_string_value(json_object_get(req, "route"));
    json_t *rate = json_object_get(req, "rate");
    if (!route || !json_is_number(rate))
        return fail("sample needs \"route\" (string) and \"rate\" (number between 0 and 1)");
    int64_t for_ns;
    if (duration_arg(json_object_get(req, "for"), &for_ns))
        return fail("\"for\" must be a duration such as 90s, 15m or 2h");
    char err[256];
    int rc = router_dial(control_deps(a->ctl)->router, route, json_number_value(rate), for_ns,
                         &cl->who, err, sizeof(err));
    if (rc && rc != -EIO)
        return fail("%s", err);
    json_t *r = json_pack("{s:s, s:f}", "route", route, "rate", json_number_value(rate));
    if (for_ns)
        json_object_set_new(r, "reverts_in_s", json_real((double)for_ns / 1e9));
    if (rc == -EIO)
        json_object_set_new(r, "warning", json_string(err));
    return ok(r);
}

static json_t *cmd_route(struct admin *a, struct client *cl, json_t *req)
{
    const char *action = json_string_value(json_object_get(req, "action"));
    const char *route = json_string_value(json_object_get(req, "route"));
    if (!route || !action || (strcmp(action, "enable") && strcmp(action, "disable")))
        return fail("route needs \"action\" (enable or disable) and \"route\"");
    char err[256];
    int rc = router_set_enabled(control_deps(a->ctl)->router, route, !strcmp(action, "enable"),
                                &cl->who, err, sizeof(err));
    if (rc && rc != -EIO)
        return fail("%s", err);
    return ok(json_pack("{s:s, s:b}", "route", route, "enabled", !strcmp(action, "enable")));
}

static json_t *cmd_reload(struct admin *a, struct client *cl, json_t *req)
{
    int changed = 0;
    char err[512];
    int rc = router_reload(control_deps(a->ctl)->router, &changed, err, sizeof(err));
    const struct control_deps *d = control_deps(a->ctl);
    if (d->state) {
        char n[32];
        snprintf(n, sizeof(n), "%d reloaded", changed);
        struct state_audit au = {.uid = cl->who.uid,
                                 .pid = cl->who.pid,
                                 .command = "reload",
                                 .target = "scripts",
                                 .new_value = rc ? err : n};
        state_audit_add(d->state, &au);
    }
    if (rc)
        return json_pack("{s:b, s:s, s:i}", "ok", 0, "error", err, "reloaded", changed);
    return ok(json_pack("{s:i}", "reloaded", changed));
}

static void audit_row(void *ud, const struct state_audit *au)
{
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(au->at_ns, ts);
    json_array_append_new(ud, json_pack("{s:I, s:s, s:I, s:I, s:s, s:s?, s:s?, s:s?}", "id",
                                        (json_int_t)au->id, "at", ts, "uid", (json_int_t)au->uid,
                                        "pid", (json_int_t)au->pid, "command", au->command,
                                        "target", au->target, "old_value", au->old_value,
                                        "new_value", au->new_value));
}

static json_t *cmd_audit(struct admin *a, struct client *cl, json_t *req)
{
    const struct control_deps *d = control_deps(a->ctl);
    json_t *n = json_object_get(req, "n");
    int count = json_is_integer(n) ? (int)json_integer_value(n) : 20;
    if (count < 1 || count > 100000)
        return fail("\"n\" must be between 1 and 100000");
    json_t *rows = json_array();
    if (d->state && state_audit_each(d->state, count, audit_row, rows)) {
        json_decref(rows);
        return fail("cannot read the audit log");
    }
    return ok(json_pack("{s:o}", "audit", rows));
}

static json_t *cmd_config(struct admin *a, struct client *cl, json_t *req)
{
    const struct control_deps *d = control_deps(a->ctl);
    return ok(
        json_pack("{s:s, s:o}", "file", d->cfg->file, "config", cfg_dump(&config_section, d->cfg)));
}

static json_t *sink_json(struct sink *s)
{
    static const char *const health[] = {"up", "retrying"};
    pthread_mutex_lock(&s->stat.mu);
    json_t *err = json_string(s->last_error);
    pthread_mutex_unlock(&s->stat.mu);
    uint64_t in = counter_get(&s->stats.in), delivered = counter_get(&s->stats.delivered),
             failed = counter_get(&s->stats.failed), dropped = counter_get(&s->stats.dropped);
    return json_pack(
        "{s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f}", "name", s->name,
        "type", s->type, "state", health[atomic_load(&s->health) == SINK_RETRYING], "last_error",
        err, "in", (json_int_t)in, "delivered", (json_int_t)delivered, "failed", (json_int_t)failed,
        "dropped", (json_int_t)dropped, "retries", (json_int_t)counter_get(&s->stats.retries),
        "bytes", (json_int_t)counter_get(&s->stats.bytes), "queued",
        (json_int_t)(in - delivered - failed), "queued_bytes", (json_int_t)ring_used(s->q),
        "latency_p50_ms", sinkstat_percentile(&s->stat, 0.5) / 1000.0, "latency_p99_ms",
        sinkstat_percentile(&s->stat, 0.99) / 1000.0);
}

static json_t *cmd_sinks(struct admin *a, struct client *cl, json_t *req)
{
    struct sinks *ss = control_deps(a->ctl)->sinks;
    json_t *arr = json_array();
    for (int i = 0; i < sinks_count(ss); i++)
        json_array_append_new(arr, sink_json(sinks_get(ss, i)));
    return ok(json_pack("{s:o}", "sinks", arr));
}

/* Windows of 10 s by received_at: a window is "settled" once it is older than settle_s, and
 * then both sinks should hold exactly the same events in it. */
static json_t *compare_windows(struct sink *x, struct sink *y, double settle_s)
{
    static struct sinkstat_window wa[SINKSTAT_WINDOWS], wb[SINKSTAT_WINDOWS];
    int na = sinkstat_windows(&x->stat, wa), nb = sinkstat_windows(&y->stat, wb);
    char now[TIME_RFC3339_LEN + 1];
    /* A window ends 10 s after its key; it is settled settle_s after that. */
    time_format_rfc3339(time_now_ns() - (int64_t)((10 + settle_s) * 1e9), now);
    json_t *arr = json_array();
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? nb : na;
        struct sinkstat_window *w = pass ? wb : wa;
        for (int i = 0; i < n; i++) {
            const struct sinkstat_window *o = NULL;
            for (int j = 0; j < (pass ? na : nb); j++) {
                if (!memcmp((pass ? wa : wb)[j].key, w[i].key, 18))
                    o = &(pass ? wa : wb)[j];
            }
            if (pass && o)
                continue; /* listed in the first pass */
            const struct sinkstat_window *A = pass ? o : &w[i], *B = pass ? &w[i] : o;
            char key[32];
            snprintf(key, sizeof(key), "%.18s0Z", w[i].key);
            int same = A && B && A->count == B->count && A->sum == B->sum && A->xor == B->xor ;
            json_array_append_new(arr,
                                  json_pack("{s:s, s:I, s:I, s:b, s:b}", "window", key, "a",
                                            (json_int_t)(A ? A->count : 0), "b",
                                            (json_int_t)(B ? B->count : 0), "same", same, "settled",
                                            settle_s <= 0 || strncmp(w[i].key, now, 18) < 0));
        }
    }
    return arr;
}

static json_t *cmd_compare(struct admin *a, struct client *cl, json_t *req)
{
    struct sinks *ss = control_deps(a->ctl)->sinks;
    const char *na = json_string_value(json_object_get(req, "a"));
    const char *nb = json_string_value(json_object_get(req, "b"));
    if (!na || !nb)
        return fail("compare needs \"a\" and \"b\": two sink names");
    int ia = sinks_find(ss, na), ib = sinks_find(ss, nb);
    if (ia < 0 || ib < 0)
        return fail("no sink named %s", ia < 0 ? na : nb);
    struct sink *x = sinks_get(ss, ia), *y = sinks_get(ss, ib);
    json_t *st = json_object_get(req, "settle");
    json_t *wins = compare_windows(x, y, json_is_number(st) ? json_number_value(st) : 5);
    int all_same = 1, settled = 0;
    size_t i;
    json_t *w;
    json_array_foreach(wins, i, w)
    {
        if (json_is_true(json_object_get(w, "settled"))) {
            settled++;
            all_same &= json_is_true(json_object_get(w, "same"));
        }
    }
    return ok(json_pack("{s:o, s:o, s:o, s:b, s:i}", "a", sink_json(x), "b", sink_json(y),
                        "windows", wins, "same_events", all_same, "settled_windows", settled));
}

static const struct {
    const char *name;
    cmd_fn fn;
} commands[] = {
    {"sinks", cmd_sinks},   {"compare", cmd_compare}, {"version", cmd_version},
    {"stats", cmd_stats},   {"routes", cmd_routes},   {"sample", cmd_sample},
    {"route", cmd_route},   {"reload", cmd_reload},   {"audit", cmd_audit},
    {"config", cmd_config},
};

/* ---- protocol ---- */

static json_t *dispatch(struct admin *a, struct client *cl, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *req = json_loadb(line, len, 0, &jerr);
    if (!req)
        return fail("request is not JSON: %s", jerr.text);
    json_t *resp;
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    if (!json_is_object(req) || !cmd) {
        resp = fail("a request is an object with a \"cmd\" string");
    } else {
        resp = NULL;
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
            if (strcmp(commands[i].name, cmd) == 0) {
                resp = commands[i].fn(a, cl, req);
                break;
            }
        }
        if (!resp) {
            char names[512];
            size_t o = 0;
            for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", i ? ", " : "",
                                      commands[i].name);
            resp = fail("unknown command \"%s\"; commands: %s", cmd, names);
        }
    }
    json_decref(req);
    return resp;
}

static void client_free(struct client *cl)
{
    bufferevent_free(cl->bev);
    free(cl);
}

static void send_json(struct client *cl, json_t *resp)
{
    char *text = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);
    if (!text)
        return;
    bufferevent_write(cl->bev, text, strlen(text));
    bufferevent_write(cl->bev, "\n", 1);
    free(text);
}

/* Closes once everything queued has been written. */
static void close_after_write(struct client *cl)
{
    cl->closing = 1;
    bufferevent_disable(cl->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(cl->bev)) == 0)
        client_free(cl);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct client *cl = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
        if (!line)
            break;
        if (len > MAX_REQUEST) {
            free(line);
            send_json(cl, fail("request too large (limit %d bytes)", MAX_REQUEST));
            close_after_write(cl);
            return;
        }
        if (len)
            send_json(cl, dispatch(cl->a, cl, line, len));
        free(line);
        if (evbuffer_get_length(bufferevent_get_output(bev)) > MAX_UNREAD_OUT) {
            client_free(cl); /* not reading its answers: never let it hold memory */
            return;
        }
    }
    if (evbuffer_get_length(in) > MAX_REQUEST) {
        send_json(cl, fail("request too large (limit %d bytes)", MAX_REQUEST));
        close_after_write(cl);
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct client *cl = arg;
    if (cl->closing)
        client_free(cl);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct client *cl = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        /* Answer what was asked before the client half-closed. */
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t len = evbuffer_get_length(in);
        if ((what & BEV_EVENT_EOF) && len > 0 && len <= MAX_REQUEST && !cl->closing) {
            char *line = malloc(len);
            evbuffer_remove(in, line, len);
            send_json(cl, dispatch(cl->a, cl, line, len));
            free(line);
            close_after_write(cl);
            return;
        }
        if (!cl->closing || evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            client_free(cl);
    }
}

static int uid_allowed(struct admin *a, uid_t uid)
{
    return uid == 0 || uid == geteuid();
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    struct admin *a = arg;
    struct ucred cred;
    socklen_t cl_len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl_len) < 0) {
        evutil_closesocket(fd);
        return;
    }
    struct client *cl = calloc(1, sizeof(*cl));
    if (!cl) {
        evutil_closesocket(fd);
        return;
    }
    cl->a = a;
    cl->who.uid = cred.uid;
    cl->who.pid = cred.pid;
    cl->bev = bufferevent_socket_new(control_base(a->ctl), fd, BEV_OPT_CLOSE_ON_FREE);
    if (!cl->bev) {
        free(cl);
        evutil_closesocket(fd);
        return;
    }
    bufferevent_setcb(cl->bev, on_read, on_write, on_event, cl);
    if (!uid_allowed(a, cred.uid)) {
        if (log_limit_take(&a->lim) >= 0)
            log_warn("admin connection refused", "{s:I, s:I}", "uid", (json_int_t)cred.uid, "pid",
                     (json_int_t)cred.pid);
        send_json(cl, fail("permission denied: uid %d may not use this socket", (int)cred.uid));
        bufferevent_enable(cl->bev, EV_WRITE);
        close_after_write(cl);
        return;
    }
    bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
}

struct admin *admin_new(struct control *c, char *err, size_t errlen)
{
    const char *path = control_deps(c)->cfg->admin.socket;
    struct admin *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->ctl = c;
    a->path = strdup(path);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "admin.socket path too long: %s", path);
        goto fail;
    }
    strcpy(sun.sun_path, path);
    int rc = fs_mkdir_parent(path);
    if (!rc)
        rc = fs_unlink_stale_socket(path);
    if (rc) {
        snprintf(err, errlen, "admin.socket %s: %s", path,
                 rc == -EADDRINUSE ? "another spillway is listening there" : strerror(-rc));
        goto fail;
    }
    /* Created 0600 from the start: no window where another user could connect. */
    mode_t old = umask(0177);
    a->lis = evconnlistener_new_bind(control_base(c), on_accept, a,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64,
                                     (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (!a->lis) {
        snprintf(err, errlen, "admin.socket %s: %s", path, strerror(errno));
        goto fail;
    }
    log_info("admin socket listening", "{s:s}", "path", path);
    return a;
fail:
    admin_free(a);
    return NULL;
}

void admin_free(struct admin *a)
{
    if (!a)
        return;
    if (a->lis) {
        evconnlistener_free(a->lis);
        unlink(a->path);
    }
    free(a->path);
    free(a);
}
