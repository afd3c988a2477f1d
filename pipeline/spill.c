#include "pipeline/spill.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/ring.h"
#include "core/store.h"
#include "core/thread.h"
#include "core/timeutil.h"
#include "pipeline/kafka.h"
#include "pipeline/pipeline.h"
#include "pipeline/spill_key.h"

#define REPLAY_BATCH    512 /* messages read at a time, of one record each */
#define REPLAY_MESSAGES 64  /* of several records each (SPILL_MSG_BYTES: 128 KiB at most) */
/* Records go to Kafka several to a message, up to this many bytes (one record at least): the
 * per-message cost of librdkafka, the brokers and the delivery reports is shared by them. On
 * bench S6 (same rounds, against one record per message): 2 KiB took a fifth off the CPU per
 * spilled event at the same rates (ingest 1.08-1.13x); 16 KiB took a quarter off but ingested
 * at 0.6-0.95x (the collector met a full producer queue more often); 8 KiB, with the producer
 * queue at half the memory limit, ingested at 0.95-1.05x 2 KiB's. */
#define SPILL_MSG_BYTES (2 << 10)
#define REPLAY_IDLE_MS  10
#define SAVE_EVERY_NS   (1000 * 1000000LL)
#define CONNECT_WAIT_MS 3000 /* asking the brokers for the topic at start */
#define RECONNECT_MS    2000 /* and again, from the spill thread, while they cannot be reached */

struct part {
    pthread_mutex_t mu;        /* active and the decision to leave spill mode */
    int active;                /* new records of this partition go to Kafka */
    _Atomic int64_t in_flight; /* sent to Kafka, not acknowledged yet */
    _Atomic int64_t acked_end; /* one past the highest acknowledged offset */
    int64_t next;              /* next offset to replay */
    int64_t saved;             /* the offset last written to the store */
    int consuming;
    int64_t refused_at; /* when Kafka last could not take a record (monotonic ns), or 0 */
    uint64_t seq;       /* of the last message spilled this run (its key; under mu) */
    uint64_t rec;       /* of the last record spilled this run (under mu) */
    /* The replay (the spill thread's): which messages of the current run it took, to recognise
     * copies, and the records taken that did not fit in the ring yet, in messages, each with its
     * offset, the mark from before it and the records of it skipped (what a stop saves for the
     * first of them); pend_done of the first are in the ring already. */
    struct spill_seen seen;
    struct buf pending;
    struct {
        int64_t offset;
        struct spill_mark before;
        uint32_t nrec, skip;
    } pend[REPLAY_BATCH];
    int pend_head, pend_n;
    uint32_t pend_done;
    int batched; /* the last message read held several records: read fewer at a time */
    /* A restart resumes inside the message at skip_at: its first skip records were in the ring
     * before the stop. */
    int64_t skip_at;
    uint64_t skip, saved_skip;
    /* Retention deleted gap messages before their replay: the first message taken after them
     * says how many records they held, counted from the record expected next (expect_rec of
     * run expect_run: the one after the last message taken). */
    int64_t gap;
    uint64_t expect_run, expect_rec;
    struct spill_stats stats;
};

struct spill {
    rd_kafka_t *prod, *cons;
    rd_kafka_topic_t *ptopic, *ctopic;
    char *topic;
    uint64_t run; /* this run, in every spilled record's key (never 0) */
    int n;
    struct part *parts;
    struct pipeline *pl;
    struct store *st;
    struct buf msg; /* records being sent (kafka_records_value, big-endian hosts) */
    pthread_t thread;
    int started;
    _Atomic int stop;
    _Atomic int ready;  /* the topic was found (and any backlog): spilling can start */
    int partitions;     /* pipeline.partitions: the topic needs at least as many */
    int64_t refused_at; /* spill_send without Kafka: when last (refusal_starts) */
    int64_t next_save;
    _Atomic int64_t queued_bytes; /* values in librdkafka's queue: what its size bound counts */
    struct log_limit lim;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct spill *sp = opaque;
    int p = m->partition;
    if (p < 0 || p >= sp->n)
        return;
    int64_t n = (int64_t)(uintptr_t)m->_private; /* the message's records (its opaque) */
    if (n <= 0)
        n = 1;
    /* acked_end first: whoever sees in_flight reach 0 must also see every offset it covers. */
    int64_t end = m->offset + 1, cur = atomic_load(&sp->parts[p].acked_end);
    while (!m->err && end > cur &&
           !atomic_compare_exchange_weak(&sp->parts[p].acked_end, &cur, end))
        ;
    atomic_fetch_sub(&sp->parts[p].in_flight, n);
    atomic_fetch_sub(&sp->queued_bytes, (int64_t)m->len);
    if (m->err) {
        /* With message.timeout.ms=0 librdkafka retries forever; only a fatal error lands here
         * (topic deleted, authorization). The records are lost: say so, count them. */
        counter_add(&sp->parts[p].stats.lost, (uint64_t)n);
        log_error("spill: Kafka refused records for good", "{s:i, s:I, s:s}", "partition", p,
                  "records", (json_int_t)n, "error", rd_kafka_err2str(m->err));
    }
}

