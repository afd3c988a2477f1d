/* Script reloads: a changed script is compiled in a scratch host, then handed to every worker
 * as a candidate; it is committed only when every worker has loaded it, so all of them always
 * run the same version (docs/routes.md, Reloads). */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "router/router_int.h"
#include "router/script.h"
#include "router/worker.h"

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
