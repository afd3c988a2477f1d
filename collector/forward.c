#include "collector/forward.h"

#include <errno.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/inflate.h"
#include "core/hash.h"
#include "core/jsontok.h"
#include "core/jsonw.h"
#include "core/timeutil.h"

/* The zone the entries of a PackedForward message are unpacked into, cleared per entry: with a
 * 64 KiB first chunk an entry of the usual size allocates nothing. */
#define ENTRY_ZONE_CHUNK (64 * 1024)
#define MAX_ALIASES      63 /* bit 63 of an alias mask is message's */

struct forward_decoder {
    const struct forward_config *cfg;
    const struct forward_handler *h;
    void *ud;
    msgpack_unpacker up;
    msgpack_unpacked msg; /* the message last unpacked (its own zone) */
    msgpack_zone ez;      /* entries of a PackedForward message */
    struct buf out;       /* the event being built */
    struct buf inflated;  /* CompressedPackedForward entries */
    struct buf raw;       /* a dead letter's raw text, when it is rendered */
    const struct recv_time *rt;
    size_t alias_key_len[MAX_ALIASES], alias_val_len[MAX_ALIASES];
    uint64_t alias_to_own;     /* per alias: its target is a field the protocol gives */
    uint64_t alias_to_message; /* per alias: its target is message */
    size_t key_len;            /* the partition key's */
    /* A filter on record member names: per hash of a name (name_hash), whether any name the
     * renames look at (log, message, stream, the protocol's own names and their record_
     * forms, the aliases' sources and targets) has that hash. Most members have none, and skip
     * every comparison: they were a fifth of the collector's time in bench S7. */
    uint8_t interesting[256];
    int need_ping;
    int up_ok, ez_ok;
};

static int str_of(const msgpack_object *o, const char **s, size_t *n)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        *s = o->via.str.ptr;
        *n = o->via.str.size;
        return 1;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        *s = o->via.bin.ptr;
        *n = o->via.bin.size;
        return 1;
    }
    return 0;
}

static int str_is(const msgpack_object *o, const char *lit)
{
    const char *s;
    size_t n;
    return str_of(o, &s, &n) && n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* The value of key in map m, or NULL. */
static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
    if (m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++)
        if (str_is(&m->via.map.ptr[i].key, key))
            return &m->via.map.ptr[i].val;
    return NULL;
}

/* EventTime (ext type 0): seconds and nanoseconds, 32 bits each, big-endian. */
static int event_time(const msgpack_object *t, int64_t *ns)
{
    switch (t->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (t->via.u64 > INT64_MAX / 1000000000)
            return -1;
        *ns = (int64_t)t->via.u64 * 1000000000;
        return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!(t->via.f64 >= 0 && t->via.f64 < 9.2e9))
            return -1;
        *ns = (int64_t)(t->via.f64 * 1e9);
        return 0;
    case MSGPACK_OBJECT_EXT: {
        if (t->via.ext.type != 0 || t->via.ext.size != 8)
            return -1;
        const unsigned char *p = (const unsigned char *)t->via.ext.ptr;
        uint32_t sec = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        uint32_t nsec = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
        if (nsec >= 1000000000)
            return -1;
        *ns = (int64_t)sec * 1000000000 + nsec;
        return 0;
    }
    default:
        return -1;
    }
}

/* A msgpack value as JSON. Strings and binaries become JSON strings (invalid UTF-8 replaced),
 * an EventTime a canonical time, another extension "ext:<type>:<hex>"; map keys that are not
 * strings are written as strings of their JSON. Depth is bounded by msgpack-c's (32). */
static int put_key(struct buf *o, const msgpack_object *k);

