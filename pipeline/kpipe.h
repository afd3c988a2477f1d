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

#include "stats.h"

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
/* Stops consuming, waits for the workers and sinks to finish what was consumed (until
 * deadline_ns), commits, flushes the producer. */
void kpipe_stop(struct kpipe *kp, int64_t deadline_ns);
/* After the workers and sinks have stopped: commits everything they finished. */
void kpipe_commit_final(struct kpipe *kp);
void kpipe_free(struct kpipe *kp);

/* Producer side: the topic's partition count (the collector stages one batch per Kafka
 * partition) and sending a batch of records to Kafka partition kp_partition. Returns the bytes
 * of whole records taken (the rest stays staged: Kafka cannot take more now). */
int kpipe_partitions(const struct kpipe *kp);
size_t kpipe_send(struct kpipe *kp, int kp_partition, const char *batch, size_t len);

/* Worker side: worker p has routed `processed` records in total and pushed them to the sinks,
 * whose `in` counters were then sink_in[0..n). */
void kpipe_worker_done(struct kpipe *kp, int p, uint64_t processed, const uint64_t *sink_in, int n);

struct kpipe_stats {
    counter_t produced;
    counter_t consumed;
    counter_t committed;
    counter_t refused;
};
struct kpipe_stats *kpipe_stats(struct kpipe *kp);

#endif
