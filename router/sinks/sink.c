#include "router/sinks/sink.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/hash.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/ring.h"
#include "core/thread.h"
#include "core/timeutil.h"
#include "core/utf8.h"

#define SINK_TYPE_ROW(t) &t,
const struct sink_type *const sink_types[] = {SINK_TYPES(SINK_TYPE_ROW) NULL};

static const struct cfg_section *sink_variant(int i)
{
    return sink_types[i] ? &sink_types[i]->cfg : NULL;
}

const struct cfg_section sink_list_section = {
    .name = "sink", .variant = sink_variant, .keys = (const struct cfg_key[]){{0}}};

const char *const sink_when_full_names[] = {"block", "drop_newest", NULL};
const char *const sink_health_names[] = {"up", "retrying", "circuit open"};

#define IDLE_WAIT_NS      (100 * 1000000LL) /* queue idle: call flush this often */
#define BACKOFF_MIN_NS    (50 * 1000000LL)
#define BACKOFF_MAX_NS    (5000 * 1000000LL)
#define CIRCUIT_MIN_FAILS 5 /* besides circuit_after: one slow attempt never opens the circuit */

struct sinks {
    struct sink *v;
    int n;
    int dead; /* index of the dead_letter sink, or -1 */
    counter_t dead_unsunk;
    _Atomic int64_t deadline;   /* 0 while running */
    _Atomic uint64_t abandoned; /* given up on at the stop deadline while being retried */
};

struct sink_thread_arg {
    struct sinks *ss;
    struct sink *s;
};

static int past_deadline(const struct sinks *ss)
{
    int64_t dl = atomic_load(&((struct sinks *)ss)->deadline);
    return dl && time_mono_ns() >= dl;
}

int sinks_past_deadline(const struct sinks *ss)
{
    return past_deadline(ss);
}

void sinks_set_deadline(struct sinks *ss, int64_t deadline_ns)
{
    atomic_store(&ss->deadline, deadline_ns);
}

/* Sleeps for a backoff step, in slices, returning early past the shutdown deadline. */
/* Waits ns, less when the stop deadline passes, or when the drain starts during the wait: a
 * destination that came back is then tried at once rather than after a long circuit wait. */
static void backoff_sleep(struct sinks *ss, int64_t ns)
{
    int stopping = atomic_load(&ss->deadline) != 0;
    while (ns > 0 && !past_deadline(ss) && (stopping || !atomic_load(&ss->deadline))) {
        int64_t step = ns > 50000000 ? 50000000 : ns;
        struct timespec ts = {0, (long)step};
        nanosleep(&ts, NULL);
        ns -= step;
    }
}

void sink_set_error(struct sink *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&s->stat.mu);
    vsnprintf(s->last_error, sizeof(s->last_error), fmt, ap);
    /* Shown as a JSON string: the cut at the buffer's end must not leave half a character. */
    s->last_error[utf8_check(s->last_error, strlen(s->last_error))] = '\0';
    pthread_mutex_unlock(&s->stat.mu);
    va_end(ap);
}

void sink_accepted(struct sink *s, uint64_t n)
{
    s->accepted += n;
}

void sink_retry_after(struct sink *s, int64_t ns)
{
    s->retry_after = ns > SINK_RETRY_AFTER_MAX_NS ? SINK_RETRY_AFTER_MAX_NS : ns;
}

/* Remembers that rec was refused while delivering the current span; 0 when it already was. */
static int mark_refused(struct sink *s, const char *rec)
{
    if (s->nrefused + s->unlisted >= s->span_records)
        return 0; /* never more refused than the span holds (after an unlisted one, below) */
    /* Mostly refused in span order (a new one comes after the last): then no search. */
    if (s->nrefused > 0 && rec <= s->refused[s->nrefused - 1]) {
        for (size_t i = 0; i < s->nrefused; i++) {
            if (s->refused[i] == rec)
                return 0;
        }
    }
    if (s->nrefused == s->refused_cap) {
        size_t cap = s->refused_cap ? s->refused_cap * 2 : 64;
        const char **nr = realloc(s->refused, cap * sizeof(*nr));
        if (!nr) { /* counted, but not left out of the digest: the lesser harm */
            s->unlisted++;
            return 1;
        }
        s->refused = nr;
        s->refused_cap = cap;
    }
    s->refused[s->nrefused++] = rec;
    return 1;
}

