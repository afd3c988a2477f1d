/* A spilled record's Kafka key, and how the replay tells a second copy of a record from a new
 * one. The key is the run that spilled the record and its place in that run's sequence for its
 * partition (1, 2, ...), both little endian uint64. A broker deduplicates an idempotent
 * producer's retries itself; one that does not (librdkafka's mock cluster, a Kafka-compatible
 * store without idempotence, Kafka after the producer reset its idempotence state) keeps a
 * retried record twice, and the replay must not deliver it twice.
 *
 * The replay remembers, per partition, which sequence numbers of the newest run it took: all of
 * them up to a mark, and those above it within a window of SPILL_WINDOW. A record of that run
 * taken already is a copy. One not taken is new even when it comes after higher ones (a broker
 * that does not check sequences may write a retried request after the one that followed it),
 * so nothing is skipped that was not taken. A gap older than the window (a record Kafka refused
 * for good, counted as lost) is given up on: the window is wider than what the producer can
 * have in flight (5 requests of 10,000 records by default). Records without our key, and those
 * of another run, are always taken: the rule errs only towards delivering. */
#ifndef SPILLWAY_SPILL_KEY_H
#define SPILLWAY_SPILL_KEY_H

#include <stddef.h>
#include <stdint.h>

#define SPILL_KEY       16
#define SPILL_BATCH_KEY 24 /* the key of a message of several records */
#define SPILL_WINDOW    65536

/* What is saved with a replay offset: every record of run up to seq was taken. run 0: none. */
struct spill_mark {
    uint64_t run, seq;
};

struct spill_seen {
    struct spill_mark mark;
    uint64_t above[SPILL_WINDOW / 64]; /* bit s % SPILL_WINDOW: s in (mark.seq, +WINDOW] taken */
};

void spill_key(unsigned char *key, uint64_t run, uint64_t seq);
/* The key of a Kafka message holding several records: the run, the message's place in the run's
 * sequence for its partition (the copy window counts messages), then the place of its first
 * record in the run's records for the partition (1, 2, ...; what a gap left by retention is
 * counted in), little endian. */
void spill_batch_key(unsigned char *key, uint64_t run, uint64_t seq, uint64_t first);
/* Reads a key of ours (SPILL_KEY or SPILL_BATCH_KEY bytes): 1 with run, seq and first (0 for a
 * one-record key); 0 for any other key. */
int spill_key_read(const void *key, size_t len, uint64_t *run, uint64_t *seq, uint64_t *first);

/* Starts over from a saved mark (nothing above it known). */
void spill_seen_reset(struct spill_seen *s, struct spill_mark mark);

/* 1 when the record keyed key (len bytes) is a copy of one taken already; otherwise notes it as
 * taken and returns 0. */
int spill_seen_copy(struct spill_seen *s, const void *key, size_t len);

#endif
