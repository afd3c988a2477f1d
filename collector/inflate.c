#include "collector/inflate.h"

#include <errno.h>
#include <zlib.h>

/* Inflates into out up to max bytes; with members, a gzip member that ends with input left
 * starts the next one (RFC 1952 allows a file of several members). */
static int inflate_some(const unsigned char *in, size_t len, struct buf *out, size_t max,
                        int members)
{
    z_stream zs = {0};
    if (inflateInit2(&zs, 15 + 32) != Z_OK) /* +32: gzip or zlib header, detected */
        return -EINVAL;
    zs.next_in = (unsigned char *)in;
    zs.avail_in = (uInt)len;
    int rc;
    for (;;) {
        if (buf_reserve(out, 65536)) {
            inflateEnd(&zs);
            return -ENOMEM;
        }
        zs.next_out = (unsigned char *)out->data + out->len;
        zs.avail_out = 65536;
        rc = inflate(&zs, Z_NO_FLUSH);
        out->len = (size_t)((char *)zs.next_out - out->data);
        if (out->len > max) {
            inflateEnd(&zs);
            return -E2BIG;
        }
        if (rc == Z_STREAM_END && members && zs.avail_in > 0 && inflateReset(&zs) == Z_OK)
            continue;
        if (rc != Z_OK)
            break;
    }
    inflateEnd(&zs);
    return rc == Z_STREAM_END ? 0 : -EINVAL;
}

int inflate_body(const unsigned char *in, size_t len, struct buf *out, size_t max)
{
    return inflate_some(in, len, out, max, 0);
}

int inflate_members(const unsigned char *in, size_t len, struct buf *out, size_t max)
{
    return inflate_some(in, len, out, max, 1);
}
