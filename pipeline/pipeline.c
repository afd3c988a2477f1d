#include "pipeline/pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/ring.h"
#include "pipeline/kpipe.h"
#include "pipeline/spill.h"

static const char *const when_full_names[] = {"block", "drop_newest", "spill", NULL};
static const char *const mode_names[] = {"memory", "kafka", NULL};
static const char *const role_names[] = {"all", "collector", "router", NULL};

static const struct cfg_key kafka_keys[] = {
    {"brokers", CFG_STRING, offsetof(struct kafka_config, brokers), "",
     "Bootstrap brokers, host:port[,host:port]."},
    {"topic", CFG_STRING, offsetof(struct kafka_config, topic), "spillway-spill",
     "Topic for spilled events (or, in kafka mode, for every event)."},
    {"group", CFG_STRING, offsetof(struct kafka_config, group), "spillway",
     "Consumer group of the router role."},
    {"properties", CFG_STRMAP, offsetof(struct kafka_config, properties), NULL,
     "librdkafka properties passed through as is (e.g. security.protocol, sasl.*).", CFG_SECRET},
    {0},
};

static const struct cfg_section kafka_section = {
    .name = "kafka", .size = sizeof(struct kafka_config), .keys = kafka_keys};

static const struct cfg_key pipeline_keys[] = {
    {"partitions", CFG_INT, offsetof(struct pipeline_config, partitions), "0",
     "Number of partitions, each a ring drained by its own router worker; 0 means the number "
     "of CPUs.",
     0, 0, 256},
    {"partition_key", CFG_STRING, offsetof(struct pipeline_config, partition_key), "trace_id",
     "Field whose value picks the partition: events with the same value keep their order. An "
     "event without the field goes with its stream, so a connection's or a file's events stay "
     "in order; those of HTTP requests and UDP datagrams go round robin by request or datagram. "
     "Empty: every event round robin."},
    {"memory_limit", CFG_SIZE, offsetof(struct pipeline_config, memory_limit), "64MiB",
     "Bytes held by in-flight events: half for the partition rings, half for the sink queues; "
     "producing to Kafka (spill, kafka-mode collector), half for librdkafka's producer queue and "
     "a quarter each for the rings and the sink queues.",
     0, 1048576, 1099511627776.0},
    {"when_full", CFG_ENUM, offsetof(struct pipeline_config, when_full), "block",
     "What a full partition does: block the inputs, drop the newest event (counted), or spill "
     "to Kafka.",
     0, 0, 0, when_full_names},
    {"mode", CFG_ENUM, offsetof(struct pipeline_config, mode), "memory",
     "memory: rings in this process; kafka: Kafka is the pipeline (collector -> topic -> "
     "router consumer group).",
     0, 0, 0, mode_names},
    {"role", CFG_ENUM, offsetof(struct pipeline_config, role), "all",
     "With mode kafka: run the collector, the router, or both.", 0, 0, 0, role_names},
    {"kafka", CFG_SECTION, offsetof(struct pipeline_config, kafka), NULL,
     "Kafka connection for spill and kafka mode.", 0, 0, 0, NULL, &kafka_section},
    {0},
};

const struct cfg_section pipeline_config_section = {
    .name = "pipeline", .size = sizeof(struct pipeline_config), .keys = pipeline_keys};

struct pipeline {
    int n;
    int when_full;
    struct ring **rings;
    struct partition_stats *stats;
    struct spill *spill; /* when_full: spill */
    struct kpipe *kp;    /* mode: kafka */
    int kp_produce;
};

struct pipeline *pipeline_new(const struct pipeline_config *cfg, int partitions, size_t ring_bytes)
{
    struct pipeline *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->n = partitions;
    p->when_full = cfg->when_full;
    p->rings = calloc((size_t)partitions, sizeof(*p->rings));
    p->stats = calloc((size_t)partitions, sizeof(*p->stats));
    if (!p->rings || !p->stats)
        goto fail;
    for (int i = 0; i < partitions; i++) {
        p->rings[i] = ring_new(ring_bytes);
        if (!p->rings[i])
            goto fail;
    }
    return p;
fail:
    pipeline_free(p);
    return NULL;
}

int pipeline_enable_spill(struct pipeline *p, const struct pipeline_config *cfg, struct store *st,
                          size_t kafka_bytes, char *err, size_t errlen)
{
    p->spill = spill_new(cfg, p, p->n, st, kafka_bytes, err, errlen);
    return p->spill ? 0 : -EIO;
}

