/* Counters for every stage, updated with relaxed atomics once per batch where possible and read
 * by the admin side. The balance each stage keeps: in = out + held + dropped + dead-lettered.
 *
 * Each stage's counters are described once, in a table of struct stat_field (stats.c): the
 * `stats` document (`spillway ctl stats --json`), /metrics, the balance check and `spillway
 * ctl top` all walk these tables, and test_docs checks docs/admin.md and docs/operations.md
 * against what they produce. Adding a counter is a field here and a row there. */
#ifndef SPILLWAY_STATS_H
#define SPILLWAY_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef _Atomic uint64_t counter_t;

static inline void counter_add(counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t counter_get(const counter_t *c)
{
    return atomic_load_explicit((counter_t *)c, memory_order_relaxed);
}

struct input_stats {
    counter_t received;        /* records framed (good and bad) */
    counter_t bytes;           /* raw bytes read */
    counter_t accepted;        /* in a ring, spilled or staged (dead letters too) */
    counter_t dead_letter;     /* failed to parse (then accepted or dropped like the rest) */
    counter_t dropped;         /* a full pipeline (drop_newest), UDP while blocked, no memory */
    counter_t connections;     /* currently open */
    counter_t refused;         /* connections or requests refused (limits, pipeline full) */
    counter_t rejected;        /* requests answered with a 4xx (bad body, too large) */
    counter_t syslog_loose;    /* syslog messages kept with their raw text (not RFC 5424/3164) */
    counter_t overflow;        /* udp: datagrams the kernel dropped, receive buffer full */
    counter_t gelf_expired;    /* chunked GELF messages incomplete after 5 s (dead-lettered) */
    counter_t gelf_refused;    /* GELF chunks refused: duplicate, bad header, memory bound */
    counter_t protocol_errors; /* connections closed on a protocol error (forward) */
    counter_t read_errors;     /* read errors carried on past (journald: a corrupt file) */
    counter_t scrapes;         /* prometheus_scrape: scrapes made (each gives up 1 or 0) */
    counter_t scrape_failed;   /* prometheus_scrape: of those, or skipped: up 0 */
};

struct partition_stats {
    counter_t in;      /* records pushed into the ring */
    counter_t out;     /* records taken by the worker */
    counter_t dropped; /* refused when full */
    counter_t dead;    /* of out: dead letters (the rest were events offered to the routes) */
};

struct route_stats {
    counter_t in;       /* events offered */
    counter_t kept;     /* process() returned true */
    counter_t filtered; /* false/nil (includes sampled out) */
    counter_t sampled_out;
    counter_t errors;          /* script errors (event dead-lettered) */
    counter_t metric_events;   /* spillway.metric.* aggregates flushed as metric events */
    counter_t metric_overflow; /* spillway.metric.* additions refused: max_series held */
    counter_t metric_invalid;  /* declared metrics' values that were not numbers */
};

struct sink_stats {
    counter_t in;        /* records queued */
    counter_t delivered; /* accepted by the destination */
    counter_t failed;    /* rejected for good */
    counter_t dropped;   /* refused by a full queue (drop_newest) or abandoned at shutdown */
    counter_t retries;
    counter_t bytes; /* delivered bytes */
    counter_t done;  /* records that left the queue (delivered, failed or abandoned), in queue
                        order: Kafka mode commits offsets against it */
    /* Of dropped, the records refused at the queue's door (they never were in `in`): a full
     * queue (drop_newest, or block past the shutdown deadline) and a full shadow queue. The rest
     * of dropped was in the queue and abandoned at shutdown. */
    counter_t dropped_full;
    counter_t dropped_shadow;
    counter_t dropped_shutdown; /* of dropped: queued, then abandoned at shutdown */
    /* Of the requests a prometheus_remote_write destination refused: for samples out of order
     * (or too old), and for duplicate samples (another value at the same time). */
    counter_t out_of_order;
    counter_t duplicate;
};

struct spill_stats {
    counter_t spilled;    /* records sent to Kafka */
    counter_t replayed;   /* records pulled back into the ring */
    counter_t refused;    /* times Kafka could not take more (fell back to block) */
    counter_t lost;       /* records lost: deleted (retention) before their replay, or refused
                           * for good by Kafka (a fatal producer error) */
    counter_t duplicates; /* second copies of spilled records (a producer retry Kafka kept
                           * twice) recognised and not replayed */
};

struct kpipe_stats {
    counter_t produced;
    counter_t consumed;
    counter_t committed;
    counter_t refused; /* times Kafka could not take more: the inputs blocked */
    counter_t lost;    /* records Kafka refused for good (a fatal producer error) */
};

struct router_stats {
    counter_t reloads;
    counter_t reload_errors;
    counter_t unrouted;         /* events no route kept */
    counter_t dead_letter;      /* records sent to the dead-letter sink */
    counter_t dead_unsunk;      /* dead letters with no dead_letter sink (counted, logged) */
    counter_t serialize_errors; /* of route errors: events that could not be serialized */
    counter_t fallback_dropped; /* unrouted events the fallback sink could not be given */
};

/* --- The descriptions ------------------------------------------------------------------- */

enum stat_kind {
    STAT_COUNTER, /* only grows: a Prometheus counter, named ..._total */
    STAT_GAUGE,   /* goes up and down (a level, a state, a setting) */
};

enum {
    STAT_IN = 1 << 0,       /* the stage's balance: the field counting what came in... */
    STAT_OUT = 1 << 1,      /* ...equals the sum of these (what went out, is held, was dropped) */
    STAT_TOP = 1 << 2,      /* a column of `spillway ctl top` */
    STAT_NOMETRIC = 1 << 3, /* in the stats document only (/metrics has it another way) */
    STAT_SORT = 1 << 4,     /* `ctl top` sorts the stage's rows by this one's rate */
    STAT_BRIEF = 1 << 5,    /* `ctl stats` always shows it (the others when not 0) */
};

/* The offset of a value the control plane computes when stats asks (the records a ring holds,
 * a rate in force) rather than a counter_t of the stage's struct. */
#define STAT_COMPUTED SIZE_MAX

struct stat_field {
    const char *name; /* its member in the stats document */
    enum stat_kind kind;
    size_t offset; /* of its counter_t in the stage's struct, or STAT_COMPUTED */
    unsigned flags;
    const char *help; /* what it counts: HELP on /metrics */
    /* Its /metrics family; NULL: spillway_<stage>_<name>, with _total for a counter. */
    const char *metric;
};

/* A stage of the stats document: an array of elements (inputs, partitions, routes, sinks) or
 * one object (router, kafka, memory, collector). Two tables may describe one stage when its
 * values come from two structs (partitions and their spill counters). */
struct stat_stage {
    const char *name; /* the metric prefix and label: "input" */
    const char *key;  /* its member in the stats document: "inputs" */
    const char *id;   /* the member that names an element ("name", "partition"); NULL: one object */
    const char *nested; /* the member of an element holding these fields ("counters"), or NULL */
    const struct stat_field *fields; /* ends with a NULL name */
};

extern const struct stat_stage stat_inputs, stat_partitions, stat_spill, stat_route_counters,
    stat_routes, stat_sinks, stat_router, stat_kafka, stat_memory, stat_collector;
/* Every table, in the order /metrics serves them; NULL-terminated. */
extern const struct stat_stage *const stat_stages[];

static inline uint64_t stat_value(const struct stat_field *f, const void *stats)
{
    return counter_get((const counter_t *)((const char *)stats + f->offset));
}

/* Sets every counter of stage s (read from its struct at stats) as a member of obj; the caller
 * sets the computed fields. */
struct json_t;
void stat_put(const struct stat_stage *s, const void *stats, struct json_t *obj);

/* In a stats document: the object holding stage s's fields for element e (e itself, or its
 * nested member), and the name of e (its id member as text, into buf). */
struct json_t *stat_fields_of(const struct stat_stage *s, struct json_t *e);
const char *stat_id_of(const struct stat_stage *s, struct json_t *e, char *buf, size_t len);

/* The /metrics family of field f of stage s, into out. */
void stat_metric(const struct stat_stage *s, const struct stat_field *f, char *out, size_t len);

#endif