static int put_json(struct buf *o, const msgpack_object *v)
{
    const char *s;
    size_t n;
    int64_t ns;
    int rc = 0;
    switch (v->type) {
    case MSGPACK_OBJECT_NIL:
        return buf_puts(o, "null");
    case MSGPACK_OBJECT_BOOLEAN:
        return buf_puts(o, v->via.boolean ? "true" : "false");
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return jsonw_uint(o, v->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return jsonw_int(o, v->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return jsonw_double(o, v->via.f64);
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
        str_of(v, &s, &n);
        return jsonw_string(o, s, n);
    case MSGPACK_OBJECT_ARRAY:
        rc |= buf_putc(o, '[');
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            if (i)
                rc |= buf_putc(o, ',');
            rc |= put_json(o, &v->via.array.ptr[i]);
        }
        return rc | buf_putc(o, ']');
    case MSGPACK_OBJECT_MAP:
        rc |= buf_putc(o, '{');
        for (uint32_t i = 0; i < v->via.map.size; i++) {
            if (i)
                rc |= buf_putc(o, ',');
            rc |= put_key(o, &v->via.map.ptr[i].key);
            rc |= buf_putc(o, ':');
            rc |= put_json(o, &v->via.map.ptr[i].val);
        }
        return rc | buf_putc(o, '}');
    case MSGPACK_OBJECT_EXT:
        if (event_time(v, &ns) == 0) {
            char ts[TIME_RFC3339_LEN + 1];
            time_format_rfc3339(ns, ts);
            rc |= buf_putc(o, '"');
            rc |= buf_append(o, ts, TIME_RFC3339_LEN);
            return rc | buf_putc(o, '"');
        }
        rc |= buf_printf(o, "\"ext:%d:", (int)v->via.ext.type);
        for (uint32_t i = 0; i < v->via.ext.size; i++)
            rc |= buf_printf(o, "%02x", (unsigned char)v->via.ext.ptr[i]);
        return rc | buf_putc(o, '"');
    }
    return buf_puts(o, "null");
}

/* --- Records into canonical events. */

/* Names spillway writes itself: a record member with one of them is kept as record_<name>
 * (Docker's `source`, stdout or stderr, as `stream`). */
static const char *const own_names[] = {"timestamp",   "kind", "source",
                                        "received_at", "tag",  "time_raw"};
static const char *const own_renamed[] = {"record_timestamp",   "record_kind", "record_source",
                                          "record_received_at", "record_tag",  "record_time_raw"};
static const unsigned char own_lens[] = {9, 4, 6, 11, 3, 8};
enum { OWN_COUNT = sizeof(own_names) / sizeof(own_names[0]), OWN_SOURCE = 2 };
static const char SKIP[] = "";

struct record_scan {
    int has_message, has_stream;
    int has_renamed[OWN_COUNT]; /* a member named record_<own name> already */
    uint64_t target_present;    /* per alias: its target is a member already */
    uint64_t aliased;           /* per alias: applied once; bit 63: message taken */
};

static unsigned name_hash(const char *s, size_t n)
{
    return n ? ((unsigned char)s[0] + (unsigned)n * 7u + (unsigned char)s[n - 1] * 3u) & 255u : 0;
}

static void interesting(struct forward_decoder *d, const char *name)
{
    d->interesting[name_hash(name, strlen(name))] = 1;
}

static int key_is_n(const char *s, size_t n, const char *lit, size_t litlen)
{
    return n == litlen && memcmp(s, lit, n) == 0;
}

#define key_is(s, n, lit) key_is_n(s, n, lit, sizeof(lit) - 1)

/* One pass over the record's member names, for the renames that must not make a duplicate. */
static void scan_record(const struct forward_decoder *d, const msgpack_object *rec,
                        struct record_scan *sc)
{
    memset(sc, 0, sizeof(*sc));
    const struct cfg_strmap *al = d->cfg->aliases;
    for (uint32_t i = 0; i < rec->via.map.size; i++) {
        const char *s;
        size_t n;
        if (!str_of(&rec->via.map.ptr[i].key, &s, &n) || !d->interesting[name_hash(s, n)])
            continue;
        sc->has_message |= key_is(s, n, "message");
        sc->has_stream |= key_is(s, n, "stream");
        if (n > 7 && memcmp(s, "record_", 7) == 0)
            for (int k = 0; k < OWN_COUNT; k++)
                sc->has_renamed[k] |= key_is_n(s + 7, n - 7, own_names[k], own_lens[k]);
        for (int a = 0; al && a < al->n && a < MAX_ALIASES; a++)
            if (key_is_n(s, n, al->val[a], d->alias_val_len[a]))
                sc->target_present |= 1ULL << a;
    }
}

/* The name a record member s[0..n) is written under: NULL for its own, SKIP to leave it out
 * (a rename that would make a duplicate, only when the record has both names). `log` becomes
 * `message` (unless the record has one), then the input's aliases apply, each once, unless
 * their target is there or is a field the protocol gives. */
static const char *member_name(const struct forward_decoder *d, struct record_scan *sc,
                               const char *s, size_t n)
{
    if (!d->interesting[name_hash(s, n)])
        return NULL;
    if (key_is(s, n, "log") && !sc->has_message && !(sc->aliased >> 63)) {
        sc->aliased |= 1ULL << 63;
        return "message";
    }
    for (int k = 0; k < OWN_COUNT; k++) {
        if (!key_is_n(s, n, own_names[k], own_lens[k]))
            continue;
        if (k == OWN_SOURCE && !sc->has_stream)
            return "stream";
        return sc->has_renamed[k] ? SKIP : own_renamed[k];
    }
    const struct cfg_strmap *al = d->cfg->aliases;
    for (int a = 0; al && a < al->n && a < MAX_ALIASES; a++) {
        const char *to = al->val[a];
        if (!key_is_n(s, n, al->key[a], d->alias_key_len[a]) || (sc->target_present >> a & 1) ||
            (sc->aliased >> a & 1))
            continue;
        int message = d->alias_to_message >> a & 1;
        if ((d->alias_to_own >> a & 1) || (message && (sc->has_message || sc->aliased >> 63)))
            continue;
        sc->aliased |= 1ULL << a | (uint64_t)message << 63;
        return to;
    }
    return NULL;
}

/* A map key as a JSON string. One that is not a string (msgpack allows any value) is written
 * as its JSON when it is a scalar or an extension, and as "<array>" or "<map>" when it is a
 * container: rendering a container key as its JSON, whose own keys would be rendered and escaped
 * again at each level, grows exponentially with the depth (fuzzing found 32 levels taking
 * minutes). Rare, and never a protocol's own field. */
static int put_key(struct buf *o, const msgpack_object *k)
{
    const char *s;
    size_t n;
    if (str_of(k, &s, &n))
        return jsonw_string(o, s, n);
    if (k->type == MSGPACK_OBJECT_ARRAY)
        return buf_puts(o, "\"<array>\"");
    if (k->type == MSGPACK_OBJECT_MAP)
        return buf_puts(o, "\"<map>\"");
    struct buf kb = {0};
    int rc = put_json(&kb, k); /* a scalar or an extension: nothing nested */
    rc |= jsonw_string(o, kb.data ? kb.data : "", kb.len);
    buf_free(&kb);
    return rc;
}

/* The canonical event of one record: time from the protocol (else the receive time, the value
 * kept as time_raw), the tag as `tag`, the record's members in order. */
static void put_event(struct forward_decoder *d, const char *tag, size_t taglen,
                      const msgpack_object *time, const msgpack_object *rec)
{
    struct buf *o = &d->out;
    buf_reset(o);
    int rc = 0;
    int64_t ns;
    int ok = event_time(time, &ns) == 0;
    char ts[TIME_RFC3339_LEN + 1];
    if (ok)
        time_format_rfc3339(ns, ts);
    rc |= buf_puts(o, "{\"timestamp\":\"");
    rc |= buf_append(o, ok ? ts : d->rt->text, TIME_RFC3339_LEN);
    rc |= buf_puts(o, "\",\"kind\":\"log\",\"source\":");
    rc |= jsonw_string(o, d->cfg->source, strlen(d->cfg->source));
    rc |= buf_puts(o, ",\"tag\":");
    rc |= jsonw_string(o, tag, taglen);
    if (!ok) {
        rc |= buf_puts(o, ",\"time_raw\":");
        rc |= put_json(o, time);
    }
    struct record_scan sc;
    scan_record(d, rec, &sc);
    size_t key_at = 0, key_end = 0;
    for (uint32_t i = 0; i < rec->via.map.size; i++) {
        const msgpack_object *k = &rec->via.map.ptr[i].key;
        const char *s = NULL, *name = NULL;
        size_t n = 0;
        int is_str = str_of(k, &s, &n);
        if (is_str && (name = member_name(d, &sc, s, n)) == SKIP)
            continue;
        rc |= buf_putc(o, ',');
        if (name)
            rc |= jsonw_string(o, name, strlen(name));
        else
            rc |= put_key(o, k);
        rc |= buf_putc(o, ':');
        size_t at = o->len;
        rc |= put_json(o, &rec->via.map.ptr[i].val);
        if (d->key_len && !key_end &&
            (name ? !strcmp(name, d->cfg->partition_key)
                  : is_str && key_is_n(s, n, d->cfg->partition_key, d->key_len))) {
            key_at = at;
            key_end = o->len;
        }
    }
    rc |= buf_puts(o, ",\"received_at\":\"");
    rc |= buf_append(o, d->rt->text, TIME_RFC3339_LEN);
    rc |= buf_puts(o, "\"}");
    if (rc) { /* out of memory: never half an event */
        d->h->dead(d->ud, "out of memory building the event", tag, taglen);
        return;
    }
    d->h->event(d->ud, o->data, o->len, key_end ? o->data + key_at : NULL, key_end - key_at);
}

/* --- Messages. */

/* A dead letter whose raw text is the msgpack object rendered as JSON (an entry of a message:
 * its bytes are not at hand once unpacked). */
static void dead_obj(struct forward_decoder *d, const char *why, const msgpack_object *o)
{
    buf_reset(&d->raw);
    put_json(&d->raw, o);
    d->h->dead(d->ud, why, d->raw.data ? d->raw.data : "", d->raw.len);
}

/* One entry [time, record] of a Forward or PackedForward message. */
static void entry(struct forward_decoder *d, const char *tag, size_t taglen,
                  const msgpack_object *e)
{
    if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
        e->via.array.ptr[1].type != MSGPACK_OBJECT_MAP) {
        dead_obj(d, "forward: an entry that is not [time, record]", e);
        return;
    }
    put_event(d, tag, taglen, &e->via.array.ptr[0], &e->via.array.ptr[1]);
}

