/* Base64 (RFC 4648): dead letters keep bytes that are not UTF-8 as raw_base64, OTLP/JSON carries
 * bytes in it, and gRPC's binary headers (grpc-status-details-bin) are written in it. */
#ifndef SPILLWAY_BASE64_H
#define SPILLWAY_BASE64_H

#include <stddef.h>
#include <sys/types.h>

#include "core/buf.h"

/* The length of the padded encoding of len bytes. */
static inline size_t base64_encoded_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

/* Writes the standard encoding of s[0..len), padded: base64_encoded_len(len) bytes, no NUL. */
void base64_encode(char *dst, const void *s, size_t len);

/* Appends the standard encoding of s[0..len), padded. Returns 0 or -ENOMEM. */
int base64_append(struct buf *out, const void *s, size_t len);

/* The most bytes n characters of base64 decode to: the room base64_decode needs. */
static inline size_t base64_decoded_max(size_t n)
{
    return n / 4 * 3 + 2;
}

/* Decodes the standard or the URL-safe alphabet, padding optional, into dst. Returns the
 * number of bytes written, or -1 for a character outside the alphabet or a length no encoding
 * has. */
ssize_t base64_decode(const char *s, size_t n, void *dst);

#endif
