#include "router/router.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "core/ring.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "pipeline/pipeline.h"
#include "router/metric_rules.h"
#include "router/route.h"
#include "router/router_int.h"
#include "router/script.h"
#include "router/script_state.h"
#include "router/sinks/sink.h"
#include "router/worker.h"

/* "a.b" -> "a\0b": route sample keys become paths once, at start. */
static char *dotted_to_path(const char *s, size_t *len)
{
    char *p = strdup(s);
    if (!p)
        return NULL;
    *len = strlen(p);
    eview_dotted_path(p, *len);
    return p;
}

static char *script_path(const struct router_setup *cfg, const char *script)
{
    char buf[4096];
    if (script[0] == '/')
        snprintf(buf, sizeof(buf), "%s", script);
    else
        snprintf(buf, sizeof(buf), "%s/%s", cfg->router->scripts, script);
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
static int load_source(const struct router_setup *cfg, struct route *rt, char *err, size_t errlen)
{
    int rc = fs_read_file(rt->script_path, &rt->source, &rt->source_len);
    if (rc) {
        snprintf(err, errlen, "route %s: cannot read %s: %s", rt->name, rt->script_path,
                 strerror(-rc));
        return rc;
    }
    struct script_limits lim = {cfg->router->max_instructions, cfg->router->lua_memory};
    struct script_host *h = script_host_new(&lim, NULL, 1);
    if (!h)
        return -ENOMEM;
    rc = script_load(h, rt->script_path, rt->source, rt->source_len, err, errlen);
    script_host_free(h);
    return rc < 0 ? rc : 0;
}

/* Route i's logs-to-metrics settings: its histogram bounds, its interval and cap, and the route
 * whose sinks get the metric events (config.c checked that it exists). */
static int route_metrics(const struct router_setup *cfg, struct route *rt, int i, char *err,
                         size_t errlen)
{
    const struct route_metrics_config *m = &cfg->routes[i].metrics;
    size_t max = (size_t)m->buckets.n > 11 ? (size_t)m->buckets.n : 11;
    int bad;
    rt->metric_buckets = calloc(max, sizeof(double));
    if (!rt->metric_buckets)
        return -ENOMEM;
    if (route_metric_buckets(m, rt->metric_buckets, max, &rt->nmetric_buckets, &bad)) {
        snprintf(err, errlen,
                 "route %s: metrics.buckets: \"%s\" is not a number above the one "
                 "before",
                 rt->name, m->buckets.v[bad]);
        return -EINVAL;
    }
    int rc = metric_rules_build(m, rt->name, &rt->metric_rules, err, errlen);
    if (rc)
        return rc;
    rt->metric_interval = m->interval;
    rt->metric_max_series = m->max_series;
    rt->metrics_to = i;
    for (int j = 0; *m->route && j < cfg->nroutes; j++) {
        if (!strcmp(cfg->routes[j].name, m->route))
            rt->metrics_to = j;
    }
    return 0;
}

static int build_routes(struct router *r, char *err, size_t errlen)
{
    const struct router_setup *cfg = r->cfg;
    const struct route_config *rc = cfg->routes;
    r->routes = calloc((size_t)cfg->nroutes + 1, sizeof(*r->routes));
    if (!r->routes)
        return -ENOMEM;
    for (int i = 0; i < cfg->nroutes; i++) {
        struct route *rt = &r->routes[r->nroutes++];
        int e0;
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
        if ((e0 = route_metrics(cfg, rt, i, err, errlen)))
            return e0;
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
    const struct route_config *rc = r->cfg->routes;
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
        json_t *counters = json_object();
        stat_put(&stat_route_counters, &rt->stats, counters);
        json_t *o = json_pack(
            "{s:s, s:s, s:b, s:o, s:f, s:o, s:f, s:b, s:o, s:o, s:s, s:s, s:I, s:o}", "name",
            rt->name, "script", rt->script_path ? rt->script_path : "", "enabled",
            atomic_load(&rt->enabled), "enabled_origin", origin_json(&rt->enabled_origin),
            "sample_rate", route_rate(rt), "sample_rate_origin", origin_json(&rt->rate_origin),
            "configured_sample_rate", rt->cfg_rate, "stop", rt->stop, "sinks", sinks, "shadow",
            shadow, "script_error", rt->script_error, "script_loaded_at", loaded, "reloads",
            (json_int_t)rt->reloads, "counters", counters);
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
    return router__find(r, name);
}

struct script_state *router__script_state(struct router *r)
{
    return r->script_state;
}

struct router *router_new(const struct router_setup *cfg, struct pipeline *pl, struct sinks *sinks,
                          struct store *st, struct script_state *script_state, char *err,
                          size_t errlen)
{
    struct router *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->persist_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->resolved, &ca);
    pthread_condattr_destroy(&ca);
    r->st = st;
    r->script_state = script_state;
    r->setup = *cfg;
    r->cfg = &r->setup;
    r->pl = pl;
    r->sinks = sinks;
    if (build_routes(r, err, errlen))
        goto fail;
    r->cands = calloc((size_t)r->nroutes + 1, sizeof(*r->cands));
    r->expired = calloc((size_t)r->nroutes * 2 + 1, 1);
    if (!r->cands || !r->expired)
        goto fail;
    if (st && router__restore(r, err, errlen))
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
        free(rt->metric_buckets);
        metric_rules_free(rt->metric_rules);
        ring_free(atomic_load(&rt->tap));
        if (r->cands)
            free(r->cands[i].source);
    }
    free(r->routes);
    free(r->cands);
    free(r->expired);
    pthread_cond_destroy(&r->resolved);
    pthread_mutex_destroy(&r->persist_mu);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int router_check_scripts(const struct router_setup *cfg, char *err, size_t errlen)
{
    const struct route_config *rc = cfg->routes;
    for (int i = 0; i < cfg->nroutes; i++) {
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
        pthread_mutex_lock(&r->mu);
        r->nrunning++;
        pthread_mutex_unlock(&r->mu);
    }
    return 0;
}

void router_join(struct router *r)
{
    for (int i = 0; i < r->nworkers; i++)
        worker_join(r->workers[i]);
    pthread_mutex_lock(&r->mu);
    r->nrunning = 0; /* a reload during the drain no longer waits for them */
    pthread_mutex_unlock(&r->mu);
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
const struct router_setup *router__config(struct router *r)
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
