/* A bounded multi-producer, single-consumer ring of variable-size records in one preallocated
 * byte area. Producers push batches of records (one lock per batch, not per event); the
 * consumer reads a contiguous span of records in place, processes it without the lock, then
 * releases it. The ring owns its memory; the consumer owns a span between peek and release.
 * Used for partition rings (collector -> router worker) and sink queues (workers -> sink). */
#ifndef SPILLWAY_RING_H
#define SPILLWAY_RING_H

#include <stddef.h>
#include <stdint.h>

/* Record layout: an 8-byte header, the payload, padding to 8 bytes. */
struct ring_rec {
    uint32_t len;   /* payload bytes */
    uint16_t flags; /* RING_F_* */
    uint16_t src;   /* producer-defined: the input index for partition rings */
};

enum {
    RING_F_DEAD = 1 << 0,       /* dead letter: payload is {"error","raw",...}; skip the routes */
    RING_F_TAP_BEFORE = 1 << 1, /* a tapped event as it was before the route's transform */
};

#define RING_HDR         sizeof(struct ring_rec)
#define RING_ALIGN(n)    (((n) + 7u) & ~(size_t)7u)
#define RING_REC_SIZE(n) (RING_HDR + RING_ALIGN(n))
#define RING_REC_DATA(r) ((char *)(r) + RING_HDR)
#define RING_REC_NEXT(r) ((struct ring_rec *)((char *)(r) + RING_REC_SIZE((r)->len)))

struct ring;

/* capacity is rounded down to a multiple of 8. Returns NULL on allocation failure. */
struct ring *ring_new(size_t capacity);
void ring_free(struct ring *r);

/* Pushes a prefix of whole records from batch[0..len) (records laid out as above) and returns
 * the bytes accepted, and in *nrec (when not NULL) the records; never blocks. */
size_t ring_push(struct ring *r, const void *batch, size_t len, uint64_t *nrec);
/* Parts of a batch: whole records at p[0..len). */
struct ring_part {
    const char *p;
    size_t len;
};
/* As ring_push for the parts v[0..n) one after the other, under one lock: stops at the first
 * part not taken whole; returns the bytes accepted. */
size_t ring_pushv(struct ring *r, const struct ring_part *v, int n, uint64_t *nrec);
/* As ring_push but waits up to timeout_ns for room while the ring is open. */
size_t ring_push_wait(struct ring *r, const void *batch, size_t len, int64_t timeout_ns,
                      uint64_t *nrec);

/* Waits up to timeout_ns for records; returns the length of a contiguous span of whole records
 * at *span, or 0 (timeout, or closed and empty), and the records in it in *nrec (when not NULL),
 * known without reading them. The span stays valid until ring_release(). */
size_t ring_peek(struct ring *r, const char **span, int64_t timeout_ns, uint64_t *nrec);
/* Frees the first len bytes of the span returned by ring_peek: a prefix of whole records, nrec
 * of them. */
void ring_release(struct ring *r, size_t len, uint64_t nrec);

/* After close, producers get 0 and the consumer drains what is left, then sees 0. */
void ring_close(struct ring *r);
int ring_closed_empty(struct ring *r);
/* Wakes any waiting producer or consumer (shutdown deadline). */
void ring_wake(struct ring *r);

size_t ring_used(const struct ring *r);
size_t ring_capacity(const struct ring *r);
/* Largest payload that can ever be pushed. */
size_t ring_max_payload(const struct ring *r);

/* Records accepted since the ring was made: read after a push, the position in the ring's
 * order up to which every record pushed so far, by any producer, lies. */
uint64_t ring_pushed(struct ring *r);

/* Records in the ring now, including a span the consumer peeked and has not released yet. */
uint64_t ring_held(struct ring *r);

/* Number of records in a span or batch of whole records. */
uint64_t ring_count(const char *span, size_t len);

/* Appends one record to a batch under construction; returns 0 or -ENOMEM. */
struct buf;
int ring_batch_add(struct buf *batch, const void *data, size_t len, uint16_t flags, uint16_t src);
/* Starts a record of unknown length: returns its offset; finish with ring_batch_end. */
int ring_batch_begin(struct buf *batch, uint16_t flags, uint16_t src, size_t *offset);
int ring_batch_end(struct buf *batch, size_t offset); /* 0 or -ENOMEM (record removed) */
/* Removes a started record (its payload turned out unusable). */
void ring_batch_cancel(struct buf *batch, size_t offset);

#endif
