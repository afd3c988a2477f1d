#include "router/worker.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/eview.h"
#include "core/hash.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/ring.h"
#include "core/thread.h"
#include "core/timeutil.h"
#include "pipeline/kpipe.h"
#include "pipeline/pipeline.h"
#include "router/metric_agg.h"
#include "router/metric_rules.h"
#include "router/route.h"
#include "router/router.h"
#include "router/sample.h"
#include "router/script.h"
#include "router/script_state.h"
#include "router/sinks/sink.h"

/* Records are processed in chunks of about this many bytes: each chunk is staged, pushed to
 * the sinks and released from the ring before the next, so the ring frees up steadily and a
 * worker never stages more than this (times the fan-out) at once. */
#define CHUNK_BYTES  (256 * 1024)
#define PEEK_WAIT_NS (100 * 1000000LL)
#define PUSH_WAIT_NS (100 * 1000000LL)

/* A new version of a route's script this worker compiled and reported to the router; it is
 * swapped in once the router commits it (every worker loaded it), dropped if abandoned. */
struct pending_load {
    unsigned seen; /* the last candidate generation looked at */
    unsigned gen;  /* the candidate behind hd */
    int hd;        /* its handle, or -1 */
};

/* Counters a worker accumulates without atomics and publishes once per chunk. */
struct route_local {
    uint64_t in, kept, filtered, sampled_out, errors, metric_events, metric_overflow;
    uint64_t metric_invalid;
};

/* A route's spillway.metric.* aggregates on this worker, and when they are flushed next. */
struct route_metrics {
    struct metric_agg *agg;
    int64_t since;      /* the start of the interval being aggregated (unix ns) */
    int64_t next_flush; /* monotonic ns */
    char source[160];   /* "route:NAME" */
};

/* Runs of records a stage takes as the partition ring holds them (events no route changed),
 * pushed from there at publish: the ring's span stays the worker's until then. Their headers'
 * flags and src are the collector's, a copy's are 0: a sink reads only len and data. Past this
 * many runs in a chunk, records are copied into the batch instead (the runs' part list is
 * bounded). */
#define STAGE_RUNS 32

struct stage_run {
    size_t at; /* the batch's length when the run began: it goes between batch[..at) and the rest */
    const char *p;
    size_t len;
};

/* The records of one sink (or its shadow) from the chunk being processed, in order: the batch's
 * records with the runs placed between them. */
struct stage {
    struct buf batch;
    struct stage_run run[STAGE_RUNS];
    int nrun;
};

struct worker {
    struct router *r;
    int partition;
    struct ring *in;
    struct sinks *sinks;
    int nsinks;
    int nroutes;
    int dead_sink;
    int fallback_sink;
    pthread_t thread;
    int started;
    struct eview ev;
    struct script_host *host;
    int *handles;                  /* per route: script handle or -1 */
    unsigned *gens;                /* per route: the script generation loaded */
    struct pending_load *pend;     /* per route: a reload's candidate, compiled, not yet in use */
    uint64_t script_state_version; /* of the spillway.state copy in the Lua host */
    struct script_route *sroute;   /* per route: what helpers see */
    struct stage *stage;           /* [sink * 2 + (shadow ? 1 : 0)] */
    struct route_local *local;
    struct route_metrics *metrics; /* per route */
    struct buf dead;
    struct buf *tapstage; /* per route: tapped events of the current chunk */
    struct buf tapev;
    struct buf num; /* a sample_rate written by default_sample */
    struct buf tmp; /* declared metrics' label values that needed unescaping */
    uint64_t rng;
    uint64_t unrouted, dead_unsunk, dead_sent, serialize_errors, fallback_dropped;
    uint64_t dead_in;   /* dead letters among the records taken from the ring */
    uint64_t processed; /* records taken from the ring so far */
    uint64_t *sink_in;  /* kafka mode: the sinks' in counters after a publish */
    struct log_limit err_log;
    struct log_limit oom_log; /* out of memory: its own, so script errors never hide it */
};

static int host_sink_find(void *ud, const char *name)
{
    struct worker *w = ud;
    return sinks_find(w->sinks, name);
}

static int host_emit(void *ud, int sink, const char *json, size_t len)
{
    struct worker *w = ud;
    return ring_batch_add(&w->stage[sink * 2].batch, json, len, 0, 0);
}

