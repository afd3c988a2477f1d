#include "pipeline/kpipe.h"

#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/ring.h"
#include "core/thread.h"
#include "core/timeutil.h"
#include "pipeline/kafka.h"
#include "pipeline/pipeline.h"

#define CONSUME_BATCH 1024
#define COMMIT_EVERY  (200 * 1000000LL)
#define PUSH_WAIT_NS  (100 * 1000000LL)

/* A consumed record not yet committed: it entered its ring as record number `seq`. */
struct pending {
    uint64_t seq;
    int32_t kpart;
    int64_t offset;
};

/* The worker's word that records up to `processed` were routed, and that the sinks' `in`
 * counters were sink_in[] afterwards: once every sink's `done` reaches those, they are safe. */
struct mark {
    uint64_t processed;
    uint64_t *sink_in;
};

struct kring {
    pthread_mutex_t mu; /* marks (workers append, the kpipe thread takes) */
    struct mark *marks;
    size_t nmarks, capmarks;
    uint64_t pushed; /* records pushed into the ring so far (kpipe thread only) */
    uint64_t safe;   /* records known delivered (kpipe thread only) */
    struct pending *pend;
    size_t npend, cappend, head;
    struct buf batch;
};

struct kpipe {
    rd_kafka_t *prod, *cons;
    rd_kafka_topic_t *ptopic;
    rd_kafka_queue_t *cq;
    char *topic;
    int kparts;
    int n;
    int produce, consume;
    struct pipeline *pl;
    struct kring *rings;
    int nsinks;
    kpipe_sinks_fn sinks_fn;
    void *sinks_ud;
    pthread_t thread;
    int started;
    _Atomic int stop;
    _Atomic int64_t in_flight;
    _Atomic int64_t queued_bytes; /* values in librdkafka's queue: what its size bound counts */
    int64_t refused_at;           /* when Kafka last could not take a record (monotonic ns), or 0 */
    int64_t next_commit;
    /* Per Kafka partition: the position retention had deleted (auto.offset.reset=error), while
     * its first record after the reset has not come; -1 otherwise. */
    int64_t *reset_from;
    /* Per Kafka partition: started again at its oldest record and nothing consumed since, so
     * that assigning the partitions again keeps it there (its position is still none). */
    uint8_t *from_start;
    struct kpipe_stats stats;
    struct buf msg; /* envelope + payload being sent (kafka_value, big-endian hosts) */
    struct log_limit lim;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kpipe *kp = opaque;
    atomic_fetch_sub(&kp->in_flight, 1);
    atomic_fetch_sub(&kp->queued_bytes, (int64_t)m->len);
    if (m->err) {
        counter_add(&kp->stats.lost, 1);
        log_error("kafka mode: Kafka refused a record for good", "{s:s}", "error",
                  rd_kafka_err2str(m->err));
    }
}