void sink_refuse(struct sink *s, const char *rec, size_t len, const char *error)
{
    if (!mark_refused(s, rec))
        return; /* counted in failed by deliver(), when the span is done with */
    struct sinks *ss = s->set;
    if (ss->dead < 0 || &ss->v[ss->dead] == s) {
        counter_add(&ss->dead_unsunk, 1);
        return;
    }
    struct buf d = {0};
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(time_now_ns(), ts);
    buf_printf(&d, "{\"timestamp\":\"%s\",\"kind\":\"event\",\"source\":", ts);
    char src[300];
    snprintf(src, sizeof(src), "sink:%s", s->name);
    jsonw_string(&d, src, strlen(src));
    buf_puts(&d, ",\"error\":");
    jsonw_string(&d, error, strlen(error));
    buf_puts(&d, ",\"event\":");
    buf_append(&d, rec, len);
    buf_putc(&d, '}');
    struct buf batch = {0};
    struct sink *dl = &ss->v[ss->dead];
    if (ring_batch_add(&batch, d.data, d.len, 0, 0) == 0 &&
        ring_push(dl->q, batch.data, batch.len, NULL) == batch.len)
        counter_add(&dl->stats.in, 1);
    else
        counter_add(&dl->stats.dropped, 1), counter_add(&dl->stats.dropped_full, 1);
    buf_free(&batch);
    buf_free(&d);
}

static int cmp_ptr(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return x < y ? -1 : x > y;
}

/* The digest and the latency take the records the destination accepted: all of the span but
 * those refused (usually none; a type refuses them in span order, sorted here to be sure). */
static void observe(struct sink *s, const char *span, size_t len)
{
    int64_t now = time_now_ns();
    if (s->nrefused > 1)
        qsort(s->refused, s->nrefused, sizeof(*s->refused), cmp_ptr);
    size_t j = 0;
    sinkstat_begin(&s->stat);
    SINK_FOREACH(r, span, len)
    {
        const char *data = RING_REC_DATA(r);
        while (j < s->nrefused && s->refused[j] < data)
            j++;
        if (j < s->nrefused && s->refused[j] == data)
            continue;
        sinkstat_record(&s->stat, data, r->len, now);
    }
    sinkstat_end(&s->stat);
}

/* Backoff with jitter: a wait of ns +-25%, from the sink thread's own random state (seeded from
 * getrandom when the thread starts), so sinks and processes that failed together do not retry in
 * step. */
static int64_t jittered(struct sink *s, int64_t ns)
{
    return ns - ns / 4 + (int64_t)(rand64(&s->rng) % (uint64_t)(ns / 2 + 1));
}

/* After a failed attempt: the sink is retrying, and its circuit opens once it has failed at
 * least CIRCUIT_MIN_FAILS times in a row over circuit_after. Returns the longest wait before the
 * next attempt: the backoff cap, or circuit_wait while the circuit is open. */
static int64_t attempt_failed(struct sink *s)
{
    const struct sink_common *c = s->opts;
    int64_t now = time_mono_ns();
    if (s->fails++ == 0)
        s->failing_since = now;
    int h = atomic_load(&s->health);
    if (h != SINK_CIRCUIT_OPEN && c->circuit_after > 0 && s->fails >= CIRCUIT_MIN_FAILS &&
        now - s->failing_since >= c->circuit_after) {
        h = SINK_CIRCUIT_OPEN;
        log_warn("sink circuit open: probing the destination with one batch now and then",
                 "{s:s, s:i, s:f}", "sink", s->name, "failed_attempts", (int)s->fails, "failing_s",
                 (double)(now - s->failing_since) / 1e9);
    } else if (h == SINK_UP) {
        h = SINK_RETRYING;
    }
    atomic_store(&s->health, h);
    return h == SINK_CIRCUIT_OPEN && c->circuit_wait > BACKOFF_MAX_NS ? c->circuit_wait
                                                                      : BACKOFF_MAX_NS;
}

/* The destination answered (accepted, or refused for good): the run of failures is over. */
static void attempt_done(struct sink *s)
{
    if (atomic_load(&s->health) == SINK_CIRCUIT_OPEN)
        log_info("sink circuit closed: the destination accepts again", "{s:s, s:i}", "sink",
                 s->name, "failed_attempts", (int)s->fails);
    s->fails = 0;
    atomic_store(&s->health, SINK_UP);
}

