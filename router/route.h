/* Routes: a script (filter + transform), a sampling rate, primary sinks and shadow sinks. This
 * module declares the `routes:` and `router:` config keys and the runtime route table the
 * workers read. The router owns the table; workers read the atomics without locks. */
#ifndef SPILLWAY_ROUTE_H
#define SPILLWAY_ROUTE_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/stats.h"

struct metric_rules;

/* A metric declared in the config (metrics.declare): what a spillway.metric.* call would add
 * for each event the route takes, from the event's fields. */
struct metric_rule_config {
    int type; /* count, observe, gauge: enum metric_kind's order */
    char *name;
    char *field; /* the value (dots for nested fields); count: only events that have it */
    double scale;
    struct cfg_strmap labels; /* label name -> field */
};

/* A route's logs-to-metrics aggregates (spillway.metric.* and the declared metrics): flushed
 * every interval, as metric events, to the route's sinks or to those of the route named
 * `route`. */
struct route_metrics_config {
    int64_t interval;
    int64_t max_series;
    struct cfg_strlist buckets;
    char *route;
    struct cfg_list declare; /* of struct metric_rule_config */
};

struct route_config {
    char *name;
    char *script;
    double sample_rate;
    char *sample_key;
    struct cfg_strlist sinks;
    struct cfg_strlist shadow;
    int enabled;
    int stop;
    struct route_metrics_config metrics;
};

struct router_config {
    char *scripts;
    int64_t max_instructions;
    int64_t lua_memory;
};

extern const struct cfg_section route_config_section;

/* The histogram bounds of a route's metrics config: its buckets (numbers, ascending) or
 * Prometheus' default ones, into out[0..*n) (at most max). 0, or -EINVAL with the bad one's
 * index in *bad. */
int route_metric_buckets(const struct route_metrics_config *m, double *out, size_t max, size_t *n,
                         int *bad);
extern const struct cfg_section router_config_section;

/* Where a route's effective value comes from (shown by `spillway ctl routes`). */
struct route_origin {
    int overridden;     /* 0: the config's value */
    int64_t set_ns;     /* when the override was set (unix ns) */
    int64_t expires_ns; /* when it reverts (unix ns), 0: never */
    int64_t uid;        /* who set it */
};

/* Workers read only the atomics and, when script_gen moves, the source under the router's
 * lock; everything else is written by the control thread under that lock. */
struct route {
    const char *name;  /* borrowed from the config */
    char *script_path; /* resolved against router.scripts; NULL without a script */
    char *source;      /* the script's text as last published (under the lock) */
    size_t source_len;
    char *sample_key; /* as a path (NUL-separated segments) */
    size_t sample_key_len;
    int *sinks, nsinks;
    int *shadow, nshadow;
    int stop;
    double cfg_rate; /* as configured */
    int cfg_enabled;
    struct route_origin rate_origin;
    struct route_origin enabled_origin;
    char script_error[512]; /* last failed reload (file:line: message), "" when fine */
    int64_t script_loaded_ns;
    uint64_t reloads;
    _Atomic unsigned script_gen;
    _Atomic uint64_t rate_bits; /* the effective rate, a double's bits */
    _Atomic int enabled;
    /* Live taps (spillway ctl tap): how many want events before / after the transform, and
     * the small ring the workers copy them into (created by the admin side, never freed
     * before the route). What does not fit is skipped and counted. */
    _Atomic int taps_before, taps_after;
    struct ring *_Atomic tap;
    counter_t tap_skipped;
    struct route_stats stats;
    /* spillway.metric.*: the bounds of its histograms, how often its aggregates are flushed and
     * where they go (the sinks and shadows of route metrics_to: this one or the named one). */
    double *metric_buckets;
    size_t nmetric_buckets;
    int64_t metric_interval;
    int64_t metric_max_series;
    int metrics_to;
    struct metric_rules *metric_rules; /* declared in the config; NULL when none */
};

static inline double route_rate(const struct route *r)
{
    uint64_t b = atomic_load_explicit((_Atomic uint64_t *)&r->rate_bits, memory_order_relaxed);
    double d;
    __builtin_memcpy(&d, &b, sizeof(d));
    return d;
}

static inline void route_set_rate(struct route *r, double rate)
{
    uint64_t b;
    __builtin_memcpy(&b, &rate, sizeof(b));
    atomic_store_explicit(&r->rate_bits, b, memory_order_relaxed);
}

#endif
