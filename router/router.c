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
#include "router/route.h"
#include "router/script.h"
#include "router/script_state.h"
#include "router/sinks/sink.h"
#include "router/worker.h"

/* How long a reload waits for every worker to compile a new version. A worker compiles it
 * between two chunks, or within 100 ms (PEEK_WAIT_NS) when idle; one blocked on a full sink
 * may take longer, and then the reload reports the version as pending (it is committed when
 * the last worker has loaded it). */
#define RELOAD_WAIT_NS (2 * 1000000000LL)

/* A new version of a route's script on its way to the workers. Each worker compiles it in its
 * own Lua state and reports back; only when every worker loaded it is it committed (published
 * as the route's script_gen, which each worker then swaps in between two events). If any
 * worker failed, it is abandoned everywhere and the failure becomes the route's script_error:
 * every worker keeps running the same, previous, version. Fields under the router's lock
 * except the two atomics workers poll. */
struct candidate {
    char *source; /* NULL when no candidate is in flight */
    size_t len;
    unsigned gen;                 /* unique among all routes' versions */
    int reported;                 /* workers that loaded it or failed to */
    int watched;                  /* router_reload waits for it (and logs the outcome) */
    char error[512];              /* the first worker's failure, "" so far */
    unsigned done_gen;            /* the last candidate resolved ... */
    int done_rc;                  /* ... and how: 0 committed, -EINVAL abandoned */
    _Atomic unsigned cand_gen;    /* the candidate workers should compile (0: none) */
    _Atomic unsigned dropped_gen; /* an abandoned candidate: workers holding it free it */
};

struct router {
    /* Route origins, script sources and errors, reload candidates. Once the workers run it
     * is never held over I/O: workers take it to fetch and report a new version. */
    pthread_mutex_t mu;
    /* Orders the SQLite writes of runtime changes (taken before mu, held over the write, never
     * taken by a worker): the store sees changes in the order they were applied, while a slow
     * or locked database stalls only the admin side, never a worker waiting for mu. */
    pthread_mutex_t persist_mu;
    pthread_cond_t resolved; /* a candidate was committed or abandoned (with mu) */
    unsigned gen_seq;        /* the last script generation handed out */
    struct candidate *cands; /* per route */
    unsigned char *expired;  /* per route and key: router_expire's scratch (under persist_mu) */
    struct store *st;        /* may be NULL (spillway check, tests) */
    struct script_state *kv;
    struct router_setup setup; /* a copy; what it points at is borrowed */
    const struct router_setup *cfg;
    struct pipeline *pl;
    struct sinks *sinks;
    struct route *routes;
    int nroutes;
    struct worker **workers;
    int nworkers;
    int nrunning; /* workers started (under mu): the ones a reload waits for; none in the
                   * collector role of kafka mode, where nothing routes */
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

static int build_routes(struct router *r, char *err, size_t errlen)
{
    const struct router_setup *cfg = r->cfg;
    const struct route_config *rc = cfg->routes;
    r->routes = calloc((size_t)cfg->nroutes + 1, sizeof(*r->routes));
    if (!r->routes)
        return -ENOMEM;
    for (int i = 0; i < cfg->nroutes; i++) {
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

/* The routes as the store keeps them, from the config. */
static int reconcile(struct router *r)
{
    const struct route_config *rc = r->cfg->routes;
    int n = r->cfg->nroutes;
    struct store_route *sr = calloc((size_t)n + 1, sizeof(*sr));
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
        sr[i] = (struct store_route){rc[i].name,       rc[i].script, rc[i].sample_rate,
                                     rc[i].sample_key, lists[2 * i], lists[2 * i + 1],
                                     rc[i].enabled,    rc[i].stop};
    }
    if (!rc_)
        rc_ = store_routes_reconcile(r->st, sr, n);
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
static void apply_override(void *ud, const struct store_override *o)
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
        snprintf(err, errlen, "cannot write the route table to %s", store_path(r->st));
        return -EIO;
    }
    pthread_mutex_lock(&r->mu);
    int rc = store_overrides_each(r->st, apply_override, r);
    pthread_mutex_unlock(&r->mu);
    if (rc) {
        snprintf(err, errlen, "cannot read overrides from %s", store_path(r->st));
        return rc;
    }
    router_expire(r, time_now_ns());
    return 0;
}

/* Puts the configured value back in force (under mu); the caller then clears the stored
 * override with unpersist, after releasing mu. */
static void revert(struct route *rt, const char *key)
{
    if (strcmp(key, "sample_rate") == 0) {
        route_set_rate(rt, rt->cfg_rate);
        memset(&rt->rate_origin, 0, sizeof(rt->rate_origin));
    } else {
        atomic_store(&rt->enabled, rt->cfg_enabled);
        memset(&rt->enabled_origin, 0, sizeof(rt->enabled_origin));
    }
}

static void unpersist(struct router *r, struct route *rt, const char *key)
{
    if (r->st)
        store_override_clear(r->st, rt->name, key);
}

int router_expire(struct router *r, int64_t now_ns)
{
    static const char *const keys[2] = {"sample_rate", "enabled"};
    int n = 0;
    pthread_mutex_lock(&r->persist_mu);
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nroutes; i++) {
        struct route *rt = &r->routes[i];
        struct route_origin *o[2] = {&rt->rate_origin, &rt->enabled_origin};
        for (int k = 0; k < 2; k++) {
            r->expired[i * 2 + k] =
                o[k]->overridden && o[k]->expires_ns && o[k]->expires_ns <= now_ns;
            if (r->expired[i * 2 + k])
                revert(rt, keys[k]);
        }
    }
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->nroutes * 2; i++) {
        if (!r->expired[i])
            continue;
        struct route *rt = &r->routes[i / 2];
        unpersist(r, rt, keys[i % 2]);
        char value[32];
        if (i % 2)
            snprintf(value, sizeof(value), "%s", rt->cfg_enabled ? "true" : "false");
        else
            snprintf(value, sizeof(value), "%g", rt->cfg_rate);
        log_info("runtime override expired: back to the configured value", "{s:s, s:s, s:s}",
                 "route", rt->name, "key", keys[i % 2], "value", value);
        n++;
    }
    pthread_mutex_unlock(&r->persist_mu);
    return n;
}

