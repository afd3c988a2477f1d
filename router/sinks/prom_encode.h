/* Metric events (the metric model of docs/metrics.md) into Prometheus remote write requests
 * (a WriteRequest, protobuf-c's messages of proto/prometheus/): one event gives one sample
 * (counters, gauges, unknown) or the series Prometheus stores a histogram or summary as
 * (`_bucket` with `le`, `_sum`, `_count`; quantiles). Names and labels are translated as
 * router/sinks/prom_name.h says; what the model holds as deltas (statsd counters and
 * observations, Lua's aggregates, OTLP delta sums and histograms) becomes cumulative per series,
 * kept in a table of at most max_series series for the encoder's life. A request holds its series
 * sorted by their labels, each series' samples in time order, one sample per timestamp (the last
 * one added wins). The sink thread owns an encoder and is its only user. */
#ifndef SPILLWAY_PROM_ENCODE_H
#define SPILLWAY_PROM_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/cfg.h"

struct prom_encoder;

struct prom_encode_opts {
    const struct cfg_strmap *external_labels; /* added to every series that lacks them */
    const double *buckets; /* upper bounds for single observations (statsd timers), ascending */
    size_t nbuckets;
    int64_t max_series; /* series kept for delta -> cumulative (0: none may be) */
};

/* An encoder; opts and what it points at are borrowed for its life. NULL when out of memory. */
struct prom_encoder *prom_encoder_new(const struct prom_encode_opts *opts);
void prom_encoder_free(struct prom_encoder *e);

/* Starts a new request (the state of delta series carries over). */
void prom_encoder_reset(struct prom_encoder *e);

/* Adds the samples of event json[0..len) to the request. Returns 0; -EINVAL with *why (a string
 * of the encoder's, valid until the next call) when the event has no Prometheus form (not a metric,
 * a set, no name, no value, an exponential histogram with negative buckets, more delta series
 * than max_series...), adding nothing; -ENOMEM. */
int prom_encoder_add(struct prom_encoder *e, const char *json, size_t len, const char **why);

/* Samples and series in the request so far. */
size_t prom_encoder_samples(const struct prom_encoder *e);
size_t prom_encoder_series(const struct prom_encoder *e);
/* Series the delta table holds. */
size_t prom_encoder_state_series(const struct prom_encoder *e);

/* Replaces out's content with the request as a protobuf WriteRequest (not compressed). Returns 0
 * or -ENOMEM. */
int prom_encoder_write(struct prom_encoder *e, struct buf *out);

/* Formats v as Prometheus writes a bucket bound or quantile: the shortest text that reads back,
 * "+Inf", "-Inf", "NaN". Returns the length written into out (at least 32 bytes). */
size_t prom_format_float(double v, char *out);

#endif
