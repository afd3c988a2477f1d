#include "core/jsonw.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

/* 0: copy as is; 1: short escape in esc_char; 2: \u00XX. */
static const char esc_char[32] = {
    ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
};

int jsonw_string(struct buf *b, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    /* Worst case: every byte becomes \u00XX or \ufffd (6 bytes) plus quotes. */
    if (buf_reserve(b, len * 6 + 2))
        return -ENOMEM;
    char *o = b->data + b->len;
    *o++ = '"';
    size_t i = 0;
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (i < len) {
        /* Eight bytes at a time while none needs a look: no control byte, quote, backslash or
         * non-ASCII byte (bit tricks exact as a yes/no; most of a string's bytes are these).
         * Decoders that write every field as a string (forward, journald) spent a sixth of the
         * collector's time here a byte at a time. */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
            if (((w - ones * 0x20) & ~w) & highs || ((q - ones) & ~q & highs) ||
                ((bs - ones) & ~bs & highs) || (w & highs))
                break;
            memcpy(o, s + i, 8);
            o += 8;
            i += 8;
        }
        if (i >= len)
            break;
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            *o++ = (char)c;
            i++;
        } else if (c < 0x20) {
            if (esc_char[c]) {
                *o++ = '\\';
                *o++ = esc_char[c];
            } else {
                memcpy(o, "\\u00", 4);
                o[4] = hex[c >> 4];
                o[5] = hex[c & 15];
                o += 6;
            }
            i++;
        } else if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
            i++;
        } else {
            size_t n = utf8_seq_len(s + i, len - i);
            if (n) {
                memcpy(o, s + i, n);
                o += n;
                i += n;
            } else {
                memcpy(o, "\\ufffd", 6);
                o += 6;
                i++;
            }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return 0;
}

/* Decimal digits of u, written backwards from end; returns where they start. */
static char *digits(char *end, uint64_t u)
{
    do {
        *--end = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    return end;
}

/* Integers without printf: decoders write numbers per field of every event (the forward input's
 * msgpack), where vfprintf was a tenth of the collector's time. */
int jsonw_uint(struct buf *b, uint64_t v)
{
    char tmp[24], *e = tmp + sizeof(tmp);
    char *s = digits(e, v);
    return buf_append(b, s, (size_t)(e - s));
}

int jsonw_int(struct buf *b, int64_t v)
{
    char tmp[24], *e = tmp + sizeof(tmp);
    char *s = digits(e, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    if (v < 0)
        *--s = '-';
    return buf_append(b, s, (size_t)(e - s));
}

/* A double with at most six decimals and under 1e9 (190.4, 0.25: what measurements usually
 * are), written without snprintf and strtod: the text is the one %.15g gives, as every decimal
 * of 15 significant digits or fewer is what rounding its double to 15 digits gives back.
 * Returns 0 when v is not such a number. */
static int short_decimal(struct buf *b, double v)
{
    double a = fabs(v), scale = 1;
    if (!(a >= 1e-3 && a < 1e9))
        return 0;
    for (int k = 1; k <= 6; k++) {
        scale *= 10;
        double w = a * scale;
        if (w != (double)(int64_t)w || (double)(int64_t)w / scale != a)
            continue;
        uint64_t u = (uint64_t)w, p = (uint64_t)scale;
        char tmp[40], *e = tmp + sizeof(tmp), *s;
        uint64_t frac = u % p;
        int n = k;
        while (n > 1 && frac % 10 == 0) { /* the smallest k has no trailing zero; to be sure */
            frac /= 10;
            n--;
        }
        s = e;
        for (int i = 0; i < n; i++, frac /= 10)
            *--s = (char)('0' + frac % 10);
        *--s = '.';
        s = digits(s, u / p);
        if (v < 0)
            *--s = '-';
        return buf_append(b, s, (size_t)(e - s)) ? -1 : 1;
    }
    return 0;
}

int jsonw_double(struct buf *b, double v)
{
    if (!isfinite(v))
        return buf_append(b, "null", 4);
    if (fabs(v) < 1e15 && v == (double)(int64_t)v) /* range first: the cast is UB past 2^63 */
        return jsonw_int(b, (int64_t)v);
    int r = short_decimal(b, v);
    if (r)
        return r < 0 ? -12 : 0;
    /* The shortest text that reads back as the same double: 0.1 stays "0.1", not
     * "0.10000000000000001". */
    char tmp[32];
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