static int host_state_set(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    struct worker *w = ud;
    struct script_state *ss = router__script_state(w->r);
    return ss ? script_state_set(ss, k, kl, v, vl) : 0;
}

static void shared_copy(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    script_shared_put(ud, k, kl, v, vl);
}

static void drop_pending(struct worker *w, struct pending_load *p)
{
    script_unload(w->host, p->hd);
    p->hd = -1;
}

/* A reload's new version of route i: compiled here, next to the running one, and the result
 * reported to the router, which commits it only when every worker could load it. */
static void load_candidate(struct worker *w, int i, unsigned cand)
{
    struct pending_load *p = &w->pend[i];
    struct route *rt = router_route(w->r, i);
    char *src;
    size_t len;
    p->seen = cand;
    drop_pending(w, p);
    int rc = router__candidate_source(w->r, i, cand, &src, &len);
    if (rc == -ENOENT)
        return; /* already withdrawn */
    if (rc) {   /* no memory for a copy: a load error like any other, so the reload resolves */
        router__candidate_report(w->r, i, cand, w->partition, "out of memory");
        return;
    }
    char err[512];
    int hd = script_load(w->host, rt->script_path, src, len, err, sizeof(err));
    free(src);
    if (hd >= 0) {
        p->hd = hd;
        p->gen = cand;
    } else {
        log_error("worker could not load a reloaded script: no worker swaps it in",
                  "{s:s, s:i, s:s}", "route", rt->name, "worker", w->partition, "error", err);
    }
    router__candidate_report(w->r, i, cand, w->partition, hd < 0 ? err : NULL);
}

/* A committed version this worker did not compile as a candidate (not expected: kept so a
 * worker can never run a version other than the committed one). */
static void load_committed(struct worker *w, int i)
{
    struct route *rt = router_route(w->r, i);
    char *src, err[512];
    size_t len;
    unsigned gen;
    if (router__script_source(w->r, i, &src, &len, &gen))
        return;
    int hd = script_load(w->host, rt->script_path, src, len, err, sizeof(err));
    free(src);
    if (hd < 0)
        log_error("worker could not load a reloaded script: the running version stays",
                  "{s:s, s:i, s:s}", "route", rt->name, "worker", w->partition, "error", err);
    else
        script_replace(w->host, w->handles[i], hd);
}

/* Between two chunks: compile reload candidates, swap in versions the router committed, and
 * refresh the local copy of spillway.state when another worker (or this one) changed the
 * shared store. */
static void sync_with_router(struct worker *w)
{
    for (int i = 0; i < w->nroutes; i++) {
        struct pending_load *p = &w->pend[i];
        if (w->handles[i] < 0)
            continue;
        unsigned cand = router__candidate_gen(w->r, i);
        if (cand != p->seen)
            load_candidate(w, i, cand);
        if (p->hd >= 0 && router__dropped_gen(w->r, i) == p->gen)
            drop_pending(w, p);
        unsigned gen = atomic_load(&router_route(w->r, i)->script_gen);
        if (gen == w->gens[i])
            continue;
        if (p->hd >= 0 && p->gen == gen) {
            script_replace(w->host, w->handles[i], p->hd);
            p->hd = -1;
        } else {
            load_committed(w, i);
        }
        w->gens[i] = gen;
    }
    struct script_state *ss = router__script_state(w->r);
    if (ss && script_state_version(ss) != w->script_state_version) {
        script_shared_begin(w->host);
        w->script_state_version = script_state_each(ss, shared_copy, w->host);
    }
}

static int load_scripts(struct worker *w, char *err, size_t errlen)
{
    const struct router_setup *cfg = router__config(w->r);
    struct script_limits lim = {cfg->router->max_instructions, cfg->router->lua_memory};
    struct script_env env = {
        .state_set = host_state_set, .sink_find = host_sink_find, .emit = host_emit, .ud = w};
    w->host = script_host_new(&lim, &env, 0x9E3779B97F4A7C15ULL * (uint64_t)(w->partition + 1));
    if (!w->host)
        return -ENOMEM;
    for (int i = 0; i < w->nroutes; i++) {
        struct route *rt = router_route(w->r, i);
        w->sroute[i].name = rt->name;
        w->sroute[i].salt = hash64(rt->name, strlen(rt->name));
        w->handles[i] = -1;
        w->gens[i] = atomic_load(&rt->script_gen);
        w->pend[i] = (struct pending_load){router__candidate_gen(w->r, i), 0, -1};
        if (!rt->source)
            continue;
        w->handles[i] =
            script_load(w->host, rt->script_path, rt->source, rt->source_len, err, errlen);
        if (w->handles[i] < 0)
            return -EINVAL;
    }
    return 0;
}

