#include "router.h"

#include <errno.h>
#include <pthread.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fsutil.h"
#include "kv.h"
#include "log.h"
#include "pipeline.h"
#include "ring.h"
#include "route.h"
#include "script.h"
#include "sink.h"
#include "state.h"
#include "timeutil.h"
#include "worker.h"

struct router {
    pthread_mutex_t mu; /* route origins, script sources and errors */
    struct state *st;   /* may be NULL (spillway check, tests) */
    struct kv *kv;
    const struct config *cfg;
    struct pipeline *pl;
    struct sinks *sinks;
    struct route *routes;
    int nroutes;
    struct worker **workers;
    int nworkers;
    struct router_stats stats;
};

/* "a.b" -> "a\0b": route sample keys become paths once, at start. */
static char *dotted_to_path(const char *s, size_t *len)
{
    char *p = strdup(s);
    if (!p)
        return NULL;
    *len = strlen(p);
    for (size_t i = 0; i < *len; i++) {
        if (p[i] == '.')
            p[i] = '\0';
    }
    return p;
}

static char *script_path(const struct config *cfg, const char *script)
{
    char buf[4096];
    if (script[0] == '/')
        snprintf(buf, sizeof(buf), "%s", script);
    else
        snprintf(buf, sizeof(buf), "%s/%s", cfg->router.scripts, script);
    return strdup(buf);
}

static int resolve_sinks(struct sinks *ss, const struct cfg_strlist *names, int **out, int *n)
{
    *out = calloc((size_t)names->n + 1, sizeof(int));
    if (!*out)
        return -ENOMEM;
    *n = 0;
    for (int i = 0; i < names->n; i++) {
        int idx = sinks_find(ss, names->v[i]);
        if (idx >= 0)
            (*out)[(*n)++] = idx;
    }
    return 0;
}

/* Reads a route's script; compiles it in a scratch host so errors surface at start. */
static int load_source(const struct config *cfg, struct route *rt, char *err, size_t errlen)
{
    int rc = fs_read_file(rt->script_path, &rt->source, &rt->source_len);
    if (rc) {
        snprintf(err, errlen, "route %s: cannot read %s: %s", rt->name, rt->script_path,
                 strerror(-rc));
        return rc;
    }
    struct script_limits lim = {cfg->router.max_instructions, cfg->router.lua_memory};
    struct script_host *h = script_host_new(&lim, NULL, 1);
    if (!h)
        return -ENOMEM;
    rc = script_load(h, rt->script_path, rt->source, rt->source_len, err, errlen);
    script_host_free(h);
    return rc < 0 ? rc : 0;
}

static int build_routes(struct router *r, char *err, size_t errlen)
{
    const struct config *cfg = r->cfg;
    const struct route_config *rc = cfg->routes.v;
    r->routes = calloc((size_t)cfg->routes.n + 1, sizeof(*r->routes));
    if (!r->routes)
        return -ENOMEM;
    for (int i = 0; i < cfg->routes.n; i++) {
        struct route *rt = &r->routes[r->nroutes++];
        rt->name = rc[i].name;
        rt->stop = rc[i].stop;
        rt->cfg_rate = rc[i].sample_rate;
        rt->cfg_enabled = rc[i].enabled;
        atomic_store(&rt->enabled, rc[i].enabled);
        route_set_rate(rt, rc[i].sample_rate);
        rt->sample_key = dotted_to_path(rc[i].sample_key, &rt->sample_key_len);
        if (!rt->sample_key || resolve_sinks(r->sinks, &rc[i].sinks, &rt->sinks, &rt->nsinks) ||
            resolve_sinks(r->sinks, &rc[i].shadow, &rt->shadow, &rt->nshadow))
            return -ENOMEM;
        if (*rc[i].script) {
            rt->script_path = script_path(cfg, rc[i].script);
            int e = load_source(cfg, rt, err, errlen);
            if (e)
                return e;
            rt->script_loaded_ns = time_now_ns();
        }
    }
    return 0;
}

