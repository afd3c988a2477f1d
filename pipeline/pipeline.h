/* The in-memory pipeline: one bounded ring per partition between the collector and the router
 * workers, the partitioning of events by key, and the when_full policy. Producers (the
 * collector thread) batch records per partition in a struct pipeline_producer they own and
 * flush once per read; workers consume their ring directly. The pipeline owns its rings. */
#ifndef SPILLWAY_PIPELINE_H
#define SPILLWAY_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/cfg.h"
#include "core/stats.h"

enum when_full { WHEN_FULL_BLOCK, WHEN_FULL_DROP_NEWEST, WHEN_FULL_SPILL };
enum pipeline_mode { PIPELINE_MEMORY, PIPELINE_KAFKA };
enum pipeline_role { ROLE_ALL, ROLE_COLLECTOR, ROLE_ROUTER };

struct kafka_config {
    char *brokers;
    char *topic;
    char *group;
    struct cfg_strmap properties; /* passed to librdkafka as is */
};

struct pipeline_config {
    int64_t partitions; /* 0: number of CPUs */
    char *partition_key;
    int64_t memory_limit;
    int when_full;
    int mode;
    int role;
    struct kafka_config kafka;
};

extern const struct cfg_section pipeline_config_section;

struct pipeline;
struct ring;

/* ring_bytes: the capacity of each partition ring. NULL on allocation failure. */
struct pipeline *pipeline_new(const struct pipeline_config *cfg, int partitions, size_t ring_bytes);
void pipeline_free(struct pipeline *p);

int pipeline_partitions(const struct pipeline *p);
struct ring *pipeline_ring(struct pipeline *p, int partition);
struct partition_stats *pipeline_stats(struct pipeline *p, int partition);
size_t pipeline_max_event(const struct pipeline *p);
struct store;
struct spill;
/* when_full: spill: connects to pipeline.kafka (kafka_bytes bounds librdkafka's queue). */
int pipeline_enable_spill(struct pipeline *p, const struct pipeline_config *cfg, struct store *st,
                          size_t kafka_bytes, char *err, size_t errlen);
struct spill *pipeline_spill(struct pipeline *p); /* NULL without spill */
struct kpipe;
/* mode: kafka: produce (collector role) and/or consume (router role). */
int pipeline_enable_kafka(struct pipeline *p, const struct pipeline_config *cfg, int produce,
                          int consume, size_t kafka_bytes, char *err, size_t errlen);
struct kpipe *pipeline_kpipe(struct pipeline *p); /* NULL in memory mode */

/* Closes every ring: workers drain what is left and stop. */
void pipeline_close(struct pipeline *p);

/* Called for each record a drop_newest flush refuses, so the input's counter moves too. */
typedef void (*pipeline_drop_fn)(void *ud, uint16_t src);

struct pipeline_producer {
    struct pipeline *p;
    struct buf *batch; /* one per partition (per Kafka partition in kafka mode) */
    int nbatch;
    unsigned rr;    /* round robin for events without a partition key */
    size_t pending; /* bytes staged and not yet in a ring */
    pipeline_drop_fn on_drop;
    void *ud;
};

int pipeline_producer_init(struct pipeline_producer *pr, struct pipeline *p,
                           pipeline_drop_fn on_drop, void *ud);
void pipeline_producer_free(struct pipeline_producer *pr);

/* The staging batch for an event whose key hashes to *hash (NULL: no key, round robin). */
struct buf *pipeline_producer_batch(struct pipeline_producer *pr, const uint64_t *hash);

/* Moves staged records into the rings. With block, what does not fit stays staged and the
 * return value is the number of bytes still pending (the caller stops reading its inputs);
 * with drop_newest, what does not fit is dropped, counted, and 0 is returned. */
size_t pipeline_producer_flush(struct pipeline_producer *pr);

#endif
