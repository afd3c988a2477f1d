/* Syslog over a stream (RFC 6587) as the TCP and Unix inputs frame it: framer_init_syslog
 * (collector/framer.h), octet-counted frames ("LEN SP MSG", MSG may hold newlines) mixed with
 * newline-framed ones in one stream.
 *
 * Input: byte 0 picks the frame limit, bytes 1-2 the split point, the rest is the stream.
 * What must hold: the same frames, with the same flags, whether the stream arrives in one
 * read, in two split anywhere, or one byte at a time; no frame is empty or over the limit. */
#include "fuzz.h"

static const size_t limits[4] = {4, 32, 512, 65536};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t max = limits[data[0] & 3];
    const char *s = (const char *)data + 3;
    size_t len = size - 3;
    size_t split = len ? ((size_t)data[1] << 8 | data[2]) % (len + 1) : 0;

    struct fuzz_lines whole = {0};
    fuzz_frame_any_reads(1, max, s, len, split, &whole);
    buf_free(&whole.rec);
    return 0;
}
