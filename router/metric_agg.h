/* Logs to metrics: what spillway.metric.count/observe/gauge add up, per series (a kind, a name and
 * labels), for one route on one worker, until the worker flushes it as metric events of the model
 * (docs/metrics.md): counters and histograms as deltas since the previous flush, gauges as the last
 * value set. At most max_series series are held; an addition to one more is refused and counted
 * as overflow, so a label of high cardinality cannot take the memory. The worker that owns it is
 * its only user (no lock); once its tables have grown, adding allocates nothing. */
#ifndef SPILLWAY_METRIC_AGG_H
#define SPILLWAY_METRIC_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum metric_kind { METRIC_COUNT, METRIC_OBSERVE, METRIC_GAUGE };

struct metric_label {
    const char *key, *value;
    size_t klen, vlen;
};

struct metric_agg_opts {
    const double *buckets; /* histogram bounds, ascending (borrowed for the aggregate's life) */
    size_t nbuckets;
    int64_t max_series;
};

struct metric_agg;

/* NULL when out of memory. opts is copied; its buckets are borrowed. */
struct metric_agg *metric_agg_new(const struct metric_agg_opts *opts);
void metric_agg_free(struct metric_agg *a);

/* Adds v to the series of kind k named name[0..nlen) with labels l[0..n) (any order; a key given
 * twice keeps its last value): a count adds v, an observation counts v into its bucket, a gauge
 * becomes v. Returns 0, -ENOSPC when the series is new and max_series are held (counted in
 * metric_agg_overflow), -E2BIG when the series' name and labels take more than 4 KiB, -ENOMEM. */
int metric_agg_add(struct metric_agg *a, enum metric_kind k, const char *name, size_t nlen,
                   const struct metric_label *l, size_t n, double v);

/* Additions refused since the last call (max_series), and zero again. */
uint64_t metric_agg_take_overflow(struct metric_agg *a);
/* Series held now. */
size_t metric_agg_series(const struct metric_agg *a);

/* Hands each series held to emit as a metric event (source e.g. "route:access", at now_ns, the
 * interval since start_ns), then forgets them all. Returns the number of events, or -ENOMEM. */
int metric_agg_flush(struct metric_agg *a, const char *source, int64_t start_ns, int64_t now_ns,
                     void (*emit)(void *ud, const char *json, size_t len), void *ud);

#endif
