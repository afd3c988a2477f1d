/* Counters for every stage, updated with relaxed atomics once per batch where possible and read
 * by the admin side. The balance each stage keeps: in = out + held + dropped + dead-lettered. */
#ifndef SPILLWAY_STATS_H
#define SPILLWAY_STATS_H

#include <stdatomic.h>
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
    counter_t received;     /* records framed (good and bad) */
    counter_t bytes;        /* raw bytes read */
    counter_t accepted;     /* in a ring, spilled or staged (dead letters too) */
    counter_t dead_letter;  /* failed to parse (then accepted or dropped like the rest) */
    counter_t dropped;      /* a full pipeline (drop_newest), UDP while blocked, no memory */
    counter_t connections;  /* currently open */
    counter_t refused;      /* connections or requests refused (limits, pipeline full) */
    counter_t rejected;     /* requests answered with a 4xx (bad body, too large) */
    counter_t syslog_loose; /* syslog messages kept with their raw text (not RFC 5424/3164) */
    counter_t overflow;     /* udp: datagrams the kernel dropped, receive buffer full */
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
    counter_t errors; /* script errors (event dead-lettered) */
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
};

#endif
