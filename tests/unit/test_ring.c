/* Unit tests of the MPSC byte ring (core/ring.h): the record layout built by the batch
 * helpers, push/peek/release round trips, wrap-around over many cycles (checking ring_held as it
 * goes), a full ring accepting a prefix of whole records, close semantics, timeouts, and a
 * 4-producer stress test checking that each producer's sequence arrives complete, in order and
 * uncorrupted. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/ring.h"
#include "core/timeutil.h"

/* ---- record content: deterministic, so the consumer can check every byte ---- */

static size_t rec_len(unsigned p, uint32_t seq)
{
    /* 5..130 bytes, mixed so consecutive records differ in size and padding. */
    return 5 + (size_t)((seq * 2654435761u + p * 40503u) >> 7) % 126;
}

static void rec_fill(char *out, size_t len, unsigned p, uint32_t seq)
{
    memcpy(out, &seq, 4);
    out[4] = (char)p;
    for (size_t i = 5; i < len; i++)
        out[i] = (char)(seq * 31u + p * 7u + (unsigned)i);
}

/* 0 when rec is record seq of producer p, byte for byte. */
static int rec_check(const struct ring_rec *r, unsigned p, uint32_t seq)
{
    char want[256];
    size_t len = rec_len(p, seq);
    if (r->len != len || r->src != p || r->flags != (uint16_t)(seq & 0xffff))
        return -1;
    rec_fill(want, len, p, seq);
    return memcmp(RING_REC_DATA(r), want, len) == 0 ? 0 : -1;
}

static void add_rec(struct buf *b, unsigned p, uint32_t seq)
{
    char data[256];
    size_t len = rec_len(p, seq);
    rec_fill(data, len, p, seq);
    assert_int_equal(ring_batch_add(b, data, len, (uint16_t)(seq & 0xffff), (uint16_t)p), 0);
}

/* True when span[0..len) is exactly a run of whole records. */
static int whole_records(const char *span, size_t len)
{
    size_t off = 0;
    while (off < len) {
        const struct ring_rec *r = (const struct ring_rec *)(span + off);
        if (r->len == UINT32_MAX)
            return 0;
        off += RING_REC_SIZE(r->len);
    }
    return off == len;
}

/* ---- layout ---- */

static void test_batch_layout(void **state)
{
    struct buf b = {0};
    assert_int_equal(ring_batch_add(&b, "hello", 5, RING_F_DEAD, 7), 0);
    assert_int_equal(b.len, RING_HDR + 8);
    const struct ring_rec *r = (const struct ring_rec *)b.data;
    assert_int_equal(r->len, 5);
    assert_int_equal(r->flags, RING_F_DEAD);
    assert_int_equal(r->src, 7);
    assert_memory_equal(RING_REC_DATA(r), "hello", 5);
    assert_memory_equal(RING_REC_DATA(r) + 5, "\0\0\0", 3); /* padding is zeroed */

    /* An empty payload is a bare header; an 8-byte one needs no padding. */
    assert_int_equal(ring_batch_add(&b, "", 0, 0, 1), 0);
    assert_int_equal(ring_batch_add(&b, "12345678", 8, 0, 2), 0);
    assert_int_equal(b.len, 16 + 8 + 16);

    /* A record of unknown length, begun then ended. */
    size_t off;
    assert_int_equal(ring_batch_begin(&b, 0, 3, &off), 0);
    assert_int_equal(off, 40);
    buf_append(&b, "abcdefghijklm", 13);
    assert_int_equal(ring_batch_end(&b, off), 0);
    assert_int_equal(b.len, 40 + 8 + 16);
    r = (const struct ring_rec *)(b.data + off);
    assert_int_equal(r->len, 13);
    assert_int_equal(r->src, 3);

    /* A cancelled record leaves the batch as it was. */
    assert_int_equal(ring_batch_begin(&b, 0, 4, &off), 0);
    buf_append(&b, "junk", 4);
    ring_batch_cancel(&b, off);
    assert_int_equal(b.len, 64);

    assert_int_equal(ring_count(b.data, b.len), 4);
    r = (const struct ring_rec *)b.data;
    r = RING_REC_NEXT(r);
    assert_int_equal(r->src, 1);
    r = RING_REC_NEXT(r);
    assert_int_equal(r->src, 2);
    assert_memory_equal(RING_REC_DATA(r), "12345678", 8);
    assert_int_equal(ring_count(b.data, 0), 0);
    buf_free(&b);
}