/* A backlog left by a previous run: the stored replay offset is behind the topic's end. All
 * partitions' ends are read first: -EIO (nothing changed) when one cannot be. */
static int find_backlog(struct spill *sp, int timeout_ms, char *err, size_t errlen)
{
    int64_t *ends = calloc((size_t)sp->n, sizeof(*ends));
    if (!ends)
        return -ENOMEM;
    for (int p = 0; p < sp->n; p++) {
        int64_t lo = 0;
        rd_kafka_resp_err_t rc =
            rd_kafka_query_watermark_offsets(sp->cons, sp->topic, p, &lo, &ends[p], timeout_ms);
        if (rc) {
            snprintf(err, errlen, "spill topic %s partition %d: cannot read its offsets: %s",
                     sp->topic, p, rd_kafka_err2str(rc));
            free(ends);
            return -EIO;
        }
    }
    for (int p = 0; p < sp->n; p++) {
        struct part *pt = &sp->parts[p];
        int64_t hi = ends[p], stored = 0;
        uint64_t mark[STORE_MARK] = {0, 0, 0};
        int known = sp->st && store_offset_get(sp->st, sp->topic, p, &stored, mark) == 1;
        if (known && stored > hi) {
            log_warn("spill: the stored replay offset is past the topic's end (topic recreated?); "
                     "starting from its end",
                     "{s:s, s:i, s:I, s:I}", "topic", sp->topic, "partition", p, "stored",
                     (json_int_t)stored, "end", (json_int_t)hi);
            known = 0;
        }
        /* Below the topic's start, the replay counts what retention deleted (skip_lost). */
        pt->next = known ? stored : hi;
        pt->saved = known ? stored : -1;
        pt->skip_at = pt->next;
        pt->skip = pt->saved_skip = known ? mark[2] : 0;
        spill_seen_reset(&pt->seen,
                         known ? (struct spill_mark){mark[0], mark[1]} : (struct spill_mark){0, 0});
        atomic_store(&pt->acked_end, hi);
        if (pt->next < hi) {
            pthread_mutex_lock(&pt->mu); /* the collector may be reading it already */
            pt->active = 1;
            pthread_mutex_unlock(&pt->mu);
            log_info("spill: backlog from a previous run will be replayed first", "{s:i, s:I, s:I}",
                     "partition", p, "messages", (json_int_t)(hi - pt->next), "skipped",
                     (json_int_t)pt->skip);
        }
    }
    free(ends);
    return 0;
}

/* Asks the brokers for the spill topic: found with enough partitions, it finds any backlog and
 * makes spilling possible (ready). -EIO: not reachable now (err says why); -EINVAL: the topic
 * has too few partitions. */
static int connect_topic(struct spill *sp, int timeout_ms, char *err, size_t errlen)
{
    int have = 0;
    if (kafka_partitions(sp->prod, sp->topic, "spill topic", timeout_ms, &have, err, errlen))
        return -EIO;
    if (have < sp->partitions) {
        snprintf(err, errlen,
                 "spill topic %s has %d partitions; it needs at least %d "
                 "(pipeline.partitions)",
                 sp->topic, have, sp->partitions);
        return -EINVAL;
    }
    if (find_backlog(sp, timeout_ms, err, errlen))
        return -EIO;
    atomic_store(&sp->ready, 1);
    return 0;
}