/* PackedForward: entries are msgpack [time, record] one after the other (gzip-compressed, in
 * members, with the option compressed: gzip), unpacked in place into a zone cleared per entry. */
static void packed(struct forward_decoder *d, const char *tag, size_t taglen, const char *b,
                   size_t n, const msgpack_object *opt)
{
    const msgpack_object *z = opt ? map_get(opt, "compressed") : NULL;
    if (z && !str_is(z, "gzip") && !str_is(z, "text")) {
        d->h->dead(d->ud, "forward: entries compressed in an unknown way (only gzip)", b, n);
        return;
    }
    if (z && str_is(z, "gzip")) {
        buf_reset(&d->inflated);
        int rc = inflate_members((const unsigned char *)b, n, &d->inflated, d->cfg->max_message);
        if (rc) {
            d->h->dead(d->ud,
                       rc == -E2BIG ? "forward: gzip entries inflate past max_message_size "
                                      "(a compression bomb?)"
                                    : "forward: gzip entries that do not inflate",
                       b, n);
            buf_trim(&d->inflated, 1 << 20);
            return;
        }
        b = d->inflated.data ? d->inflated.data : "";
        n = d->inflated.len;
    }
    size_t off = 0;
    while (off < n) {
        size_t at = off;
        msgpack_object e;
        msgpack_zone_clear(&d->ez);
        msgpack_unpack_return r = msgpack_unpack(b, n, &off, &d->ez, &e);
        if (r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES) {
            d->h->dead(d->ud, "forward: PackedForward entries that are not msgpack", b + at,
                       n - at);
            break;
        }
        entry(d, tag, taglen, &e);
    }
    msgpack_zone_clear(&d->ez);
    buf_trim(&d->inflated, 1 << 20);
}