static void test_new_capacity(void **state)
{
    assert_null(ring_new(0));
    assert_null(ring_new(63));
    struct ring *r = ring_new(1005);
    assert_non_null(r);
    assert_int_equal(ring_capacity(r), 1000);
    assert_int_equal(ring_used(r), 0);
    assert_int_equal(ring_max_payload(r), 500 - 2 * RING_HDR);
    ring_free(r);
    ring_free(NULL);
}

/* ---- round trip ---- */

static void test_push_peek_release(void **state)
{
    struct ring *r = ring_new(4096);
    struct buf b = {0};
    for (uint32_t s = 0; s < 3; s++)
        add_rec(&b, 1, s);
    assert_int_equal(ring_push(r, b.data, b.len, NULL), b.len);
    assert_int_equal(ring_used(r), b.len);

    const char *span = NULL;
    uint64_t nrec = 0;
    size_t n = ring_peek(r, &span, 0, &nrec);
    assert_int_equal(n, b.len);
    assert_int_equal(ring_count(span, n), 3);
    assert_int_equal(nrec, 3);
    const struct ring_rec *rec = (const struct ring_rec *)span;
    for (uint32_t s = 0; s < 3; s++, rec = RING_REC_NEXT(rec))
        assert_int_equal(rec_check(rec, 1, s), 0);

    /* Releasing a prefix leaves the rest in place. */
    size_t first = RING_REC_SIZE(rec_len(1, 0));
    ring_release(r, first, 1);
    assert_int_equal(ring_used(r), b.len - first);
    assert_int_equal(ring_held(r), 2);
    n = ring_peek(r, &span, 0, &nrec);
    assert_int_equal(n, b.len - first);
    assert_int_equal(nrec, 2);
    assert_int_equal(rec_check((const struct ring_rec *)span, 1, 1), 0);
    ring_release(r, n, nrec);
    assert_int_equal(ring_held(r), 0);
    assert_int_equal(ring_used(r), 0);

    /* Empty: a peek waits out its timeout and returns nothing. */
    int64_t t0 = time_mono_ns();
    assert_int_equal(ring_peek(r, &span, 50 * 1000000LL, NULL), 0);
    int64_t waited = time_mono_ns() - t0;
    assert_true(waited >= 40 * 1000000LL);
    assert_true(waited < 2000 * 1000000LL);
    buf_free(&b);
    ring_free(r);
}

/* ---- wrap-around ---- */

/* Single-threaded model check: push as much as fits, consume a varying part, many times over,
 * with record sizes that make the write position land everywhere. Every record must come out
 * once, in order, intact, and each span must be whole records. */
static void test_wrap_around_many_cycles(void **state)
{
    struct ring *r = ring_new(1024);
    struct buf b = {0};
    uint32_t produced = 0, consumed = 0;
    const uint32_t total = 50000;
    unsigned wraps = 0, partial_pushes = 0;
    uint32_t rng = 12345;
    while (consumed < total) {
        /* Offer a batch of 1..8 records; the ring takes a prefix of whole records. */
        buf_reset(&b);
        rng = rng * 1103515245u + 12345u;
        uint32_t want = 1 + (rng >> 16) % 8;
        for (uint32_t i = 0; i < want && produced + i < total; i++)
            add_rec(&b, 2, produced + i);
        uint64_t nrec;
        size_t took = ring_push(r, b.data, b.len, &nrec);
        assert_true(took <= b.len);
        assert_true(whole_records(b.data, took));
        assert_int_equal(nrec, ring_count(b.data, took));
        if (took < b.len)
            partial_pushes++;
        produced += (uint32_t)nrec;
        assert_true(ring_used(r) <= ring_capacity(r));
        assert_int_equal(ring_held(r), produced - consumed); /* the ring's own record count */

        /* Consume 0..3 records, sometimes the whole span. */
        rng = rng * 1103515245u + 12345u;
        unsigned eat = (rng >> 16) % 4;
        for (unsigned k = 0; k < eat && consumed < produced; k++) {
            const char *span;
            uint64_t nrec_span;
            size_t n = ring_peek(r, &span, 0, &nrec_span);
            assert_true(n > 0);
            assert_true(whole_records(span, n));
            /* The count peek gives, kept by the ring across wraps, is the span's. */
            assert_int_equal(nrec_span, ring_count(span, n));
            /* More bytes held than the span: the rest continues at the start of the ring. */
            if (ring_used(r) > n)
                wraps++;
            const struct ring_rec *rec = (const struct ring_rec *)span;
            size_t rel = 0;
            uint64_t nrel = 0;
            int all = (rng >> 8) & 1;
            while (rel < n) {
                if (rec_check(rec, 2, consumed) != 0) {
                    print_error("record %u corrupted or out of order\n", consumed);
                    fail();
                }
                consumed++;
                nrel++;
                rel += RING_REC_SIZE(rec->len);
                rec = RING_REC_NEXT(rec);
                if (!all)
                    break;
            }
            ring_release(r, rel, nrel);
            assert_int_equal(ring_held(r), produced - consumed);
        }
    }
    assert_int_equal(produced, total);
    assert_int_equal(ring_used(r), 0);
    /* The test only means something if the ring really wrapped and filled. */
    assert_true(wraps > 1000);
    assert_true(partial_pushes > 1000);
    buf_free(&b);
    ring_free(r);
}

