/* Chunked GELF reassembly: a GELF message too large for one UDP datagram comes as up to 128
 * chunks (magic 0x1e 0x0f, an 8-byte message id, the chunk's sequence number and the count),
 * in any order. This module holds the chunks of each incomplete message until the last one
 * arrives, refuses what cannot be part of a message (a duplicate chunk, a count over 128, a
 * number past the count, more than the memory bound), and expires incomplete messages after a
 * timeout. Pure: time is passed in, nothing is logged or counted here (format_gelf.c does
 * that), so it is unit-tested and fuzzed on its own. The caller owns the struct. */
#ifndef SPILLWAY_GELF_CHUNKS_H
#define SPILLWAY_GELF_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define GELF_CHUNK_HEADER 12  /* magic (2), message id (8), sequence number (1), count (1) */
#define GELF_CHUNKS_MAX   128 /* the specification's limit of chunks per message */

/* One incomplete message. */
struct gelf_pending {
    uint64_t id;
    int64_t first_ns; /* when its first chunk arrived */
    uint8_t count, got;
    uint64_t have[2];              /* which sequence numbers arrived, as a bit set */
    uint32_t off[GELF_CHUNKS_MAX]; /* each chunk's payload in data */
    uint32_t len[GELF_CHUNKS_MAX];
    struct buf data; /* payloads in arrival order (reused across messages) */
};

struct gelf_chunks {
    struct gelf_pending *slot; /* slot[0..n) are pending, in arrival order of their first chunk */
    int n, cap;
    int max_pending;  /* messages pending at once */
    size_t max_bytes; /* payload bytes pending at once */
    size_t bytes;
    int64_t timeout_ns;
    struct buf whole; /* the last message completed, its chunks in order */
};

enum gelf_chunk_result {
    GELF_CHUNK_HELD,      /* kept; the message waits for more */
    GELF_CHUNK_COMPLETE,  /* the message is whole: *msg, *len (valid until the next call) */
    GELF_CHUNK_DUPLICATE, /* a sequence number already held: refused, the message goes on */
    GELF_CHUNK_BAD,       /* not a chunk: shorter than its header, count 0 or over 128, or a
                             number past the count (*err says which); no message held */
    GELF_CHUNK_FULL,      /* over max_pending or max_bytes: refused (*err); a message already
                             pending stays and expires unless its other chunks complete it */
};

void gelf_chunks_init(struct gelf_chunks *c, int max_pending, size_t max_bytes, int64_t timeout_ns);
void gelf_chunks_free(struct gelf_chunks *c);

/* True when a datagram starts with the chunk magic. */
static inline int gelf_is_chunk(const char *d, size_t len)
{
    return len >= 2 && (unsigned char)d[0] == 0x1e && (unsigned char)d[1] == 0x0f;
}

/* Takes one chunk (the whole datagram, header included) arriving at now_ns. */
enum gelf_chunk_result gelf_chunks_add(struct gelf_chunks *c, const char *dgram, size_t len,
                                       int64_t now_ns, const char **msg, size_t *msglen,
                                       const char **err);

/* Removes every message pending since before now_ns - timeout_ns (all of them when now_ns is
 * INT64_MAX) and hands each to fn with its chunks' payloads in sequence order (the missing ones
 * left out) and how many of how many chunks arrived. Returns how many expired. */
int gelf_chunks_expire(struct gelf_chunks *c, int64_t now_ns,
                       void (*fn)(void *ud, const char *data, size_t len, int got, int count),
                       void *ud);

#endif
