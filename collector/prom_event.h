/* One Prometheus sample as a metric event of the model (docs/metrics.md), for the inputs that
 * take Prometheus data (the http input's remote write, the prometheus_scrape input): name, type,
 * value (the model's strings for NaN, the infinities and the staleness marker), the sample's time
 * (else the receive time), and its other labels as the `labels` object. Pure functions over
 * struct buf. */
#ifndef SPILLWAY_PROM_EVENT_H
#define SPILLWAY_PROM_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "collector/normalize.h"
#include "core/buf.h"

struct prom_label {
    const char *name, *value;
    size_t nlen, vlen;
};

/* What a Prometheus family's TYPE makes of its samples: counters are cumulative counters, gauges
 * gauges; the series of histograms, summaries and untyped families (Prometheus stores them as
 * plain series) are `unknown`. */
enum prom_type { PROM_UNKNOWN, PROM_COUNTER, PROM_GAUGE };

/* Prometheus' staleness marker: a NaN with these bits. */
#define PROM_STALE_NAN_BITS 0x7ff0000000000002ULL

/* The latest time a sample may have, in ms (a later one cannot be written as RFC 3339 ns). */
#define PROM_MAX_MS 9223372036853LL

/* Appends the event of sample name[0..nlen) (v at ts_ms, or at the receive time when ts_ms is
 * INT64_MIN) of input source, with labels l[0..n) (without __name__). Returns 0 or -ENOMEM. The
 * caller checks that ts_ms is within [0, PROM_MAX_MS] and that no two labels share a name. */
int prom_event_write(struct buf *out, const char *source, const struct recv_time *rt, int64_t ts_ms,
                     const char *name, size_t nlen, enum prom_type type, double v,
                     const struct prom_label *l, size_t n);

/* Appends v as the model writes a value: a JSON number, or "NaN", "StaleNaN", "+Inf", "-Inf". */
int prom_event_value(struct buf *out, double v);

#endif
