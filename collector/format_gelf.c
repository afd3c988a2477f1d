/* `gelf`: GELF 1.1 over UDP (a datagram each: uncompressed, zlib or gzip, or a chunk of a
 * larger message) and over TCP or any byte stream (NUL-delimited frames). See format_gelf.h for
 * the mapping and gelf_chunks.h for the reassembly, whose per-input state this format keeps
 * through the format registry's state hooks. */
#include "collector/format_gelf.h"

#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "collector/collector.h"
#include "collector/format.h"
#include "collector/format_syslog.h"
#include "collector/gelf_chunks.h"
#include "collector/inflate.h"
#include "core/hash.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/timeutil.h"

/* Chunked messages: Graylog's limits (128 chunks, 5 s to complete), and a bound on what
 * incomplete messages may hold, so a flood of first chunks cannot take the memory. */
#define GELF_TIMEOUT_NS   (5 * 1000000000LL)
#define GELF_MAX_PENDING  1024
#define GELF_PENDING_MAX  (32u << 20)
#define GELF_EXPIRE_EVERY 1 /* seconds between looks for expired messages */

void gelf_decoder_free(struct gelf_decoder *d)
{
    jsontok_free(&d->tok);
    buf_free(&d->inflated);
    buf_free(&d->names);
    free(d->set);
    d->set = NULL;
    d->set_cap = 0;
}

/* --- The names an event has taken: a set of 64-bit hashes. A collision (two names, one hash)
 * only keeps an additional field's underscore where it could have gone: never a duplicate. */

static int set_reset(struct gelf_decoder *d, size_t members)
{
    size_t want = 64;
    while (want < 2 * (members + 16))
        want *= 2;
    if (want > d->set_cap) {
        uint32_t *s = realloc(d->set, want * 2 * sizeof(uint32_t));
        if (!s)
            return -ENOMEM;
        d->set = s;
        d->set_cap = want;
    }
    memset(d->set, 0, d->set_cap * 2 * sizeof(uint32_t));
    return 0;
}

static uint64_t name_hash(const char *s, size_t n)
{
    uint64_t h = hash64(s, n);
    return h ? h : 1;
}

/* Adds (add 1) or looks up (add 0) a name; returns 1 when it was there. */
static int set_has(struct gelf_decoder *d, const char *s, size_t n, int add)
{
    uint64_t h = name_hash(s, n);
    size_t mask = d->set_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t *e = &d->set[2 * i];
        if (e[0] == 0 && e[1] == 0) {
            if (add) {
                e[0] = (uint32_t)h;
                e[1] = (uint32_t)(h >> 32) | 1u; /* never both 0 */
            }
            return 0;
        }
        if (e[0] == (uint32_t)h && e[1] == ((uint32_t)(h >> 32) | 1u))
            return 1;
    }
}

/* The unescaped name of key token k (valid until the next call). */
static void key_name(struct gelf_decoder *d, int k, const char **s, size_t *n)
{
    const struct jsontok *t = &d->tok;
    const char *raw = t->js + t->tok[k].start;
    size_t len = (size_t)(t->tok[k].end - t->tok[k].start);
    if (!t->escapes || !memchr(raw, '\\', len)) {
        *s = raw;
        *n = len;
        return;
    }
    buf_reset(&d->names);
    jsontok_unescape(raw, len, &d->names);
    *s = d->names.data ? d->names.data : "";
    *n = d->names.len;
}

static int name_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* The GELF fields spillway maps, and the names it writes itself. */
enum { G_TIMESTAMP, G_HOST, G_LEVEL, G_SHORT, G_COUNT };
static const char *const mapped[G_COUNT] = {"timestamp", "host", "level", "short_message"};

static void put_value(struct buf *out, const struct jsontok *t, int v, int lower)
{
    size_t s = jsontok_text_start(t, v), e = jsontok_text_end(t, v);
    size_t at = out->len;
    if (t->tok[v].type == JSMN_STRING || t->tok[v].type == JSMN_PRIMITIVE)
        buf_append(out, t->js + s, e - s);
    else
        jsonw_raw_compact(out, t->js + s, e - s);
    for (size_t i = at; lower && i < out->len; i++)
        if (out->data[i] >= 'A' && out->data[i] <= 'F')
            out->data[i] = (char)(out->data[i] + 32);
}