static void audit(struct router *r, const struct router_actor *who, const char *cmd,
                  const char *target, const char *old, const char *new)
{
    if (!r->st)
        return;
    struct store_audit a = {.uid = who->uid,
                            .pid = who->pid,
                            .command = cmd,
                            .target = target,
                            .old_value = old,
                            .new_value = new};
    if (store_audit_add(r->st, &a)) /* the trail is kept in the log instead */
        log_warn("audit entry not written to the store", "{s:s, s:s, s:s, s:s, s:I, s:I}",
                 "command", cmd, "target", target ? target : "", "old", old ? old : "", "new",
                 new ? new : "", "uid", (json_int_t)who->uid, "pid", (json_int_t)who->pid);
}

int router_dial(struct router *r, const char *route, double rate, int64_t for_ns,
                const struct router_actor *who, char *err, size_t errlen)
{
    if (!(rate >= 0.0 && rate <= 1.0)) {
        snprintf(err, errlen, "rate must be between 0 and 1");
        return -EINVAL;
    }
    pthread_mutex_lock(&r->persist_mu);
    struct route *rt = lock_route(r, route, err, errlen);
    if (!rt) {
        pthread_mutex_unlock(&r->persist_mu);
        return -ENOENT;
    }
    char old[64], new[64];
    snprintf(old, sizeof(old), "%g", route_rate(rt));
    snprintf(new, sizeof(new), "%g", rate);
    int64_t now = time_now_ns();
    route_set_rate(rt, rate); /* workers read it for the next event */
    rt->rate_origin = (struct route_origin){1, now, for_ns ? now + for_ns : 0, who->uid};
    struct store_override o = {
        .expires_ns = rt->rate_origin.expires_ns, .set_ns = now, .uid = who->uid};
    snprintf(o.route, sizeof(o.route), "%s", route);
    snprintf(o.key, sizeof(o.key), "sample_rate");
    snprintf(o.value, sizeof(o.value), "%.17g", rate);
    pthread_mutex_unlock(&r->mu);
    int rc = r->st ? store_override_set(r->st, &o) : 0;
    char detail[96];
    if (for_ns)
        snprintf(detail, sizeof(detail), "%s for %gs", new, (double)for_ns / 1e9);
    else
        snprintf(detail, sizeof(detail), "%s", new);
    audit(r, who, "sample", route, old, detail);
    pthread_mutex_unlock(&r->persist_mu);
    log_info("sampling dialed", "{s:s, s:s, s:s, s:I}", "route", route, "from", old, "to", detail,
             "uid", (json_int_t)who->uid);
    if (rc)
        snprintf(err, errlen, "applied, but could not be persisted to %s", store_path(r->st));
    return rc;
}