/* An aggregate for each route with a script or declared metrics (what spillway.metric.* and the
 * declared metrics add to), first flushed one interval from now. The memory of its tables is
 * taken on first use. */
static int metrics_new(struct worker *w)
{
    int64_t now = time_mono_ns(), wall = time_now_ns();
    for (int i = 0; i < w->nroutes; i++) {
        struct route *rt = router_route(w->r, i);
        if (w->handles[i] < 0 && !rt->metric_rules)
            continue;
        const struct metric_agg_opts o = {rt->metric_buckets, rt->nmetric_buckets,
                                          rt->metric_max_series};
        struct route_metrics *m = &w->metrics[i];
        if (!(m->agg = metric_agg_new(&o)))
            return -ENOMEM;
        m->since = wall;
        m->next_flush = now + rt->metric_interval;
        snprintf(m->source, sizeof(m->source), "route:%s", rt->name);
        w->sroute[i].agg = m->agg;
    }
    return 0;
}

struct worker *worker_new(struct router *r, int partition, char *err, size_t errlen)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->r = r;
    w->partition = partition;
    w->in = pipeline_ring(router__pipeline(r), partition);
    w->sinks = router__sinks(r);
    w->nsinks = sinks_count(w->sinks);
    w->nroutes = router_route_count(r);
    w->dead_sink = router__dead_sink(r);
    w->fallback_sink = router__fallback_sink(r);
    w->rng = 0x2545F4914F6CDD1DULL ^ (uint64_t)(partition + 1) * 0x9E3779B97F4A7C15ULL;
    eview_init(&w->ev);
    w->handles = calloc((size_t)w->nroutes + 1, sizeof(int));
    w->gens = calloc((size_t)w->nroutes + 1, sizeof(unsigned));
    w->pend = calloc((size_t)w->nroutes + 1, sizeof(*w->pend));
    w->sroute = calloc((size_t)w->nroutes + 1, sizeof(*w->sroute));
    w->local = calloc((size_t)w->nroutes + 1, sizeof(*w->local));
    w->stage = calloc((size_t)w->nsinks * 2 + 1, sizeof(*w->stage));
    w->tapstage = calloc((size_t)w->nroutes + 1, sizeof(*w->tapstage));
    w->sink_in = calloc((size_t)w->nsinks + 1, sizeof(uint64_t));
    w->metrics = calloc((size_t)w->nroutes + 1, sizeof(*w->metrics));
    if (!w->handles || !w->gens || !w->pend || !w->sroute || !w->local || !w->stage ||
        !w->tapstage || !w->sink_in || !w->metrics || load_scripts(w, err, errlen) ||
        metrics_new(w)) {
        worker_free(w);
        return NULL;
    }
    return w;
}

void worker_free(struct worker *w)
{
    if (!w)
        return;
    worker_join(w);
    script_host_free(w->host);
    eview_free(&w->ev);
    for (int i = 0; w->stage && i < w->nsinks * 2; i++)
        buf_free(&w->stage[i].batch);
    free(w->stage);
    for (int i = 0; w->tapstage && i < w->nroutes; i++)
        buf_free(&w->tapstage[i]);
    free(w->tapstage);
    free(w->sink_in);
    buf_free(&w->tapev);
    buf_free(&w->num);
    buf_free(&w->tmp);
    free(w->handles);
    free(w->gens);
    free(w->pend);
    free(w->sroute);
    free(w->local);
    for (int i = 0; w->metrics && i < w->nroutes; i++)
        metric_agg_free(w->metrics[i].agg);
    free(w->metrics);
    buf_free(&w->dead);
    free(w);
}

/* Pushes records p[0..len) of a stage to its sink's queue: a `block` stage waits for room
 * (until the shutdown deadline); a drop_newest or shadow stage takes what fits. Once a part
 * did not fit (full), the parts after it are counted as dropped without being offered, so
 * what is dropped is always the newest. */
