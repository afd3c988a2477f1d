#include "core/jsonw.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* 0: copy as is; 1: short escape in esc_char; 2: \u00XX. */
static const char esc_char[32] = {
    ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
};

/* 1 for the bytes that need escaping: control characters, quote, backslash, and bytes of 0x80
 * and up (UTF-8 is checked, not copied blindly). */
#define ESC16(x) 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
static const unsigned char needs_escape[256] = {
    ESC16(0x00), ESC16(0x10), [0x22] = 1,  [0x5c] = 1,  [0x80] = ESC16(0x80), ESC16(0x90),
    ESC16(0xa0), ESC16(0xb0), ESC16(0xc0), ESC16(0xd0), ESC16(0xe0),          ESC16(0xf0),
};
#undef ESC16

/* True when none of the 8 bytes of w needs escaping: no control character, quote, backslash or
 * non-ASCII byte (bit tricks from "Bit Twiddling Hacks": a byte below n, a zero byte). */
static inline int plain8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t ctrl = (w - ones * 0x20) & ~w & high;
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
    q = (q - ones) & ~q & high;
    bs = (bs - ones) & ~bs & high;
    return !(ctrl | q | bs | (w & high));
}

/* How many bytes from s on need no escape: sixteen at a time (SSE2: as signed bytes, control
 * characters and non-ASCII are those below 0x20), then eight, then one. */
static inline size_t plain_run(const unsigned char *s, size_t len)
{
    size_t i = 0;
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    for (; i + 16 <= len; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmplt_epi8(v, space));
        unsigned stop = (unsigned)_mm_movemask_epi8(m);
        if (stop)
            return i + (size_t)__builtin_ctz(stop);
    }
#endif
    for (uint64_t w; i + 8 <= len && (memcpy(&w, s + i, 8), plain8(w)); i += 8)
        ;
    while (i < len && !needs_escape[s[i]])
        i++;
    return i;
}

/* Writes the escaped form of the byte (or UTF-8 sequence) at s[*i], one that plain_run stopped
 * at, to o; returns the end of what it wrote and moves *i past what it read. */
static inline char *escape_one(char *o, const unsigned char *s, size_t len, size_t *i)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[*i];
    if (c < 0x20) {
        if (esc_char[c]) {
            *o++ = '\\';
            *o++ = esc_char[c];
        } else {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        }
        (*i)++;
    } else if (c == '"' || c == '\\') {
        *o++ = '\\';
        *o++ = (char)c;
        (*i)++;
    } else {
        size_t n = utf8_seq_len(s + *i, len - *i);
        if (n) {
            memcpy(o, s + *i, n);
            o += n;
            *i += n;
        } else {
            memcpy(o, "\\ufffd", 6);
            o += 6;
            (*i)++;
        }
    }
    return o;
}

int jsonw_string_body(struct buf *b, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    /* Worst case: every byte becomes \u00XX or \ufffd (6 bytes). */
    if (buf_reserve(b, len * 6 + 2))
        return -ENOMEM;
    char *o = b->data + b->len;
    size_t i = 0;
#ifdef __SSE2__
    /* Sixteen bytes at a time, each block stored whole before it is looked at (the reservation
     * leaves room: what is written never passes 6 bytes per byte read) and the output moved on
     * only past the bytes that need nothing: text full of quotes (JSON carried in a syslog
     * message) costs a few instructions per quote, not a call per run between two. */
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    while (i + 16 <= len) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i q = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash));
        __m128i c = _mm_cmplt_epi8(v, space); /* control bytes, and bytes of 0x80 and up */
        _mm_storeu_si128((__m128i *)(void *)o, v);
        unsigned stop = (unsigned)_mm_movemask_epi8(_mm_or_si128(q, c));
        if (!stop) {
            o += 16;
            i += 16;
            continue;
        }
        if (!_mm_movemask_epi8(c)) {
            /* Only quotes and backslashes (JSON text in a message: a quote every few bytes):
             * each gets its backslash, and the rest of the block, read again, is stored one
             * place further on. The stores pass the block's end by at most 31 bytes, inside the
             * reservation. It is read again from the text while 32 bytes of it are left, else
             * from a copy of the block (reading a copy just stored, at another offset, waits
             * for the store to complete: a tenth of micro S4's time when it always did). */
            unsigned char blk[32] __attribute__((aligned(16)));
            const unsigned char *src = s + i;
            if (i + 32 > len) {
                _mm_store_si128((__m128i *)(void *)blk, v);
                _mm_store_si128((__m128i *)(void *)(blk + 16), _mm_setzero_si128());
                src = blk;
            }
            unsigned shift = 0;
            do {
                unsigned k = (unsigned)__builtin_ctz(stop);
                o[k + shift] = '\\';
                _mm_storeu_si128((__m128i *)(void *)(o + k + shift + 1),
                                 _mm_loadu_si128((const __m128i *)(const void *)(src + k)));
                shift++;
                stop &= stop - 1;
            } while (stop);
            o += 16 + shift;
            i += 16;
            continue;
        }
        size_t k = (size_t)__builtin_ctz(stop);
        o += k;
        i += k;
        o = escape_one(o, s, len, &i);
    }
#endif
    while (i < len) {
        /* Most text needs no escape: it is copied in runs. */
        size_t run = plain_run(s + i, len - i);
        memcpy(o, s + i, run);
        o += run;
        i += run;
        if (i < len)
            o = escape_one(o, s, len, &i);
    }
    b->len = (size_t)(o - b->data);
    return 0;
}

int jsonw_string(struct buf *b, const char *str, size_t len)
{
    if (buf_putc(b, '"') || jsonw_string_body(b, str, len))
        return -ENOMEM;
    return buf_putc(b, '"');
}

/* Digits of v, right to left, into the end of a 20-byte buffer; returns where they start. */
static char *digits(char *end, uint64_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "62636465666768697071727374757677787980818283848586878889909192"
                                "93949596979899";
    char *p = end;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, pairs + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return p;
}

int jsonw_uint(struct buf *b, uint64_t v)
{
    char tmp[20];
    char *p = digits(tmp + sizeof(tmp), v);
    return buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

int jsonw_int(struct buf *b, int64_t v)
{
    char tmp[21];
    char *p = digits(tmp + sizeof(tmp), v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    if (v < 0)
        *--p = '-';
    return buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* v as m / 10^k with the fewest fraction digits k (1 to 15) and m under 10^15, when one reads
 * back as v exactly: (double)m and 10^k are exact, and their quotient is rounded once, as
 * strtod rounds the decimal text. That is what %.15g prints for such a value between 1e-4 and
 * 1e15 (at most 15 significant digits survive the round trip), without printf and strtod, which
 * cost about 400 ns per value. Returns the length written into out, or 0 when no such m. */
static size_t short_fraction(double v, char out[40])
{
    static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    for (int k = 1; k <= 15; k++) {
        double s = a * p10[k];
        if (s >= 1e15)
            return 0;
        uint64_t m = (uint64_t)(s + 0.5);
        if ((double)m / p10[k] != a)
            continue;
        char tmp[20];
        char *d = digits(tmp + sizeof(tmp), m);
        size_t nd = (size_t)(tmp + sizeof(tmp) - d), n = 0;
        if (v < 0)
            out[n++] = '-';
        if (nd <= (size_t)k) { /* 0.00ddd */
            out[n++] = '0';
            out[n++] = '.';
            for (size_t z = nd; z < (size_t)k; z++)
                out[n++] = '0';
            memcpy(out + n, d, nd);
            n += nd;
        } else {
            memcpy(out + n, d, nd - (size_t)k);
            n += nd - (size_t)k;
            out[n++] = '.';
            memcpy(out + n, d + nd - (size_t)k, (size_t)k);
            n += (size_t)k;
        }
        return n;
    }
    return 0;
}

int jsonw_double(struct buf *b, double v)
{
    if (!isfinite(v))
        return buf_append(b, "null", 4);
    if (fabs(v) < 1e15 && v == (double)(int64_t)v) /* range first: the cast is UB past 2^63 */
        return jsonw_int(b, (int64_t)v);
    char tmp[40];
    size_t n = short_fraction(v, tmp);
    if (n)
        return buf_append(b, tmp, n);
    /* The shortest text that reads back as the same double: 0.1 stays "0.1", not
     * "0.10000000000000001". */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return buf_puts(b, tmp);
}

int jsonw_raw_compact(struct buf *b, const char *s, size_t len)
{
    if (!memchr(s, '\n', len) && !memchr(s, '\r', len))
        return buf_append(b, s, len);
    if (buf_reserve(b, len))
        return -ENOMEM;
    char *o = b->data + b->len;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            *o++ = c;
            if (c == '\\' && i + 1 < len)
                *o++ = s[++i];
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
            *o++ = c;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            *o++ = c;
        }
    }
    b->len = (size_t)(o - b->data);
    return 0;
}