int router_set_enabled(struct router *r, const char *route, int enabled,
                       const struct router_actor *who, char *err, size_t errlen)
{
    pthread_mutex_lock(&r->persist_mu);
    struct route *rt = lock_route(r, route, err, errlen);
    if (!rt) {
        pthread_mutex_unlock(&r->persist_mu);
        return -ENOENT;
    }
    int was = atomic_load(&rt->enabled);
    atomic_store(&rt->enabled, enabled);
    int64_t now = time_now_ns();
    rt->enabled_origin = (struct route_origin){1, now, 0, who->uid};
    struct store_override o = {.set_ns = now, .uid = who->uid};
    snprintf(o.route, sizeof(o.route), "%s", route);
    snprintf(o.key, sizeof(o.key), "enabled");
    snprintf(o.value, sizeof(o.value), "%d", enabled);
    pthread_mutex_unlock(&r->mu);
    int rc = r->st ? store_override_set(r->st, &o) : 0;
    audit(r, who, enabled ? "route enable" : "route disable", route, was ? "enabled" : "disabled",
          enabled ? "enabled" : "disabled");
    pthread_mutex_unlock(&r->persist_mu);
    if (rc)
        snprintf(err, errlen, "applied, but could not be persisted to %s", store_path(r->st));
    return rc;
}

int router_reset(struct router *r, const char *route, const char *key,
                 const struct router_actor *who, char *err, size_t errlen)
{
    pthread_mutex_lock(&r->persist_mu);
    struct route *rt = lock_route(r, route, err, errlen);
    if (!rt) {
        pthread_mutex_unlock(&r->persist_mu);
        return -ENOENT;
    }
    int is_rate = !strcmp(key, "sample_rate");
    char old[64], new[64];
    if (is_rate) {
        snprintf(old, sizeof(old), "%g", route_rate(rt));
        snprintf(new, sizeof(new), "%g (config)", rt->cfg_rate);
    } else {
        snprintf(old, sizeof(old), "%s", atomic_load(&rt->enabled) ? "enabled" : "disabled");
        snprintf(new, sizeof(new), "%s (config)", rt->cfg_enabled ? "enabled" : "disabled");
    }
    revert(rt, key);
    pthread_mutex_unlock(&r->mu);
    unpersist(r, rt, key);
    audit(r, who, is_rate ? "sample reset" : "route reset", route, old, new);
    pthread_mutex_unlock(&r->persist_mu);
    log_info("runtime override cleared: back to the configured value", "{s:s, s:s, s:s, s:I}",
             "route", route, "key", key, "value", new, "uid", (json_int_t)who->uid);
    return 0;
}

/* Under mu: commits the route's candidate (every worker loaded it) or abandons it (one could
 * not), and wakes router_reload. Returns 0 or -EINVAL; the caller logs. */
static int resolve_candidate(struct router *r, int i)
{
    struct route *rt = &r->routes[i];
    struct candidate *cd = &r->cands[i];
    int rc = 0;
    if (cd->error[0]) {
        snprintf(rt->script_error, sizeof(rt->script_error), "%s", cd->error);
        atomic_store(&cd->dropped_gen, cd->gen);
        free(cd->source);
        counter_add(&r->stats.reload_errors, 1);
        rc = -EINVAL;
    } else {
        free(rt->source);
        rt->source = cd->source;
        rt->source_len = cd->len;
        rt->script_error[0] = '\0';
        rt->script_loaded_ns = time_now_ns();
        rt->reloads++;
        counter_add(&r->stats.reloads, 1);
        atomic_store(&rt->script_gen, cd->gen); /* the workers swap it in */
    }
    cd->source = NULL;
    cd->done_gen = cd->gen;
    cd->done_rc = rc;
    pthread_cond_broadcast(&r->resolved);
    return rc;
}

