/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
#ifndef SPILLWAY_UTF8_H
#define SPILLWAY_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid sequence starting at s (1..4), or 0 when s does not start one. */
size_t utf8_seq_len(const unsigned char *s, size_t len);

/* Returns the offset of the first invalid byte, or len when all of s is valid UTF-8. */
size_t utf8_check(const char *s, size_t len);

/* As utf8_check, for text that may not hold NUL either: the offset of the first invalid byte or
 * NUL, or len. One pass instead of utf8_check and memchr. */
size_t utf8_check_text(const char *s, size_t len);

/* Appends the UTF-8 encoding of code point cp (at most 4 bytes) to out; returns the count. */
size_t utf8_encode(uint32_t cp, char *out);

#endif
