/* The Lua host: one sandboxed lua_State per router worker, holding the compiled process()
 * function of every route's script. Scripts see the event through a proxy (no Lua table is
 * built per event) and the spillway.* helpers. Each call is bounded in instructions and the
 * state in memory: a script that loops forever or eats memory fails that one call, never the
 * process. Only this module (script*.c) includes Lua headers. The host is used by one thread
 * at a time; it owns its state and borrows the event view during a call. */
#ifndef SPILLWAY_SCRIPT_H
#define SPILLWAY_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct eview;
struct script_host;

struct script_limits {
    int64_t max_instructions; /* per call */
    int64_t memory;           /* per state, bytes */
};

struct metric_agg;

/* What the helpers need to know about the route being run. */
struct script_route {
    const char *name;
    double rate;            /* the route's effective sampling rate */
    uint64_t salt;          /* hash of the name: dedup and dynsample keys are per route */
    struct metric_agg *agg; /* spillway.metric.*'s aggregates (the worker's; NULL: none) */
};

/* Hooks the host calls out through (state and emit live outside the Lua host). May be NULL. */
struct script_env {
    /* spillway.state.set: the shared store (the local copy is updated by the host). */
    int (*state_set)(void *ud, const char *key, size_t klen, const char *val, size_t vlen);
    /* spillway.emit: sink index by name (or -1) and delivery of a JSON text. */
    int (*sink_find)(void *ud, const char *name);
    int (*emit)(void *ud, int sink, const char *json, size_t len);
    void *ud;
};

struct script_host *script_host_new(const struct script_limits *lim, const struct script_env *env,
                                    uint64_t seed);
void script_host_free(struct script_host *h);

/* Compiles a script (chunk name: its path, so errors read "path:line: message") in its own
 * environment and checks that it defines a function process. Returns a handle >= 0, or
 * -EINVAL with the error in err. */
int script_load(struct script_host *h, const char *name, const char *src, size_t len, char *err,
                size_t errlen);
/* Replaces the function behind handle with a newly loaded one (hot reload). */
void script_replace(struct script_host *h, int handle, int with);
void script_unload(struct script_host *h, int handle);

/* Runs process(ev). Returns 1 (keep), 0 (not for this route) or -1 with *err (valid until the
 * next call) describing the failure. */
int script_run(struct script_host *h, int handle, struct eview *ev, const struct script_route *rt,
               const char **err);
/* After a call that returned 0: 1 when a sampling helper (spillway.sample, dynsample) said no
 * during it, so the event counts as sampled out rather than filtered. */
int script_sampled_out(const struct script_host *h);

/* spillway.state.get reads a copy local to this host (no lock per read): script_shared_begin
 * empties it, script_shared_put fills it from the router's master copy (router/script_state.h). */
void script_shared_begin(struct script_host *h);
void script_shared_put(struct script_host *h, const char *k, size_t kl, const char *v, size_t vl);

/* Lua memory in use by the state (bytes). */
size_t script_memory(const struct script_host *h);

#endif