/* A PING: ["PING", hostname, shared_key_salt, digest, username, password]. */
static int ping(struct forward_decoder *d, const msgpack_object *m)
{
    const msgpack_object *a = m->via.array.ptr;
    struct forward_ping p = {0};
    if (!d->h->ping || m->via.array.size != 6 || !str_of(&a[1], &p.hostname, &p.hostname_len) ||
        !str_of(&a[2], &p.salt, &p.salt_len) || !str_of(&a[3], &p.digest, &p.digest_len) ||
        !str_of(&a[4], &p.username, &p.username_len) ||
        !str_of(&a[5], &p.password, &p.password_len))
        return -1;
    if (d->h->ping(d->ud, &p) < 0)
        return -2;
    d->need_ping = 0;
    return 0;
}

/* One message of the stream (raw: its bytes). Returns 0, or -EPROTO with *err when the stream
 * must end. */
static int message(struct forward_decoder *d, const msgpack_object *m, const char *raw,
                   size_t rawlen, const char **err)
{
    const msgpack_object *a = m->via.array.ptr;
    uint32_t n = m->type == MSGPACK_OBJECT_ARRAY ? m->via.array.size : 0;
    if (n >= 1 && str_is(&a[0], "PING")) {
        int rc = ping(d, m);
        if (rc == -2) {
            *err = "forward: authentication failed (shared_key)";
            return -EPROTO;
        }
        if (rc == 0)
            return 0;
    }
    if (d->need_ping) {
        *err = "forward: a message before the PING that shared_key asks for";
        return -EPROTO;
    }
    const char *tag, *b;
    size_t taglen, blen;
    if (n < 2 || !str_of(&a[0], &tag, &taglen)) {
        d->h->dead(d->ud, "forward: a message that is not [tag, ...]", raw, rawlen);
        return 0;
    }
    const msgpack_object *opt = NULL;
    if (a[1].type == MSGPACK_OBJECT_ARRAY) { /* Forward */
        opt = n >= 3 && a[2].type == MSGPACK_OBJECT_MAP ? &a[2] : NULL;
        for (uint32_t i = 0; i < a[1].via.array.size; i++)
            entry(d, tag, taglen, &a[1].via.array.ptr[i]);
    } else if (str_of(&a[1], &b, &blen)) { /* PackedForward, CompressedPackedForward */
        opt = n >= 3 && a[2].type == MSGPACK_OBJECT_MAP ? &a[2] : NULL;
        packed(d, tag, taglen, b, blen, opt);
    } else if (n >= 3 && a[2].type == MSGPACK_OBJECT_MAP) { /* Message */
        opt = n >= 4 && a[3].type == MSGPACK_OBJECT_MAP ? &a[3] : NULL;
        put_event(d, tag, taglen, &a[1], &a[2]);
    } else {
        d->h->dead(d->ud, "forward: a message of no mode (Message, Forward, PackedForward)", raw,
                   rawlen);
        return 0;
    }
    const msgpack_object *chunk = opt ? map_get(opt, "chunk") : NULL;
    const char *c;
    size_t clen;
    if (chunk && str_of(chunk, &c, &clen))
        d->h->ack(d->ud, c, clen);
    return 0;
}

