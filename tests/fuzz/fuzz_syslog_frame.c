/* Syslog over a stream (RFC 6587) as the TCP and Unix inputs frame it: FRAMING_SYSLOG
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
    struct fuzz_lines whole = {0};
    fuzz_frame_input(1, limits, data, size, &whole);
    buf_free(&whole.rec);
    return 0;
}