/* The routes as the state store keeps them, from the config. */
static int reconcile(struct router *r)
{
    const struct route_config *rc = r->cfg->routes.v;
    int n = r->cfg->routes.n;
    struct state_route *sr = calloc((size_t)n + 1, sizeof(*sr));
    char **lists = calloc((size_t)n * 2 + 1, sizeof(char *));
    int rc_ = sr && lists ? 0 : -ENOMEM;
    for (int i = 0; i < n && !rc_; i++) {
        json_t *a = json_array(), *b = json_array();
        for (int j = 0; j < rc[i].sinks.n; j++)
            json_array_append_new(a, json_string(rc[i].sinks.v[j]));
        for (int j = 0; j < rc[i].shadow.n; j++)
            json_array_append_new(b, json_string(rc[i].shadow.v[j]));
        lists[2 * i] = json_dumps(a, JSON_COMPACT);
        lists[2 * i + 1] = json_dumps(b, JSON_COMPACT);
        json_decref(a);
        json_decref(b);
        sr[i] = (struct state_route){rc[i].name,       rc[i].script, rc[i].sample_rate,
                                     rc[i].sample_key, lists[2 * i], lists[2 * i + 1],
                                     rc[i].enabled,    rc[i].stop};
    }
    if (!rc_)
        rc_ = state_routes_reconcile(r->st, sr, n);
    for (int i = 0; lists && i < n * 2; i++)
        free(lists[i]);
    free(lists);
    free(sr);
    return rc_;
}

static struct route *find_route(struct router *r, const char *name)
{
    for (int i = 0; i < r->nroutes; i++) {
        if (strcmp(r->routes[i].name, name) == 0)
            return &r->routes[i];
    }
    return NULL;
}

/* The route named route with r->mu held, or NULL (not held) with err set. */
static struct route *lock_route(struct router *r, const char *route, char *err, size_t errlen)
{
    pthread_mutex_lock(&r->mu);
    struct route *rt = find_route(r, route);
    if (!rt) {
        pthread_mutex_unlock(&r->mu);
        snprintf(err, errlen, "no route named %s", route);
    }
    return rt;
}

/* Applies one stored override (under the lock). */
static void apply_override(void *ud, const struct state_override *o)
{
    struct router *r = ud;
    struct route *rt = find_route(r, o->route);
    if (!rt)
        return;
    struct route_origin org = {1, o->set_ns, o->expires_ns, o->uid};
    if (strcmp(o->key, "sample_rate") == 0) {
        route_set_rate(rt, strtod(o->value, NULL));
        rt->rate_origin = org;
    } else if (strcmp(o->key, "enabled") == 0) {
        atomic_store(&rt->enabled, atoi(o->value));
        rt->enabled_origin = org;
    }
}

/* Reconciles the config's routes into the store, then puts runtime changes back in force:
 * a dial made before a restart survives it (and still reverts on time). */
static int apply_state(struct router *r, char *err, size_t errlen)
{
    if (reconcile(r)) {
        snprintf(err, errlen, "cannot write the route table to %s", state_path(r->st));
        return -EIO;
    }
    pthread_mutex_lock(&r->mu);
    int rc = state_overrides_each(r->st, apply_override, r);
    pthread_mutex_unlock(&r->mu);
    if (rc) {
        snprintf(err, errlen, "cannot read overrides from %s", state_path(r->st));
        return rc;
    }
    router_expire(r, time_now_ns());
    return 0;
}

static void revert(struct router *r, struct route *rt, const char *key)
{
    if (strcmp(key, "sample_rate") == 0) {
        route_set_rate(rt, rt->cfg_rate);
        memset(&rt->rate_origin, 0, sizeof(rt->rate_origin));
    } else {
        atomic_store(&rt->enabled, rt->cfg_enabled);
        memset(&rt->enabled_origin, 0, sizeof(rt->enabled_origin));
    }
    if (r->st)
        state_override_clear(r->st, rt->name, key);
}