static void push_part(struct worker *w, struct sink *s, int idx, const char *p, size_t len,
                      int *full)
{
    size_t off = 0;
    uint64_t nrec;
    if (!*full) {
        int block = (idx % 2) == 0 && s->when_full == SINK_FULL_BLOCK;
        off = ring_push(s->q, p, len, &nrec);
        counter_add(&s->stats.in, nrec);
        while (block && off < len && !sinks_past_deadline(w->sinks)) {
            /* Counted as each part goes in: a worker waiting here for a dead sink must not
             * leave queued records that `in` does not show (the balance would report them). */
            off += ring_push_wait(s->q, p + off, len - off, PUSH_WAIT_NS, &nrec);
            counter_add(&s->stats.in, nrec);
        }
    }
    if (off < len) {
        *full = 1;
        uint64_t n = ring_count(p + off, len - off);
        counter_add(idx % 2 ? &s->stats.dropped_shadow : &s->stats.dropped_full, n);
        counter_add(&s->stats.dropped, n);
    }
}

/* Pushes one stage to its sink's queue, in order (the batch's records and the runs between):
 * under one lock while there is room, so that the sink's thread is woken once, as for one
 * batch; part by part (push_part) from where the queue was full. */
static void push_stage(struct worker *w, int idx)
{
    struct stage *st = &w->stage[idx];
    struct buf *b = &st->batch;
    if (!b->len && !st->nrun)
        return;
    struct ring_part part[2 * STAGE_RUNS + 1];
    int np = 0;
    size_t from = 0;
    for (int i = 0; i < st->nrun; i++) {
        const struct stage_run *run = &st->run[i];
        if (run->at > from)
            part[np++] = (struct ring_part){b->data + from, run->at - from};
        part[np++] = (struct ring_part){run->p, run->len};
        from = run->at;
    }
    if (b->len > from)
        part[np++] = (struct ring_part){b->data + from, b->len - from};
    struct sink *s = sinks_get(w->sinks, idx / 2);
    uint64_t nrec;
    size_t took = ring_pushv(s->q, part, np, &nrec);
    counter_add(&s->stats.in, nrec);
    int full = 0;
    for (int i = 0; i < np; i++) {
        if (took >= part[i].len) {
            took -= part[i].len;
            continue;
        }
        push_part(w, s, idx, part[i].p + took, part[i].len - took, &full);
        took = 0;
    }
    st->nrun = 0;
    buf_reset(b);
    buf_trim(b, 4 << 20);
}

/* Stages the partition ring's record rec as it is (an event that reaches the sinks unchanged):
 * as part of a run, without copying it, or, once a chunk has STAGE_RUNS runs, copied. */
static int stage_record(struct stage *st, const struct ring_rec *rec)
{
    size_t size = RING_REC_SIZE(rec->len);
    struct stage_run *last = st->nrun ? &st->run[st->nrun - 1] : NULL;
    if (last && last->at == st->batch.len && last->p + last->len == (const char *)rec) {
        last->len += size;
        return 0;
    }
    if (st->nrun < STAGE_RUNS) {
        st->run[st->nrun++] = (struct stage_run){st->batch.len, (const char *)rec, size};
        return 0;
    }
    return ring_batch_add(&st->batch, RING_REC_DATA(rec), rec->len, 0, 0);
}

/* Tapped events go to the route's tap ring without ever waiting: what does not fit is
 * skipped (and counted), so a tap cannot slow the pipeline. */
static void push_taps(struct worker *w)
{
    for (int i = 0; i < w->nroutes; i++) {
        struct buf *b = &w->tapstage[i];
        if (!b->len)
            continue;
        struct route *rt = router_route(w->r, i);
        struct ring *tap = atomic_load(&rt->tap);
        size_t took = tap ? ring_push(tap, b->data, b->len, NULL) : 0;
        if (took < b->len)
            counter_add(&rt->tap_skipped, ring_count(b->data + took, b->len - took));
        buf_reset(b);
    }
}

static void tap(struct worker *w, int i, const char *data, size_t len, int before)
{
    ring_batch_add(&w->tapstage[i], data, len, before ? RING_F_TAP_BEFORE : 0, 0);
}