/* ---- full ring ---- */

static void test_full_ring_whole_prefix(void **state)
{
    struct ring *r = ring_new(256);
    struct buf b = {0};
    char payload[40];
    for (int i = 0; i < 10; i++) {
        memset(payload, 'a' + i, sizeof(payload));
        ring_batch_add(&b, payload, sizeof(payload), 0, (uint16_t)i);
    }
    /* Records of 48 bytes: five fit in 256, the sixth would not. */
    uint64_t pushed;
    size_t took = ring_push(r, b.data, b.len, &pushed);
    assert_int_equal(took, 5 * 48);
    assert_int_equal(pushed, 5);
    assert_int_equal(ring_used(r), 5 * 48);
    assert_int_equal(ring_push(r, b.data + took, b.len - took, NULL), 0);

    /* Freeing the first record makes room only by wrapping to the start. */
    const char *span;
    uint64_t nrec;
    size_t n = ring_peek(r, &span, 0, &nrec);
    assert_int_equal(n, 5 * 48);
    assert_int_equal(nrec, 5);
    ring_release(r, 48, 1);
    assert_int_equal(ring_push(r, b.data + took, b.len - took, NULL), 48);
    took += 48;
    assert_int_equal(ring_push(r, b.data + took, b.len - took, NULL), 0);

    /* Records 1..4 before the wrap, then record 5 at the start. */
    n = ring_peek(r, &span, 0, &nrec);
    assert_int_equal(n, 4 * 48);
    assert_int_equal(nrec, 4);
    assert_int_equal(ring_held(r), 5);
    for (int i = 0; i < 4; i++) {
        const struct ring_rec *rec = (const struct ring_rec *)(span + i * 48);
        assert_int_equal(rec->src, i + 1);
        assert_int_equal(RING_REC_DATA(rec)[0], 'a' + i + 1);
    }
    ring_release(r, n, nrec);
    n = ring_peek(r, &span, 0, &nrec);
    assert_int_equal(n, 48);
    assert_int_equal(nrec, 1);
    const struct ring_rec *rec = (const struct ring_rec *)span;
    assert_int_equal(rec->src, 5);
    assert_int_equal(rec->len, 40);
    assert_memory_equal(RING_REC_DATA(rec), "ffffffffffffffffffffffffffffffffffffffff", 40);
    ring_release(r, n, nrec);
    assert_int_equal(ring_used(r), 0);
    buf_free(&b);
    ring_free(r);
}

/* Records that end exactly at the ring's end wrap without a marker: the span peek gives and its
 * count stop there, and the records after the wrap come next. */
