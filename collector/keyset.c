#include "collector/keyset.h"

#include <errno.h>
#include <stdlib.h>

/* Twice the slots (64 at first), so the table stays at most half full. */
int keyset__grow(struct keyset *ks)
{
    size_t cap = ks->slot ? (ks->mask + 1) * 2 : 64;
    uint64_t *slot = calloc(cap, sizeof(*slot));
    uint32_t *undo = realloc(ks->undo, cap / 2 * sizeof(*undo));
    if (!slot || !undo) {
        free(slot);
        if (undo)
            ks->undo = undo;
        return -ENOMEM;
    }
    /* Reinserted in the order they came, so the undo order (and the mark) still holds. */
    for (size_t i = 0; i < ks->nundo; i++) {
        uint64_t h = ks->slot[ks->undo[i]];
        size_t at = (size_t)h & (cap - 1);
        while (slot[at])
            at = (at + 1) & (cap - 1);
        slot[at] = h;
        undo[i] = (uint32_t)at;
    }
    free(ks->slot);
    ks->slot = slot;
    ks->undo = undo;
    ks->mask = cap - 1;
    ks->capundo = cap / 2;
    return 0;
}

void keyset_free(struct keyset *ks)
{
    free(ks->slot);
    free(ks->undo);
    memset(ks, 0, sizeof(*ks));
}
