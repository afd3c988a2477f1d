/* Kafka as the pipeline (pipeline.mode: kafka). The collector role produces every record to
 * the topic (idempotent, acks=all, its Kafka partition chosen by the partition key's hash, so a
 * key keeps its order); the router role consumes the topic in a consumer group
 * (pipeline.kafka.group), feeds the partition rings, and commits an offset only once every sink
 * has finished (delivered, dead-lettered or abandoned) everything queued up to the moment the
 * worker finished routing that record: at-least-once, so a router killed with SIGKILL loses
 * nothing that was produced. Several processes in the group share the topic's partitions. The
 * pipeline owns the kpipe. */
#ifndef SPILLWAY_KPIPE_H
#define SPILLWAY_KPIPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/stats.h"

struct kpipe;
struct pipeline;
struct pipeline_config;

/* How the router learns that sinks finished: fills done[i] for each of the n sinks with the
 * records that left its queue, and in[i] with the records that entered it. */
typedef void (*kpipe_sinks_fn)(void *ud, uint64_t *in, uint64_t *done, int n);

/* produce / consume: which roles this process plays. NULL with a message in err. */
struct kpipe *kpipe_new(const struct pipeline_config *cfg, struct pipeline *pl, int produce,
                        int consume, size_t producer_bytes, char *err, size_t errlen);
/* The router side needs the sinks: nsinks and how to read their counters. */
void kpipe_set_sinks(struct kpipe *kp, int nsinks, kpipe_sinks_fn fn, void *ud);
int kpipe_start(struct kpipe *kp, char *err, size_t errlen);
/* Stops consuming and flushes the producer until deadline_ns. Returns the records produced
 * that Kafka had not acknowledged by then: they may be lost. */
uint64_t kpipe_stop(struct kpipe *kp, int64_t deadline_ns);
/* After the workers and sinks have stopped: commits everything they finished, unless the sinks
 * gave up on records at the deadline (sinks_lost > 0): a commit could then cover records never
 * delivered, so everything since the last periodic commit is consumed again instead. Returns
 * how many of sinks_lost are therefore not lost (all of them when this process consumes). */
uint64_t kpipe_commit_final(struct kpipe *kp, uint64_t sinks_lost);
void kpipe_free(struct kpipe *kp);

/* Producer side: the topic's partition count (the collector stages one batch per Kafka
 * partition) and sending a batch of records to Kafka partition kp_partition. Returns the bytes
 * of whole records taken (the rest stays staged: Kafka cannot take more now). */
int kpipe_partitions(const struct kpipe *kp);
/* Bytes in librdkafka's producer queue (inside pipeline.memory_limit). */
int64_t kpipe_queued_bytes(struct kpipe *kp);
size_t kpipe_send(struct kpipe *kp, int kp_partition, const char *batch, size_t len);

/* Worker side: worker p has routed `processed` records in total and pushed them to the sinks,
 * whose queues had then taken sink_in[0..n) records (ring_pushed): once each sink's `done`
 * reaches those, the records are safe. */
void kpipe_worker_done(struct kpipe *kp, int p, uint64_t processed, const uint64_t *sink_in, int n);

struct kpipe_stats *kpipe_stats(struct kpipe *kp);

#endif
