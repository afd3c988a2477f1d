/* A fast 64-bit hash for partition keys and sampling decisions: FNV-1a over the bytes, then the
 * murmur3 finalizer so every output bit depends on every input bit (sampling compares the hash
 * against rate * 2^64, so the high bits must be uniform). Stable across versions and hosts:
 * the same key gets the same partition and the same sampling decision everywhere. */
#ifndef SPILLWAY_HASH_H
#define SPILLWAY_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* A hash for this process's own tables (key sets, metric series): eight bytes at a time, about
 * a quarter of hash64's cost, and never 0 (a table's empty slot). Not stable across versions:
 * nothing that leaves the process may depend on it (hash64 is for those). */
static inline uint64_t hash_table64(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL), w = 0;
    const char *end = p + n;
    for (; end - p > 8; p += 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
    }
    /* The last 1 to 8 bytes: the key's last eight when it has them (overlapping), else byte by
     * byte in a register (a memcpy of a variable size into w went through the stack and stalled
     * the load after it: a quarter of the OTLP mapping's key writing). */
    if (n >= 8) {
        memcpy(&w, end - 8, 8);
    } else {
        w = 0;
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)(unsigned char)p[i] << (8 * i);
    }
    h = (h ^ w) * 0x94d049bb133111ebULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h ? h : 1;
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