static void put_member(struct buf *out, const char *name, size_t n)
{
    buf_putc(out, ',');
    jsonw_string(out, name, n);
    buf_putc(out, ':');
}

/* `level`: a syslog severity 0-7 (a number, or a string of one digit) becomes its name and
 * `severity`; anything else is kept as it is. */
static void put_level(struct gelf_decoder *d, int v, struct buf *out, int *wrote_severity)
{
    const jsmntok_t *t = &d->tok.tok[v];
    const char *s = d->tok.js + t->start;
    size_t n = (size_t)(t->end - t->start);
    if (n == 1 && s[0] >= '0' && s[0] <= '7') {
        int sev = s[0] - '0';
        buf_puts(out, ",\"level\":");
        jsonw_string(out, syslog_levels[sev], strlen(syslog_levels[sev]));
        buf_printf(out, ",\"severity\":%d", sev);
        *wrote_severity = 1;
        return;
    }
    buf_puts(out, ",\"level\":");
    put_value(out, &d->tok, v, 0);
}

/* The header of the event: the canonical fields and the mapped GELF ones. */
static void put_head(struct gelf_decoder *d, const int tok[G_COUNT], const char *source,
                     const struct recv_time *rt, struct buf *out, int *wrote_raw,
                     int *wrote_severity)
{
    const struct jsontok *t = &d->tok;
    buf_puts(out, "{\"timestamp\":");
    int ts_ok = -1;
    if (tok[G_TIMESTAMP] >= 0) {
        const jsmntok_t *v = &t->tok[tok[G_TIMESTAMP]];
        ts_ok = normalize_timestamp(t->js + v->start, (size_t)(v->end - v->start),
                                    v->type == JSMN_STRING, out);
    }
    if (ts_ok != 0) {
        buf_putc(out, '"');
        buf_append(out, rt->text, TIME_RFC3339_LEN);
        buf_putc(out, '"');
    }
    buf_puts(out, ",\"kind\":\"log\",\"source\":");
    jsonw_string(out, source, strlen(source));
    *wrote_raw = ts_ok != 0 && tok[G_TIMESTAMP] >= 0;
    if (*wrote_raw) {
        buf_puts(out, ",\"timestamp_raw\":");
        put_value(out, t, tok[G_TIMESTAMP], 0);
    }
    if (tok[G_HOST] >= 0) {
        buf_puts(out, ",\"host\":");
        put_value(out, t, tok[G_HOST], 0);
    }
    *wrote_severity = 0;
    if (tok[G_LEVEL] >= 0)
        put_level(d, tok[G_LEVEL], out, wrote_severity);
    if (tok[G_SHORT] >= 0) {
        buf_puts(out, ",\"message\":");
        put_value(out, t, tok[G_SHORT], 0);
    }
}

/* Marks the names the event takes before the additional fields: the canonical ones, what was
 * mapped, and every member without an underscore, so `_x` keeps its underscore when `x` is
 * there too. */
static int take_names(struct gelf_decoder *d, int tok[G_COUNT])
{
    const struct jsontok *t = &d->tok;
    if (set_reset(d, (size_t)t->tok[0].size))
        return -ENOMEM;
    static const char *const ours[] = {"timestamp",   "kind",          "source",
                                       "received_at", "timestamp_raw", "host",
                                       "level",       "severity",      "message"};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        set_has(d, ours[i], strlen(ours[i]), 1);
    for (int g = 0; g < G_COUNT; g++)
        tok[g] = -1;
    int k = 1;
    for (int m = 0; m < t->tok[0].size; m++, k = t->next[k]) {
        const char *s;
        size_t n;
        key_name(d, k, &s, &n);
        for (int g = 0; g < G_COUNT; g++)
            if (tok[g] < 0 && name_is(s, n, mapped[g]))
                tok[g] = k + 1;
        if (!n || s[0] != '_')
            set_has(d, s, n, 1);
    }
    return 0;
}

/* The name member k is written under, or 0 when it is left out: the fields mapped in the head
 * (and the names spillway writes itself: a GELF message must not carry them bare), and an
 * additional field's name without its underscore unless that name is taken. */
static int out_name(struct gelf_decoder *d, int k, const char **s, size_t *n)
{
    key_name(d, k, s, n);
    if (*n == 0 || (*s)[0] != '_') {
        static const char *const dropped[] = {
            "timestamp", "kind",  "source",   "received_at", "timestamp_raw",
            "host",      "level", "severity", "message",     "short_message"};
        for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
            if (name_is(*s, *n, dropped[i]))
                return 0;
        return 1;
    }
    /* `_x` -> `x`, unless `x` is taken or starts with '_' itself (`__x` stays as it is, so a
     * name kept with its underscore can never meet one that lost it). */
    if (*n > 1 && (*s)[1] != '_' && !set_has(d, *s + 1, *n - 1, 0)) {
        (*s)++;
        (*n)--;
    }
    return 1;
}

/* Compressed GELF (zlib 0x78, gzip 0x1f 0x8b) is inflated into d->inflated. */
static int inflate_msg(struct gelf_decoder *d, const char **msg, size_t *len, const char **err)
{
    const unsigned char *u = (const unsigned char *)*msg;
    int zlib = *len >= 2 && u[0] == 0x78, gzip = *len >= 2 && u[0] == 0x1f && u[1] == 0x8b;
    if (!zlib && !gzip)
        return 0;
    buf_reset(&d->inflated);
    int rc = inflate_body(u, *len, &d->inflated, GELF_MAX_INFLATED);
    buf_trim(&d->inflated, 1 << 20);
    if (rc == -E2BIG)
        *err = "GELF message inflates past 8 MiB (a compression bomb?)";
    else if (rc == -ENOMEM)
        *err = "out of memory";
    else if (rc)
        *err = "GELF message: compressed data that does not inflate";
    if (rc)
        return -EINVAL;
    *msg = d->inflated.data ? d->inflated.data : "";
    *len = d->inflated.len;
    return 0;
}

