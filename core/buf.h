/* A growable byte buffer. The owner embeds a struct buf (zero-initialized = empty) and calls
 * buf_free() once; the data is reused across buf_reset() so steady-state use allocates nothing. */
#ifndef SPILLWAY_BUF_H
#define SPILLWAY_BUF_H

#include <stddef.h>
#include <string.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
};

/* Ensures room for `extra` more bytes. Returns 0 or -ENOMEM (the buffer is unchanged). */
int buf__grow(struct buf *b, size_t extra);

static inline int buf_reserve(struct buf *b, size_t extra)
{
    return b->cap - b->len >= extra ? 0 : buf__grow(b, extra);
}

static inline int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0; /* memcpy with a NULL pointer is undefined even for 0 bytes */
    if (buf_reserve(b, n))
        return -12; /* -ENOMEM without pulling errno.h into every user */
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static inline int buf_putc(struct buf *b, char c)
{
    if (buf_reserve(b, 1))
        return -12;
    b->data[b->len++] = c;
    return 0;
}

static inline int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

static inline void buf_reset(struct buf *b)
{
    b->len = 0;
}

int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Releases memory; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);
/* Shrinks capacity back to `keep` when a rare huge event inflated it. */
void buf_trim(struct buf *b, size_t keep);

/* The order of two byte strings: memcmp's over the shorter length, then the shorter first. */
static inline int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

#endif