static void log_resolved(const struct route *rt, int rc, const char *error)
{
    if (rc)
        log_error("script reload failed: the running version stays", "{s:s, s:s}", "route",
                  rt->name, "error", error);
    else
        log_info("script reloaded", "{s:s, s:s}", "route", rt->name, "path", rt->script_path);
}

/* Under mu: hands src (taken over) to the workers as route i's next version; a candidate still
 * in flight is abandoned for it. Returns the candidate's generation. */
static unsigned publish_candidate(struct router *r, int i, char *src, size_t len)
{
    struct candidate *cd = &r->cands[i];
    if (cd->source)
        atomic_store(&cd->dropped_gen, cd->gen);
    free(cd->source);
    cd->source = src;
    cd->len = len;
    cd->gen = ++r->gen_seq;
    cd->reported = 0;
    cd->watched = 1;
    cd->error[0] = '\0';
    atomic_store(&cd->cand_gen, cd->gen);
    if (r->nrunning == 0)
        resolve_candidate(r, i);
    return cd->gen;
}

/* Re-reads one route's script; a changed one is compiled in a scratch host first (a syntax
 * error never reaches the workers) and then published to the workers as a candidate. Returns
 * the candidate's generation, 0 when nothing changed, or -EINVAL (the error is the route's
 * script_error). */
static long reload_route(struct router *r, int i)
{
    struct route *rt = &r->routes[i];
    struct candidate *cd = &r->cands[i];
    char *src = NULL;
    size_t len = 0;
    char err[512] = "";
    int rc = fs_read_file(rt->script_path, &src, &len);
    if (rc) {
        snprintf(err, sizeof(err), "%s: cannot read: %s", rt->script_path, strerror(-rc));
    } else {
        pthread_mutex_lock(&r->mu);
        int same = rt->source && len == rt->source_len && !memcmp(src, rt->source, len);
        int pending = cd->source && len == cd->len && !memcmp(src, cd->source, len);
        unsigned gen = cd->gen;
        if (same && cd->source) { /* saved back as it was: the candidate is moot */
            atomic_store(&cd->dropped_gen, cd->gen);
            free(cd->source);
            cd->source = NULL;
        }
        if (pending)
            cd->watched = 1; /* still in flight from an earlier reload: wait for it again */
        pthread_mutex_unlock(&r->mu);
        if (same || pending) {
            free(src);
            return same ? 0 : (long)gen;
        }
        struct script_limits lim = {r->cfg->router->max_instructions, r->cfg->router->lua_memory};
        struct script_host *h = script_host_new(&lim, NULL, 1);
        rc = h ? script_load(h, rt->script_path, src, len, err, sizeof(err)) : -ENOMEM;
        script_host_free(h);
    }
    pthread_mutex_lock(&r->mu);
    if (rc < 0) {
        snprintf(rt->script_error, sizeof(rt->script_error), "%s", err);
        pthread_mutex_unlock(&r->mu);
        free(src);
        counter_add(&r->stats.reload_errors, 1);
        log_resolved(rt, -EINVAL, err);
        return -EINVAL;
    }
    unsigned gen = publish_candidate(r, i, src, len);
    pthread_mutex_unlock(&r->mu);
    return gen;
}

/* Waits (with mu held) until route i's candidate gen is resolved, superseded or the deadline
 * passes. Returns 0 (committed), -EINVAL (abandoned) or -EAGAIN (still pending). */
static int wait_candidate(struct router *r, int i, unsigned gen, const struct timespec *deadline)
{
    struct candidate *cd = &r->cands[i];
    for (;;) {
        if (cd->done_gen == gen)
            return cd->done_rc;
        if (cd->gen != gen || !cd->source)
            return -ECANCELED; /* withdrawn: the file was saved back as it runs */
        if (pthread_cond_timedwait(&r->resolved, &r->mu, deadline) == ETIMEDOUT)
            return cd->done_gen == gen ? cd->done_rc : -EAGAIN;
    }
}

