#include "router/route.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

static const char *const rule_types[] = {"count", "observe", "gauge", NULL};

static const struct cfg_key rule_keys[] = {
    {"type", CFG_ENUM, offsetof(struct metric_rule_config, type), NULL,
     "count: a counter, 1 (or the field's value) per event; observe: the field's value into a "
     "histogram of metrics.buckets; gauge: the series takes the last event's value.",
     CFG_REQUIRED, 0, 0, rule_types},
    {"name", CFG_STRING, offsetof(struct metric_rule_config, name), NULL,
     "The metric's name (1 to 255 bytes).", CFG_REQUIRED},
    {"field", CFG_STRING, offsetof(struct metric_rule_config, field), "",
     "The field holding the value (dots for nested fields): a number, or a string that is one. "
     "Required for observe and gauge: an event without it adds nothing, one whose value is not "
     "a number is counted (metric_invalid). Optional for count: then only events that have it "
     "count, each adding its value when it is a number, else 1."},
    {"scale", CFG_DOUBLE, offsetof(struct metric_rule_config, scale), "1",
     "What the value is multiplied by (0.001: milliseconds to seconds)."},
    {"labels", CFG_STRMAP, offsetof(struct metric_rule_config, labels), NULL,
     "Label name: the field whose value it takes (dots for nested fields); an event without "
     "that field makes no such label."},
    {0},
};

static const struct cfg_section rule_section = {
    .name = "metric", .size = sizeof(struct metric_rule_config), .keys = rule_keys};

static const struct cfg_key metrics_keys[] = {
    {"interval", CFG_DURATION, offsetof(struct route_metrics_config, interval), "10s",
     "How often the aggregates of spillway.metric.* are flushed as metric events (each worker "
     "flushes its own).",
     0, 0.1, 86400},
    {"max_series", CFG_INT, offsetof(struct route_metrics_config, max_series), "10000",
     "Series one worker aggregates for the route between two flushes; what would make one more "
     "is refused and counted (metric_overflow).",
     0, 1, 10000000},
    {"buckets", CFG_STRLIST, offsetof(struct route_metrics_config, buckets), NULL,
     "Upper bounds of spillway.metric.observe's histogram buckets, ascending (default: "
     "Prometheus' 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10)."},
    {"route", CFG_STRING, offsetof(struct route_metrics_config, route), "",
     "The route whose sinks (and shadow sinks) receive the metric events (default: this one's); "
     "its script and rate do not apply to them."},
    {"declare", CFG_LIST, offsetof(struct route_metrics_config, declare), NULL,
     "Metrics declared without a script, from each event the route takes (before its script "
     "runs): what spillway.metric.count, observe or gauge would add.",
     0, 0, 0, NULL, &rule_section},
    {0},
};

static const struct cfg_section metrics_section = {
    .name = "metrics", .size = sizeof(struct route_metrics_config), .keys = metrics_keys};

static const char *const default_buckets[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                              "0.5",   "1",    "2.5",   "5",    "10"};

int route_metric_buckets(const struct route_metrics_config *m, double *out, size_t max, size_t *n,
                         int *bad)
{
    int count = m->buckets.n;
    char *const *text = m->buckets.v;
    if (count == 0) {
        count = (int)(sizeof(default_buckets) / sizeof(default_buckets[0]));
        text = (char *const *)default_buckets;
    }
    *n = 0;
    for (int i = 0; i < count; i++) {
        char *end;
        double v = strtod(text[i], &end);
        if (end == text[i] || *end || !isfinite(v) || (i && !(v > out[i - 1])) ||
            (size_t)i >= max) {
            *bad = i;
            return -EINVAL;
        }
        out[(*n)++] = v;
    }
    return 0;
}

static const struct cfg_key route_keys[] = {
    {"name", CFG_STRING, offsetof(struct route_config, name), NULL, "Unique route name.",
     CFG_REQUIRED},
    {"script", CFG_STRING, offsetof(struct route_config, script), "",
     "Lua script in router.scripts defining process(ev). Without one the route keeps "
     "spillway.sample(ev[sample_key])."},
    {"sample_rate", CFG_DOUBLE, offsetof(struct route_config, sample_rate), "1.0",
     "The rate spillway.sample() keeps (0..1); can be dialed at runtime.", 0, 0, 1},
    {"sample_key", CFG_STRING, offsetof(struct route_config, sample_key), "trace_id",
     "Field a route without a script samples by (dots for nested fields)."},
    {"sinks", CFG_STRLIST, offsetof(struct route_config, sinks), NULL,
     "Sinks that receive what the route keeps."},
    {"shadow", CFG_STRLIST, offsetof(struct route_config, shadow), NULL,
     "Sinks that receive an identical copy, dropped (and counted) rather than ever slowing "
     "the primary sinks."},
    {"enabled", CFG_BOOL, offsetof(struct route_config, enabled), "true",
     "A disabled route sees no events."},
    {"stop", CFG_BOOL, offsetof(struct route_config, stop), "false",
     "Later routes do not see what this route kept."},
    {"metrics", CFG_SECTION, offsetof(struct route_config, metrics), NULL,
     "Logs to metrics: what the script adds with spillway.metric.count/observe/gauge and what "
     "metrics.declare declares.",
     0, 0, 0, NULL, &metrics_section},
    {0},
};

const struct cfg_section route_config_section = {
    .name = "route", .size = sizeof(struct route_config), .keys = route_keys};

static const struct cfg_key router_keys[] = {
    {"scripts", CFG_STRING, offsetof(struct router_config, scripts), "./scripts",
     "Directory of the Lua route scripts."},
    {"max_instructions", CFG_INT, offsetof(struct router_config, max_instructions), "1000000",
     "Lua instructions one process() call may run before it fails (event dead-lettered).", 0, 1000,
     1000000000},
    {"lua_memory", CFG_SIZE, offsetof(struct router_config, lua_memory), "64MiB",
     "Memory each worker's Lua state may use; an allocation past it fails that call.", 0, 1048576,
     17179869184.0},
    {0},
};

const struct cfg_section router_config_section = {
    .name = "router", .size = sizeof(struct router_config), .keys = router_keys};
