/* The admin commands: each takes a request object and returns the response. */
#include "control/admin_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/collector.h"
#include "control/control.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/ring.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "pipeline/kpipe.h"
#include "pipeline/pipeline.h"
#include "pipeline/spill.h"
#include "router/route.h"
#include "router/router.h"
#include "router/sinks/sink.h"

static json_t *cmd_version(struct admin *a, struct client *cl, json_t *req)
{
    return admin__ok(json_pack("{s:s}", "version", SPILLWAY_VERSION));
}

static json_t *input_stats(const struct control_deps *d)
{
    json_t *arr = json_array();
    for (int i = 0; d->collector && i < collector_input_count(d->collector); i++) {
        struct input *in = collector_input(d->collector, i);
        json_t *o = json_pack("{s:s, s:s}", "name", in->name, "type", in->type->cfg.name);
        stat_put(&stat_inputs, &in->stats, o);
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *partition_stats(const struct control_deps *d, uint64_t *held_bytes)
{
    json_t *arr = json_array();
    struct spill *sp = d->pipeline ? pipeline_spill(d->pipeline) : NULL;
    for (int i = 0; d->pipeline && i < pipeline_partitions(d->pipeline); i++) {
        struct ring *r = pipeline_ring(d->pipeline, i);
        *held_bytes += ring_used(r);
        /* held is the ring's own record count, not in - out: it is what the balance checks. */
        json_t *o = json_pack("{s:i, s:I, s:I, s:I}", "partition", i, "held",
                              (json_int_t)ring_held(r), "bytes_held", (json_int_t)ring_used(r),
                              "capacity", (json_int_t)ring_capacity(r));
        stat_put(&stat_partitions, pipeline_stats(d->pipeline, i), o);
        if (sp) {
            json_object_set_new(o, "spilling", json_boolean(spill_active(sp, i)));
            json_object_set_new(o, "spill_unacked", json_integer(spill_unacked(sp, i)));
            stat_put(&stat_spill, spill_stats(sp, i), o);
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *sink_json(struct sink *s)
{
    pthread_mutex_lock(&s->stat.mu);
    json_t *err = json_string(s->last_error);
    pthread_mutex_unlock(&s->stat.mu);
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:f, s:f}", "name", s->name, "type",
                          s->type->cfg.name, "state", sink_health_names[atomic_load(&s->health)],
                          "last_error", err, "queued", (json_int_t)ring_held(s->q), "queued_bytes",
                          (json_int_t)ring_used(s->q), "latency_p50_ms",
                          sinkstat_percentile(&s->stat, 0.5) / 1000.0, "latency_p99_ms",
                          sinkstat_percentile(&s->stat, 0.99) / 1000.0);
    stat_put(&stat_sinks, &s->stats, o);
    return o;
}

/* Every sink as `sinks` shows it; adds their queued bytes to *held_bytes. */
static json_t *sink_stats(const struct control_deps *d, uint64_t *held_bytes)
{
    json_t *arr = json_array();
    for (int i = 0; d->sinks && i < sinks_count(d->sinks); i++) {
        struct sink *s = sinks_get(d->sinks, i);
        *held_bytes += ring_used(s->q);
        json_array_append_new(arr, sink_json(s));
    }
    return arr;
}

/* One object of the stats document made of a struct's counters only. */
static json_t *counters(const struct stat_stage *st, const void *stats)
{
    json_t *o = json_object();
    stat_put(st, stats, o);
    return o;
}

json_t *admin__stats(const struct control_deps *d)
{
    uint64_t held = 0;
    json_t *r = json_object();
    json_object_set_new(r, "inputs", input_stats(d));
    json_object_set_new(r, "partitions", partition_stats(d, &held));
    json_object_set_new(r, "routes", router_routes_json(d->router));
    json_object_set_new(r, "sinks", sink_stats(d, &held));
    json_object_set_new(r, "router", counters(&stat_router, router_stats(d->router)));
    /* librdkafka's producer queue is inside the limit too (spill or kafka mode). */
    struct spill *sp = d->pipeline ? pipeline_spill(d->pipeline) : NULL;
    struct kpipe *kp = d->pipeline ? pipeline_kpipe(d->pipeline) : NULL;
    int64_t kq = sp ? spill_queued_bytes(sp) : kp ? kpipe_queued_bytes(kp) : 0;
    held += kq > 0 ? (uint64_t)kq : 0;
    json_object_set_new(r, "memory",
                        json_pack("{s:I, s:I, s:I}", "held_bytes", (json_int_t)held,
                                  "kafka_queue_bytes", (json_int_t)(kq > 0 ? kq : 0), "limit",
                                  (json_int_t)d->memory_limit));
    if (d->collector)
        json_object_set_new(
            r, "collector",
            json_pack("{s:I}", "staged", (json_int_t)collector_staged(d->collector)));
    if (kp) /* Kafka mode: what went to the topic, came from it, and was committed */
        json_object_set_new(r, "kafka", counters(&stat_kafka, kpipe_stats(kp)));
    return r;
}

static json_t *cmd_stats(struct admin *a, struct client *cl, json_t *req)
{
    return admin__ok(admin__stats_balanced(control_deps(a->ctl)));
}

static json_t *cmd_routes(struct admin *a, struct client *cl, json_t *req)
{
    return admin__ok(
        json_pack("{s:o}", "routes", router_routes_json(control_deps(a->ctl)->router)));
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

/* Back to the configured value: {"route", "rate" | "enabled", "reset": true}. */
static json_t *reset(struct admin *a, struct client *cl, const char *route, const char *key)
{
    struct router *r = control_deps(a->ctl)->router;
    char err[256];
    if (router_reset(r, route, key, &cl->who, err, sizeof(err)))
        return admin__fail("%s", err);
    for (int i = 0; i < router_route_count(r); i++) {
        struct route *rt = router_route(r, i);
        if (strcmp(rt->name, route))
            continue;
        if (!strcmp(key, "enabled"))
            return admin__ok(json_pack("{s:s, s:b, s:b}", "route", route, "enabled",
                                       rt->cfg_enabled, "reset", 1));
        return admin__ok(
            json_pack("{s:s, s:f, s:b}", "route", route, "rate", rt->cfg_rate, "reset", 1));
    }
    return admin__fail("no route named %s", route);
}

static json_t *cmd_sample(struct admin *a, struct client *cl, json_t *req)
{
    const char *route = json_string_value(json_object_get(req, "route"));
    json_t *rate = json_object_get(req, "rate");
    if (route && json_is_true(json_object_get(req, "reset")))
        return reset(a, cl, route, "sample_rate");
    if (!route || !json_is_number(rate))
        return admin__fail("sample needs \"route\" (string) and \"rate\" (number between 0 and 1)");
    int64_t for_ns;
    if (duration_arg(json_object_get(req, "for"), &for_ns))
        return admin__fail("\"for\" must be a duration such as 90s, 15m or 2h");
    char err[256];
    int rc = router_dial(control_deps(a->ctl)->router, route, json_number_value(rate), for_ns,
                         &cl->who, err, sizeof(err));
    if (rc && rc != -EIO)
        return admin__fail("%s", err);
    json_t *r = json_pack("{s:s, s:f}", "route", route, "rate", json_number_value(rate));
    if (for_ns)
        json_object_set_new(r, "reverts_in_s", json_real((double)for_ns / 1e9));
    if (rc == -EIO)
        json_object_set_new(r, "warning", json_string(err));
    return admin__ok(r);
}

static json_t *cmd_route(struct admin *a, struct client *cl, json_t *req)
{
    const char *action = json_string_value(json_object_get(req, "action"));
    const char *route = json_string_value(json_object_get(req, "route"));
    if (route && action && !strcmp(action, "reset"))
        return reset(a, cl, route, "enabled");
    if (!route || !action || (strcmp(action, "enable") && strcmp(action, "disable")))
        return admin__fail("route needs \"action\" (enable, disable or reset) and \"route\"");
    char err[256];
    int rc = router_set_enabled(control_deps(a->ctl)->router, route, !strcmp(action, "enable"),
                                &cl->who, err, sizeof(err));
    if (rc && rc != -EIO)
        return admin__fail("%s", err);
    return admin__ok(json_pack("{s:s, s:b}", "route", route, "enabled", !strcmp(action, "enable")));
}

static json_t *cmd_reload(struct admin *a, struct client *cl, json_t *req)
{
    int changed = 0;
    char err[512];
    int rc = router_reload(control_deps(a->ctl)->router, &changed, err, sizeof(err));
    const struct control_deps *d = control_deps(a->ctl);
    if (d->store) {
        char n[32];
        snprintf(n, sizeof(n), "%d reloaded", changed);
        struct store_audit au = {.uid = cl->who.uid,
                                 .pid = cl->who.pid,
                                 .command = "reload",
                                 .target = "scripts",
                                 .new_value = rc ? err : n};
        store_audit_add(d->store, &au);
    }
    if (rc)
        return json_pack("{s:b, s:s, s:i}", "ok", 0, "error", err, "reloaded", changed);
    return admin__ok(json_pack("{s:i}", "reloaded", changed));
}

static void audit_row(void *ud, const struct store_audit *au)
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
        return admin__fail("\"n\" must be between 1 and 100000");
    json_t *rows = json_array();
    if (d->store && store_audit_each(d->store, count, audit_row, rows)) {
        json_decref(rows);
        return admin__fail("cannot read the audit log");
    }
    return admin__ok(json_pack("{s:o}", "audit", rows));
}

static json_t *cmd_config(struct admin *a, struct client *cl, json_t *req)
{
    const struct control_deps *d = control_deps(a->ctl);
    return admin__ok(json_pack("{s:s, s:o}", "file", d->config_file, "config",
                               cfg_dump(d->config_root, d->config)));
}

static json_t *cmd_sinks(struct admin *a, struct client *cl, json_t *req)
{
    struct sinks *ss = control_deps(a->ctl)->sinks;
    json_t *arr = json_array();
    for (int i = 0; i < sinks_count(ss); i++)
        json_array_append_new(arr, sink_json(sinks_get(ss, i)));
    return admin__ok(json_pack("{s:o}", "sinks", arr));
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
        return admin__fail("compare needs \"a\" and \"b\": two sink names");
    int ia = sinks_find(ss, na), ib = sinks_find(ss, nb);
    if (ia < 0 || ib < 0)
        return admin__fail("no sink named %s", ia < 0 ? na : nb);
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
    return admin__ok(json_pack("{s:o, s:o, s:o, s:b, s:i}", "a", sink_json(x), "b", sink_json(y),
                               "windows", wins, "same_events", all_same, "settled_windows",
                               settled));
}
static const struct {
    const char *name;
    admin_cmd_fn fn;
} commands[] = {
    {"sinks", cmd_sinks},   {"compare", cmd_compare},  {"version", cmd_version},
    {"stats", cmd_stats},   {"routes", cmd_routes},    {"sample", cmd_sample},
    {"route", cmd_route},   {"reload", cmd_reload},    {"audit", cmd_audit},
    {"config", cmd_config}, {"tap", admin__tap_start},
};

admin_cmd_fn admin__command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0)
            return commands[i].fn;
    }
    return NULL;
}

const char *admin__command_names(void)
{
    static char names[512];
    if (!names[0]) {
        size_t o = 0;
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
            o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", i ? ", " : "",
                                  commands[i].name);
    }
    return names;
}
