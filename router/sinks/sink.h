/* Sinks: destinations behind their own bounded queue and their own thread, so a slow or dead
 * sink never stalls another while its queue has room. Every sink type is a typed descriptor
 * (struct sink_type: its config keys and its functions, one file each) registered in sink.c. Router
 * workers append serialized events (one JSON object per record, no newline) to the sink's queue;
 * the sink thread hands whole spans of records to type->write, which returns OK (every record
 * accepted except those it refused with sink_refuse), RETRY (the same span comes back after a
 * backoff; the type remembers what it already delivered or refused) or FAIL (the rest dropped for
 * good, counted). A sink failing long enough opens its circuit: it then only probes its destination
 * now and then until one attempt succeeds. The sink set (struct sinks) owns every sink, its queue
 * and its thread. */
#ifndef SPILLWAY_SINK_H
#define SPILLWAY_SINK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/stats.h"
#include "router/sinks/sinkstat.h"

enum sink_result { SINK_OK = 0, SINK_RETRY = 1, SINK_FAIL = 2 };
enum sink_when_full { SINK_FULL_BLOCK, SINK_FULL_DROP_NEWEST };

struct sink;
struct ring;

/* A sink type: what `type:` names in the config. Each is one file (sink_<x>.c) defining a const
 * struct sink_type, registered by one line in sink.c. */
struct sink_type {
    /* Name, one-line description, option keys and the size of the options struct (which starts
     * with struct sink_common): the config loader fills one per configured sink. */
    struct cfg_section cfg;
    /* Called once before the thread starts (on the main thread): open files, check addresses.
     * Returns 0 or a negative errno with a message in err. */
    int (*open)(struct sink *s, char *err, size_t errlen);
    /* Delivers nrec records laid out as ring records in span[0..len). */
    enum sink_result (*write)(struct sink *s, const char *span, size_t len, uint64_t nrec);
    /* Called when the queue is idle (time-based batching, fsync). May be NULL. */
    enum sink_result (*flush)(struct sink *s);
    /* SIGHUP: reopen files (logrotate). Runs on the sink thread. May be NULL. */
    void (*reopen)(struct sink *s);
    void (*close)(struct sink *s);
};

/* Keys every sink accepts. Every sink's opts struct starts with this. */
struct sink_common {
    int when_full;
    int64_t batch_bytes;   /* wait for this much queued before delivering (0: do not wait) */
    int64_t batch_timeout; /* ... but no longer than this */
    int64_t batch_events;  /* ... or until this many records are queued (0: no count) */
    int64_t circuit_after; /* failing this long (and CIRCUIT_MIN_FAILS times) opens the circuit */
    int64_t circuit_wait;  /* the longest wait between probes while it is open */
};

/* Batching keys, for sinks whose destination prefers fewer, larger requests. */
#define SINK_BATCH_KEYS(type, bytes, timeout)                                                      \
    {"batch_max_bytes",                                                                            \
     CFG_SIZE,                                                                                     \
     offsetof(type, common.batch_bytes),                                                           \
     bytes,                                                                                        \
     "Deliver once this much is queued...",                                                        \
     0,                                                                                            \
     0,                                                                                            \
     268435456},                                                                                   \
    {                                                                                              \
        "batch_timeout", CFG_DURATION, offsetof(type, common.batch_timeout), timeout,              \
            "...or once the oldest queued event has waited this long.", 0, 0, 3600                 \
    }

/* clang-format off */
#define SINK_COMMON_KEYS(type)                                                                     \
    {"when_full", CFG_ENUM, offsetof(type, common.when_full), "block",                             \
     "When this sink's queue is full: block (the router workers wait for room, which holds "       \
     "every sink behind them and then the inputs: backpressure by design), or drop the newest "    \
     "event (counted), so this sink never holds the others back. A shadow copy is always "         \
     "dropped, never blocks.", 0, 0, 0, sink_when_full_names},                                     \
    {"circuit_after", CFG_DURATION, offsetof(type, common.circuit_after), "10s",                   \
     "A sink whose attempts have all failed for this long (5 at least) opens its circuit: it "     \
     "stops retrying at the backoff pace and probes the destination with one batch at a time, "    \
     "waiting up to circuit_wait between probes, until one succeeds. 0: never.", 0, 0, 86400},    \
    {"circuit_wait", CFG_DURATION, offsetof(type, common.circuit_wait), "30s",                     \
     "While the circuit is open: the longest wait between probes (the backoff keeps doubling "     \
     "from the 5 s retry cap up to it).", 0, 5, 3600}
/* clang-format on */

extern const char *const sink_when_full_names[];
/* The registry: a sink type is its own file, which defines its descriptor, and one line here.
 * The order is the config reference's. */
#define SINK_TYPES(X)                                                                              \
    X(sink_file)                                                                                   \
    X(sink_stdout)                                                                                 \
    X(sink_null)                                                                                   \
    X(sink_http)                                                                                   \
    X(sink_otlp)                                                                                   \
    X(sink_prom)                                                                                   \
    X(sink_tcp)                                                                                    \
    X(sink_unix)                                                                                   \
    X(sink_kafka)

