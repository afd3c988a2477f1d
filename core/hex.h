/* Hex digits: trace and span ids in events and in OTLP/JSON, \u escapes, percent-encoding. */
#ifndef SPILLWAY_HEX_H
#define SPILLWAY_HEX_H

#include <stddef.h>

#include "core/buf.h"

/* The value of one hex digit, either case, or -1. */
static inline int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Writes s[0..len) as 2 * len lowercase digits, no NUL. */
void hex_encode(char *dst, const void *s, size_t len);

/* Appends s[0..len) as 2 * len lowercase digits. Returns 0 or -ENOMEM. */
int hex_append(struct buf *out, const void *s, size_t len);

/* Decodes n digits (n even) into n / 2 bytes of dst. Returns 0, or -1 for an odd n or a
 * character that is not a hex digit. */
int hex_decode(const char *s, size_t n, void *dst);

#endif