int router_reload(struct router *r, int *nchanged, char *err, size_t errlen)
{
    /* Per route: the candidate's generation, then what to log once the lock is released. */
    struct outcome {
        long gen;
        int log; /* 1: committed, 2: abandoned by a worker (error) */
        char error[512];
    } *out = calloc((size_t)r->nroutes + 1, sizeof(*out));
    int failures = 0;
    *nchanged = 0;
    err[0] = '\0';
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* Every changed script first goes out to the workers, then the outcomes are collected:
     * the workers compile them all in one pass. */
    for (int i = 0; i < r->nroutes; i++) {
        if (r->routes[i].script_path)
            out[i].gen = reload_route(r, i);
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += RELOAD_WAIT_NS / 1000000000LL;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nroutes; i++) {
        struct route *rt = &r->routes[i];
        int rc = (int)out[i].gen;
        if (out[i].gen > 0) {
            rc = wait_candidate(r, i, (unsigned)out[i].gen, &deadline);
            r->cands[i].watched = 0; /* from now on, the worker resolving it logs it */
            out[i].log = rc == 0 ? 1 : rc == -EINVAL ? 2 : 0;
            snprintf(out[i].error, sizeof(out[i].error), "%s", rt->script_error);
        }
        *nchanged += out[i].log == 1;
        if (rc == 0 || rc == -ECANCELED)
            continue;
        failures++;
        if (err[0])
            continue;
        if (rc == -EAGAIN)
            snprintf(err, errlen,
                     "route %s: %d of %d workers have not loaded the new version yet; it is "
                     "swapped in once all have",
                     rt->name, r->nrunning - r->cands[i].reported, r->nrunning);
        else
            snprintf(err, errlen, "%s", rt->script_error);
    }
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->nroutes; i++) {
        if (out[i].log)
            log_resolved(&r->routes[i], out[i].log == 2 ? -EINVAL : 0, out[i].error);
    }
    free(out);
    return failures ? -EINVAL : 0;
}

/* For workers (worker.h): the candidate generation to compile, and the last abandoned one. */
unsigned router__candidate_gen(struct router *r, int i)
{
    return atomic_load(&r->cands[i].cand_gen);
}

unsigned router__dropped_gen(struct router *r, int i)
{
    return atomic_load(&r->cands[i].dropped_gen);
}

/* A copy of candidate gen's source, or -ENOENT when it is no longer in flight. */
int router__candidate_source(struct router *r, int i, unsigned gen, char **src, size_t *len)
{
    struct candidate *cd = &r->cands[i];
    int rc = -ENOENT;
    pthread_mutex_lock(&r->mu);
    if (cd->source && cd->gen == gen) {
        *src = malloc(cd->len + 1);
        rc = *src ? 0 : -ENOMEM;
        if (*src) {
            memcpy(*src, cd->source, cd->len);
            (*src)[cd->len] = '\0';
            *len = cd->len;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* A worker compiled candidate gen (error NULL) or could not (error says why). The last worker
 * to report resolves it. */
void router__candidate_report(struct router *r, int i, unsigned gen, int worker, const char *error)
{
    struct candidate *cd = &r->cands[i];
    char logged[sizeof(cd->error)];
    int rc = 1;
    pthread_mutex_lock(&r->mu);
    if (cd->source && cd->gen == gen) {
        if (error && !cd->error[0])
            snprintf(cd->error, sizeof(cd->error), "%s (worker %d)", error, worker);
        if (++cd->reported >= r->nrunning) {
            snprintf(logged, sizeof(logged), "%s", cd->error);
            rc = resolve_candidate(r, i);
            if (cd->watched)
                rc = 1; /* router_reload logs it */
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (rc != 1)
        log_resolved(&r->routes[i], rc, logged);
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

struct script_state *router__kv(struct router *r)
{
    return r->kv;
}

struct router *router_new(const struct router_setup *cfg, struct pipeline *pl, struct sinks *sinks,
                          struct store *st, struct script_state *kv, char *err, size_t errlen)
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
    r->kv = kv;
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