struct forward_decoder *forward_decoder_new(const struct forward_config *cfg,
                                            const struct forward_handler *h, void *ud)
{
    struct forward_decoder *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->cfg = cfg;
    d->h = h;
    d->ud = ud;
    d->need_ping = cfg->need_ping;
    d->key_len = cfg->partition_key ? strlen(cfg->partition_key) : 0;
    static const char *const fixed[] = {"log", "message", "stream"};
    for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++)
        interesting(d, fixed[k]);
    for (int k = 0; k < OWN_COUNT; k++) {
        interesting(d, own_names[k]);
        interesting(d, own_renamed[k]);
    }
    const struct cfg_strmap *al = cfg->aliases;
    for (int a = 0; al && a < al->n && a < MAX_ALIASES; a++) {
        interesting(d, al->key[a]);
        interesting(d, al->val[a]);
        d->alias_key_len[a] = strlen(al->key[a]);
        d->alias_val_len[a] = strlen(al->val[a]);
        for (int k = 0; k < OWN_COUNT; k++)
            if (!strcmp(al->val[a], own_names[k]))
                d->alias_to_own |= 1ULL << a;
        if (!strcmp(al->val[a], "message"))
            d->alias_to_message |= 1ULL << a;
    }
    msgpack_unpacked_init(&d->msg);
    d->up_ok = msgpack_unpacker_init(&d->up, MSGPACK_UNPACKER_INIT_BUFFER_SIZE);
    d->ez_ok = msgpack_zone_init(&d->ez, ENTRY_ZONE_CHUNK);
    if (!d->up_ok || !d->ez_ok)
        goto fail;
    return d;
