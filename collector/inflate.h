/* Content-Encoding: gzip (or deflate) request bodies. */
#ifndef SPILLWAY_INFLATE_H
#define SPILLWAY_INFLATE_H

#include <stddef.h>

#include "core/buf.h"

/* Inflates gzip or zlib data (the header says which) into out, refusing to grow past max.
 * Returns 0, -EINVAL (not gzip or zlib, or cut short), -ENOMEM or -E2BIG. */
int inflate_body(const unsigned char *in, size_t len, struct buf *out, size_t max);

#endif