static void test_exact_fill_wrap_counts(void **state)
{
    struct ring *r = ring_new(256);
    struct buf b = {0};
    char payload[56];
    for (int i = 0; i < 5; i++) {
        memset(payload, 'a' + i, sizeof(payload));
        ring_batch_add(&b, payload, sizeof(payload), 0, (uint16_t)i);
    }
    assert_int_equal(ring_push(r, b.data, b.len, NULL), 256); /* four records of 64 bytes */
    const char *span;
    uint64_t nrec;
    assert_int_equal(ring_peek(r, &span, 0, &nrec), 256);
    assert_int_equal(nrec, 4);
    ring_release(r, 64, 1);
    assert_int_equal(ring_push(r, b.data + 256, 64, NULL), 64); /* the fifth, at the start */
    assert_int_equal(ring_held(r), 4);
    assert_int_equal(ring_peek(r, &span, 0, &nrec), 192);
    assert_int_equal(nrec, 3);
    assert_int_equal(((const struct ring_rec *)span)->src, 1);
    ring_release(r, 192, 3);
    assert_int_equal(ring_peek(r, &span, 0, &nrec), 64);
    assert_int_equal(nrec, 1);
    assert_int_equal(((const struct ring_rec *)span)->src, 4);
    ring_release(r, 64, 1);
    assert_int_equal(ring_held(r), 0);
    assert_int_equal(ring_used(r), 0);
    buf_free(&b);
    ring_free(r);
}

/* Parts pushed under one lock: in order, each a prefix of whole records, stopping at the
 * first part not taken whole. */
static void test_pushv_parts_in_order(void **state)
{
    struct ring *r = ring_new(256);
    struct buf a = {0}, b = {0};
    char payload[56];
    for (int i = 0; i < 3; i++) {
        memset(payload, 'a' + i, sizeof(payload));
        ring_batch_add(i < 1 ? &a : &b, payload, sizeof(payload), 0, (uint16_t)i);
    }
    struct ring_part part[] = {{b.data, b.len}, {a.data, a.len}, {b.data, b.len}};
    uint64_t nrec;
    /* 256 bytes: the first part (two records) and the second (one), then one of the third. */
    assert_int_equal(ring_pushv(r, part, 3, &nrec), 256);
    assert_int_equal(nrec, 4);
    const char *span;
    assert_int_equal(ring_peek(r, &span, 0, &nrec), 256);
    assert_int_equal(nrec, 4);
    static const int src[] = {1, 2, 0, 1};
    for (int i = 0; i < 4; i++)
        assert_int_equal(((const struct ring_rec *)(span + 64 * i))->src, src[i]);
    ring_release(r, 256, 4);
    /* Nothing after a part that was not taken whole, though the next one would fit. */
    struct buf c = {0};
    char large[192];
    memset(large, 'z', sizeof(large));
    ring_batch_add(&c, large, sizeof(large), 0, 9);
    struct ring_part stop[] = {{b.data, b.len}, {c.data, c.len}, {a.data, a.len}};
    assert_int_equal(ring_pushv(r, stop, 3, &nrec), 128);
    assert_int_equal(nrec, 2);
    assert_int_equal(ring_held(r), 2);
    buf_free(&c);
    ring_close(r);
    assert_int_equal(ring_pushv(r, part, 1, &nrec), 0);
    assert_int_equal(nrec, 0);
    buf_free(&a);
    buf_free(&b);
    ring_free(r);
}

/* A batch whose last record is cut short: only the whole records are taken. */
static void test_malformed_tail_not_copied(void **state)
{
    struct ring *r = ring_new(1024);
    struct buf b = {0};
    ring_batch_add(&b, "first", 5, 0, 1);
    ring_batch_add(&b, "0123456789012345678901234567890123456789", 40, 0, 2);
    size_t whole = RING_REC_SIZE(5);
    assert_int_equal(ring_push(r, b.data, whole + 24, NULL), whole);
    const char *span;
    assert_int_equal(ring_peek(r, &span, 0, NULL), whole);
    ring_release(r, whole, 1);
    buf_free(&b);
    ring_free(r);
}

/* Regression (was a bug, fixed): pipeline/ring.c push_locked() reads the 8-byte header of the next
 * record before checking that the header itself lies within len: a batch ending in a tail shorter
 * than the header's len field (len = whole records + 2) makes it read rec->len 2 bytes past the
 * caller's buffer. The
 * result is right (nothing partial is copied), but it is a heap-buffer-overflow read under
 * ASan. Runs in a child process so that an ASan report fails this test only. */
