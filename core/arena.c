#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>

#define ALIGN       8
#define HEADER      sizeof(size_t)
#define FIRST_BLOCK (64 * 1024)
#define KEEP        (1024 * 1024)

struct arena_block {
    struct arena_block *next;
    size_t size; /* bytes in data */
    size_t pos;  /* bytes taken */
    _Alignas(ALIGN) unsigned char data[];
};

static struct arena_block *block_new(size_t size, struct arena_block *next)
{
    struct arena_block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->next = next;
    b->size = size;
    b->pos = 0;
    return b;
}

/* A new block in front, large enough for need: twice the last one, so a request that needs
 * much memory makes few blocks. */
static int grow(struct arena *a, size_t need)
{
    size_t size = a->head ? a->head->size * 2 : FIRST_BLOCK;
    while (size < need)
        size *= 2;
    struct arena_block *b = block_new(size, a->head);
    if (!b)
        return -1;
    a->head = b;
    a->held += size;
    return 0;
}

void *arena_alloc(struct arena *a, size_t size)
{
    if (size > SIZE_MAX / 2)
        return NULL;
    size_t need = HEADER + ((size + ALIGN - 1) & ~(size_t)(ALIGN - 1));
    if (a->limit && a->used + need > a->limit) {
        a->over = 1;
        return NULL;
    }
    struct arena_block *b = a->head;
    if (!b || b->size - b->pos < need) {
        if (grow(a, need))
            return NULL;
        b = a->head;
    }
    unsigned char *p = b->data + b->pos;
    b->pos += need;
    a->used += need;
    *(size_t *)p = size;
    return p + HEADER;
}

void arena_reset(struct arena *a)
{
    size_t keep = a->keep ? a->keep : KEEP;
    a->used = 0;
    a->over = 0;
    if (!a->head)
        return;
    if (!a->head->next && a->held <= keep) {
        a->head->pos = 0; /* the steady state: one block, reused */
        return;
    }
    /* Several blocks: one of their total size serves the next use as well, unless that is more
     * than the arena should hold between uses. */
    size_t total = a->held;
    arena_free(a);
    if (total <= keep && (a->head = block_new(total, NULL)))
        a->held = total;
}

void arena_free(struct arena *a)
{
    for (struct arena_block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
    a->held = 0;
    a->used = 0;
    a->over = 0;
}