static void deliver(struct sinks *ss, struct sink *s, const char *span, size_t len, uint64_t nrec)
{
    int64_t backoff = BACKOFF_MIN_NS;
    struct log_limit lim = {0};
    s->nrefused = s->unlisted = 0;
    s->accepted = 0;
    s->span_records = nrec;
    for (;;) {
        s->retry_after = 0;
        enum sink_result rc = s->type->write(s, span, len, nrec);
        /* Refused by the type as it went, each record once (sink_refuse): never more than nrec.
         * They count as failed when the span is done with, with the rest of it, so that while
         * it is retried they are still queued (the balance of stats). */
        uint64_t refused = s->nrefused + s->unlisted;
        if (rc == SINK_OK) {
            counter_add(&s->stats.failed, refused);
            counter_add(&s->stats.delivered, nrec - refused);
            counter_add(&s->stats.done, nrec);
            attempt_done(s);
            observe(s, span, len);
            return;
        }
        if (rc == SINK_FAIL) {
            counter_add(&s->stats.failed, nrec);
            counter_add(&s->stats.done, nrec);
            attempt_done(s);
            return;
        }
        counter_add(&s->stats.retries, 1);
        int64_t cap = attempt_failed(s);
        if (past_deadline(ss)) {
            /* Given up: what the destination took of it already was delivered, the rest is
             * abandoned. */
            uint64_t took = s->accepted > nrec - refused ? nrec - refused : s->accepted;
            uint64_t left = nrec - refused - took;
            counter_add(&s->stats.failed, refused);
            counter_add(&s->stats.delivered, took);
            counter_add(&s->stats.dropped, left);
            counter_add(&s->stats.dropped_shutdown, left);
            counter_add(&s->stats.done, nrec);
            atomic_fetch_add(&ss->abandoned, left);
            return;
        }
        if (atomic_load(&ss->deadline) && cap > BACKOFF_MAX_NS)
            cap = BACKOFF_MAX_NS; /* draining: no circuit waits */
        if (backoff > cap)
            backoff = cap;
        if (log_limit_take(&lim) >= 0)
            log_warn("sink retrying", "{s:s, s:I, s:s}", "sink", s->name, "records",
                     (json_int_t)nrec, "state", sink_health_names[atomic_load(&s->health)]);
        /* The destination's own delay (Retry-After, RetryInfo) when it asks for longer: it knows
         * when it can take more, and retrying sooner only earns another refusal. */
        int64_t wait = jittered(s, backoff);
        backoff_sleep(ss, s->retry_after > wait ? s->retry_after : wait);
        backoff = backoff * 2 > cap ? cap : backoff * 2;
    }
}

/* Batching: while less than batch_bytes (and fewer than batch_events records) is queued, wait
 * (up to batch_timeout from the first record) for more, so destinations that prefer large
 * requests get them. Takes the span peeked and its records (*nrec); returns the span's length,
 * grown (its start stays put until it is released), and its records in *nrec, as the ring
 * counts them: nothing here reads the records. */
static size_t gather(struct sinks *ss, struct sink *s, const char **span, size_t n, uint64_t *nrec)
{
    const struct sink_common *c = s->opts;
    uint64_t count = *nrec;
    if (c->batch_bytes <= 0 || (int64_t)n >= c->batch_bytes)
        return n;
    int64_t until = time_mono_ns() + c->batch_timeout;
    while ((int64_t)n < c->batch_bytes &&
           (c->batch_events <= 0 || count < (uint64_t)c->batch_events) && time_mono_ns() < until &&
           !past_deadline(ss) && !ring_closed_empty(s->q)) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        uint64_t mrec;
        size_t m = ring_peek(s->q, span, 0, &mrec);
        if (m == n && ring_used(s->q) > n)
            break; /* the rest is past the ring's wrap: deliver this part now */
        n = m;
        count = mrec;
    }
    *nrec = count;
    return n;
}

static void *sink_main(void *arg)
{
    struct sink_thread_arg *ta = arg;
    struct sinks *ss = ta->ss;
    struct sink *s = ta->s;
    free(ta);
    if (getrandom(&s->rng, sizeof(s->rng), GRND_NONBLOCK) != (ssize_t)sizeof(s->rng))
        s->rng = (uint64_t)time_now_ns() ^ (uint64_t)(uintptr_t)s;
    s->rng |= 1; /* xorshift's one forbidden state is 0 */
    for (;;) {
        if (atomic_exchange(&s->reopen, 0) && s->type->reopen)
            s->type->reopen(s);
        if (past_deadline(ss))
            break; /* sinks_stop counts what is left */
        const char *span;
        uint64_t nrec;
        size_t n = ring_peek(s->q, &span, IDLE_WAIT_NS, &nrec);
        if (n == 0) {
            if (ring_closed_empty(s->q))
                break;
            if (s->type->flush)
                s->type->flush(s);
            continue;
        }
        n = gather(ss, s, &span, n, &nrec);
        deliver(ss, s, span, n, nrec);
        ring_release(s->q, n, nrec);
    }
    if (s->type->flush)
        s->type->flush(s);
    return NULL;
}

