/* What `spillway ctl compare` shows about a sink beyond its counters: delivery latency (from
 * the event's received_at to the destination accepting it) as a log-scale histogram, and an
 * order-independent digest (count, sum and xor of XXH3 hashes of the delivered records) per
 * 10-second window of received_at, so two sinks fed the same stream can be checked for having
 * accepted the same events. Updated by the sink's thread, read by the admin thread. */
#ifndef SPILLWAY_SINKSTAT_H
#define SPILLWAY_SINKSTAT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SINKSTAT_WINDOWS 32
#define SINKSTAT_BUCKETS 40 /* bucket i: latency in [2^i, 2^(i+1)) microseconds */

struct sinkstat_window {
    char key[19]; /* "YYYY-MM-DDTHH:MM:S" (10 s), "" unused */
    uint64_t count;
    uint64_t sum;
    uint64_t xor ;
};

struct sinkstat {
    pthread_mutex_t mu;
    struct sinkstat_window win[SINKSTAT_WINDOWS];
    int next; /* ring position of the next new window */
    int last; /* the window the previous record went to: most of a span's records share it */
    uint64_t lat[SINKSTAT_BUCKETS];
    uint64_t lat_n;
    uint64_t sampled; /* records seen, to sample latency 1 in 16 */
};

void sinkstat_init(struct sinkstat *s);
void sinkstat_free(struct sinkstat *s);
/* Records delivered records (canonical events' JSON) between sinkstat_begin and sinkstat_end,
 * which hold the lock once for a whole span rather than once per record. */
void sinkstat_begin(struct sinkstat *s);
void sinkstat_record(struct sinkstat *s, const char *json, size_t len, int64_t now_ns);
void sinkstat_end(struct sinkstat *s);
/* Latency percentile in microseconds (upper bucket bound), 0 when nothing was measured. */
double sinkstat_percentile(struct sinkstat *s, double p);
/* Copies the windows (newest first) into out[SINKSTAT_WINDOWS]; returns how many. */
int sinkstat_windows(struct sinkstat *s, struct sinkstat_window *out);

#endif