static void test_short_tail_not_read(void **state)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct ring *r = ring_new(1024);
        struct buf b = {0};
        ring_batch_add(&b, "first", 5, 0, 1);
        size_t whole = b.len;
        char *exact = malloc(whole + 2); /* the tail: a quarter of a header */
        memcpy(exact, b.data, whole);
        memset(exact + whole, 0, 2);
        size_t took = ring_push(r, exact, whole + 2, NULL);
        free(exact);
        buf_free(&b);
        ring_free(r);
        _exit(took == whole ? 0 : 3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_max_payload(void **state)
{
    struct ring *r = ring_new(1024);
    size_t max = ring_max_payload(r);
    assert_int_equal(max, 512 - 16);
    char *data = malloc(1024);
    memset(data, 'm', 1024);
    struct buf b = {0};
    ring_batch_add(&b, data, max, 0, 0);
    struct buf small = {0};
    ring_batch_add(&small, data, 100, 0, 0);
    /* A record of the largest payload fits wherever the positions are when it arrives, at
     * the latest once the ring has drained: move the positions with small records, keeping
     * one in the ring, then offer the big one. */
    for (int shift = 0; shift < 24; shift++) {
        const char *span;
        size_t n;
        for (int i = 0; i < shift; i++) {
            assert_int_equal(ring_push(r, small.data, small.len, NULL), small.len);
            if (ring_used(r) > small.len) {
                assert_true(ring_peek(r, &span, 0, NULL) >= small.len);
                ring_release(r, small.len, 1);
            }
        }
        size_t took = ring_push(r, b.data, b.len, NULL);
        if (!took) {
            while ((n = ring_peek(r, &span, 0, NULL)) > 0)
                ring_release(r, n, ring_count(span, n));
            took = ring_push(r, b.data, b.len, NULL);
        }
        assert_int_equal(took, b.len);
        int seen = 0;
        while ((n = ring_peek(r, &span, 0, NULL)) > 0) {
            for (size_t off = 0; off < n;) {
                const struct ring_rec *rec = (const struct ring_rec *)(span + off);
                if (rec->len == max) {
                    seen++;
                    assert_int_equal(RING_REC_DATA(rec)[0], 'm');
                    assert_int_equal(RING_REC_DATA(rec)[max - 1], 'm');
                }
                off += RING_REC_SIZE(rec->len);
            }
            ring_release(r, n, ring_count(span, n));
        }
        assert_int_equal(seen, 1);
        assert_int_equal(ring_used(r), 0);
    }
    /* A record larger than the whole ring is never taken. */
    buf_reset(&b);
    ring_batch_add(&b, data, 1024, 0, 0);
    assert_int_equal(ring_push(r, b.data, b.len, NULL), 0);
    free(data);
    buf_free(&b);
    buf_free(&small);
    ring_free(r);
}

/* ---- close and timeouts ---- */

static void test_close_drains(void **state)
{
    struct ring *r = ring_new(1024);
    struct buf b = {0};
    add_rec(&b, 3, 0);
    add_rec(&b, 3, 1);
    assert_int_equal(ring_push(r, b.data, b.len, NULL), b.len);
    ring_close(r);
    assert_false(ring_closed_empty(r));
    /* Producers get nothing in after close, waiting or not. */
    assert_int_equal(ring_push(r, b.data, b.len, NULL), 0);
    assert_int_equal(ring_push_wait(r, b.data, b.len, 1000000000LL, NULL), 0);
    /* The consumer still drains what was there. */
    const char *span;
    uint64_t nrec;
    size_t n = ring_peek(r, &span, 1000000000LL, &nrec);
    assert_int_equal(n, b.len);
    assert_int_equal(nrec, 2);
    assert_int_equal(rec_check((const struct ring_rec *)span, 3, 0), 0);
    ring_release(r, n, nrec);
    assert_int_equal(ring_held(r), 0);
    assert_true(ring_closed_empty(r));
    /* Closed and empty: peek returns 0 at once instead of waiting out its timeout. */
    int64_t t0 = time_mono_ns();
    assert_int_equal(ring_peek(r, &span, 5000000000LL, NULL), 0);
    assert_true(time_mono_ns() - t0 < 1000000000LL);
    buf_free(&b);
    ring_free(r);
}

struct waiter {
    struct ring *r;
    int64_t timeout;
    size_t got;
    int64_t waited;
};

static void *peek_thread(void *arg)
{
    struct waiter *w = arg;
    const char *span;
    int64_t t0 = time_mono_ns();
    w->got = ring_peek(w->r, &span, w->timeout, NULL);
    w->waited = time_mono_ns() - t0;
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A consumer blocked on an empty ring wakes when the ring is closed. */
static void test_close_wakes_consumer(void **state)
{
    struct ring *r = ring_new(1024);
    struct waiter w = {.r = r, .timeout = 10000000000LL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, peek_thread, &w), 0);
    sleep_ms(50);
    ring_close(r);
    pthread_join(th, NULL);
    assert_int_equal(w.got, 0);
    assert_true(w.waited < 5000000000LL);
    ring_free(r);
}

/* A consumer blocked on an empty ring wakes when a record arrives. */
static void test_push_wakes_consumer(void **state)
{
    struct ring *r = ring_new(1024);
    struct waiter w = {.r = r, .timeout = 10000000000LL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, peek_thread, &w), 0);
    sleep_ms(50);
    struct buf b = {0};
    add_rec(&b, 0, 9);
    assert_int_equal(ring_push(r, b.data, b.len, NULL), b.len);
    pthread_join(th, NULL);
    assert_int_equal(w.got, b.len);
    assert_true(w.waited < 5000000000LL);
    buf_free(&b);
    ring_free(r);
}