static void publish(struct worker *w, uint64_t records)
{
    for (int i = 0; i < w->nsinks * 2; i++)
        push_stage(w, i);
    push_taps(w);
    for (int i = 0; i < w->nroutes; i++) {
        struct route_local *l = &w->local[i];
        if (!l->in && !l->metric_events && !l->metric_overflow && !l->metric_invalid)
            continue;
        struct route_stats *st = &router_route(w->r, i)->stats;
        counter_add(&st->in, l->in);
        counter_add(&st->kept, l->kept);
        counter_add(&st->filtered, l->filtered);
        counter_add(&st->sampled_out, l->sampled_out);
        counter_add(&st->errors, l->errors);
        counter_add(&st->metric_events, l->metric_events);
        counter_add(&st->metric_overflow, l->metric_overflow);
        counter_add(&st->metric_invalid, l->metric_invalid);
        memset(l, 0, sizeof(*l));
    }
    struct router_stats *rs = router_stats(w->r);
    counter_add(&rs->unrouted, w->unrouted);
    counter_add(&rs->dead_unsunk, w->dead_unsunk);
    counter_add(&rs->dead_letter, w->dead_sent);
    counter_add(&rs->serialize_errors, w->serialize_errors);
    counter_add(&rs->fallback_dropped, w->fallback_dropped);
    w->unrouted = w->dead_unsunk = w->dead_sent = w->serialize_errors = w->fallback_dropped = 0;
    struct partition_stats *ps = pipeline_stats(router__pipeline(w->r), w->partition);
    counter_add(&ps->dead, w->dead_in);
    counter_add(&ps->out, records);
    w->dead_in = 0;
    /* Kafka mode commits offsets once the sinks finished what this worker handed them. */
    struct kpipe *kp = pipeline_kpipe(router__pipeline(w->r));
    if (kp && records) {
        w->processed += records;
        /* The queue's own count, taken under its lock: the sink's `in` counter is added after
         * the push, so another worker's records ahead of ours could be missing from it. */
        for (int i = 0; i < w->nsinks; i++)
            w->sink_in[i] = ring_pushed(sinks_get(w->sinks, i)->q);
        kpipe_worker_done(kp, w->partition, w->processed, w->sink_in, w->nsinks);
    }
}

static void stage_dead(struct worker *w, const char *data, size_t len)
{
    if (w->dead_sink < 0) {
        w->dead_unsunk++;
        return;
    }
    if (ring_batch_add(&w->stage[w->dead_sink * 2].batch, data, len, 0, 0) == 0)
        w->dead_sent++;
    else
        w->dead_unsunk++;
}

/* A record a route could not process: {"timestamp","kind","source","error","event"}. One that
 * cannot be built (out of memory) is counted as a dead letter without a sink. */
static void route_failed(struct worker *w, const struct route *rt, const char *error)
{
    if (log_limit_take(&w->err_log) >= 0)
        log_warn("route failed on an event", "{s:s, s:s}", "route", rt->name, "error", error);
    struct buf *d = &w->dead;
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(time_now_ns(), ts);
    buf_reset(d);
    char src[256];
    snprintf(src, sizeof(src), "route:%s", rt->name);
    if (buf_printf(d, "{\"timestamp\":\"%s\",\"kind\":\"event\",\"source\":", ts) < 0 ||
        jsonw_string(d, src, strlen(src)) || buf_puts(d, ",\"error\":") ||
        jsonw_string(d, error, strlen(error)) || buf_puts(d, ",\"event\":") ||
        buf_append(d, w->ev.js, w->ev.len) || buf_putc(d, '}')) {
        w->dead_unsunk++;
        if (log_limit_take(&w->oom_log) >= 0)
            log_error("out of memory building a dead letter: counted as dead_letter_unsunk",
                      "{s:s}", "route", rt->name);
        return;
    }
    stage_dead(w, d->data, d->len);
}

/* The decision of a route without a script: spillway.sample(ev[sample_key]). */
static int default_sample(struct worker *w, const struct route *rt, double rate)
{
    if (rate >= 1.0)
        return 1;
    struct ev_val v;
    int keep;
    if (eview_get(&w->ev, rt->sample_key, rt->sample_key_len, &v) || v.kind == EVK_MISSING ||
        v.kind == EVK_NULL) {
        keep = sample_random(rate, &w->rng);
    } else if (v.kind == EVK_STRING && v.escaped) {
        buf_reset(&w->dead);
        jsontok_unescape(v.text, v.len, &w->dead);
        keep = sample_keep(rate, w->dead.data, w->dead.len);
    } else {
        keep = sample_keep(rate, v.text, v.len);
    }
    if (keep) { /* the rate as JSON, in the worker's own buffer: no allocation per event */
        buf_reset(&w->num);
        if (jsonw_double(&w->num, rate) == 0)
            eview_set(&w->ev, "sample_rate", 11, w->num.data, w->num.len);
    }
    return keep;
}