struct kpipe *kpipe_new(const struct pipeline_config *cfg, struct pipeline *pl, int produce,
                        int consume, size_t producer_bytes, char *err, size_t errlen)
{
    struct kpipe *kp = calloc(1, sizeof(*kp));
    if (!kp)
        return NULL;
    kp->pl = pl;
    kp->n = pipeline_partitions(pl);
    kp->produce = produce;
    kp->consume = consume;
    kp->topic = strdup(cfg->kafka.topic);
    kp->rings = calloc((size_t)kp->n, sizeof(*kp->rings));
    if (!kp->rings)
        goto fail;
    for (int i = 0; i < kp->n; i++)
        pthread_mutex_init(&kp->rings[i].mu, NULL);
    kp->prod = kafka_ordered_producer(&cfg->kafka, producer_bytes, on_delivery, kp,
                                      "kafka mode producer", err, errlen);
    if (!kp->prod)
        goto fail;
    if (kafka_partitions(kp->prod, kp->topic, "pipeline topic", 10000, &kp->kparts, err, errlen))
        goto fail;
    kp->ptopic = rd_kafka_topic_new(kp->prod, kp->topic, NULL);
    if (consume) {
        const char *cextra[] = {"group.id",
                                cfg->kafka.group,
                                "enable.auto.commit",
                                "false",
                                "auto.offset.reset",
                                "error", /* deleted records are counted (reset_position) */
                                "queued.max.messages.kbytes",
                                "8192",
                                NULL};
        kp->cons = kafka_consumer(&cfg->kafka, cextra, "kafka mode consumer", err, errlen);
        if (!kp->cons)
            goto fail;
        rd_kafka_poll_set_consumer(kp->cons);
        rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(subs, kp->topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t rc = rd_kafka_subscribe(kp->cons, subs);
        rd_kafka_topic_partition_list_destroy(subs);
        if (rc) {
            snprintf(err, errlen, "kafka mode: cannot subscribe to %s: %s", kp->topic,
                     rd_kafka_err2str(rc));
            goto fail;
        }
        kp->cq = rd_kafka_queue_get_consumer(kp->cons);
        kp->reset_from = malloc((size_t)kp->kparts * sizeof(*kp->reset_from));
        kp->from_start = calloc((size_t)kp->kparts, 1);
        if (!kp->reset_from || !kp->from_start)
            goto fail;
        for (int i = 0; i < kp->kparts; i++)
            kp->reset_from[i] = -1;
    }
    return kp;
fail:
    kpipe_free(kp);
    return NULL;
}

void kpipe_set_sinks(struct kpipe *kp, int nsinks, kpipe_sinks_fn fn, void *ud)
{
    kp->nsinks = nsinks;
    kp->sinks_fn = fn;
    kp->sinks_ud = ud;
}

int kpipe_partitions(const struct kpipe *kp)
{
    return kp->kparts;
}

int64_t kpipe_queued_bytes(struct kpipe *kp)
{
    int64_t q = atomic_load(&kp->queued_bytes);
    return q > 0 ? q : 0;
}

size_t kpipe_send(struct kpipe *kp, int kpart, const char *batch, size_t len)
{
    size_t off = 0;
    int64_t sent = 0, bytes = 0; /* added once for the batch: the poll thread's subtractions
                                  * can come first, so the counts can be briefly negative */
    while (off < len) {
        const struct ring_rec *r = (const struct ring_rec *)(batch + off);
        size_t vlen;
        const void *value = kafka_value(r, &kp->msg, &vlen);
        rd_kafka_resp_err_t rc =
            value ? rd_kafka_producev(kp->prod, RD_KAFKA_V_RKT(kp->ptopic),
                                      RD_KAFKA_V_PARTITION(kpart),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_VALUE((void *)value, vlen), RD_KAFKA_V_END)
                  : RD_KAFKA_RESP_ERR__FAIL;
        if (rc) {
            counter_add(&kp->stats.refused, 1);
            if (refusal_starts(&kp->refused_at))
                log_warn("kafka mode: Kafka cannot take more, blocking the inputs", "{s:s}",
                         "error", rd_kafka_err2str(rc));
            break;
        }
        sent++;
        bytes += (int64_t)vlen;
        off += RING_REC_SIZE(r->len);
    }
    if (sent) {
        atomic_fetch_add(&kp->in_flight, sent);
        atomic_fetch_add(&kp->queued_bytes, bytes);
        counter_add(&kp->stats.produced, (uint64_t)sent);
    }
    return off;
}

void kpipe_worker_done(struct kpipe *kp, int p, uint64_t processed, const uint64_t *sink_in, int n)
{
    struct kring *kr = &kp->rings[p];
    uint64_t *copy = malloc((size_t)(n ? n : 1) * sizeof(uint64_t));
    if (!copy)
        return; /* a later mark covers these records too */
    memcpy(copy, sink_in, (size_t)n * sizeof(uint64_t));
    pthread_mutex_lock(&kr->mu);
    if (kr->nmarks == kr->capmarks) {
        size_t cap = kr->capmarks ? kr->capmarks * 2 : 64;
        struct mark *m = realloc(kr->marks, cap * sizeof(*m));
        if (!m) {
            pthread_mutex_unlock(&kr->mu);
            free(copy);
            return;
        }
        kr->marks = m;
        kr->capmarks = cap;
    }
    kr->marks[kr->nmarks++] = (struct mark){processed, copy};
    pthread_mutex_unlock(&kr->mu);
}

static void pend_push(struct kring *kr, uint64_t seq, int32_t kpart, int64_t offset)
{
    if (kr->head + kr->npend == kr->cappend) {
        if (kr->head > 0) { /* slide to the front before growing */
            memmove(kr->pend, kr->pend + kr->head, kr->npend * sizeof(*kr->pend));
            kr->head = 0;
        }
        if (kr->npend == kr->cappend) {
            size_t cap = kr->cappend ? kr->cappend * 2 : 1024;
            struct pending *p = realloc(kr->pend, cap * sizeof(*p));
            if (!p)
                return;
            kr->pend = p;
            kr->cappend = cap;
        }
    }
    kr->pend[kr->head + kr->npend++] = (struct pending){seq, kpart, offset};
}

/* Advances each ring's `safe` to the newest mark every sink has caught up with. */
static void settle(struct kpipe *kp)
{
    uint64_t in[256], done[256];
    int ns = kp->nsinks < 256 ? kp->nsinks : 256;
    if (kp->sinks_fn)
        kp->sinks_fn(kp->sinks_ud, in, done, ns);
    for (int p = 0; p < kp->n; p++) {
        struct kring *kr = &kp->rings[p];
        pthread_mutex_lock(&kr->mu);
        size_t k = 0;
        for (; k < kr->nmarks; k++) {
            int ok = 1;
            for (int i = 0; i < ns && ok; i++)
                ok = done[i] >= kr->marks[k].sink_in[i];
            if (!ok)
                break;
            kr->safe = kr->marks[k].processed;
            free(kr->marks[k].sink_in);
        }
        if (k > 0) { /* marks is NULL until the first mark: memmove(NULL, ...) is UB */
            memmove(kr->marks, kr->marks + k, (kr->nmarks - k) * sizeof(*kr->marks));
            kr->nmarks -= k;
        }
        pthread_mutex_unlock(&kr->mu);
    }
}

/* Commits, per Kafka partition, the offset after the last record every sink finished. */
static void commit(struct kpipe *kp)
{
    if (!kp->cons)
        return;
    settle(kp);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (int p = 0; p < kp->n; p++) {
        struct kring *kr = &kp->rings[p];
        while (kr->npend && kr->pend[kr->head].seq <= kr->safe) {
            struct pending *pe = &kr->pend[kr->head];
            rd_kafka_topic_partition_t *t =
                rd_kafka_topic_partition_list_find(l, kp->topic, pe->kpart);
            if (!t)
                t = rd_kafka_topic_partition_list_add(l, kp->topic, pe->kpart);
            if (t->offset < pe->offset + 1)
                t->offset = pe->offset + 1;
            kr->head++;
            kr->npend--;
            counter_add(&kp->stats.committed, 1);
        }
        if (!kr->npend)
            kr->head = 0;
    }
    if (l->cnt) {
        rd_kafka_resp_err_t rc = rd_kafka_commit(kp->cons, l, 0);
        if (rc && log_limit_take(&kp->lim) >= 0) /* a revoked partition: its new owner redoes it */
            log_warn("kafka mode: commit failed", "{s:s}", "error", rd_kafka_err2str(rc));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* A partition's position is not in the topic (auto.offset.reset=error), and librdkafka stopped
 * fetching it. A group new to the partition (no committed offset: m->offset is no offset) starts
 * at its oldest record, as earliest would; otherwise retention deleted records this group had
 * not consumed, and the first record consumed after the oldest says how many (took). Marked
 * here; reset_positions moves the partitions once per batch. */
static void reset_position(struct kpipe *kp, const rd_kafka_message_t *m)
{
    if (m->partition < 0 || m->partition >= kp->kparts)
        return;
    if (m->offset >= 0)
        kp->reset_from[m->partition] = m->offset;
    kp->from_start[m->partition] = 1;
}

/* Assigns this process's partitions again: those marked at their oldest record, the others
 * where this process is (or, having consumed nothing yet, at their committed offset). */
static void reset_positions(struct kpipe *kp)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_resp_err_t rc = rd_kafka_assignment(kp->cons, &l);
    if (!rc)
        rc = rd_kafka_position(kp->cons, l);
    for (int i = 0; !rc && i < l->cnt; i++) {
        rd_kafka_topic_partition_t *t = &l->elems[i];
        if (t->offset < 0 && t->partition >= 0 && t->partition < kp->kparts &&
            kp->from_start[t->partition] && !strcmp(t->topic, kp->topic))
            t->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if (!rc)
        rc = rd_kafka_assign(kp->cons, l);
    if (rc && log_limit_take(&kp->lim) >= 0) /* the next fetch reports it again */
        log_warn("kafka mode: cannot move partitions to their oldest record", "{s:s}", "error",
                 rd_kafka_err2str(rc));
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
}

/* The first record consumed after a reset: those between the lost position and it are gone. */
static void took(struct kpipe *kp, const rd_kafka_message_t *m)
{
    int64_t from = kp->reset_from[m->partition];
    kp->reset_from[m->partition] = -1;
    kp->from_start[m->partition] = 0;
    if (from < 0) /* the group's first start here: nothing was lost */
        return;
    if (m->offset > from) {
        counter_add(&kp->stats.lost, (uint64_t)(m->offset - from));
        log_error("kafka mode: Kafka deleted records before this group consumed them "
                  "(retention); they are lost",
                  "{s:s, s:i, s:I}", "topic", kp->topic, "partition", m->partition, "lost",
                  (json_int_t)(m->offset - from));
    } else if (m->offset < from) {
        log_warn("kafka mode: the committed offset was past the partition's end (topic "
                 "recreated?); consuming from its start",
                 "{s:s, s:i}", "topic", kp->topic, "partition", m->partition);
    }
}

/* Consumed records go to ring (Kafka partition % partitions), keeping each Kafka partition's
 * order; a full ring makes the consumer wait (and Kafka keep the rest). */
static void consume(struct kpipe *kp)
{
    rd_kafka_message_t *msgs[CONSUME_BATCH];
    ssize_t n = rd_kafka_consume_batch_queue(kp->cq, 100, msgs, CONSUME_BATCH);
    int resets = 0;
    for (ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = msgs[i];
        if (!m->err && m->partition >= 0 && m->partition < kp->kparts &&
            (kp->reset_from[m->partition] >= 0 || kp->from_start[m->partition]))
            took(kp, m);
        if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
            reset_position(kp, m);
            resets++;
        } else if (!m->err && m->len >= KAFKA_ENVELOPE) {
            int p = m->partition % kp->n;
            struct kring *kr = &kp->rings[p];
            uint16_t flags, src;
            kafka_unenvelope(m->payload, &flags, &src);
            ring_batch_add(&kr->batch, (const char *)m->payload + KAFKA_ENVELOPE,
                           m->len - KAFKA_ENVELOPE, flags, src);
            kr->pushed++;
            pend_push(kr, kr->pushed, m->partition, m->offset);
            counter_add(&kp->stats.consumed, 1);
        } else if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
                   log_limit_take(&kp->lim) >= 0) {
            log_warn("kafka mode: consumer error", "{s:s}", "error", rd_kafka_err2str(m->err));
        }
        rd_kafka_message_destroy(m);
    }
    if (resets)
        reset_positions(kp);
    for (int p = 0; p < kp->n; p++) {
        struct kring *kr = &kp->rings[p];
        size_t off = 0;
        uint64_t in = 0, part;
        while (off < kr->batch.len && !atomic_load(&kp->stop)) {
            off += ring_push_wait(pipeline_ring(kp->pl, p), kr->batch.data + off,
                                  kr->batch.len - off, PUSH_WAIT_NS, &part);
            in += part;
        }
        counter_add(&pipeline_stats(kp->pl, p)->in, in);
        /* Stopping with records not in the ring: they stay uncommitted, consumed again later. */
        buf_reset(&kr->batch);
    }
}

static void *kpipe_main(void *arg)
{
    struct kpipe *kp = arg;
    while (!atomic_load(&kp->stop)) {
        rd_kafka_poll(kp->prod, kp->consume ? 0 : 100);
        if (kp->consume)
            consume(kp);
        int64_t now = time_mono_ns();
        if (now >= kp->next_commit) {
            commit(kp);
            kp->next_commit = now + COMMIT_EVERY;
        }
    }
    return NULL;
}

int kpipe_start(struct kpipe *kp, char *err, size_t errlen)
{
    int rc = thread_start(&kp->thread, kpipe_main, kp, "kafka");
    if (rc) {
        snprintf(err, errlen, "cannot start the kafka thread: %s", strerror(rc));
        return -rc;
    }
    kp->started = 1;
    return 0;
}

uint64_t kpipe_stop(struct kpipe *kp, int64_t deadline_ns)
{
    if (!kp || !kp->started)
        return 0;
    atomic_store(&kp->stop, 1);
    pthread_join(kp->thread, NULL);
    kp->started = 0;
    int64_t left = deadline_ns - time_mono_ns();
    rd_kafka_flush(kp->prod, left > 0 ? (int)(left / 1000000) : 0);
    int64_t unacked = atomic_load(&kp->in_flight);
    if (unacked > 0)
        log_error("kafka mode: records not acknowledged by Kafka at the shutdown deadline", "{s:I}",
                  "records", (json_int_t)unacked);
    return unacked > 0 ? (uint64_t)unacked : 0;
}

uint64_t kpipe_commit_final(struct kpipe *kp, uint64_t sinks_lost)
{
    if (!kp || !kp->cons)
        return 0;
    if (sinks_lost) {
        log_warn("kafka mode: not committing the last offsets: the sinks gave up on records at "
                 "the deadline; they stay in Kafka and will be consumed again",
                 "{s:I}", "records", (json_int_t)sinks_lost);
        return sinks_lost;
    }
    commit(kp);
    return 0;
}

void kpipe_free(struct kpipe *kp)
{
    if (!kp)
        return;
    kpipe_stop(kp, time_mono_ns());
    if (kp->cq)
        rd_kafka_queue_destroy(kp->cq);
    if (kp->cons) {
        rd_kafka_consumer_close(kp->cons);
        rd_kafka_destroy(kp->cons);
    }
    if (kp->ptopic)
        rd_kafka_topic_destroy(kp->ptopic);
    if (kp->prod)
        rd_kafka_destroy(kp->prod);
    for (int p = 0; kp->rings && p < kp->n; p++) {
        struct kring *kr = &kp->rings[p];
        for (size_t k = 0; k < kr->nmarks; k++)
            free(kr->marks[k].sink_in);
        free(kr->marks);
        free(kr->pend);
        buf_free(&kr->batch);
        pthread_mutex_destroy(&kr->mu);
    }
    free(kp->rings);
    free(kp->reset_from);
    free(kp->from_start);
    buf_free(&kp->msg);
    free(kp->topic);
    free(kp);
}

struct kpipe_stats *kpipe_stats(struct kpipe *kp)
{
    return &kp->stats;
}
