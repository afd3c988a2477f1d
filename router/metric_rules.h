/* Logs to metrics declared in a route's config (metrics.declare: count, observe, gauge):
 * what spillway.metric.count/observe/gauge would add for each event, read from the event's
 * fields in C, with no script. The rules are built once, read by every worker without a lock;
 * each worker adds into its own aggregate of the route (metric_agg.h). A count and a histogram
 * per service add 2,265 instructions per event to S2's route where the same two calls in its
 * script add 5,448 (bench/count.sh C2 C2MD C2M): no Lua call, proxy or string push, and each
 * field looked up once. */
#ifndef SPILLWAY_METRIC_RULES_H
#define SPILLWAY_METRIC_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/eview.h"
#include "router/metric_agg.h"
#include "router/route.h"

struct metric_rules;

/* The rules of route `route`'s metrics config m into *out (NULL when it declares none).
 * Returns 0, -EINVAL with err saying which rule is wrong, or -ENOMEM. */
int metric_rules_build(const struct route_metrics_config *m, const char *route,
                       struct metric_rules **out, char *err, size_t errlen);
void metric_rules_free(struct metric_rules *r);

/* Adds what each rule makes of event ev to agg (scratch: the worker's, for label values that
 * must be unescaped). Returns how many values were not numbers (metric_invalid); additions
 * refused by max_series are counted by agg itself. -ENOMEM when out of memory. */
int64_t metric_rules_apply(const struct metric_rules *r, struct eview *ev, struct metric_agg *agg,
                           struct buf *scratch);

#endif
