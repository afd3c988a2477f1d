/* The forward protocol decoder (collector/forward.h) fed a byte stream, as a connection hands
 * it over: every mode, options, PING, PackedForward entries (gzip too), whatever msgpack-c
 * makes of the bytes.
 *
 * Input: byte 0 says how: bit 0 asks for a PING first (shared_key), bit 1 a small
 * max_message_size (4 KiB instead of 1 MiB); bytes 1-2 where a split read falls; the rest is
 * the stream.
 * What must hold: every event is one line holding a JSON object with timestamp, source and tag,
 * and the partition hash of its trace_id as the collector computes it from any event;
 * dead letters and refusals give a reason; the stream decodes to the same events, dead letters,
 * acks and end whether it comes in one read, two reads, or (short ones) a byte at a time; a
 * partial message left at the end is no more than what was fed. */
#include "fuzz.h"
#include "collector/forward.h"
#include "collector/normalize.h"
#include "core/hash.h"

struct seen {
    struct buf log;     /* what the handler saw, in order */
    struct buf scratch; /* the partition key unescaped */
};

static void on_event(void *ud, const char *json, size_t len, const char *key_text, size_t klen)
{
    struct seen *s = ud;
    fuzz_check_object("forward event", json, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL);
    /* jansson loads no key holding \u0000 (checked by jsontok above): those go unchecked; an
     * unsigned integer past int64 is valid JSON that jansson reads only as a real. */
    json_t *j = json_loadb(json, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
    FUZZ_CHECK(!j || (json_is_string(json_object_get(j, "timestamp")) &&
                      json_is_string(json_object_get(j, "source")) &&
                      json_is_string(json_object_get(j, "tag"))),
               "event without timestamp, source or tag: %.*s", (int)len, json);
    /* The partition key handed over is trace_id's value: a string hashes by its content. */
    json_t *key = json_object_get(j, "trace_id");
    if (j && json_is_string(key) && !memchr(json_string_value(key), '\0', json_string_length(key)))
        FUZZ_CHECK(key_text && normalize_value_hash(key_text, klen, &s->scratch) ==
                                   hash64(json_string_value(key), json_string_length(key)),
                   "partition key of trace_id wrong or missing: %.*s", (int)len, json);
    else if (j && !json_object_get(j, "trace_id"))
        FUZZ_CHECK(!key_text, "a partition key without trace_id: %.*s", (int)len, json);
    json_decref(j);
    buf_puts(&s->log, "E");
    buf_append(&s->log, json, len);
    buf_putc(&s->log, '\n');
}

static void on_dead(void *ud, const char *reason, const char *raw, size_t len)
{
    struct seen *s = ud;
    FUZZ_CHECK(reason && *reason, "a dead letter without a reason");
    buf_printf(&s->log, "D%s %zu\n", reason, len);
}

static void on_ack(void *ud, const char *chunk, size_t len)
{
    struct seen *s = ud;
    buf_puts(&s->log, "A");
    buf_append(&s->log, chunk, len);
    buf_putc(&s->log, '\n');
}

static int on_ping(void *ud, const struct forward_ping *p)
{
    struct seen *s = ud;
    buf_puts(&s->log, "P\n");
    return p->hostname_len == 4 && !memcmp(p->hostname, "good", 4) ? 0 : -1;
}

/* msgpack-c allocates a container's slots as it reads its header: an allocation no memory can
 * hold (a map of 2^31 entries) must come back NULL, which the decoder handles, rather than stop
 * the fuzzer (run.sh also lifts libFuzzer's malloc limit for this target). Over 512 MiB counts
 * as no memory here: ASan would spend seconds mapping each such allocation. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1:max_allocation_size_mb=512";
}

static const struct forward_handler handler = {on_event, on_dead, on_ack, on_ping};

/* Feeds data in pieces of at most step bytes (0: split once at split). */
static void decode(const struct forward_config *cfg, const char *data, size_t len, size_t split,
                   size_t step, struct seen *s)
{
    struct recv_time rt = fuzz_recv_time();
    struct forward_decoder *d = forward_decoder_new(cfg, &handler, s);
    FUZZ_CHECK(d, "forward_decoder_new failed");
    size_t off = 0;
    while (off < len) {
        size_t n = step ? (len - off < step ? len - off : step) : (off < split ? split : len - off);
        const char *err = NULL, *raw = NULL;
        size_t rawlen = 0;
        if (forward_feed(d, data + off, n, &rt, &err, &raw, &rawlen)) {
            FUZZ_CHECK(err && *err, "a refused stream without a reason");
            buf_printf(&s->log, "X%s\n", err);
            forward_decoder_free(d);
            return;
        }
        off += n;
    }
    const char *raw;
    size_t left = forward_partial(d, &raw);
    FUZZ_CHECK(left <= len, "%zu bytes partial of %zu fed", left, len);
    buf_printf(&s->log, "L%zu\n", left);
    forward_decoder_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    static char *keys[] = {"msg", "severity", "@timestamp"};
    static char *vals[] = {"message", "level", "timestamp"};
    static const struct cfg_strmap aliases = {keys, vals, 3};
    struct forward_config cfg = {.source = "fw",
                                 .aliases = &aliases,
                                 .partition_key = "trace_id",
                                 .max_message = data[0] & 2 ? 4096 : 1 << 20,
                                 .need_ping = data[0] & 1};
    const char *s = (const char *)data + 3;
    size_t len = size - 3;
    size_t split = len ? ((size_t)data[1] << 8 | data[2]) % (len + 1) : 0;
    struct seen whole = {0}, two = {0}, bytes = {0};
    decode(&cfg, s, len, len, 0, &whole);
    decode(&cfg, s, len, split, 0, &two);
    FUZZ_CHECK(whole.log.len == two.log.len &&
                   (!whole.log.len || !memcmp(whole.log.data, two.log.data, whole.log.len)),
               "two reads decode differently than one:\n%.*s\nvs\n%.*s", (int)whole.log.len,
               whole.log.data, (int)two.log.len, two.log.data);
    if (len <= 2048) {
        decode(&cfg, s, len, 0, 1, &bytes);
        FUZZ_CHECK(whole.log.len == bytes.log.len &&
                       (!whole.log.len || !memcmp(whole.log.data, bytes.log.data, whole.log.len)),
                   "reads of a byte decode differently than one");
    }
    struct seen *all[] = {&whole, &two, &bytes};
    for (int i = 0; i < 3; i++) {
        buf_free(&all[i]->log);
        buf_free(&all[i]->scratch);
    }
    return 0;
}