static void test_push_wait_times_out(void **state)
{
    struct ring *r = ring_new(256);
    struct buf b = {0};
    char payload[56];
    memset(payload, 'x', sizeof(payload));
    for (int i = 0; i < 4; i++)
        ring_batch_add(&b, payload, sizeof(payload), 0, 0); /* 4 x 64 = 256 */
    assert_int_equal(ring_push(r, b.data, b.len, NULL), 256);
    int64_t t0 = time_mono_ns();
    assert_int_equal(ring_push_wait(r, b.data, 64, 100 * 1000000LL, NULL), 0);
    int64_t waited = time_mono_ns() - t0;
    assert_true(waited >= 90 * 1000000LL);
    assert_true(waited < 3000 * 1000000LL);
    assert_int_equal(ring_used(r), 256);
    buf_free(&b);
    ring_free(r);
}

struct releaser {
    struct ring *r;
    int delay_ms;
};

static void *release_thread(void *arg)
{
    struct releaser *rl = arg;
    sleep_ms(rl->delay_ms);
    const char *span;
    uint64_t nrec;
    size_t n = ring_peek(rl->r, &span, 1000000000LL, &nrec);
    ring_release(rl->r, n, nrec);
    return NULL;
}

/* A producer waiting for room gets in as soon as the consumer releases. */
static void test_push_wait_gets_room(void **state)
{
    struct ring *r = ring_new(256);
    struct buf b = {0};
    char payload[56];
    memset(payload, 'y', sizeof(payload));
    for (int i = 0; i < 6; i++)
        ring_batch_add(&b, payload, sizeof(payload), 0, (uint16_t)i);
    assert_int_equal(ring_push(r, b.data, b.len, NULL), 256);
    struct releaser rl = {r, 50};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, release_thread, &rl), 0);
    int64_t t0 = time_mono_ns();
    uint64_t pushed;
    assert_int_equal(ring_push_wait(r, b.data + 256, 128, 10000000000LL, &pushed), 128);
    assert_int_equal(pushed, 2);
    assert_true(time_mono_ns() - t0 < 5000000000LL);
    pthread_join(th, NULL);
    const char *span;
    size_t n = ring_peek(r, &span, 0, NULL);
    assert_int_equal(n, 128);
    assert_int_equal(((const struct ring_rec *)span)->src, 4);
    assert_int_equal(((const struct ring_rec *)(span + 64))->src, 5);
    ring_release(r, n, 2);
    buf_free(&b);
    ring_free(r);
}

/* ---- multi-producer stress ---- */

#define STRESS_PRODUCERS 4
#define STRESS_RECORDS   200000u

struct producer {
    struct ring *r;
    unsigned id;
    unsigned retries;
};

static void *producer_thread(void *arg)
{
    struct producer *p = arg;
    struct buf b = {0};
    uint32_t seq = 0;
    while (seq < STRESS_RECORDS) {
        buf_reset(&b);
        unsigned nb = 1 + (seq / 7 + p->id) % 32;
        for (unsigned i = 0; i < nb && seq + i < STRESS_RECORDS; i++) {
            char data[256];
            size_t len = rec_len(p->id, seq + i);
            rec_fill(data, len, p->id, seq + i);
            ring_batch_add(&b, data, len, (uint16_t)((seq + i) & 0xffff), (uint16_t)p->id);
        }
        size_t off = 0;
        while (off < b.len) {
            /* Alternate between the non-blocking push and the waiting one. */
            size_t n = (seq & 1)
                           ? ring_push(p->r, b.data + off, b.len - off, NULL)
                           : ring_push_wait(p->r, b.data + off, b.len - off, 20000000LL, NULL);
            if (n == 0) {
                p->retries++;
                sched_yield();
            }
            off += n;
        }
        seq += (uint32_t)ring_count(b.data, b.len);
    }
    buf_free(&b);
    return NULL;
}

