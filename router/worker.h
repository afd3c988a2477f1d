/* A router worker: the thread that drains one partition's ring. For each record it runs the
 * routes (through its own Lua host and event view) and stages what they keep per sink; after
 * each chunk of the ring it pushes the staged records to the sinks' queues (blocking on a full
 * `block` queue, which is how backpressure reaches the partition and then the inputs) and
 * releases the chunk. Counters are kept per worker and published once per chunk. */
#ifndef SPILLWAY_WORKER_H
#define SPILLWAY_WORKER_H

#include <stddef.h>

struct router;
struct worker;
struct pipeline;
struct sinks;

struct worker *worker_new(struct router *r, int partition, char *err, size_t errlen);
void worker_free(struct worker *w);
int worker_start(struct worker *w, char *err, size_t errlen);
void worker_join(struct worker *w);

/* What the router lends its workers. */
const struct router_setup *router__config(struct router *r);
struct pipeline *router__pipeline(struct router *r);
struct sinks *router__sinks(struct router *r);
int router__dead_sink(struct router *r);
int router__fallback_sink(struct router *r);
int router__script_source(struct router *r, int i, char **src, size_t *len, unsigned *gen);
/* Reload candidates (router.c): what to compile, its source, and the worker's result. */
unsigned router__candidate_gen(struct router *r, int i);
unsigned router__dropped_gen(struct router *r, int i);
int router__candidate_source(struct router *r, int i, unsigned gen, char **src, size_t *len);
void router__candidate_report(struct router *r, int i, unsigned gen, int worker, const char *error);
struct script_state *router__script_state(struct router *r);

#endif
