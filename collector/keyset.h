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

#include "core/hash.h"

struct keyset {
    uint64_t *slot; /* 0: empty */
    size_t mask;    /* slots - 1 */
    uint32_t *undo; /* the slot of each entry, in the order added */
    size_t nundo, capundo;
    size_t mark;
};

/* A hash of a key's text (core/hash.h's table hash: never 0, the empty slot). */
static inline uint64_t keyset_hash(const char *p, size_t n)
{
    return hash_table64(p, n);
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