struct spill *pipeline_spill(struct pipeline *p)
{
    return p->spill;
}

int pipeline_enable_kafka(struct pipeline *p, const struct pipeline_config *cfg, int produce,
                          int consume, size_t kafka_bytes, char *err, size_t errlen)
{
    p->kp = kpipe_new(cfg, p, produce, consume, kafka_bytes, err, errlen);
    p->kp_produce = produce;
    return p->kp ? 0 : -EIO;
}

struct kpipe *pipeline_kpipe(struct pipeline *p)
{
    return p->kp;
}

void pipeline_free(struct pipeline *p)
{
    if (!p)
        return;
    spill_free(p->spill);
    kpipe_free(p->kp);
    for (int i = 0; p->rings && i < p->n; i++)
        ring_free(p->rings[i]);
    free(p->rings);
    free(p->stats);
    free(p);
}

int pipeline_partitions(const struct pipeline *p)
{
    return p->n;
}

struct ring *pipeline_ring(struct pipeline *p, int partition)
{
    return p->rings[partition];
}

struct partition_stats *pipeline_stats(struct pipeline *p, int partition)
{
    return &p->stats[partition];
}

size_t pipeline_max_event(const struct pipeline *p)
{
    return ring_max_payload(p->rings[0]);
}

void pipeline_close(struct pipeline *p)
{
    for (int i = 0; i < p->n; i++)
        ring_close(p->rings[i]);
}

int pipeline_producer_init(struct pipeline_producer *pr, struct pipeline *p,
                           pipeline_drop_fn on_drop, void *ud)
{
    memset(pr, 0, sizeof(*pr));
    pr->p = p;
    pr->on_drop = on_drop;
    pr->ud = ud;
    pr->nbatch = p->kp && p->kp_produce ? kpipe_partitions(p->kp) : p->n;
    pr->batch = calloc((size_t)pr->nbatch, sizeof(struct buf));
    return pr->batch ? 0 : -ENOMEM;
}

void pipeline_producer_free(struct pipeline_producer *pr)
{
    for (int i = 0; pr->batch && i < pr->nbatch; i++)
        buf_free(&pr->batch[i]);
    free(pr->batch);
    pr->batch = NULL;
}

struct buf *pipeline_producer_batch(struct pipeline_producer *pr, const uint64_t *hash)
{
    unsigned n = (unsigned)pr->nbatch;
    unsigned i = hash ? (unsigned)(*hash % n) : pr->rr++ % n;
    return &pr->batch[i];
}

size_t pipeline_producer_flush(struct pipeline_producer *pr)
{
    size_t pending = 0;
    for (int i = 0; i < pr->nbatch; i++) {
        struct buf *b = &pr->batch[i];
        if (!b->len)
            continue;
        struct spill *sp = pr->p->spill;
        size_t took = 0;
        if (pr->p->kp && pr->p->kp_produce) {
            took = kpipe_send(pr->p->kp, i, b->data, b->len); /* Kafka is the pipeline */
        } else if (sp && spill_active(sp, i)) {
            /* Spilling: new records follow the spilled ones into Kafka, keeping their order. */
            took = spill_send(sp, i, b->data, b->len);
        } else {
            uint64_t n;
            took = ring_push(pr->p->rings[i], b->data, b->len, &n);
            counter_add(&pr->p->stats[i].in, n);
            if (took < b->len && sp)
                took += spill_send(sp, i, b->data + took, b->len - took);
        }
        if (took < b->len && pr->p->when_full == PIPELINE_FULL_DROP_NEWEST) {
            for (size_t off = took; off < b->len;) {
                const struct ring_rec *r = (const struct ring_rec *)(b->data + off);
                if (pr->on_drop)
                    pr->on_drop(pr->ud, r->src);
                counter_add(&pr->p->stats[i].dropped, 1);
                off += RING_REC_SIZE(r->len);
            }
            took = b->len;
        }
        if (took) {
            memmove(b->data, b->data + took, b->len - took);
            b->len -= took;
        }
        pending += b->len;
        if (!b->len)
            buf_trim(b, 1 << 20); /* give back what a rare burst of huge events took */
    }
    pr->pending = pending;
    return pending;
}
