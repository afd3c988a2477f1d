/* A fast 64-bit hash for partition keys and sampling decisions: FNV-1a over the bytes, then the
 * murmur3 finalizer so every output bit depends on every input bit (sampling compares the hash
 * against rate * 2^64, so the high bits must be uniform). Stable across versions and hosts:
 * the same key gets the same partition and the same sampling decision everywhere. */
#ifndef SPILLWAY_HASH_H
#define SPILLWAY_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* xorshift64*: a fast pseudo-random sequence (sampling without a key, retry jitter). The state
 * is the caller's, never shared between threads, and must not start at 0. */
static inline uint64_t rand64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif
