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

/* Appends to the carried partial line. It may hold max + 1 bytes so that a line of max bytes
 * followed by the '\r' of a CRLF still fits; anything longer is cut at max, reported once as
 * truncated, and the rest of the line is skipped. */
static void carry(struct framer *f, const char *data, size_t len, framer_fn fn, void *ud)
{
    if (f->discarding)
        return;
    size_t room = f->max + 1 - f->partial.len;
    if (len <= room) {
        buf_append(&f->partial, data, len);
        return;
    }
    buf_append(&f->partial, data, room);
    fn(ud, f->partial.data, f->max, FRAME_TRUNCATED);
    buf_reset(&f->partial);
    f->discarding = 1;
}

/* A whole line (without its '\n'): delivered, or cut at max and flagged. */
static void line(struct framer *f, const char *p, size_t n, framer_fn fn, void *ud)
{
    if (n && p[n - 1] == '\r')
        n--;
    if (n > f->max)
        fn(ud, p, f->max, FRAME_TRUNCATED);
    else if (n)
        fn(ud, p, n, 0);
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
            buf_reset(&f->partial);
        } else if (f->partial.len) {
            carry(f, p, n, fn, ud);
            if (!f->discarding)
                line(f, f->partial.data, f->partial.len, fn, ud);
            f->discarding = 0;
            buf_reset(&f->partial);
        } else {
            line(f, p, n, fn, ud);
        }
        p = nl + 1;
    }
    if (f->partial.len == 0)
        buf_trim(&f->partial, 65536);
}

void framer_finish(struct framer *f, framer_fn fn, void *ud)
{
    if (f->partial.len && !f->discarding)
        line(f, f->partial.data, f->partial.len, fn, ud);
    buf_reset(&f->partial);
    f->discarding = 0;
}
