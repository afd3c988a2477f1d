/* Snappy's block format (the body of a Prometheus remote write request), through libsnappy's C
 * API: the only module that includes snappy-c.h. Both directions work on struct buf, which the
 * caller owns and reuses, so a steady stream of requests allocates nothing. */
#ifndef SPILLWAY_SNAP_H
#define SPILLWAY_SNAP_H

#include <stddef.h>

#include "core/buf.h"

/* Replaces out's content with in[0..n) compressed. Returns 0 or -ENOMEM. */
int snap_compress(const void *in, size_t n, struct buf *out);

/* The length in[0..n) says it decompresses to (snappy's header), without decompressing: 0, or
 * -EINVAL when it is not snappy's block format. */
int snap_length(const void *in, size_t n, size_t *len);

/* Replaces out's content with in[0..n) decompressed. Returns 0; -EINVAL when in is not valid
 * snappy data; -E2BIG when it would be longer than max (checked before anything is allocated:
 * the header says the length); -ENOMEM. */
int snap_uncompress(const void *in, size_t n, struct buf *out, size_t max);

#endif
