/* Base64 (RFC 4648): dead letters keep bytes that are not UTF-8 as raw_base64, and the otlp_grpc
 * input writes its binary headers (grpc-status-details-bin) in it. */
#ifndef SPILLWAY_BASE64_H
#define SPILLWAY_BASE64_H

#include <stddef.h>

#include "core/buf.h"

/* Appends the standard encoding of s[0..len), padded. Returns 0 or -ENOMEM. */
int base64_append(struct buf *out, const void *s, size_t len);

#endif
