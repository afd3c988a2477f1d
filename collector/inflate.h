/* Inflating compressed input: Content-Encoding gzip (or deflate) request bodies, compressed GELF
 * datagrams, the gzip entries of the forward protocol's CompressedPackedForward. */
#ifndef SPILLWAY_INFLATE_H
#define SPILLWAY_INFLATE_H

#include <stddef.h>

#include "core/buf.h"

/* Inflates gzip or zlib data (the header says which) into out, refusing to grow past max.
 * Returns 0, -EINVAL (not gzip or zlib, or cut short), -ENOMEM or -E2BIG. */
int inflate_body(const unsigned char *in, size_t len, struct buf *out, size_t max);

/* As inflate_body for gzip data that may be several gzip members one after the other (what
 * the forward protocol allows), all inflated into out. */
int inflate_members(const unsigned char *in, size_t len, struct buf *out, size_t max);

#endif
