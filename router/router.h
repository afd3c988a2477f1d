/* The router: one worker thread per partition, each draining its ring, offering every event to
 * the enabled routes in order (each worker has its own Lua host), and appending what routes
 * keep to their sinks' queues. The router owns the route table and the workers; it borrows
 * the config, the pipeline and the sinks, which must outlive it. */
#ifndef SPILLWAY_ROUTER_H
#define SPILLWAY_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"

struct config;
struct pipeline;
struct sinks;
struct router;
struct route;

/* Resolves routes against the sinks and loads every script. NULL with a message in err
 * ("path:line: message" for a script error). */
struct router *router_new(const struct config *cfg, struct pipeline *pl, struct sinks *sinks,
                          char *err, size_t errlen);
void router_free(struct router *r);

/* Checks the routes' scripts without running anything (spillway check). Returns 0 or -EINVAL
 * with err set. */
int router_check_scripts(const struct config *cfg, char *err, size_t errlen);

int router_start(struct router *r, char *err, size_t errlen);
/* Waits for the workers to drain their (closed) rings and flush to the sinks. */
void router_join(struct router *r);

int router_route_count(const struct router *r);
struct route *router_route(struct router *r, int i);

struct router_stats {
    counter_t unrouted;         /* events no route kept */
    counter_t dead_letter;      /* records sent to the dead-letter sink */
    counter_t dead_unsunk;      /* dead letters with no dead_letter sink (counted, logged) */
    counter_t serialize_errors; /* events that could not be serialized (dead-lettered) */
};
struct router_stats *router_stats(struct router *r);

#endif