struct consumer {
    struct ring *r;
    uint32_t next[STRESS_PRODUCERS];
    uint64_t total;
    uint64_t bad_src, bad_order, bad_data, bad_span;
};

static void *consumer_thread(void *arg)
{
    struct consumer *c = arg;
    for (;;) {
        const char *span;
        uint64_t nrec;
        size_t n = ring_peek(c->r, &span, 100000000LL, &nrec);
        if (n == 0) {
            if (ring_closed_empty(c->r))
                break;
            continue;
        }
        if (!whole_records(span, n) || ring_count(span, n) != nrec)
            c->bad_span++;
        size_t off = 0;
        while (off < n) {
            const struct ring_rec *rec = (const struct ring_rec *)(span + off);
            if (rec->len == UINT32_MAX)
                break;
            unsigned p = rec->src;
            if (p >= STRESS_PRODUCERS || rec->len < 5) {
                c->bad_src++;
            } else {
                uint32_t seq;
                memcpy(&seq, RING_REC_DATA(rec), 4);
                if (seq != c->next[p])
                    c->bad_order++;
                else if (rec_check(rec, p, seq) != 0)
                    c->bad_data++;
                c->next[p] = seq + 1;
            }
            c->total++;
            off += RING_REC_SIZE(rec->len);
        }
        ring_release(c->r, n, nrec);
    }
    return NULL;
}

static void test_mpsc_stress(void **state)
{
    struct ring *r = ring_new(64 * 1024);
    struct producer prod[STRESS_PRODUCERS];
    struct consumer cons;
    memset(&cons, 0, sizeof(cons));
    cons.r = r;
    pthread_t pt[STRESS_PRODUCERS], ct;
    int64_t t0 = time_mono_ns();
    assert_int_equal(pthread_create(&ct, NULL, consumer_thread, &cons), 0);
    for (unsigned i = 0; i < STRESS_PRODUCERS; i++) {
        prod[i] = (struct producer){.r = r, .id = i};
        assert_int_equal(pthread_create(&pt[i], NULL, producer_thread, &prod[i]), 0);
    }
    for (unsigned i = 0; i < STRESS_PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    ring_close(r);
    pthread_join(ct, NULL);
    int64_t elapsed = time_mono_ns() - t0;

    assert_int_equal(cons.bad_span, 0);
    assert_int_equal(cons.bad_src, 0);
    assert_int_equal(cons.bad_order, 0);
    assert_int_equal(cons.bad_data, 0);
    assert_int_equal(cons.total, (uint64_t)STRESS_PRODUCERS * STRESS_RECORDS);
    for (unsigned i = 0; i < STRESS_PRODUCERS; i++)
        assert_int_equal(cons.next[i], STRESS_RECORDS);
    assert_int_equal(ring_used(r), 0);
    assert_true(ring_closed_empty(r));
    unsigned retries = 0;
    for (unsigned i = 0; i < STRESS_PRODUCERS; i++)
        retries += prod[i].retries;
    print_message("stress: %u records in %.2f s, %u full-ring retries\n",
                  STRESS_PRODUCERS * STRESS_RECORDS, (double)elapsed / 1e9, retries);
    ring_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_layout),
        cmocka_unit_test(test_new_capacity),
        cmocka_unit_test(test_push_peek_release),
        cmocka_unit_test(test_wrap_around_many_cycles),
        cmocka_unit_test(test_full_ring_whole_prefix),
        cmocka_unit_test(test_exact_fill_wrap_counts),
        cmocka_unit_test(test_pushv_parts_in_order),
        cmocka_unit_test(test_malformed_tail_not_copied),
        cmocka_unit_test(test_short_tail_not_read),
        cmocka_unit_test(test_max_payload),
        cmocka_unit_test(test_close_drains),
        cmocka_unit_test(test_close_wakes_consumer),
        cmocka_unit_test(test_push_wakes_consumer),
        cmocka_unit_test(test_push_wait_times_out),
        cmocka_unit_test(test_push_wait_gets_room),
        cmocka_unit_test(test_mpsc_stress),
    };
    return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
