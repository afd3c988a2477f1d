/* Internals shared by the router's files: router.c (the route table, its life and its JSON),
 * router_dial.c (runtime changes: the dial, enable/disable, reset, expiry, persisted and
 * audited) and router_reload.c (new script versions, compiled by every worker before they are
 * committed). Workers use worker.h. Not for other modules. */
#ifndef SPILLWAY_ROUTER_INT_H
#define SPILLWAY_ROUTER_INT_H

#include <pthread.h>
#include <stddef.h>

#include "router/route.h"
#include "router/router.h"

struct worker;

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
    struct script_state *script_state;
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

/* The route named name, or NULL. */
struct route *router__find(struct router *r, const char *name);
/* Reconciles the config's routes into the store, then puts runtime changes back in force
 * (router_dial.c). */
int router__restore(struct router *r, char *err, size_t errlen);

#endif
