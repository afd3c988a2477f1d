/* A set of the keys already written into a JSON object, so that each is written once: each key
 * by a 64-bit hash of its text as written (two keys that escape alike are one key). Entries
 * added after a mark can be taken out again, newest first, which leaves the table as it was at
 * the mark (the OTLP mapping keeps a scope's keys and undoes each record's). The owner embeds a
 * struct keyset (zeroed = empty) and calls keyset_free() once; nothing is allocated per entry. */
#ifndef SPILLWAY_KEYSET_H
#define SPILLWAY_KEYSET_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct keyset {
    uint64_t *slot; /* 0: empty */
    size_t mask;    /* slots - 1 */
    uint32_t *undo; /* the slot of each entry, in the order added */
    size_t nundo, capundo;
    size_t mark;
};

/* A hash of a key's text, eight bytes at a time: only key sets use it, so it need not be stable
 * across versions like core/hash.h's. Never 0 (the empty slot). */
static inline uint64_t keyset_hash(const char *p, size_t n)
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
     * the load after it: a quarter of the mapping's key writing). */
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

int keyset__grow(struct keyset *ks);

/* Adds the key of hash h: returns 1 when it was there already, 0 when added, -ENOMEM. */
static inline int keyset_add(struct keyset *ks, uint64_t h)
{
    if (ks->nundo >= ks->capundo && keyset__grow(ks))
        return -12; /* -ENOMEM without errno.h in every user */
    size_t at = (size_t)h & ks->mask;
    for (; ks->slot[at]; at = (at + 1) & ks->mask) {
        if (ks->slot[at] == h)
            return 1;
    }
    ks->slot[at] = h;
    ks->undo[ks->nundo++] = (uint32_t)at;
    return 0;
}

/* Takes out every entry added after ks->mark (set it to ks->nundo to mark). */
static inline void keyset_to_mark(struct keyset *ks)
{
    while (ks->nundo > ks->mark)
        ks->slot[ks->undo[--ks->nundo]] = 0;
}

/* Empties the set (and its mark); the memory is kept. */
static inline void keyset_clear(struct keyset *ks)
{
    ks->mark = 0;
    keyset_to_mark(ks);
}

void keyset_free(struct keyset *ks);

#endif
