#include "router.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "pipeline.h"
#include "ring.h"
#include "route.h"
#include "script.h"
#include "sink.h"
#include "worker.h"

struct router {
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
        }
    }
    return 0;
}

struct router *router_new(const struct config *cfg, struct pipeline *pl, struct sinks *sinks,
                          char *err, size_t errlen)
{
    struct router *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->cfg = cfg;
    r->pl = pl;
    r->sinks = sinks;
    if (build_routes(r, err, errlen))
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
    }
    free(r->routes);
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
