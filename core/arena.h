/* A bump arena: many small allocations freed all at once by arena_reset(), so a decoder that
 * builds a tree per request (protobuf-c messages, say) makes no malloc per message. The owner
 * embeds a struct arena (zero-initialized = empty), resets it between uses and calls
 * arena_free() once; what arena_alloc() returned is valid until the next reset or free. */
#ifndef SPILLWAY_ARENA_H
#define SPILLWAY_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
    struct arena_block *head; /* the block being filled; older ones follow it */
    size_t used;              /* bytes taken from all blocks since the reset */
    size_t held;              /* bytes of all blocks */
    size_t limit;             /* used may not pass this (0: no limit) */
    size_t keep;              /* a reset keeps at most this much (0: 1 MiB) */
    int over;                 /* an allocation was refused for the limit since the reset */
};

/* Returns size bytes aligned for any scalar type (8 bytes), or NULL when out of memory or when
 * it would take the arena past a->limit (then a->over is set). Each allocation remembers the size
 * asked for (arena_size), in a header of 8 bytes before it. */
void *arena_alloc(struct arena *a, size_t size);

/* The size asked for when p (a pointer arena_alloc returned) was allocated. */
static inline size_t arena_size(const void *p)
{
    return ((const size_t *)p)[-1];
}

/* Forgets every allocation. The memory is kept for the next use, in one block, unless the arena
 * grew past a->keep: then it is freed. */
void arena_reset(struct arena *a);
/* Frees every block; the arena is empty and reusable. arena_free of an empty arena is a no-op. */
void arena_free(struct arena *a);

#endif
