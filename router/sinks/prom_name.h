/* Prometheus names for the metric model's names and labels, as the OpenTelemetry
 * specification's Prometheus compatibility rules say (docs/metrics.md): a metric name keeps
 * [a-zA-Z0-9_:] and turns every other character into an underscore (a run of them into one),
 * never starts with a digit, and gets its unit (`seconds`, `bytes`, `requests_per_second`, `ratio`
 * for a gauge of unit 1) and, for a counter, `_total` as suffixes when it does not end with them;
 * a label name keeps [a-zA-Z0-9_], the rest an underscore, and one that starts with a digit gets
 * `key_` in front. Pure functions over struct buf, used by the prometheus_remote_write sink. */
#ifndef SPILLWAY_PROM_NAME_H
#define SPILLWAY_PROM_NAME_H

#include <stddef.h>

#include "core/buf.h"

enum prom_name_kind { PROM_NAME_GAUGE, PROM_NAME_COUNTER, PROM_NAME_OTHER };

/* Appends the Prometheus name of metric name[0..n) with unit[0..ulen) (ulen 0: none); kind
 * decides the `_total` and `ratio` suffixes. Returns 0 or -ENOMEM. */
int prom_metric_name(struct buf *out, const char *name, size_t n, const char *unit, size_t ulen,
                     enum prom_name_kind kind);

/* Appends label name n[0..len) made valid. Returns 0 or -ENOMEM. An empty name stays empty (the
 * caller drops such a label). */
int prom_label_name(struct buf *out, const char *n, size_t len);

/* Whether n[0..len) is a valid Prometheus metric name already. */
int prom_valid_metric_name(const char *n, size_t len);

#endif