/* From the spill thread while Kafka could not be reached: tries again every RECONNECT_MS. */
static void reconnect(struct spill *sp)
{
    char err[512];
    int64_t next = time_mono_ns() + RECONNECT_MS * 1000000LL;
    int rc = connect_topic(sp, RECONNECT_MS, err, sizeof(err));
    if (!rc) {
        log_info("spill: Kafka reached: spilling possible", "{s:s}", "topic", sp->topic);
        return;
    }
    if (rc == -EINVAL && log_limit_take(&sp->lim) >= 0)
        log_error("spill: cannot spill", "{s:s}", "error", err);
    while (!atomic_load(&sp->stop) && time_mono_ns() < next) {
        struct timespec ts = {0, REPLAY_IDLE_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

struct spill *spill_new(const struct pipeline_config *cfg, struct pipeline *pl, int partitions,
                        struct store *st, size_t producer_bytes, char *err, size_t errlen)
{
    struct spill *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return NULL;
    sp->n = partitions;
    sp->pl = pl;
    if (getrandom(&sp->run, sizeof(sp->run), GRND_NONBLOCK) != (ssize_t)sizeof(sp->run))
        sp->run = (uint64_t)time_now_ns() ^ (uint64_t)(uintptr_t)sp;
    sp->run |= 1;
    sp->st = st;
    sp->topic = strdup(cfg->kafka.topic);
    sp->parts = calloc((size_t)partitions, sizeof(*sp->parts));
    if (!sp->parts)
        goto fail;
    for (int p = 0; p < partitions; p++) {
        pthread_mutex_init(&sp->parts[p].mu, NULL);
        sp->parts[p].batched = 1; /* read a few messages first: they may be large */
    }
    /* Kafka keeps every record, in order; when its bounded queue is full, the caller falls
     * back to block. */
    sp->prod = kafka_ordered_producer(&cfg->kafka, producer_bytes, on_delivery, sp,
                                      "spill producer", err, errlen);
    if (!sp->prod)
        goto fail;
    /* auto.offset.reset=error: records deleted before their replay are counted, never skipped
     * silently. A replay that catches up with the spill fetches at the end of the log while the
     * collector keeps writing there: a real broker answers as soon as records arrive, the mock
     * broker only at fetch.wait.max.ms (S6's drain stalled 350 ms in one run of three at the
     * default 500); 10 ms costs a real broker at most 100 fetches a second while replaying. */
    const char *cextra[] = {"enable.auto.commit",
                            "false",
                            "auto.offset.reset",
                            "error",
                            "queued.max.messages.kbytes",
                            "4096",
                            "fetch.wait.max.ms",
                            "10",
                            NULL};
    sp->cons = kafka_consumer(&cfg->kafka, cextra, "spill consumer", err, errlen);
    if (!sp->cons)
        goto fail;
    sp->ptopic = rd_kafka_topic_new(sp->prod, sp->topic, NULL);
    sp->ctopic = rd_kafka_topic_new(sp->cons, sp->topic, NULL);
    sp->partitions = partitions;
    if (!sp->ptopic || !sp->ctopic) {
        snprintf(err, errlen, "spill topic %s: %s", sp->topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    if (connect_topic(sp, CONNECT_WAIT_MS, err, errlen) == -EINVAL)
        goto fail; /* reachable, and wrong: a config error */
    if (!atomic_load(&sp->ready))
        log_warn("spill: Kafka cannot be reached: full partitions block until it can (retrying "
                 "every 2 s)",
                 "{s:s}", "error", err);
    err[0] = 0;
    return sp;
fail:
    spill_free(sp);
    return NULL;
}

int spill_active(struct spill *sp, int p)
{
    pthread_mutex_lock(&sp->parts[p].mu);
    int a = sp->parts[p].active;
    pthread_mutex_unlock(&sp->parts[p].mu);
    return a;
}

int64_t spill_unacked(struct spill *sp, int p)
{
    return atomic_load(&sp->parts[p].in_flight);
}

int64_t spill_queued_bytes(struct spill *sp)
{
    return atomic_load(&sp->queued_bytes);
}

size_t spill_send(struct spill *sp, int p, const char *batch, size_t len)
{
    struct part *pt = &sp->parts[p];
    size_t off = 0;
    if (!atomic_load(&sp->ready)) { /* Kafka not reached yet: block, counted, said once */
        counter_add(&pt->stats.refused, 1);
        if (refusal_starts(&sp->refused_at))
            log_warn("spill: partition full and Kafka not reachable, blocking the inputs", "{s:i}",
                     "partition", p);
        return 0;
    }
    pthread_mutex_lock(&pt->mu);
    if (!pt->active)
        log_info("spill: partition full, spilling to Kafka", "{s:i, s:s}", "partition", p, "topic",
                 sp->topic);
    pt->active = 1;
    size_t most = SPILL_MSG_BYTES;
    while (off < len) {
        /* Whole records up to `most` bytes (one at least) make one message. */
        size_t end = off;
        uint32_t n = 0;
        do {
            end += RING_REC_SIZE(((const struct ring_rec *)(batch + end))->len);
            n++;
        } while (end < len &&
                 end - off + RING_REC_SIZE(((const struct ring_rec *)(batch + end))->len) <= most);
        const void *value = kafka_records_value(batch + off, end - off, &sp->msg);
        unsigned char key[SPILL_BATCH_KEY];
        spill_batch_key(key, sp->run, pt->seq + 1, pt->rec + 1);
        rd_kafka_resp_err_t rc =
            value ? rd_kafka_producev(sp->prod, RD_KAFKA_V_RKT(sp->ptopic), RD_KAFKA_V_PARTITION(p),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_KEY(key, SPILL_BATCH_KEY),
                                      RD_KAFKA_V_VALUE((void *)value, end - off),
                                      RD_KAFKA_V_OPAQUE((void *)(uintptr_t)n), RD_KAFKA_V_END)
                  : RD_KAFKA_RESP_ERR__FAIL;
        if (rc == RD_KAFKA_RESP_ERR__QUEUE_FULL && n > 1) {
            most = (end - off) / 2; /* what room is left in the queue may take a smaller one */
            continue;
        }
        if (rc) {
            /* Kafka cannot take more now: the rest stays staged, the inputs pause (block). */
            counter_add(&pt->stats.refused, 1);
            if (refusal_starts(&pt->refused_at))
                log_warn("spill: Kafka cannot take more, blocking the inputs", "{s:i, s:s}",
                         "partition", p, "error", rd_kafka_err2str(rc));
            break;
        }
        pt->seq++;
        pt->rec += n;
        atomic_fetch_add(&pt->in_flight, n);
        atomic_fetch_add(&sp->queued_bytes, (int64_t)(end - off));
        counter_add(&pt->stats.spilled, n);
        off = end;
    }
    pthread_mutex_unlock(&pt->mu);
    return off;
}

/* Moves replayed records waiting in pending into the ring; returns 1 when all went in. */
static int push_pending(struct spill *sp, int p)
{
    struct part *pt = &sp->parts[p];
    if (!pt->pending.len)
        return 1;
    struct ring *ring = pipeline_ring(sp->pl, p);
    uint64_t n;
    size_t took = ring_push(ring, pt->pending.data, pt->pending.len, &n);
    counter_add(&pipeline_stats(sp->pl, p)->in, n);
    counter_add(&pt->stats.replayed, n); /* replayed = back in the ring, as the balance counts */
    memmove(pt->pending.data, pt->pending.data + took, pt->pending.len - took);
    pt->pending.len -= took;
    while (n > 0 && pt->pend_head < pt->pend_n) { /* the messages that went in whole */
        uint32_t left = pt->pend[pt->pend_head].nrec - pt->pend_done;
        if (n < left) {
            pt->pend_done += (uint32_t)n;
            break;
        }
        n -= left;
        pt->pend_head++;
        pt->pend_done = 0;
    }
    if (!pt->pending.len)
        pt->pend_head = pt->pend_n = 0, pt->pend_done = 0;
    return pt->pending.len == 0;
}

/* Counts the records of the messages retention deleted (pt->gap of them) once known: the
 * message of run `run`, sequence `seq`, first record `first` (0: a message of one record) was
 * the first taken after them. Within one run the records are numbered: exact. Across runs, the
 * earlier run's deleted messages count one record each (at least; said in the log). */
static void count_gap(struct part *pt, int p, uint64_t run, uint64_t seq, uint64_t first)
{
    uint64_t lost = (uint64_t)pt->gap;
    int exact = 1;
    if (first && run == pt->expect_run && first >= pt->expect_rec) {
        lost = first - pt->expect_rec;
    } else if (first && seq >= 1 && seq - 1 <= (uint64_t)pt->gap) {
        lost = (first - 1) + ((uint64_t)pt->gap - (seq - 1));
        exact = pt->gap == (int64_t)(seq - 1);
    } else {
        exact = !first && !pt->batched; /* messages of one record each, or an earlier run's */
    }
    counter_add(&pt->stats.lost, lost);
    log_error(exact ? "spill: Kafka deleted spilled records before their replay (retention); they "
                      "are lost"
                    : "spill: Kafka deleted spilled records before their replay (retention); at "
                      "least these are lost (an earlier run's, counted one per message)",
              "{s:i, s:I}", "partition", p, "lost", (json_int_t)lost);
    pt->gap = 0;
}

/* Leaves spill mode once everything sent was acknowledged and replayed. Decided under the
 * partition's lock, which the collector holds while sending: nothing can be sent between the
 * check and the switch back to the ring. */
static void maybe_leave(struct spill *sp, int p)
{
    struct part *pt = &sp->parts[p];
    pthread_mutex_lock(&pt->mu);
    if (atomic_load(&pt->in_flight) == 0 && pt->next >= atomic_load(&pt->acked_end) &&
        !pt->pending.len) {
        if (pt->gap) /* deleted up to the end: this run's numbers say how many of its records */
            count_gap(pt, p, sp->run, pt->seq + 1, pt->seq ? pt->rec + 1 : 0);
        pt->active = 0;
        if (pt->consuming)
            rd_kafka_consume_stop(sp->ctopic, p);
        pt->consuming = 0;
        log_info("spill: backlog replayed, partition back in memory", "{s:i, s:I}", "partition", p,
                 "replayed", (json_int_t)counter_get(&pt->stats.replayed));
    }
    pthread_mutex_unlock(&pt->mu);
}

/* Kafka deleted spilled records (retention) before they were replayed: counts them as lost,
 * says so, and goes on from the oldest record still there. */
static void skip_lost(struct spill *sp, int p)
{
    struct part *pt = &sp->parts[p];
    int64_t lo, hi;
    if (rd_kafka_query_watermark_offsets(sp->cons, sp->topic, p, &lo, &hi, 5000))
        return; /* the next batch reports it again */
    if (pt->next > hi) {
        log_warn("spill: the replay offset is past the topic's end (topic recreated?); replaying "
                 "from its start",
                 "{s:s, s:i}", "topic", sp->topic, "partition", p);
        pt->next = lo;
    } else if (lo > pt->next) {
        /* Counted in records when the next message taken says how many they held. */
        pt->gap += lo - pt->next;
        log_warn("spill: Kafka deleted spilled messages before their replay (retention)",
                 "{s:i, s:I, s:s}", "partition", p, "messages", (json_int_t)(lo - pt->next),
                 "topic", sp->topic);
        pt->next = lo;
    }
    rd_kafka_consume_stop(sp->ctopic, p);
    pt->consuming = 0; /* restarts at next */
}

/* Appends what message m holds to pending: its records (batch: a message of several), the
 * first skip of them left out, or its one record. Returns how many went in; *n is how many it
 * holds (a damaged tail counts one), *whole how many whole records it holds. */
static uint32_t take_records(struct part *pt, const rd_kafka_message_t *m, int batch, uint64_t skip,
                             uint32_t *n, uint32_t *whole)
{
    *n = *whole = 1;
    if (!batch) {
        uint16_t flags, src;
        if (m->len < KAFKA_ENVELOPE)
            return 0;
        kafka_unenvelope(m->payload, &flags, &src);
        return ring_batch_add(&pt->pending, (const char *)m->payload + KAFKA_ENVELOPE,
                              m->len - KAFKA_ENVELOPE, flags, src)
                   ? 0
                   : 1;
    }
    uint32_t took = 0, rlen;
    uint16_t flags, src;
    const char *payload;
    size_t off = 0;
    int rc, oom = 0;
    *n = 0;
    while ((rc = kafka_records_next(m->payload, m->len, &off, &rlen, &flags, &src, &payload)) ==
           1) {
        if ((*n)++ < skip)
            continue; /* in the ring before a restart */
        if (oom || ring_batch_add(&pt->pending, payload, rlen, flags, src)) {
            oom = 1; /* this one and the rest are lost (counted by the caller) */
            continue;
        }
        took++;
    }
    *whole = *n;
    if (rc < 0)
        *n += 1;
    return took;
}

/* Records in a message of several. */
static uint32_t count_records(const rd_kafka_message_t *m)
{
    uint32_t n = 0, rlen;
    uint16_t flags, src;
    const char *payload;
    size_t off = 0;
    while (kafka_records_next(m->payload, m->len, &off, &rlen, &flags, &src, &payload) == 1)
        n++;
    return n;
}

/* A message read back from Kafka: its records taken into pending, or recognised as a second
 * copy of one taken already (counted, skipped). Returns the records taken. */
static uint32_t take(struct part *pt, int p, const rd_kafka_message_t *m)
{
    struct spill_mark before = pt->seen.mark;
    uint64_t run = 0, seq = 0, first = 0;
    spill_key_read(m->key, m->key_len, &run, &seq, &first);
    int batch = m->key_len == SPILL_BATCH_KEY;
    uint64_t skip = m->offset == pt->skip_at ? pt->skip : 0;
    pt->skip = 0;
    pt->next = m->offset + 1;
    pt->batched = batch;
    if (spill_seen_copy(&pt->seen, m->key, m->key_len)) {
        counter_add(&pt->stats.duplicates, batch ? count_records(m) : 1);
        return 0;
    }
    if (pt->gap)
        count_gap(pt, p, run, seq, first);
    uint32_t n, whole, took = take_records(pt, m, batch, skip, &n, &whole);
    if (batch) {
        pt->expect_run = run;
        pt->expect_rec = first + whole;
    }
    uint64_t before_restart = skip < n ? skip : n, lost = n - before_restart - took;
    if (lost) {
        counter_add(&pt->stats.lost, lost);
        log_error("spill: a replayed message could not be read whole (out of memory, or "
                  "damaged): records lost",
                  "{s:i, s:I, s:I}", "partition", p, "offset", (json_int_t)m->offset, "lost",
                  (json_int_t)lost);
    }
    if (!took)
        return 0;
    assert(pt->pend_n < REPLAY_BATCH); /* pending is empty when a batch is read */
    pt->pend[pt->pend_n].offset = m->offset;
    pt->pend[pt->pend_n].before = before;
    pt->pend[pt->pend_n].nrec = took;
    pt->pend[pt->pend_n].skip = (uint32_t)before_restart;
    pt->pend_n++;
    return took;
}

/* Pulls a batch of spilled records back while the ring is under half full. Returns how many
 * records it read (copies included: reading them is progress too). */
static int replay(struct spill *sp, int p)
{
    struct part *pt = &sp->parts[p];
    struct ring *ring = pipeline_ring(sp->pl, p);
    if (!push_pending(sp, p) || ring_used(ring) > ring_capacity(ring) / 2)
        return 0;
    if (!pt->consuming) {
        if (rd_kafka_consume_start(sp->ctopic, p, pt->next) < 0) {
            if (log_limit_take(&sp->lim) >= 0)
                log_warn("spill: cannot start replaying", "{s:i, s:s}", "partition", p, "error",
                         rd_kafka_err2str(rd_kafka_last_error()));
            return 0;
        }
        pt->consuming = 1;
    }
    rd_kafka_message_t *msgs[REPLAY_BATCH];
    ssize_t n = rd_kafka_consume_batch(sp->ctopic, p, 0, msgs,
                                       pt->batched ? REPLAY_MESSAGES : REPLAY_BATCH);
    int got = 0;
    for (ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = msgs[i];
        if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
            skip_lost(sp, p);
        else if (!m->err && m->offset >= pt->next)
            got += (int)take(pt, p, m);
        rd_kafka_message_destroy(m);
    }
    push_pending(sp, p);
    if (got == 0)
        maybe_leave(sp, p);
    return n > 0 ? (int)n : 0;
}

/* Saves where a restart resumes each partition's replay: at the first record taken that is not
 * in the ring yet (pending never reached it), else at next; with the mark from before it. */
static void save_offsets(struct spill *sp, int force)
{
    int64_t now = time_mono_ns();
    if (!sp->st || (!force && now < sp->next_save))
        return;
    sp->next_save = now + SAVE_EVERY_NS;
    for (int p = 0; p < sp->n; p++) {
        struct part *pt = &sp->parts[p];
        int waiting = pt->pend_head < pt->pend_n;
        int64_t at = waiting ? pt->pend[pt->pend_head].offset : pt->next;
        struct spill_mark seen = waiting ? pt->pend[pt->pend_head].before : pt->seen.mark;
        uint64_t skip = waiting ? pt->pend[pt->pend_head].skip + pt->pend_done : pt->skip;
        const uint64_t mark[STORE_MARK] = {seen.run, seen.seq, skip};
        if ((at != pt->saved || skip != pt->saved_skip) &&
            store_offset_set(sp->st, sp->topic, p, at, mark) == 0)
            pt->saved = at, pt->saved_skip = skip;
    }
}

static void *spill_main(void *arg)
{
    struct spill *sp = arg;
    while (!atomic_load(&sp->stop)) {
        if (!atomic_load(&sp->ready)) {
            reconnect(sp);
            continue;
        }
        int busy = 0, active = 0;
        for (int p = 0; p < sp->n; p++) {
            if (spill_active(sp, p)) {
                active = 1;
                busy += replay(sp, p);
            }
        }
        save_offsets(sp, 0);
        /* Delivery reports: serving them is what frees room in the producer's queue for the
         * collector, so the thread waits in them when it has nothing else to do (returning at
         * the first one), and not at all while replaying. A partition waiting for room in its
         * ring is looked at again within a millisecond: the workers empty a ring much faster
         * than the idle wait. */
        rd_kafka_poll(sp->prod, busy ? 0 : active ? 1 : REPLAY_IDLE_MS);
    }
    return NULL;
}

int spill_start(struct spill *sp, char *err, size_t errlen)
{
    int rc = thread_start(&sp->thread, spill_main, sp, "spill");
    if (rc) {
        snprintf(err, errlen, "cannot start the spill thread: %s", strerror(rc));
        return -rc;
    }
    sp->started = 1;
    return 0;
}

uint64_t spill_stop(struct spill *sp, int64_t deadline_ns)
{
    if (!sp || !sp->started)
        return 0;
    atomic_store(&sp->stop, 1);
    pthread_join(sp->thread, NULL);
    sp->started = 0;
    int64_t left = deadline_ns - time_mono_ns();
    if (sp->prod)
        rd_kafka_flush(sp->prod, left > 0 ? (int)(left / 1000000) : 0);
    int64_t unacked = 0;
    for (int p = 0; p < sp->n; p++)
        unacked += atomic_load(&sp->parts[p].in_flight);
    if (unacked > 0)
        log_error("spill: records not acknowledged by Kafka at the shutdown deadline", "{s:I}",
                  "records", (json_int_t)unacked);
    save_offsets(sp, 1); /* records replayed but still waiting for room come back next time */
    return unacked > 0 ? (uint64_t)unacked : 0;
}

void spill_free(struct spill *sp)
{
    if (!sp)
        return;
    spill_stop(sp, time_mono_ns());
    for (int p = 0; sp->parts && p < sp->n; p++) {
        if (sp->parts[p].consuming)
            rd_kafka_consume_stop(sp->ctopic, p);
        buf_free(&sp->parts[p].pending);
        pthread_mutex_destroy(&sp->parts[p].mu);
    }
    if (sp->ptopic)
        rd_kafka_topic_destroy(sp->ptopic);
    if (sp->ctopic)
        rd_kafka_topic_destroy(sp->ctopic);
    if (sp->prod)
        rd_kafka_destroy(sp->prod);
    if (sp->cons)
        rd_kafka_destroy(sp->cons);
    buf_free(&sp->msg);
    free(sp->parts);
    free(sp->topic);
    free(sp);
}

struct spill_stats *spill_stats(struct spill *sp, int p)
{
    return &sp->parts[p].stats;
}
