#include "core/ring.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"

#define RING_WRAP UINT32_MAX /* header len marking "continue at offset 0" */

/* Positions instead of monotonic counters: when the ring empties, both go back to 0, so a ring
 * that keeps up touches only its first pages and RSS grows only as deep as the real backlog. */
struct ring {
    pthread_mutex_t mu;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    char *mem;
    size_t cap;
    size_t w;                /* next write offset */
    size_t rd;               /* next read offset */
    size_t wrap_at;          /* where the data before a wrap ends (cap when no marker) */
    size_t used;             /* bytes held, including a wrap gap; under mu */
    _Atomic size_t used_pub; /* copy of used for lock-free readers (stats) */
    uint64_t pushed;         /* records ever accepted; under mu */
    uint64_t released;       /* records ever released; under mu */
    uint64_t wrap_pushed;    /* pushed when the writer last went back to 0: what lies before */
    int closed;
    int consumer_waiting;
    int producers_waiting;
};

struct ring *ring_new(size_t capacity)
{
    capacity &= ~(size_t)7;
    if (capacity < 64)
        return NULL;
    struct ring *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->mem = malloc(capacity);
    if (!r->mem) {
        free(r);
        return NULL;
    }
    r->cap = capacity;
    r->wrap_at = capacity;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->not_empty, &ca);
    pthread_cond_init(&r->not_full, &ca);
    pthread_condattr_destroy(&ca);
    return r;
}

void ring_free(struct ring *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->not_empty);
    pthread_cond_destroy(&r->not_full);
    free(r->mem);
    free(r);
}

size_t ring_used(const struct ring *r)
{
    return atomic_load_explicit(&r->used_pub, memory_order_relaxed);
}

size_t ring_capacity(const struct ring *r)
{
    return r->cap;
}

size_t ring_max_payload(const struct ring *r)
{
    /* A record must fit next to a wrap marker in the worst case. */
    return r->cap / 2 - 2 * RING_HDR;
}

/* Places one record of s bytes and counts it; returns its offset or -1 when there is no room.
 * When the writer goes back to 0, the records pushed so far are those the reader finds before
 * the wrap (the span ring_peek gives ends there): wrap_pushed. */
static long place(struct ring *r, size_t s)
{
    size_t used = r->used;
    if (used == 0)
        r->w = r->rd = 0, r->wrap_at = r->cap;
    if (r->cap - used < s)
        return -1;
    if (r->w >= r->rd) { /* free space: [w, cap) then [0, rd) */
        if (r->cap - r->w >= s) {
            long at = (long)r->w;
            r->w += s;
            r->pushed++;
            if (r->w == r->cap) {
                r->w = 0;
                r->wrap_at = r->cap;
                r->wrap_pushed = r->pushed;
            }
            r->used = used + s;
            return at;
        }
        if (r->rd < s)
            return -1;
        /* Not enough room before the end: mark the gap and continue at the start. */
        struct ring_rec *m = (struct ring_rec *)(r->mem + r->w);
        m->len = RING_WRAP;
        r->wrap_at = r->w;
        r->wrap_pushed = r->pushed++;
        used += r->cap - r->w;
        r->w = s;
        r->used = used + s;
        return 0;
    }
    if (r->rd - r->w < s)
        return -1;
    long at = (long)r->w;
    r->w += s;
    r->pushed++;
    r->used = used + s;
    return at;
}

/* Copies in a prefix of whole records of batch[0..len); returns its bytes, adds its records. */
static size_t copy_in(struct ring *r, const char *batch, size_t len, uint64_t *nrec)
{
    size_t off = 0;
    uint64_t before = r->pushed;
    while (off + RING_HDR <= len) {
        const struct ring_rec *rec = (const struct ring_rec *)(batch + off);
        size_t s = RING_REC_SIZE(rec->len);
        if (s > len - off)
            break; /* malformed tail: never copy a partial record */
        long at = place(r, s);
        if (at < 0)
            break;
        memcpy(r->mem + at, rec, s);
        off += s;
    }
    *nrec += r->pushed - before;
    return off;
}

/* After records went in: what lock-free readers see, and the waiting consumer woken. */
static void published(struct ring *r, size_t bytes)
{
    atomic_store_explicit(&r->used_pub, r->used, memory_order_relaxed);
    if (bytes && r->consumer_waiting)
        pthread_cond_signal(&r->not_empty);
}

static size_t push_locked(struct ring *r, const char *batch, size_t len, uint64_t *nrec)
{
    size_t off = copy_in(r, batch, len, nrec);
    published(r, off);
    return off;
}

size_t ring_push(struct ring *r, const void *batch, size_t len, uint64_t *nrec)
{
    uint64_t count = 0;
    pthread_mutex_lock(&r->mu);
    size_t n = r->closed ? 0 : push_locked(r, batch, len, &count);
    pthread_mutex_unlock(&r->mu);
    if (nrec)
        *nrec = count;
    return n;
}

size_t ring_pushv(struct ring *r, const struct ring_part *v, int n, uint64_t *nrec)
{
    uint64_t count = 0;
    size_t total = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < n && !r->closed; i++) {
        size_t took = copy_in(r, v[i].p, v[i].len, &count);
        total += took;
        if (took < v[i].len)
            break;
    }
    published(r, total);
    pthread_mutex_unlock(&r->mu);
    if (nrec)
        *nrec = count;
    return total;
}

static void deadline_after(struct timespec *ts, int64_t ns)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ns / 1000000000;
    ts->tv_nsec += ns % 1000000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

