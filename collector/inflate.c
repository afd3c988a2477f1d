#include "collector/inflate.h"

#include <errno.h>
#include <zlib.h>

int inflate_body(const unsigned char *in, size_t len, struct buf *out, size_t max)
{
    z_stream zs = {0};
    if (inflateInit2(&zs, 15 + 32) != Z_OK) /* +32: gzip or zlib header, detected */
        return -EINVAL;
    zs.next_in = (unsigned char *)in;
    zs.avail_in = (uInt)len;
    int rc;
    do {
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
    } while (rc == Z_OK);
    inflateEnd(&zs);
    return rc == Z_STREAM_END ? 0 : -EINVAL;
}
