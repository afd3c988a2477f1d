/* The router: one worker thread per partition, each draining its ring, offering every event to
 * the enabled routes in order (each worker has its own Lua host), and appending what routes
 * keep to their sinks' queues. The router owns the route table and the workers; it borrows
 * its setup, the pipeline and the sinks, which must outlive it. */
#ifndef SPILLWAY_ROUTER_H
#define SPILLWAY_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/stats.h"

struct pipeline;
struct sinks;
struct router;
struct route;
struct route_config;
struct router_config;
struct store;
struct script_state;
struct json_t;

/* What the router takes from the config: the `router:` section, the `routes:` list and the
 * names of the dead-letter and fallback sinks ("" for none), all borrowed for its life. */
struct router_setup {
    const struct router_config *router;
    const struct route_config *routes;
    int nroutes;
    const char *dead_letter;
    const char *fallback;
};

/* Resolves routes against the sinks and loads every script; with a store, reconciles
 * the routes into it and puts the stored runtime overrides back in force. st and script_state may
 * be NULL. NULL with a message in err ("path:line: message" for a script error). */
struct router *router_new(const struct router_setup *cfg, struct pipeline *pl, struct sinks *sinks,
                          struct store *st, struct script_state *script_state, char *err,
                          size_t errlen);
void router_free(struct router *r);

/* Checks the routes' scripts without running anything (spillway check). Returns 0 or -EINVAL
 * with err set. */
int router_check_scripts(const struct router_setup *cfg, char *err, size_t errlen);

int router_start(struct router *r, char *err, size_t errlen);
/* Waits for the workers to drain their (closed) rings and flush to the sinks. */
void router_join(struct router *r);

int router_route_count(const struct router *r);
/* The route named name, or NULL. */
struct route *router_find(struct router *r, const char *name);
struct route *router_route(struct router *r, int i);

/* Who asks for a change (from the admin socket's peer credentials), for the audit log. */
struct router_actor {
    int64_t uid;
    int64_t pid;
};

/* The dial: sets a route's sampling rate now (workers see it on their next event), persists
 * it, audits it; for_ns > 0 reverts it to the configured rate after that long (also across a
 * restart). Returns 0, -ENOENT (no such route), -EINVAL (bad rate) or -EIO (applied but not
 * persisted); err says which. */
int router_dial(struct router *r, const char *route, double rate, int64_t for_ns,
                const struct router_actor *who, char *err, size_t errlen);
int router_set_enabled(struct router *r, const char *route, int enabled,
                       const struct router_actor *who, char *err, size_t errlen);
/* Clears a runtime override of key ("sample_rate" or "enabled"): the configured value is in
 * force again, now and after a restart; audited. Returns 0 or -ENOENT (no such route). */
int router_reset(struct router *r, const char *route, const char *key,
                 const struct router_actor *who, char *err, size_t errlen);
/* Reverts overrides whose time is up; returns how many. */
int router_expire(struct router *r, int64_t now_ns);
/* Re-reads every route script; changed ones are compiled and checked, then published to the
 * workers, which swap them in between two events. A script that fails keeps its running
 * version; the first error is in err. Returns 0 or -EINVAL. */
int router_reload(struct router *r, int *nchanged, char *err, size_t errlen);
/* The route table with effective values and their origin (a new JSON array). */
struct json_t *router_routes_json(struct router *r);

struct router_stats *router_stats(struct router *r);

#endif
