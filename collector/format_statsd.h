/* StatsD lines (Etsy statsd and DogStatsD extensions) into canonical `kind: metric` events of the
 * metric model (docs/metrics.md): counters (delta), gauges (absolute, or +/- relative: a delta),
 * timers, histograms and distributions (one observation each: a delta histogram of one value),
 * sets, sample rates (@0.1), tags (#k:v,flag) as labels and DogStatsD timestamps (|T1700000000).
 * Pure function: unit-tested and fuzzed on its own. */
#ifndef SPILLWAY_STATSD_H
#define SPILLWAY_STATSD_H

#include <stddef.h>

#include "collector/normalize.h"
#include "core/buf.h"

/* Appends the event for one line (no newline). Returns 0, or -EINVAL with *err set. */
int statsd_to_event(const char *line, size_t len, const char *source, const struct recv_time *rt,
                    struct buf *out, const char **err);

#endif
