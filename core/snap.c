#include "core/snap.h"

#include <errno.h>
#include <snappy-c.h>

int snap_compress(const void *in, size_t n, struct buf *out)
{
    size_t cap = snappy_max_compressed_length(n);
    buf_reset(out);
    if (buf_reserve(out, cap))
        return -ENOMEM;
    size_t len = cap;
    if (snappy_compress(in, n, out->data, &len) != SNAPPY_OK)
        return -ENOMEM; /* only a too small output buffer fails, and it was made big enough */
    out->len = len;
    return 0;
}

int snap_length(const void *in, size_t n, size_t *len)
{
    return snappy_uncompressed_length(in, n, len) == SNAPPY_OK ? 0 : -EINVAL;
}

int snap_uncompress(const void *in, size_t n, struct buf *out, size_t max)
{
    size_t len;
    buf_reset(out);
    if (snap_length(in, n, &len))
        return -EINVAL;
    if (len > max)
        return -E2BIG;
    if (buf_reserve(out, len ? len : 1))
        return -ENOMEM;
    /* snappy_validate_compressed_buffer would walk the input twice; the decompression checks
     * as it goes and says so when the data runs short or points outside what it wrote. */
    size_t got = len;
    if (snappy_uncompress(in, n, out->data, &got) != SNAPPY_OK || got != len)
        return -EINVAL;
    out->len = got;
    return 0;
}
