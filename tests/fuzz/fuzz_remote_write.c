/* Prometheus remote write request bodies (collector/remote_write.h), as the http input decodes
 * POST /api/v1/write: the input's bytes as the body (snappy's block format, then protobuf), and
 * the same bytes compressed first (so the fuzzer reaches protobuf-c's WriteRequest directly).
 *
 * What must hold: no crash, no read past the input; the count returned is the records handed
 * over (events and invalid samples), or -EINVAL / -E2BIG with a reason and nothing handed over;
 * a body that decompresses past the limit is refused before anything is decompressed; every
 * event is one line holding a JSON object with no duplicate key, of kind "metric" with a name and
 * a labels object, whatever bytes the labels held (invalid UTF-8, NUL, quotes); an invalid record
 * has a reason; a second decode by the same decoder gives the same bytes. */
#include "fuzz.h"
#include "collector/remote_write.h"
#include "core/snap.h"

struct ctx {
    int events, invalid;
    struct buf all;
};

static void on_event(void *ud, const char *json, size_t len)
{
    struct ctx *c = ud;
    c->events++;
    fuzz_check_object("remote write", json, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES);
    json_t *j = json_loadb(json, len, JSON_ALLOW_NUL, NULL);
    const char *kind = json_string_value(json_object_get(j, "kind"));
    FUZZ_CHECK(kind && !strcmp(kind, "metric") && json_is_string(json_object_get(j, "name")) &&
                   json_is_object(json_object_get(j, "labels")),
               "remote write: not a metric event of the model: %.*s", (int)len, json);
    json_decref(j);
    buf_append(&c->all, json, len);
    buf_putc(&c->all, '\n');
}

static void on_invalid(void *ud, const char *why, const char *raw, size_t len)
{
    struct ctx *c = ud;
    c->invalid++;
    FUZZ_CHECK(why && !strncmp(why, "remote write: ", 14), "invalid record without a reason: %s",
               why ? why : "(null)");
    buf_append(&c->all, why, strlen(why));
    buf_putc(&c->all, '\n');
}

static void decode_twice(struct rw_decoder *d, const char *body, size_t len, size_t max)
{
    struct recv_time rt = fuzz_recv_time();
    struct buf first = {0};
    for (int round = 0; round < 2; round++) {
        struct ctx c = {0, 0, {0}};
        const struct rw_out out = {on_event, on_invalid, &c};
        const char *err = NULL;
        int n = rw_decode(d, body, len, max, &rt, &out, &err);
        if (n < 0) {
            FUZZ_CHECK((n == -EINVAL || n == -E2BIG) && err && *err, "returned %d (reason %s)", n,
                       err ? err : "none");
            FUZZ_CHECK(c.events + c.invalid == 0, "refused (%s) after handing over %d records", err,
                       c.events + c.invalid);
        } else {
            FUZZ_CHECK(n == c.events + c.invalid, "returned %d, handed over %d", n,
                       c.events + c.invalid);
        }
        if (round == 0) {
            buf_append(&first, c.all.data ? c.all.data : "", c.all.len);
        } else {
            FUZZ_CHECK(first.len == c.all.len &&
                           (!c.all.len || !memcmp(first.data, c.all.data, c.all.len)),
                       "a second decode gave other records");
        }
        buf_free(&c.all);
    }
    buf_free(&first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rw_decoder *d = rw_decoder_new("rw");
    FUZZ_CHECK(d, "rw_decoder_new failed");
    decode_twice(d, (const char *)data, size, 1 << 20);
    struct buf z = {0};
    FUZZ_CHECK(snap_compress(data, size, &z) == 0, "snap_compress failed");
    decode_twice(d, z.data, z.len, 1 << 20);
    /* The same once more with a limit below its size: refused as too large, nothing decoded. */
    if (size > 1) {
        struct recv_time rt = fuzz_recv_time();
        struct ctx c = {0, 0, {0}};
        const struct rw_out out = {on_event, on_invalid, &c};
        const char *err = NULL;
        int n = rw_decode(d, z.data, z.len, size - 1, &rt, &out, &err);
        FUZZ_CHECK(n == -E2BIG && c.events + c.invalid == 0, "over the limit: returned %d", n);
        buf_free(&c.all);
    }
    buf_free(&z);
    rw_decoder_free(d);
    return 0;
}