#define SINK_TYPE_DECLARE(t) extern const struct sink_type t;
SINK_TYPES(SINK_TYPE_DECLARE)

/* Every sink type, NULL-terminated (sink.c, from SINK_TYPES). */
extern const struct sink_type *const sink_types[];
/* `sinks:` in the config: a list whose items pick their type from the registry. */
extern const struct cfg_section sink_list_section;

/* What `spillway ctl sinks` shows as state: delivering, retrying with backoff, or failing for
 * so long that it only probes now and then (circuit open). */
enum sink_health { SINK_UP, SINK_RETRYING, SINK_CIRCUIT_OPEN };
extern const char *const sink_health_names[]; /* "up", "retrying", "circuit open" */

struct sinks;

struct sink {
    struct sinks *set;
    const struct sink_type *type;
    const char *name; /* borrowed from the config */
    const void *opts; /* the type's options struct, filled from type->cfg.keys (borrowed) */
    int id;
    int when_full;
    struct ring *q;
    struct sink_stats stats;
    pthread_t thread;
    int started;
    _Atomic int reopen; /* set by SIGHUP, acted on by the sink thread */
    _Atomic int health; /* enum sink_health */
    /* The sink thread's own: records of the span being delivered that the destination refused
     * (their data pointers, in the order refused), the current run of failed attempts, and the
     * jitter's random state. */
    const char **refused;
    size_t nrefused, refused_cap;
    uint64_t unlisted;     /* refused, but not listed (no memory for the list) */
    uint64_t span_records; /* records in the span being delivered */
    uint64_t accepted;     /* of those, records the destination took already (sink_accepted) */
    int64_t retry_after;   /* the wait the destination asked for with the last RETRY (ns) */
    unsigned fails;
    int64_t failing_since;
    uint64_t rng;
    char last_error[256]; /* under stat.mu */
    struct sinkstat stat;
    void *priv; /* the type's own state */
};

/* For implementations: what went wrong (shown by `spillway ctl sinks`); printf-style. */
void sink_set_error(struct sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For implementations, from write(): the destination refused the record rec[0..len) for good.
 * rec must be a record's data in the span being written (RING_REC_DATA). The record is sent to
 * the dead_letter sink as {"timestamp","kind","source":"sink:NAME","error","event"} (counted when
 * there is none), counted as failed, and left out of delivered, the compare digest and the
 * latency. Refusing the same record again while delivering the same span does nothing. */
void sink_refuse(struct sink *s, const char *rec, size_t len, const char *error);

/* For implementations, from write() before it returns SINK_RETRY: the destination asked to be
 * tried again no sooner than ns from now (HTTP Retry-After, gRPC's RetryInfo). The next wait is
 * that long (at most SINK_RETRY_AFTER_MAX_NS), or the backoff's when that is longer; the backoff
 * goes on doubling as usual. */
void sink_retry_after(struct sink *s, int64_t ns);
/* For implementations that deliver a span in several requests: the destination took n more of
 * the span's records. When the span is given up at the shutdown deadline, those count as
 * delivered, not as abandoned. (A span delivered whole needs no call: OK says it all.) */
void sink_accepted(struct sink *s, uint64_t n);
#define SINK_RETRY_AFTER_MAX_NS (300 * 1000000000LL)

/* Iterates the records of a span. */
#define SINK_FOREACH(rec, span, len)                                                               \
    for (const struct ring_rec *rec = (const struct ring_rec *)(span);                             \
         (const char *)rec < (span) + (len); rec = RING_REC_NEXT(rec))

struct sinks;

/* Creates one sink per config item, each with a queue of queue_bytes; dead_letter names the
 * sink that receives records a destination refuses ("" for none). NULL on failure. */
struct sinks *sinks_new(const struct cfg_list *list, size_t queue_bytes, const char *dead_letter,
                        char *err, size_t errlen);
void sinks_free(struct sinks *ss);
int sinks_count(const struct sinks *ss);
struct sink *sinks_get(struct sinks *ss, int i);
/* Index of the sink named name, or -1. */
int sinks_find(const struct sinks *ss, const char *name);

/* Opens every sink and starts its thread. Returns 0 or a negative errno (message in err). */
int sinks_start(struct sinks *ss, char *err, size_t errlen);
/* After the last producer is gone: each sink delivers what is queued, giving up at deadline_ns
 * (monotonic); then its thread ends. Returns the number of records left undelivered. */
uint64_t sinks_stop(struct sinks *ss, int64_t deadline_ns);
/* Asks every sink to reopen its files (SIGHUP). */
void sinks_reopen(struct sinks *ss);

/* The shutdown deadline (monotonic ns; 0 while running), set when shutdown begins so that
 * workers blocked on a full queue and sinks stuck retrying give up in time. */
void sinks_set_deadline(struct sinks *ss, int64_t deadline_ns);
int64_t sinks_deadline(const struct sinks *ss);
int sinks_past_deadline(const struct sinks *ss);

#endif
