/* protobuf-c's allocations from an arena (core/arena.h) reset per request: unpacking a message
 * then makes no malloc per sub-message once the arena has grown to the usual request. Nothing
 * is freed one by one; protobuf-c's frees (its scratch space, a failed unpack) do nothing. */
#ifndef SPILLWAY_PROTO_PB_ARENA_H
#define SPILLWAY_PROTO_PB_ARENA_H

#include <protobuf-c/protobuf-c.h>

#include "core/arena.h"

static inline void *pb_arena_alloc(void *ud, size_t size)
{
    return arena_alloc(ud, size);
}

static inline void pb_arena_free(void *ud, void *p)
{
    (void)ud, (void)p;
}

/* The allocator that takes from arena a. */
static inline ProtobufCAllocator pb_arena_allocator(struct arena *a)
{
    return (ProtobufCAllocator){pb_arena_alloc, pb_arena_free, a};
}

#endif
