/* HTTP request bodies of POST /v1/events, encoded or not.
 *
 * Covered: zlib inflation of gzip and deflate bodies with the size cap (inflate_body() of
 * collector/inflate.c, which the http input runs); then the http input's own splitting of the
 * body (body_split_events() of collector/body.c: the elements of a JSON array, a single object,
 * else every line, CR stripped), each item normalized as the collector does (normalize_tokens
 * or normalize_json) and a dead letter for what is refused.
 * Not covered here: evhttp's request parsing and headers, the Content-Encoding dispatch, the
 * connection limit and the staging into the pipeline (the integration tests send real
 * requests), and OTLP bodies (fuzz_otlp).
 *
 * Input: byte 0 says how the rest is used: bit 0-1 = 0 as it is (identity), 1 as a gzip or
 * deflate body to inflate, 2 and 3 compressed here first (gzip or zlib) and then inflated, so
 * the body logic sees every content the fuzzer makes; bit 2 picks a tiny size cap.
 * What must hold: inflation stops at the cap (-E2BIG) and never returns more than it; a
 * round trip gives back the bytes compressed; every event and dead letter loads with jansson
 * (as fuzz_check_normalized says); nothing is written for a line refused. */
#include <zlib.h>

#include "collector/body.h"
#include "fuzz.h"
#include "collector/inflate.h"
#include "core/jsontok.h"

#define BODY_CAP  (256 * 1024)
#define SMALL_CAP 100

/* What a client would send: data compressed as gzip (gzip 1) or zlib (gzip 0). */
static int compress_body(const uint8_t *data, size_t len, int gzip, struct buf *out)
{
    z_stream zs = {0};
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, gzip ? 15 + 16 : 15, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t bound = deflateBound(&zs, (uLong)len);
    if (buf_reserve(out, bound)) {
        deflateEnd(&zs);
        return -1;
    }
    zs.next_in = (unsigned char *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = (unsigned char *)out->data;
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    out->len = (size_t)((char *)zs.next_out - out->data);
    deflateEnd(&zs);
    return rc == Z_STREAM_END ? 0 : -1;
}

struct ctx {
    struct normalizer norm;
    struct recv_time rt;
    struct buf out;
};

static void dead_letter(struct ctx *c, const char *err, const char *raw, size_t len)
{
    buf_reset(&c->out);
    FUZZ_CHECK(normalize_dead_letter(&c->out, "http", &c->rt, err, raw, len) == 0,
               "normalize_dead_letter failed");
    fuzz_check_object("normalize_dead_letter", c->out.data, c->out.len,
                      JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES);
}

/* collector_json_token(): one element of the body's array, or the body's object. */
static void json_token(void *ud, int tok)
{
    struct ctx *c = ud;
    const struct jsontok *t = &c->norm.tok;
    size_t s = jsontok_text_start(t, tok), e = jsontok_text_end(t, tok);
    if (t->tok[tok].type != JSMN_OBJECT) {
        dead_letter(c, "not a JSON object", t->js + s, e - s);
        return;
    }
    uint64_t hash;
    int has_hash;
    buf_reset(&c->out);
    FUZZ_CHECK(normalize_tokens(&c->norm, tok, &c->rt, &c->out, &hash, &has_hash) == 0,
               "normalize_tokens failed");
    fuzz_check_normalized("normalize_tokens", t->js + s, e - s, c->out.data, c->out.len);
}

/* collector_json(): one NDJSON line. */
static void json_line(void *ud, const char *line, size_t len)
{
    struct ctx *c = ud;
    uint64_t hash;
    int has_hash;
    const char *err = NULL;
    buf_reset(&c->out);
    if (normalize_json(&c->norm, line, len, &c->rt, &c->out, &hash, &has_hash, &err)) {
        FUZZ_CHECK(c->out.len == 0 && err, "normalize_json refused without a reason or wrote");
        dead_letter(c, err, line, len);
        return;
    }
    fuzz_check_normalized("normalize_json", line, len, c->out.data, c->out.len);
}

/* events_body() of collector/input_http.c over the decoded body b[0..n): its splitting. */
static void events_body(struct ctx *c, const char *b, size_t n)
{
    static const struct body_items items = {json_token, json_line};
    const char *err = NULL;
    if (body_split_events(&c->norm.tok, b, n, &items, c, &err))
        FUZZ_CHECK(err, "a refused array has no reason");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] & 3;
    size_t cap = data[0] & 4 ? SMALL_CAP : BODY_CAP;
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    struct buf packed = {0}, body = {0};
    const char *b = (const char *)in;
    size_t n = len;
    if (mode >= 1) {
        if (mode >= 2)
            FUZZ_CHECK(compress_body(in, len, mode == 2, &packed) == 0, "deflate failed");
        const unsigned char *z = mode >= 2 ? (const unsigned char *)packed.data : in;
        size_t zlen = mode >= 2 ? packed.len : len;
        int rc = inflate_body(z, zlen, &body, cap);
        FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG, "inflate_body returned %d", rc);
        FUZZ_CHECK(rc == -E2BIG || body.len <= cap, "inflated %zu bytes past the cap %zu", body.len,
                   cap);
        if (mode >= 2 && len <= cap)
            FUZZ_CHECK(rc == 0 && body.len == len && (len == 0 || !memcmp(body.data, in, len)),
                       "a %s round trip of %zu bytes gave rc %d and %zu bytes",
                       mode == 2 ? "gzip" : "zlib", len, rc, body.len);
        if (rc)
            goto out;
        b = body.data ? body.data : "";
        n = body.len;
    }
    struct ctx c = {.rt = fuzz_recv_time()};
    normalizer_init(&c.norm, "http", NULL, "trace_id");
    events_body(&c, b, n);
    normalizer_free(&c.norm);
    buf_free(&c.out);
out:
    buf_free(&packed);
    buf_free(&body);
    return 0;
}