int gelf_to_event(struct gelf_decoder *d, const char *msg, size_t len, const char *source,
                  const struct recv_time *rt, struct buf *out, const char **err)
{
    if (inflate_msg(d, &msg, &len, err))
        return -EINVAL;
    /* Senders end a datagram with a NUL or a newline now and then. */
    while (len && (msg[len - 1] == '\0' || msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        len--;
    int rc = jsontok_parse(&d->tok, msg, len);
    if (rc) {
        *err = rc == -ENOMEM ? "out of memory" : d->tok.err;
        return -EINVAL;
    }
    if (d->tok.tok[0].type != JSMN_OBJECT) {
        *err = "GELF message is not a JSON object";
        return -EINVAL;
    }
    int tok[G_COUNT];
    if (take_names(d, tok)) {
        *err = "out of memory";
        return -EINVAL;
    }
    size_t start = out->len;
    int wrote_raw, wrote_severity;
    put_head(d, tok, source, rt, out, &wrote_raw, &wrote_severity);
    const struct jsontok *t = &d->tok;
    int k = 1;
    for (int m = 0; m < t->tok[0].size; m++, k = t->next[k]) {
        const char *s;
        size_t n;
        if (!out_name(d, k, &s, &n))
            continue;
        int hex = name_is(s, n, "trace_id") || name_is(s, n, "span_id");
        put_member(out, s, n);
        put_value(out, t, k + 1, hex);
    }
    buf_puts(out, ",\"received_at\":\"");
    buf_append(out, rt->text, TIME_RFC3339_LEN);
    if (buf_puts(out, "\"}")) {
        out->len = start;
        *err = "out of memory";
        return -EINVAL;
    }
    return 0;
}

/* --- The format: per-input state, chunks, dead letters. */

struct format_state {
    struct input *in;
    struct gelf_decoder dec;
    struct gelf_chunks chunks;
    struct event *expire;
    struct log_limit lim;
};

static void on_expired(void *ud, const char *data, size_t len, int got, int count)
{
    struct format_state *st = ud;
    char why[128];
    snprintf(why, sizeof(why), "chunked GELF message incomplete after 5 s (%d of %d chunks)", got,
             count);
    counter_add(&st->in->stats.gelf_expired, 1);
    collector_dead(st->in, why, data, len);
}

/* Every second: incomplete messages older than 5 s are dead-lettered with the chunks that came
 * (as the collector's own read would, committed at once). */
static void on_expire_timer(evutil_socket_t fd, short what, void *arg)
{
    struct format_state *st = arg;
    if (st->chunks.n == 0)
        return;
    collector_begin(st->in->col);
    gelf_chunks_expire(&st->chunks, time_mono_ns(), on_expired, st);
    collector_commit(st->in->col);
}

static struct format_state *gelf_state_new(struct input *in)
{
    struct format_state *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->in = in;
    gelf_chunks_init(&st->chunks, GELF_MAX_PENDING, GELF_PENDING_MAX, GELF_TIMEOUT_NS);
    st->expire = event_new(in->base, -1, EV_PERSIST, on_expire_timer, st);
    struct timeval tv = {GELF_EXPIRE_EVERY, 0};
    if (!st->expire || event_add(st->expire, &tv) < 0) {
        if (st->expire)
            event_free(st->expire);
        free(st);
        return NULL;
    }
    return st;
}

static void gelf_state_free(struct format_state *st)
{
    if (!st)
        return;
    int left = gelf_chunks_expire(&st->chunks, INT64_MAX, NULL, NULL);
    if (left) {
        counter_add(&st->in->stats.gelf_expired, (uint64_t)left);
        log_warn("stopping: incomplete chunked GELF messages discarded", "{s:s, s:i}", "input",
                 st->in->name, "messages", left);
    }
    event_free(st->expire);
    gelf_chunks_free(&st->chunks);
    gelf_decoder_free(&st->dec);
    free(st);
}

static void refused(struct format_state *st, const char *why)
{
    counter_add(&st->in->stats.gelf_refused, 1);
    int64_t sup = log_limit_take(&st->lim);
    if (sup >= 0)
        log_warn("GELF chunk refused", "{s:s, s:s, s:I}", "input", st->in->name, "error", why,
                 "suppressed", (json_int_t)sup);
}

static void decode_whole(struct input *in, struct format_state *st, const char *msg, size_t len)
{
    const char *err = NULL;
    size_t at;
    struct buf *out = collector_buffer(in->col, &at);
    if (gelf_to_event(&st->dec, msg, len, in->name, collector_now(in->col), out, &err))
        collector_dead(in, err, msg, len);
    else
        collector_event(in, out->data + at, out->len - at);
}

/* A chunk: held until its message is whole. One that cannot belong to any message is
 * dead-lettered; a duplicate (its data is held already) or one over the memory bound is
 * refused and counted, and its message, left incomplete, expires into a dead letter. */
static void decode_chunk(struct input *in, struct format_state *st, const char *d, size_t len)
{
    const char *msg = NULL, *err = NULL;
    size_t mlen = 0;
    switch (gelf_chunks_add(&st->chunks, d, len, time_mono_ns(), &msg, &mlen, &err)) {
    case GELF_CHUNK_HELD:
        return;
    case GELF_CHUNK_COMPLETE:
        decode_whole(in, st, msg, mlen);
        return;
    case GELF_CHUNK_BAD:
        refused(st, err);
        collector_dead(in, err, d, len);
        return;
    case GELF_CHUNK_DUPLICATE:
    case GELF_CHUNK_FULL:
        refused(st, err);
        return;
    }
}

static void gelf_decode(struct input *in, const char *msg, size_t len)
{
    struct format_state *st = format_state_of(in, &format_gelf);
    if (!st) {
        collector_dead(in, "out of memory", msg, len);
        return;
    }
    if (gelf_is_chunk(msg, len))
        decode_chunk(in, st, msg, len);
    else
        decode_whole(in, st, msg, len);
}

/* A datagram dropped unread (pipeline full): a chunk is a record only as its message's first. */
static size_t gelf_records(const char *msg, size_t len)
{
    if (!gelf_is_chunk(msg, len))
        return 1;
    return len >= GELF_CHUNK_HEADER && msg[10] == 0;
}

const struct format format_gelf = {
    .id = {"gelf", NULL,
           "GELF 1.1: a datagram each (uncompressed, zlib, gzip, chunked up to 128 chunks), "
           "NUL-delimited on a stream."},
    .framing = FRAMING_NUL,
    .decode = gelf_decode,
    .records = gelf_records,
    .state_new = gelf_state_new,
    .state_free = gelf_state_free,
    .binary = 1,
};
