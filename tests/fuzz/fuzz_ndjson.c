/* NDJSON as a stream input reads it: the newline framer (collector/framer.h) over the bytes fed
 * in two reads split at a point the fuzzer chooses, then normalize_json (collector/normalize.h)
 * on every line, and a dead-letter record for each line it refuses or the framer cut.
 *
 * Input: byte 0 picks the line limit, bytes 1-2 the split point, the rest is the stream.
 * What must hold: the split changes nothing (same lines, same flags, also fed byte by byte for
 * short streams); no line is empty or over the limit; a normalized event is one line of JSON
 * that jansson loads, with no duplicate key unless the line itself had one; normalize_json
 * accepts every object jansson accepts and leaves the output untouched when it refuses;
 * a dead letter always loads. */
#include "fuzz.h"

static const char *const alias_keys[] = {"ts", "time", "msg", "type", "severity"};
static const char *const alias_vals[] = {"timestamp", "timestamp", "message", "kind", "level"};
static const struct cfg_strmap aliases = {(char **)alias_keys, (char **)alias_vals, 5};

static const size_t limits[4] = {8, 64, 1024, 65536};

struct ctx {
    struct normalizer norm;
    struct recv_time rt;
    struct buf out;
};

static void check_line(void *ud, const char *line, size_t len, int flags)
{
    struct ctx *c = ud;
    uint64_t hash = 0;
    int has_hash = 0;
    const char *err = NULL;
    buf_reset(&c->out);
    buf_puts(&c->out, "previous");
    int rc = flags ? -EINVAL
                   : normalize_json(&c->norm, line, len, &c->rt, &c->out, &hash, &has_hash, &err);
    int jansson = !flags && fuzz_jansson_ok(line, len, JSON_ALLOW_NUL);
    if (rc == 0) {
        fuzz_check_normalized("normalize_json", line, len, c->out.data + 8, c->out.len - 8);
        return;
    }
    FUZZ_CHECK(c->out.len == 8, "normalize_json: refused a line (%s) but changed the output",
               err ? err : "?");
    if (!flags && jansson) {
        json_t *j = json_loadb(line, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
        int object = json_is_object(j);
        json_decref(j);
        FUZZ_CHECK(!object, "normalize_json refused (%s) an object jansson loads: %.*s",
                   err ? err : "?", (int)len, line);
    }
    buf_reset(&c->out);
    rc = normalize_dead_letter(&c->out, "app", &c->rt, flags ? "too large" : err, line, len);
    FUZZ_CHECK(rc == 0, "normalize_dead_letter failed: %d", rc);
    fuzz_check_object("normalize_dead_letter", c->out.data, c->out.len,
                      JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ctx c = {.rt = fuzz_recv_time()};
    normalizer_init(&c.norm, "app", &aliases, "trace_id");
    struct fuzz_lines whole = {.each = check_line, .ud = &c};
    fuzz_frame_input(0, limits, data, size, &whole);
    buf_free(&whole.rec);
    buf_free(&c.out);
    normalizer_free(&c.norm);
    return 0;
}