fail:
    forward_decoder_free(d);
    return NULL;
}

void forward_decoder_free(struct forward_decoder *d)
{
    if (!d)
        return;
    msgpack_unpacked_destroy(&d->msg);
    if (d->up_ok)
        msgpack_unpacker_destroy(&d->up);
    if (d->ez_ok)
        msgpack_zone_destroy(&d->ez);
    buf_free(&d->out);
    buf_free(&d->inflated);
    buf_free(&d->raw);
    free(d);
}

/* The unpacker's buffer from the current message's start: what a refused stream shows. */
static void refused_raw(const struct forward_decoder *d, const char **raw, size_t *rawlen)
{
    size_t used = d->up.used, parsed = msgpack_unpacker_parsed_size(&d->up);
    size_t start = parsed <= d->up.off ? d->up.off - parsed : d->up.off;
    *raw = d->up.buffer + start;
    *rawlen = used > start ? used - start : 0;
}

size_t forward_partial(const struct forward_decoder *d, const char **raw)
{
    size_t len;
    refused_raw(d, raw, &len);
    return len;
}

int forward_feed(struct forward_decoder *d, const char *data, size_t len,
                 const struct recv_time *rt, const char **err, const char **raw, size_t *rawlen)
{
    d->rt = rt;
    *raw = NULL;
    *rawlen = 0;
    if (len && !msgpack_unpacker_reserve_buffer(&d->up, len)) {
        *err = "forward: out of memory buffering a message";
        return -EPROTO;
    }
    if (len) {
        memcpy(msgpack_unpacker_buffer(&d->up), data, len);
        msgpack_unpacker_buffer_consumed(&d->up, len);
    }
    for (;;) {
        size_t size = 0;
        msgpack_unpack_return rc = msgpack_unpacker_next_with_size(&d->up, &d->msg, &size);
        if (rc == MSGPACK_UNPACK_CONTINUE) {
            if (msgpack_unpacker_message_size(&d->up) <= d->cfg->max_message)
                return 0;
            *err = "forward: a message over max_message_size";
            refused_raw(d, raw, rawlen);
            return -EPROTO;
        }
        if (rc != MSGPACK_UNPACK_SUCCESS) {
            /* msgpack-c allocates a container's slots as it reads its header: a length no
             * memory can hold (a 2 GB map) fails here too. */
            *err = "forward: msgpack that cannot be read, or a length no memory can hold";
            refused_raw(d, raw, rawlen);
            return -EPROTO;
        }
        int r = message(d, &d->msg.data, d->up.buffer + d->up.off - size, size, err);
        msgpack_unpacked_destroy(&d->msg); /* the message's zone, and its hold on the buffer */
        if (r)
            return r;
    }
}