/* An event no route changed is staged as the ring holds it (stage_record); a changed one is
 * serialized once into the first sink's batch and copied to the others. */
static int deliver(struct worker *w, const struct route *rt, const struct ring_rec *rec)
{
    struct buf *first = NULL;
    size_t at = 0, len = 0;
    for (int pass = 0; pass < 2; pass++) {
        const int *list = pass ? rt->shadow : rt->sinks;
        int n = pass ? rt->nshadow : rt->nsinks;
        for (int i = 0; i < n; i++) {
            struct stage *st = &w->stage[list[i] * 2 + pass];
            struct buf *b = &st->batch;
            if (!w->ev.nedits) {
                if (stage_record(st, rec))
                    return -ENOMEM;
            } else if (!first) {
                size_t off;
                if (ring_batch_begin(b, 0, 0, &off))
                    return -ENOMEM;
                if (eview_serialize(&w->ev, b)) {
                    ring_batch_cancel(b, off);
                    return -ENOMEM;
                }
                if (ring_batch_end(b, off))
                    return -ENOMEM;
                first = b;
                at = off + RING_HDR;
                len = ((struct ring_rec *)(b->data + off))->len;
            } else if (ring_batch_add(b, first->data + at, len, 0, 0)) {
                return -ENOMEM;
            }
        }
    }
    return 0;
}

/* The route's declared metrics (metrics.count/observe/gauge) of the event, before its script. */
static void declared_metrics(struct worker *w, const struct route *rt, int i)
{
    int64_t n = metric_rules_apply(rt->metric_rules, &w->ev, w->metrics[i].agg, &w->tmp);
    if (n > 0)
        w->local[i].metric_invalid += (uint64_t)n;
    else if (n < 0 && log_limit_take(&w->oom_log) >= 0)
        log_error("out of memory aggregating a route's metrics: an event was not counted", "{s:s}",
                  "route", rt->name);
}

static void process_event(struct worker *w, const struct ring_rec *rec)
{
    const char *data = RING_REC_DATA(rec);
    size_t len = rec->len;
    eview_reset(&w->ev, data, len);
    int kept = 0;
    for (int i = 0; i < w->nroutes; i++) {
        struct route *rt = router_route(w->r, i);
        if (!atomic_load_explicit(&rt->enabled, memory_order_relaxed))
            continue;
        struct route_local *l = &w->local[i];
        l->in++;
        if (w->ev.nedits)
            eview_clear_edits(&w->ev);
        if (atomic_load_explicit(&rt->taps_before, memory_order_relaxed))
            tap(w, i, data, len, 1);
        if (rt->metric_rules)
            declared_metrics(w, rt, i);
        double rate = route_rate(rt);
        int keep;
        if (w->handles[i] >= 0) {
            const char *err = NULL;
            w->sroute[i].rate = rate;
            keep = script_run(w->host, w->handles[i], &w->ev, &w->sroute[i], &err);
            if (keep < 0) {
                l->errors++;
                route_failed(w, rt, err);
                continue;
            }
            if (!keep && script_sampled_out(w->host))
                l->sampled_out++;
        } else {
            keep = default_sample(w, rt, rate);
            if (!keep)
                l->sampled_out++;
        }
        if (!keep) {
            l->filtered++;
            continue;
        }
        if (deliver(w, rt, rec)) {
            l->errors++;
            w->serialize_errors++;
            route_failed(w, rt, "out of memory serializing the event");
            continue;
        }
        l->kept++;
        kept = 1;
        if (atomic_load_explicit(&rt->taps_after, memory_order_relaxed)) {
            buf_reset(&w->tapev);
            if (eview_serialize(&w->ev, &w->tapev) == 0)
                tap(w, i, w->tapev.data, w->tapev.len, 0);
        }
        if (rt->stop)
            break;
    }
    if (!kept) {
        w->unrouted++;
        if (w->fallback_sink >= 0 &&
            ring_batch_add(&w->stage[w->fallback_sink * 2].batch, data, len, 0, 0)) {
            w->fallback_dropped++;
            if (log_limit_take(&w->oom_log) >= 0)
                log_error("out of memory staging an unrouted event for the fallback sink: dropped",
                          NULL);
        }
    }
}

