#include "collector/framer.h"

#include <stdio.h>
#include <string.h>

void framer_init(struct framer *f, enum framing how, size_t max)
{
    memset(f, 0, sizeof(*f));
    f->max = max;
    f->octets = how == FRAMING_SYSLOG;
    f->delim = how == FRAMING_NUL ? '\0' : '\n';
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

/* A whole line (without its delimiter): delivered, or cut at max and flagged. */
static void line(struct framer *f, const char *p, size_t n, framer_fn fn, void *ud)
{
    if (n && p[n - 1] == '\r' && f->delim == '\n')
        n--;
    if (n > f->max)
        fn(ud, p, f->max, FRAME_TRUNCATED);
    else if (n)
        fn(ud, p, n, 0);
}

/* Octet counting: consumes from p, returns the new position. A frame longer than max is cut
 * at max and reported once as truncated; its remaining bytes are skipped by count. */
static const char *octet_frame(struct framer *f, const char *p, const char *end, framer_fn fn,
                               void *ud)
{
    while (p < end && f->in_len) {
        if (*p >= '0' && *p <= '9' && f->ndigits < 19) {
            f->digits[f->ndigits++] = *p;
            f->len_acc = f->len_acc * 10 + (uint64_t)(*p - '0');
            p++;
        } else if (*p == ' ' && f->ndigits <= 12) { /* up to 999 GB: anything else is text */
            f->in_len = 0;
            f->ndigits = 0;
            f->left = f->len_acc;
            p++;
            if (f->left == 0)
                return p;
        } else {
            /* Not octet counting after all: the digits begin a plain line, kept as written. */
            f->in_len = 0;
            carry(f, f->digits, (size_t)f->ndigits, fn, ud);
            f->ndigits = 0;
            f->len_acc = 0;
            f->left = 0;
            return p;
        }
    }
    if (f->in_len || p >= end)
        return p;
    size_t take = (size_t)(end - p) < f->left ? (size_t)(end - p) : (size_t)f->left;
    size_t room = f->max - (f->partial.len < f->max ? f->partial.len : f->max);
    if (!f->discarding) {
        size_t keep = take < room ? take : room;
        buf_append(&f->partial, p, keep);
        if (keep < take) {
            fn(ud, f->partial.data, f->partial.len, FRAME_TRUNCATED);
            buf_reset(&f->partial);
            f->discarding = 1;
        }
    }
    f->left -= take;
    p += take;
    if (f->left == 0) {
        if (!f->discarding && f->partial.len)
            fn(ud, f->partial.data, f->partial.len, 0);
        buf_reset(&f->partial);
        f->discarding = 0;
        f->len_acc = 0;
    }
    return p;
}

void framer_feed(struct framer *f, const char *data, size_t len, framer_fn fn, void *ud)
{
    const char *p = data, *end = data + len;
    while (p < end) {
        if (f->octets) {
            if (f->in_len || f->left) {
                p = octet_frame(f, p, end, fn, ud);
                continue;
            }
            /* A frame starts here: skip the newline a sender may put between frames. */
            if (f->partial.len == 0 && !f->discarding && (*p == '\n' || *p == '\r')) {
                p++;
                continue;
            }
            if (f->partial.len == 0 && !f->discarding && *p >= '1' && *p <= '9') {
                f->in_len = 1;
                f->len_acc = 0;
                f->ndigits = 0;
                continue;
            }
        }
        const char *nl = memchr(p, f->delim, (size_t)(end - p));
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
    /* Digits still waiting for their space at the end of the stream were a last line. */
    if (f->in_len && f->ndigits) {
        size_t n = (size_t)f->ndigits;
        fn(ud, f->digits, n > f->max ? f->max : n, n > f->max ? FRAME_TRUNCATED : 0);
        f->ndigits = 0;
    }
    /* An octet-counted frame cut short by the end of the stream is delivered as it is. */
    f->in_len = 0;
    f->left = 0;
    f->len_acc = 0;
    if (f->partial.len && !f->discarding)
        line(f, f->partial.data, f->partial.len, fn, ud);
    buf_reset(&f->partial);
    f->discarding = 0;
}
