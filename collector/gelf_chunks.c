#include "collector/gelf_chunks.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void gelf_chunks_init(struct gelf_chunks *c, int max_pending, size_t max_bytes, int64_t timeout_ns)
{
    *c = (struct gelf_chunks){
        .max_pending = max_pending, .max_bytes = max_bytes, .timeout_ns = timeout_ns};
}

void gelf_chunks_free(struct gelf_chunks *c)
{
    for (int i = 0; i < c->cap; i++)
        buf_free(&c->slot[i].data);
    free(c->slot);
    buf_free(&c->whole);
    c->slot = NULL;
    c->n = c->cap = 0;
    c->bytes = 0;
}

static int find(const struct gelf_chunks *c, uint64_t id)
{
    /* A linear scan: at most max_pending (1,024) compares, and only for chunked messages,
     * which senders use for messages over a datagram (rare next to the rest). */
    for (int i = 0; i < c->n; i++)
        if (c->slot[i].id == id)
            return i;
    return -1;
}

/* Slot i is done: its buffer stays with the slot for reuse, the last slot takes its place. */
static void release(struct gelf_chunks *c, int i)
{
    struct gelf_pending *p = &c->slot[i];
    c->bytes -= p->data.len;
    buf_reset(&p->data);
    buf_trim(&p->data, 65536); /* a rare huge message does not keep its memory */
    if (i != c->n - 1) {
        struct gelf_pending tmp = *p;
        *p = c->slot[c->n - 1];
        c->slot[c->n - 1] = tmp;
    }
    c->n--;
}

/* A new pending message: a slot from the free ones (grown up to max_pending). */
static int open_slot(struct gelf_chunks *c, uint64_t id, uint8_t count, int64_t now_ns)
{
    if (c->n >= c->max_pending)
        return -1;
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 8;
        if (cap > c->max_pending)
            cap = c->max_pending;
        struct gelf_pending *s = realloc(c->slot, (size_t)cap * sizeof(*s));
        if (!s)
            return -1;
        memset(s + c->cap, 0, (size_t)(cap - c->cap) * sizeof(*s));
        c->slot = s;
        c->cap = cap;
    }
    struct gelf_pending *p = &c->slot[c->n];
    p->id = id;
    p->first_ns = now_ns;
    p->count = count;
    p->got = 0;
    p->have[0] = p->have[1] = 0;
    buf_reset(&p->data);
    return c->n++;
}

/* The chunks' payloads in sequence order (missing ones left out) into c->whole. */
static int assemble(struct gelf_chunks *c, const struct gelf_pending *p)
{
    buf_reset(&c->whole);
    for (int s = 0; s < p->count; s++) {
        if (!(p->have[s >> 6] >> (s & 63) & 1))
            continue;
        if (buf_append(&c->whole, p->data.data + p->off[s], p->len[s]))
            return -1;
    }
    return 0;
}

enum gelf_chunk_result gelf_chunks_add(struct gelf_chunks *c, const char *dgram, size_t len,
                                       int64_t now_ns, const char **msg, size_t *msglen,
                                       const char **err)
{
    if (len < GELF_CHUNK_HEADER || !gelf_is_chunk(dgram, len)) {
        *err = "chunked GELF: a chunk shorter than its 12-byte header";
        return GELF_CHUNK_BAD;
    }
    uint64_t id;
    memcpy(&id, dgram + 2, 8); /* an opaque id: its byte order does not matter */
    uint8_t seq = (uint8_t)dgram[10], count = (uint8_t)dgram[11];
    if (count == 0 || count > GELF_CHUNKS_MAX) {
        *err = "chunked GELF: a sequence count of 0 or over 128";
        return GELF_CHUNK_BAD;
    }
    if (seq >= count) {
        *err = "chunked GELF: a sequence number past the sequence count";
        return GELF_CHUNK_BAD;
    }
    const char *payload = dgram + GELF_CHUNK_HEADER;
    size_t plen = len - GELF_CHUNK_HEADER;
    int i = find(c, id);
    if (i >= 0 && c->slot[i].count != count) {
        *err = "chunked GELF: a chunk whose count differs from its message's";
        return GELF_CHUNK_BAD;
    }
    if (i >= 0 && (c->slot[i].have[seq >> 6] >> (seq & 63) & 1)) {
        *err = "chunked GELF: a duplicate chunk";
        return GELF_CHUNK_DUPLICATE;
    }
    if (c->bytes + plen > c->max_bytes) {
        *err = "chunked GELF: too many bytes pending in incomplete messages";
        return GELF_CHUNK_FULL;
    }
    if (i < 0 && (i = open_slot(c, id, count, now_ns)) < 0) {
        *err = "chunked GELF: too many incomplete messages pending";
        return GELF_CHUNK_FULL;
    }
    struct gelf_pending *p = &c->slot[i];
    if (buf_append(&p->data, payload, plen)) {
        if (p->got == 0)
            release(c, i);
        *err = "chunked GELF: out of memory";
        return GELF_CHUNK_FULL;
    }
    p->off[seq] = (uint32_t)(p->data.len - plen);
    p->len[seq] = (uint32_t)plen;
    p->have[seq >> 6] |= 1ULL << (seq & 63);
    p->got++;
    c->bytes += plen;
    if (p->got < p->count)
        return GELF_CHUNK_HELD;
    int rc = assemble(c, p);
    release(c, i);
    if (rc) {
        *err = "chunked GELF: out of memory";
        return GELF_CHUNK_FULL;
    }
    *msg = c->whole.data ? c->whole.data : "";
    *msglen = c->whole.len;
    return GELF_CHUNK_COMPLETE;
}

int gelf_chunks_expire(struct gelf_chunks *c, int64_t now_ns,
                       void (*fn)(void *ud, const char *data, size_t len, int got, int count),
                       void *ud)
{
    int expired = 0;
    for (int i = 0; i < c->n;) {
        struct gelf_pending *p = &c->slot[i];
        if (now_ns != INT64_MAX && now_ns - p->first_ns < c->timeout_ns) {
            i++;
            continue;
        }
        if (fn && assemble(c, p) == 0)
            fn(ud, c->whole.data ? c->whole.data : "", c->whole.len, p->got, p->count);
        expired++;
        release(c, i); /* the last slot moves to i: looked at next */
    }
    return expired;
}
