/* Kafka spillover (pipeline.when_full: spill). When a partition's ring is full, its records go
 * to the spill topic (Kafka partition = our partition, so order is kept), and from then on all
 * of that partition's new records follow them into Kafka. A replay thread pulls them back into
 * the ring whenever it is under half full, in order, and the partition leaves spill mode only
 * once everything it spilled has been replayed. Replay offsets are kept in the store, so
 * a restart resumes a backlog where it stopped. When Kafka cannot take more (down, or its
 * local queue full), the records stay staged and the inputs are paused: spill falls back to
 * block, nothing is dropped. The pipeline owns the spill. */
#ifndef SPILLWAY_SPILL_H
#define SPILLWAY_SPILL_H

#include <stddef.h>
#include <stdint.h>

#include "core/stats.h"

struct spill;
struct pipeline;
struct pipeline_config;
struct store;

/* Connects, checks the topic has at least `partitions` partitions, and finds any backlog left
 * by a previous run. NULL with a message in err. */
struct spill *spill_new(const struct pipeline_config *cfg, struct pipeline *pl, int partitions,
                        struct store *st, size_t producer_bytes, char *err, size_t errlen);
/* Starts the replay thread. */
int spill_start(struct spill *sp, char *err, size_t errlen);
/* Flushes what was handed to Kafka (until deadline_ns) and stops the replay thread. Returns
 * the records spilled that Kafka had not acknowledged by then: they may be lost. */
uint64_t spill_stop(struct spill *sp, int64_t deadline_ns);
void spill_free(struct spill *sp);

/* Producer side (the collector thread): whether partition p must send new records to Kafka,
 * and sending them. spill_send returns the bytes of whole records taken from batch (the rest
 * stays staged: Kafka could not take it now). */
int spill_active(struct spill *sp, int p);
size_t spill_send(struct spill *sp, int p, const char *batch, size_t len);

struct spill_stats *spill_stats(struct spill *sp, int p);
/* Records of partition p sent to Kafka and not acknowledged yet. */
int64_t spill_unacked(struct spill *sp, int p);
/* Bytes in librdkafka's producer queue (inside pipeline.memory_limit). */
int64_t spill_queued_bytes(struct spill *sp);

#endif