size_t ring_push_wait(struct ring *r, const void *batch, size_t len, int64_t timeout_ns,
                      uint64_t *nrec)
{
    struct timespec dl;
    deadline_after(&dl, timeout_ns);
    size_t done = 0;
    uint64_t count = 0;
    pthread_mutex_lock(&r->mu);
    while (!r->closed) {
        done += push_locked(r, (const char *)batch + done, len - done, &count);
        if (done == len)
            break;
        r->producers_waiting++;
        int rc = pthread_cond_timedwait(&r->not_full, &r->mu, &dl);
        r->producers_waiting--;
        if (rc == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&r->mu);
    if (nrec)
        *nrec = count;
    return done;
}

/* The contiguous span starting at the read offset, skipping a wrap marker, and its records:
 * up to the writer (all not yet released), or up to the wrap (those pushed before it). */
static size_t span_locked(struct ring *r, uint64_t *nrec)
{
    *nrec = 0;
    if (r->used == 0)
        return 0;
    if (r->rd == r->wrap_at && r->wrap_at < r->cap) {
        r->used -= r->cap - r->wrap_at;
        r->rd = 0;
        r->wrap_at = r->cap;
    }
    if (r->w > r->rd) {
        *nrec = r->pushed - r->released;
        return r->w - r->rd;
    }
    *nrec = r->wrap_pushed - r->released;
    return r->wrap_at - r->rd;
}

size_t ring_peek(struct ring *r, const char **span, int64_t timeout_ns, uint64_t *nrec)
{
    struct timespec dl;
    deadline_after(&dl, timeout_ns);
    pthread_mutex_lock(&r->mu);
    size_t n;
    uint64_t count;
    while ((n = span_locked(r, &count)) == 0 && !r->closed) {
        r->consumer_waiting = 1;
        int rc = pthread_cond_timedwait(&r->not_empty, &r->mu, &dl);
        r->consumer_waiting = 0;
        if (rc == ETIMEDOUT)
            break;
    }
    *span = r->mem + r->rd;
    pthread_mutex_unlock(&r->mu);
    if (nrec)
        *nrec = count;
    return n;
}

void ring_release(struct ring *r, size_t len, uint64_t nrec)
{
    pthread_mutex_lock(&r->mu);
    r->rd += len;
    r->used -= len;
    r->released += nrec;
    if (r->rd == r->wrap_at) {
        r->used -= r->cap - r->wrap_at;
        r->rd = 0;
        r->wrap_at = r->cap;
    }
    if (r->used == 0)
        r->rd = r->w = 0;
    atomic_store_explicit(&r->used_pub, r->used, memory_order_relaxed);
    if (r->producers_waiting)
        pthread_cond_broadcast(&r->not_full);
    pthread_mutex_unlock(&r->mu);
}

void ring_close(struct ring *r)
{
    pthread_mutex_lock(&r->mu);
    r->closed = 1;
    pthread_cond_broadcast(&r->not_empty);
    pthread_cond_broadcast(&r->not_full);
    pthread_mutex_unlock(&r->mu);
}

int ring_closed_empty(struct ring *r)
{
    pthread_mutex_lock(&r->mu);
    int v = r->closed && r->used == 0;
    pthread_mutex_unlock(&r->mu);
    return v;
}

void ring_wake(struct ring *r)
{
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->not_empty);
    pthread_cond_broadcast(&r->not_full);
    pthread_mutex_unlock(&r->mu);
}

uint64_t ring_pushed(struct ring *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t n = r->pushed;
    pthread_mutex_unlock(&r->mu);
    return n;
}

uint64_t ring_held(struct ring *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t n = r->pushed - r->released;
    pthread_mutex_unlock(&r->mu);
    return n;
}

uint64_t ring_count(const char *span, size_t len)
{
    uint64_t n = 0;
    for (size_t off = 0; off < len; n++)
        off += RING_REC_SIZE(((const struct ring_rec *)(span + off))->len);
    return n;
}

int ring_batch_begin(struct buf *batch, uint16_t flags, uint16_t src, size_t *offset)
{
    if (buf_reserve(batch, RING_HDR))
        return -ENOMEM;
    *offset = batch->len;
    struct ring_rec h = {.len = 0, .flags = flags, .src = src};
    memcpy(batch->data + batch->len, &h, RING_HDR);
    batch->len += RING_HDR;
    return 0;
}

int ring_batch_end(struct buf *batch, size_t offset)
{
    size_t n = batch->len - offset - RING_HDR;
    size_t pad = RING_ALIGN(n) - n;
    if (n > UINT32_MAX - 8 || buf_reserve(batch, pad)) {
        batch->len = offset; /* the caller counts the failure */
        return -ENOMEM;
    }
    struct ring_rec *h = (struct ring_rec *)(batch->data + offset);
    h->len = (uint32_t)n;
    memset(batch->data + batch->len, 0, pad);
    batch->len += pad;
    return 0;
}

void ring_batch_cancel(struct buf *batch, size_t offset)
{
    batch->len = offset;
}

int ring_batch_add(struct buf *batch, const void *data, size_t len, uint16_t flags, uint16_t src)
{
    size_t off;
    if (ring_batch_begin(batch, flags, src, &off))
        return -ENOMEM;
    if (buf_append(batch, data, len)) {
        batch->len = off;
        return -ENOMEM;
    }
    return ring_batch_end(batch, off);
}