/* ---- logs to metrics ---- */

struct metric_emit {
    struct worker *w;
    const struct route *to; /* the route whose sinks get the events */
    int failed;
};

/* A flushed aggregate: into the staging batches of the route's sinks and shadows, as a kept
 * event would be (the sinks' queues take them at the next publish). */
static void metric_event(void *ud, const char *json, size_t len)
{
    struct metric_emit *x = ud;
    for (int pass = 0; pass < 2; pass++) {
        const int *list = pass ? x->to->shadow : x->to->sinks;
        int n = pass ? x->to->nshadow : x->to->nsinks;
        for (int i = 0; i < n; i++)
            x->failed |= ring_batch_add(&x->w->stage[list[i] * 2 + pass].batch, json, len, 0, 0);
    }
}

/* Between two chunks (and when idle): each route whose interval is over has its aggregates
 * written as metric events of its metrics route's sinks; all of them when stopping. Returns how
 * many events were staged. */
static uint64_t flush_metrics(struct worker *w, int all)
{
    int64_t now = time_mono_ns();
    uint64_t staged = 0;
    for (int i = 0; i < w->nroutes; i++) {
        struct route_metrics *m = &w->metrics[i];
        if (!m->agg || (!all && now < m->next_flush))
            continue;
        struct route *rt = router_route(w->r, i);
        m->next_flush = now + rt->metric_interval;
        w->local[i].metric_overflow += metric_agg_take_overflow(m->agg);
        if (!metric_agg_series(m->agg))
            continue;
        int64_t wall = time_now_ns();
        struct metric_emit x = {w, router_route(w->r, rt->metrics_to), 0};
        int n = metric_agg_flush(m->agg, m->source, m->since, wall, metric_event, &x);
        m->since = wall;
        if (n < 0 || x.failed) {
            if (log_limit_take(&w->oom_log) >= 0)
                log_error("out of memory flushing a route's metrics: some were lost", "{s:s}",
                          "route", rt->name);
        }
        if (n > 0) {
            w->local[i].metric_events += (uint64_t)n;
            staged += (uint64_t)n;
        }
    }
    return staged;
}

/* Processes records from span[0..len) up to about CHUNK_BYTES; returns the bytes consumed. */
static size_t process_chunk(struct worker *w, const char *span, size_t len, uint64_t *records)
{
    size_t off = 0;
    uint64_t n = 0;
    while (off < len && off < CHUNK_BYTES) {
        const struct ring_rec *rec = (const struct ring_rec *)(span + off);
        if (rec->flags & RING_F_DEAD) {
            stage_dead(w, RING_REC_DATA(rec), rec->len);
            w->dead_in++;
        } else
            process_event(w, rec);
        off += RING_REC_SIZE(rec->len);
        n++;
    }
    *records = n;
    return off;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        const char *span;
        size_t n = ring_peek(w->in, &span, PEEK_WAIT_NS, NULL);
        /* After every wait and between two chunks: a version committed while this worker
         * waited is in force for every event that arrived after the commit (ctl reload
         * replies after it), and an idle worker compiles reload candidates within
         * PEEK_WAIT_NS. */
        sync_with_router(w);
        if (n == 0) {
            if (ring_closed_empty(w->in))
                break;
            if (flush_metrics(w, 0))
                publish(w, 0);
            continue;
        }
        size_t done = 0;
        while (done < n) {
            uint64_t records;
            if (done)
                sync_with_router(w);
            size_t used = process_chunk(w, span + done, n - done, &records);
            /* A worker-owned clock check, no lock: the aggregates go out with the chunk. */
            flush_metrics(w, 0);
            publish(w, records);
            ring_release(w->in, used, records);
            done += used;
        }
    }
    flush_metrics(w, 1); /* what was aggregated since the last flush is not lost at a stop */
    publish(w, 0);
    return NULL;
}

int worker_start(struct worker *w, char *err, size_t errlen)
{
    int rc = thread_start(&w->thread, worker_main, w, "worker-%d", w->partition);
    if (rc) {
        snprintf(err, errlen, "cannot start worker %d: %s", w->partition, strerror(rc));
        return -rc;
    }
    w->started = 1;
    return 0;
}

void worker_join(struct worker *w)
{
    if (w->started) {
        pthread_join(w->thread, NULL);
        w->started = 0;
    }
}