struct sinks *sinks_new(const struct cfg_list *list, size_t queue_bytes, const char *dead_letter,
                        char *err, size_t errlen)
{
    struct sinks *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return NULL;
    ss->dead = -1;
    ss->v = calloc((size_t)list->n + 1, sizeof(*ss->v));
    if (!ss->v)
        goto fail;
    for (int i = 0; i < list->n; i++) {
        const struct cfg_item *it = cfg_list_item(list, i);
        struct sink *s = &ss->v[ss->n++];
        s->set = ss;
        sinkstat_init(&s->stat);
        s->type = sink_types[it->index];
        s->name = it->name;
        s->opts = it->opts;
        s->id = i;
        s->when_full = ((const struct sink_common *)it->opts)->when_full;
        s->q = ring_new(queue_bytes);
        if (!s->q) {
            snprintf(err, errlen, "sink %s: cannot allocate a %zu-byte queue", s->name,
                     queue_bytes);
            goto fail;
        }
    }
    if (dead_letter && *dead_letter)
        ss->dead = sinks_find(ss, dead_letter);
    return ss;
fail:
    sinks_free(ss);
    return NULL;
}

void sinks_free(struct sinks *ss)
{
    if (!ss)
        return;
    for (int i = 0; i < ss->n; i++) {
        struct sink *s = &ss->v[i];
        if (s->started)
            pthread_join(s->thread, NULL);
        if (s->type->close)
            s->type->close(s);
        ring_free(s->q);
        sinkstat_free(&s->stat);
        free(s->refused);
    }
    free(ss->v);
    free(ss);
}

int sinks_count(const struct sinks *ss)
{
    return ss->n;
}

struct sink *sinks_get(struct sinks *ss, int i)
{
    return &ss->v[i];
}

int sinks_find(const struct sinks *ss, const char *name)
{
    for (int i = 0; i < ss->n; i++) {
        if (strcmp(ss->v[i].name, name) == 0)
            return i;
    }
    return -1;
}

int sinks_start(struct sinks *ss, char *err, size_t errlen)
{
    for (int i = 0; i < ss->n; i++) {
        struct sink *s = &ss->v[i];
        int rc = s->type->open ? s->type->open(s, err, errlen) : 0;
        if (rc)
            return rc;
    }
    for (int i = 0; i < ss->n; i++) {
        struct sink *s = &ss->v[i];
        struct sink_thread_arg *ta = malloc(sizeof(*ta));
        if (!ta)
            return -ENOMEM;
        ta->ss = ss;
        ta->s = s;
        int rc = thread_start(&s->thread, sink_main, ta, "sink:%s", s->name);
        if (rc) {
            free(ta);
            snprintf(err, errlen, "sink %s: cannot start its thread: %s", s->name, strerror(rc));
            return -rc;
        }
        s->started = 1;
    }
    return 0;
}

uint64_t sinks_stop(struct sinks *ss, int64_t deadline_ns)
{
    if (!atomic_load(&ss->deadline))
        atomic_store(&ss->deadline, deadline_ns);
    for (int i = 0; i < ss->n; i++)
        ring_close(ss->v[i].q);
    uint64_t lost = 0;
    for (int i = 0; i < ss->n; i++) {
        struct sink *s = &ss->v[i];
        if (s->started) { /* its retries give up at the deadline (counted in abandoned) */
            pthread_join(s->thread, NULL);
            s->started = 0;
        }
        /* What a thread could not deliver before the deadline. */
        const char *span;
        size_t n;
        uint64_t c;
        while ((n = ring_peek(s->q, &span, 0, &c)) > 0) {
            counter_add(&s->stats.dropped, c);
            counter_add(&s->stats.dropped_shutdown, c);
            counter_add(&s->stats.done, c);
            lost += c;
            ring_release(s->q, n, c);
        }
    }
    return lost + atomic_load(&ss->abandoned);
}

void sinks_reopen(struct sinks *ss)
{
    for (int i = 0; i < ss->n; i++)
        atomic_store(&ss->v[i].reopen, 1);
}

int64_t sinks_deadline(const struct sinks *ss)
{
    return atomic_load(&((struct sinks *)ss)->deadline);
}