int router_expire(struct router *r, int64_t now_ns)
{
    int n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nroutes; i++) {
        struct route *rt = &r->routes[i];
        struct route_origin *o[2] = {&rt->rate_origin, &rt->enabled_origin};
        const char *keys[2] = {"sample_rate", "enabled"};
        for (int k = 0; k < 2; k++) {
            if (!o[k]->overridden || !o[k]->expires_ns || o[k]->expires_ns > now_ns)
                continue;
            revert(r, rt, keys[k]);
            char value[32];
            if (k)
                snprintf(value, sizeof(value), "%s", rt->cfg_enabled ? "true" : "false");
            else
                snprintf(value, sizeof(value), "%g", rt->cfg_rate);
            log_info("runtime override expired: back to the configured value", "{s:s, s:s, s:s}",
                     "route", rt->name, "key", keys[k], "value", value);
            n++;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void audit(struct router *r, const struct router_actor *who, const char *cmd,
                  const char *target, const char *old, const char *new)
{
    if (!r->st)
        return;
    struct state_audit a = {.uid = who->uid,
                            .pid = who->pid,
                            .command = cmd,
                            .target = target,
                            .old_value = old,
                            .new_value = new};
    state_audit_add(r->st, &a);
}

int router_dial(struct router *r, const char *route, double rate, int64_t for_ns,
                const struct router_actor *who, char *err, size_t errlen)
{
    if (!(rate >= 0.0 && rate <= 1.0)) {
        snprintf(err, errlen, "rate must be between 0 and 1");
        return -EINVAL;
    }
    struct route *rt = lock_route(r, route, err, errlen);
    if (!rt)
        return -ENOENT;
    char old[64], new[64];
    snprintf(old, sizeof(old), "%g", route_rate(rt));
    snprintf(new, sizeof(new), "%g%s", rate, for_ns ? "" : "");
    int64_t now = time_now_ns();
    route_set_rate(rt, rate); /* workers read it for the next event */
    rt->rate_origin = (struct route_origin){1, now, for_ns ? now + for_ns : 0, who->uid};
    struct state_override o = {
        .expires_ns = rt->rate_origin.expires_ns, .set_ns = now, .uid = who->uid};
    snprintf(o.route, sizeof(o.route), "%s", route);
    snprintf(o.key, sizeof(o.key), "sample_rate");
    snprintf(o.value, sizeof(o.value), "%.17g", rate);
    int rc = r->st ? state_override_set(r->st, &o) : 0;
    pthread_mutex_unlock(&r->mu);
    char detail[96];
    if (for_ns)
        snprintf(detail, sizeof(detail), "%s for %gs", new, (double)for_ns / 1e9);
    else
        snprintf(detail, sizeof(detail), "%s", new);
    audit(r, who, "sample", route, old, detail);
    log_info("sampling dialed", "{s:s, s:s, s:s, s:I}", "route", route, "from", old, "to", detail,
             "uid", (json_int_t)who->uid);
    if (rc)
        snprintf(err, errlen, "applied, but could not be persisted to %s", state_path(r->st));
    return rc;
}

int router_set_enabled(struct router *r, const char *route, int enabled,
                       const struct router_actor *who, char *err, size_t errlen)
{
    struct route *rt = lock_route(r, route, err, errlen);
    if (!rt)
        return -ENOENT;
    int was = atomic_load(&rt->enabled);
    atomic_store(&rt->enabled, enabled);
    int64_t now = time_now_ns();
    rt->enabled_origin = (struct route_origin){1, now, 0, who->uid};
    struct state_override o = {.set_ns = now, .uid = who->uid};
    snprintf(o.route, sizeof(o.route), "%s", route);
    snprintf(o.key, sizeof(o.key), "enabled");
    snprintf(o.value, sizeof(o.value), "%d", enabled);
    int rc = r->st ? state_override_set(r->st, &o) : 0;
    pthread_mutex_unlock(&r->mu);
    audit(r, who, enabled ? "route enable" : "route disable", route, was ? "enabled" : "disabled",
          enabled ? "enabled" : "disabled");
    if (rc)
        snprintf(err, errlen, "applied, but could not be persisted to %s", state_path(r->st));
    return rc;
}

int router_reset(struct router *r, const char *route, const char *key,
                 const struct router_actor *who, char *err, size_t errlen)
{
    struct route *rt = lock_route(r, route, err, errlen);
    if (!rt)
        return -ENOENT;
    int is_rate = !strcmp(key, "sample_rate");
    char old[64], new[64];
    if (is_rate) {
        snprintf(old, sizeof(old), "%g", route_rate(rt));
        snprintf(new, sizeof(new), "%g (config)", rt->cfg_rate);
    } else {
        snprintf(old, sizeof(old), "%s", atomic_load(&rt->enabled) ? "enabled" : "disabled");
        snprintf(new, sizeof(new), "%s (config)", rt->cfg_enabled ? "enabled" : "disabled");
    }
    revert(r, rt, key);
    pthread_mutex_unlock(&r->mu);
    audit(r, who, is_rate ? "sample reset" : "route reset", route, old, new);
    log_info("runtime override cleared: back to the configured value", "{s:s, s:s, s:s, s:I}",
             "route", route, "key", key, "value", new, "uid", (json_int_t)who->uid);
    return 0;
}

/* Re-reads one route's script; a changed one is compiled and checked in a scratch host
 * first, and only then published to the workers. */
static int reload_route(struct router *r, struct route *rt, int *changed)
{
    char *src = NULL;
    size_t len = 0;
    char err[512] = "";
    int rc = fs_read_file(rt->script_path, &src, &len);
    if (rc) {
        snprintf(err, sizeof(err), "%s: cannot read: %s", rt->script_path, strerror(-rc));
    } else {
        pthread_mutex_lock(&r->mu);
        int same = rt->source && len == rt->source_len && !memcmp(src, rt->source, len);
        pthread_mutex_unlock(&r->mu);
        if (same) {
            free(src);
            return 0;
        }
        struct script_limits lim = {r->cfg->router.max_instructions, r->cfg->router.lua_memory};
        struct script_host *h = script_host_new(&lim, NULL, 1);
        rc = h ? script_load(h, rt->script_path, src, len, err, sizeof(err)) : -ENOMEM;
        script_host_free(h);
    }
    pthread_mutex_lock(&r->mu);
    if (rc < 0) {
        snprintf(rt->script_error, sizeof(rt->script_error), "%s", err);
        free(src);
    } else {
        free(rt->source);
        rt->source = src;
        rt->source_len = len;
        rt->script_error[0] = '\0';
        rt->script_loaded_ns = time_now_ns();
        rt->reloads++;
        atomic_fetch_add(&rt->script_gen, 1);
        *changed = 1;
    }
    pthread_mutex_unlock(&r->mu);
    if (rc < 0) {
        counter_add(&r->stats.reload_errors, 1);
        log_error("script reload failed: the running version stays", "{s:s, s:s}", "route",
                  rt->name, "error", err);
        return -EINVAL;
    }
    counter_add(&r->stats.reloads, 1);
    log_info("script reloaded", "{s:s, s:s}", "route", rt->name, "path", rt->script_path);
    return 0;
}

int router_reload(struct router *r, int *nchanged, char *err, size_t errlen)
{
    int failures = 0;
    *nchanged = 0;
    err[0] = '\0';
    for (int i = 0; i < r->nroutes; i++) {
        struct route *rt = &r->routes[i];
        if (!rt->script_path)
            continue;
        int changed = 0;
        if (reload_route(r, rt, &changed)) {
            failures++;
            pthread_mutex_lock(&r->mu);
            if (!err[0])
                snprintf(err, errlen, "%s", rt->script_error);
            pthread_mutex_unlock(&r->mu);
        }
        *nchanged += changed;
    }
    return failures ? -EINVAL : 0;
}

static json_t *origin_json(const struct route_origin *o)
{
    if (!o->overridden)
        return json_string("config");
    char set[TIME_RFC3339_LEN + 1], exp[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(o->set_ns, set);
    json_t *j =
        json_pack("{s:s, s:s, s:I}", "origin", "runtime", "set_at", set, "uid", (json_int_t)o->uid);
    if (o->expires_ns) {
        time_format_rfc3339(o->expires_ns, exp);
        json_object_set_new(j, "expires_at", json_string(exp));
    }
    return j;
}

json_t *router_routes_json(struct router *r)
{
    json_t *arr = json_array();
    const struct route_config *rc = r->cfg->routes.v;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nroutes; i++) {
        struct route *rt = &r->routes[i];
        json_t *sinks = json_array(), *shadow = json_array();
        for (int j = 0; j < rc[i].sinks.n; j++)
            json_array_append_new(sinks, json_string(rc[i].sinks.v[j]));
        for (int j = 0; j < rc[i].shadow.n; j++)
            json_array_append_new(shadow, json_string(rc[i].shadow.v[j]));
        char loaded[TIME_RFC3339_LEN + 1] = "";
        if (rt->script_loaded_ns)
            time_format_rfc3339(rt->script_loaded_ns, loaded);
        json_t *o = json_pack(
            "{s:s, s:s, s:b, s:o, s:f, s:o, s:f, s:b, s:o, s:o, s:s, s:s, s:I, s:{s:I, s:I, "
            "s:I, s:I, s:I}}",
            "name", rt->name, "script", rt->script_path ? rt->script_path : "", "enabled",
            atomic_load(&rt->enabled), "enabled_origin", origin_json(&rt->enabled_origin),
            "sample_rate", route_rate(rt), "sample_rate_origin", origin_json(&rt->rate_origin),
            "configured_sample_rate", rt->cfg_rate, "stop", rt->stop, "sinks", sinks, "shadow",
            shadow, "script_error", rt->script_error, "script_loaded_at", loaded, "reloads",
            (json_int_t)rt->reloads, "counters", "in", (json_int_t)counter_get(&rt->stats.in),
            "kept", (json_int_t)counter_get(&rt->stats.kept), "filtered",
            (json_int_t)counter_get(&rt->stats.filtered), "sampled_out",
            (json_int_t)counter_get(&rt->stats.sampled_out), "errors",
            (json_int_t)counter_get(&rt->stats.errors));
        json_array_append_new(arr, o);
    }
    pthread_mutex_unlock(&r->mu);
    return arr;
}

/* For workers: a copy of the route's current source and its generation. */
int router__script_source(struct router *r, int i, char **src, size_t *len, unsigned *gen)
{
    struct route *rt = &r->routes[i];
    pthread_mutex_lock(&r->mu);
    *gen = atomic_load(&rt->script_gen);
    *src = rt->source ? malloc(rt->source_len + 1) : NULL;
    if (*src) {
        memcpy(*src, rt->source, rt->source_len);
        (*src)[rt->source_len] = '\0';
    }
    *len = rt->source_len;
    pthread_mutex_unlock(&r->mu);
    return *src ? 0 : -ENOMEM;
}

struct route *router_find(struct router *r, const char *name)
{
    return find_route(r, name);
}

struct kv *router__kv(struct router *r)
{
    return r->kv;
}

struct router *router_new(const struct config *cfg, struct pipeline *pl, struct sinks *sinks,
                          struct state *st, struct kv *kv, char *err, size_t errlen)
{
    struct router *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    r->st = st;
    r->kv = kv;
    r->cfg = cfg;
    r->pl = pl;
    r->sinks = sinks;
    if (build_routes(r, err, errlen))
        goto fail;
    if (st && apply_state(r, err, errlen))
        goto fail;
    r->nworkers = pipeline_partitions(pl);
    r->workers = calloc((size_t)r->nworkers, sizeof(*r->workers));
    if (!r->workers)
        goto fail;
    for (int i = 0; i < r->nworkers; i++) {
        r->workers[i] = worker_new(r, i, err, errlen);
        if (!r->workers[i])
            goto fail;
    }
    return r;
fail:
    if (!err[0])
        snprintf(err, errlen, "out of memory building the router");
    router_free(r);
    return NULL;
}

void router_free(struct router *r)
{
    if (!r)
        return;
    for (int i = 0; r->workers && i < r->nworkers; i++)
        worker_free(r->workers[i]);
    free(r->workers);
    for (int i = 0; i < r->nroutes; i++) {
        struct route *rt = &r->routes[i];
        free(rt->script_path);
        free(rt->source);
        free(rt->sample_key);
        free(rt->sinks);
        free(rt->shadow);
        ring_free(atomic_load(&rt->tap));
    }
    free(r->routes);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int router_check_scripts(const struct config *cfg, char *err, size_t errlen)
{
    const struct route_config *rc = cfg->routes.v;
    for (int i = 0; i < cfg->routes.n; i++) {
        if (!*rc[i].script)
            continue;
        struct route rt = {.name = rc[i].name, .script_path = script_path(cfg, rc[i].script)};
        int e = load_source(cfg, &rt, err, errlen);
        free(rt.script_path);
        free(rt.source);
        if (e)
            return -EINVAL;
    }
    return 0;
}

int router_start(struct router *r, char *err, size_t errlen)
{
    for (int i = 0; i < r->nworkers; i++) {
        int rc = worker_start(r->workers[i], err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

void router_join(struct router *r)
{
    for (int i = 0; i < r->nworkers; i++)
        worker_join(r->workers[i]);
}

int router_route_count(const struct router *r)
{
    return r->nroutes;
}

struct route *router_route(struct router *r, int i)
{
    return &r->routes[i];
}

struct router_stats *router_stats(struct router *r)
{
    return &r->stats;
}

/* For workers (worker.h). */
const struct config *router__config(struct router *r)
{
    return r->cfg;
}

struct pipeline *router__pipeline(struct router *r)
{
    return r->pl;
}

struct sinks *router__sinks(struct router *r)
{
    return r->sinks;
}

int router__dead_sink(struct router *r)
{
    return *r->cfg->dead_letter ? sinks_find(r->sinks, r->cfg->dead_letter) : -1;
}

int router__fallback_sink(struct router *r)
{
    return *r->cfg->fallback ? sinks_find(r->sinks, r->cfg->fallback) : -1;
}
