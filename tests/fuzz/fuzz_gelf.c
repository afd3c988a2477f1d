/* GELF messages (collector/format_gelf.h) and chunked GELF reassembly
 * (collector/gelf_chunks.h), as the udp input hands them over.
 *
 * Input: byte 0 picks the mode. Even: the rest is one whole message (JSON, or zlib/gzip data)
 * for gelf_to_event. Odd: the rest is a series of datagrams, each a length byte and that many
 * bytes, fed to gelf_chunks_add at a clock that advances by the byte after each datagram
 * (a second per unit), with an expiry after each; the messages completed go to gelf_to_event.
 *
 * What must hold: an event is one line holding a JSON object, with no duplicate key unless the
 * message (inflated) had one; a refused message leaves the output alone and says why; the
 * chunks never hold more than their bounds, a completed message is as long as its chunks'
 * payloads, and everything pending is released by a last expiry. */
#include "fuzz.h"
#include "collector/format_gelf.h"
#include "collector/gelf_chunks.h"

static void check_message(struct gelf_decoder *d, const char *msg, size_t len)
{
    struct recv_time rt = fuzz_recv_time();
    struct buf out = {0};
    buf_puts(&out, "previous");
    const char *err = NULL;
    int compressed = len >= 2 && ((unsigned char)msg[0] == 0x78 ||
                                  ((unsigned char)msg[0] == 0x1f && (unsigned char)msg[1] == 0x8b));
    if (gelf_to_event(d, msg, len, "gelf", &rt, &out, &err)) {
        FUZZ_CHECK(err, "refused without a reason");
        FUZZ_CHECK(out.len == 8 && !memcmp(out.data, "previous", 8), "refused (%s) but wrote", err);
    } else {
        const char *src = compressed ? d->inflated.data : msg;
        size_t slen = compressed ? d->inflated.len : len;
        while (slen && (src[slen - 1] == '\0' || src[slen - 1] == '\n' || src[slen - 1] == '\r'))
            slen--;
        FUZZ_CHECK(out.len > 8, "kept but nothing written");
        fuzz_check_normalized("gelf_to_event", src, slen, out.data + 8, out.len - 8);
        if (fuzz_jansson_ok(out.data + 8, out.len - 8, 0)) {
            json_t *j = json_loadb(out.data + 8, out.len - 8, 0, NULL);
            FUZZ_CHECK(json_is_string(json_object_get(j, "timestamp")) &&
                           json_is_string(json_object_get(j, "source")),
                       "no timestamp or source: %.*s", (int)(out.len - 8), out.data + 8);
            json_decref(j);
        }
    }
    buf_free(&out);
}

static void on_expired(void *ud, const char *data, size_t len, int got, int count)
{
    FUZZ_CHECK(got > 0 && got < count && count <= GELF_CHUNKS_MAX, "expired %d of %d", got, count);
}

static void chunks(struct gelf_decoder *d, const uint8_t *p, size_t n)
{
    struct gelf_chunks c;
    gelf_chunks_init(&c, 4, 4096, 5000000000LL);
    int64_t now = 0;
    size_t i = 0;
    while (i < n) {
        size_t len = p[i++];
        if (len > n - i)
            len = n - i;
        const char *msg = NULL, *err = NULL;
        size_t mlen = 0;
        enum gelf_chunk_result r =
            gelf_chunks_add(&c, (const char *)p + i, len, now, &msg, &mlen, &err);
        FUZZ_CHECK(c.n <= c.max_pending && c.bytes <= c.max_bytes, "bounds: %d pending, %zu bytes",
                   c.n, c.bytes);
        if (r == GELF_CHUNK_COMPLETE) {
            FUZZ_CHECK(mlen <= 128u * 255u, "a message of %zu bytes from 128 chunks", mlen);
            check_message(d, msg, mlen);
        } else if (r != GELF_CHUNK_HELD) {
            FUZZ_CHECK(err, "chunk refused without a reason");
        }
        i += len;
        if (i < n)
            now += (int64_t)p[i++] * 1000000000LL;
        gelf_chunks_expire(&c, now, on_expired, NULL);
    }
    gelf_chunks_expire(&c, INT64_MAX, NULL, NULL);
    FUZZ_CHECK(c.n == 0 && c.bytes == 0, "pending after the last expiry: %d, %zu bytes", c.n,
               c.bytes);
    gelf_chunks_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct gelf_decoder d = {0};
    if (data[0] & 1)
        chunks(&d, data + 1, size - 1);
    else
        check_message(&d, (const char *)data + 1, size - 1);
    gelf_decoder_free(&d);
    return 0;
}
