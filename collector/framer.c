#include "framer.h"

#include <string.h>

void framer_init(struct framer *f, size_t max)
{
    memset(f, 0, sizeof(*f));
    f->max = max;
}

void framer_free(struct framer *f)
{
    buf_free(&f->partial);
}

static void emit(const char *line, size_t len, int flags, framer_fn fn, void *ud)
{
    if (len && line[len - 1] == '\r')
        len--;
    if (len == 0 && !(flags & FRAME_TRUNCATED))
        return;
    fn(ud, line, len, flags);
}

/* Appends to the carried partial line, cutting it at max. */
static void carry(struct framer *f, const char *data, size_t len, framer_fn fn, void *ud)
{
    if (f->discarding)
        return;
    size_t room = f->max - f->partial.len;
    if (len <= room) {
        buf_append(&f->partial, data, len);
        return;
    }
    buf_append(&f->partial, data, room);
    emit(f->partial.data, f->partial.len, FRAME_TRUNCATED, fn, ud);
    buf_reset(&f->partial);
    f->discarding = 1;
}

void framer_feed(struct framer *f, const char *data, size_t len, framer_fn fn, void *ud)
{
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            carry(f, p, (size_t)(end - p), fn, ud);
            return;
        }
        size_t n = (size_t)(nl - p);
        if (f->discarding) {
            f->discarding = 0; /* the oversized line ends here */
        } else if (f->partial.len) {
            carry(f, p, n, fn, ud);
            if (!f->discarding)
                emit(f->partial.data, f->partial.len, 0, fn, ud);
            f->discarding = 0;
            buf_reset(&f->partial);
        } else if (n > f->max) {
            emit(p, f->max, FRAME_TRUNCATED, fn, ud);
        } else {
            emit(p, n, 0, fn, ud);
        }
        p = nl + 1;
    }
    if (f->partial.len == 0)
        buf_trim(&f->partial, 65536);
}

void framer_finish(struct framer *f, framer_fn fn, void *ud)
{
    if (f->partial.len && !f->discarding)
        emit(f->partial.data, f->partial.len, 0, fn, ud);
    buf_reset(&f->partial);
    f->discarding = 0;
}
