/* The one mapping from decoded OTLP requests (protobuf-c structures, whichever encoding they came
 * in) to canonical events. Each event is written with core/jsonw.h into a buffer reused for every
 * record: {"timestamp","kind","source", then what the resource and scope give (rendered once per
 * scope, "the head"), then the record's fields, its attributes, "received_at"}. Every key is
 * written once: a set of the keys already in the event (hashes of their text as written, so two
 * keys that escape alike are the same key) turns a record attribute that would repeat one into
 * `attributes.<key>`, and drops it only when that is taken too. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/keyset.h"
#include "collector/otlp_int.h"
#include "core/base64.h"
#include "core/hex.h"
#include "core/jsonw.h"
#include "core/timeutil.h"
#include "proto/otlp_types.h"

#define L(s) s, sizeof(s) - 1
/* Every write goes through OUT: a buffer that could not grow (it is then left as it was) marks
 * the record, which is then handed over as invalid rather than as truncated JSON. */
#define OUT(call)                                                                                  \
    do {                                                                                           \
        if (call)                                                                                  \
            m->nomem = 1;                                                                          \
    } while (0)

/* ---- writing ---- */

/* The event's keys are written in order, each followed by its value: the value of the key field
 * ends where the next key starts, or where its buffer ends (key_ends). */
static void key_ends(struct otlp_map *m, const struct buf *o, size_t at)
{
    if (m->pending != o)
        return;
    if (o == &m->head)
        m->head_end = at;
    else
        m->out_end = at;
    m->pending = NULL;
}

/* A top-level key was written into o at [key, o->len - 1) (quoted, then the colon), after the
 * value that ends at at: notes where the key field's value starts when it is that. */
static void track_key(struct otlp_map *m, const struct buf *o, size_t at, size_t key, uint64_t h)
{
    key_ends(m, o, at);
    if (h == m->key_hash && o->len - 1 - key == m->key.len &&
        !memcmp(o->data + key, m->key.data, m->key.len)) {
        m->pending = o;
        if (o == &m->head)
            m->in_head = 1, m->head_at = o->len;
        else
            m->in_out = 1, m->out_at = o->len;
    }
}

/* Writes [sep]"<prefix><key>" into o and adds it to ks; then the colon. Returns -1 with nothing
 * written when ks has that key already. */
static int put_key(struct otlp_map *m, struct buf *o, struct keyset *ks, char sep,
                   const char *prefix, size_t plen, const char *k, size_t klen)
{
    size_t at = o->len, key = at + (sep != 0);
    /* One reservation for the worst case, then plain stores. */
    if (buf_reserve(o, plen + klen * 6 + 4)) {
        m->nomem = 1;
        return -1;
    }
    char *p = o->data + at;
    if (sep)
        *p++ = sep;
    *p++ = '"';
    if (plen)
        memcpy(p, prefix, plen);
    o->len = (size_t)(p + plen - o->data);
    jsonw_string_body(o, k, klen);
    o->data[o->len++] = '"';
    uint64_t h = keyset_hash(o->data + key, o->len - key);
    int rc = keyset_add(ks, h);
    if (rc) {
        m->nomem |= rc < 0;
        o->len = at;
        return -1;
    }
    o->data[o->len++] = ':';
    if (ks == &m->keys)
        track_key(m, o, at, key, h);
    return 0;
}

/* Takes a key (its text as written, quotes included) without writing it yet. */
static int reserve(struct otlp_map *m, const char *quoted)
{
    int rc = keyset_add(&m->keys, keyset_hash(quoted, strlen(quoted)));
    m->nomem |= rc < 0;
    return rc ? -1 : 0;
}

/* ,"key": for a field of the mapping's own: key is a constant of plain ASCII, which needs no
 * escape scan (these are most of an event's keys: written as put_key writes them, they took 8%
 * of S7's profile). */
static int field(struct otlp_map *m, const char *key, size_t klen)
{
    struct buf *o = &m->out;
    if (buf_reserve(o, klen + 4)) {
        m->nomem = 1;
        return -1;
    }
    size_t at = o->len;
    char *p = o->data + at;
    p[0] = ',';
    p[1] = '"';
    memcpy(p + 2, key, klen);
    p[klen + 2] = '"';
    p[klen + 3] = ':';
    uint64_t h = keyset_hash(p + 1, klen + 2);
    int rc = keyset_add(&m->keys, h);
    if (rc) {
        m->nomem |= rc < 0;
        return -1;
    }
    o->len += klen + 4;
    track_key(m, o, at, at + 1, h);
    return 0;
}

static void put_str(struct otlp_map *m, const char *key, size_t klen, const char *v, size_t vlen)
{
    if (vlen && field(m, key, klen) == 0)
        OUT(jsonw_string(&m->out, v, vlen));
}

static void put_cstr(struct otlp_map *m, const char *key, size_t klen, const char *v)
{
    if (v)
        put_str(m, key, klen, v, strlen(v));
}

static void put_uint(struct otlp_map *m, const char *key, size_t klen, uint64_t v)
{
    if (field(m, key, klen) == 0)
        OUT(jsonw_uint(&m->out, v));
}

static void put_double(struct otlp_map *m, const char *key, size_t klen, double v)
{
    if (field(m, key, klen) == 0)
        OUT(jsonw_double(&m->out, v));
}

/* A fixed64 time in nanoseconds as the signed type the time functions take (the largest uint64
 * values, past the year 2262, are cut to the largest int64). */
static int64_t ns(uint64_t v)
{
    return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

static void write_time(struct otlp_map *m, struct buf *o, uint64_t v)
{
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(ns(v), ts);
    OUT(buf_putc(o, '"'));
    OUT(buf_append(o, ts, TIME_RFC3339_LEN));
    OUT(buf_putc(o, '"'));
}

static void put_time(struct otlp_map *m, const char *key, size_t klen, uint64_t v)
{
    if (field(m, key, klen) == 0)
        write_time(m, &m->out, v);
}

/* Bytes as a JSON string of their hex or base64 (by the append given). */
static int write_quoted(struct buf *o, int (*append)(struct buf *, const void *, size_t),
                        const ProtobufCBinaryData *b)
{
    return buf_putc(o, '"') | append(o, b->data, b->len) | buf_putc(o, '"') ? -ENOMEM : 0;
}

/* A trace or span id as lowercase hex; an empty one is no id. */
static void put_id(struct otlp_map *m, const char *key, size_t klen, const ProtobufCBinaryData *id)
{
    if (id->len && field(m, key, klen) == 0)
        OUT(write_quoted(&m->out, hex_append, id));
}

static void write_any(struct otlp_map *m, struct buf *o, const AnyValue *v, int depth);

/* Key/value pairs as a JSON object; a key given twice keeps its first value. */
static void write_kvlist(struct otlp_map *m, struct buf *o, KeyValue *const *kv, size_t n,
                         int depth)
{
    struct keyset *ks = &m->kv[depth];
    char sep = 0;
    OUT(buf_putc(o, '{'));
    for (size_t i = 0; i < n; i++) {
        if (put_key(m, o, ks, sep, NULL, 0, kv[i]->key, otlp_strlen(kv[i]->key)))
            continue;
        sep = ',';
        write_any(m, o, kv[i]->value, depth);
    }
    OUT(buf_putc(o, '}'));
    keyset_clear(ks);
}

/* An AnyValue as plain JSON: bytes as base64, nothing set (or too deep) as null. */
static void write_any(struct otlp_map *m, struct buf *o, const AnyValue *v, int depth)
{
    if (!v || depth > OTLP_ANY_DEPTH) {
        OUT(buf_append(o, L("null")));
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        OUT(jsonw_string(o, v->string_value, otlp_strlen(v->string_value)));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        if (v->bool_value)
            OUT(buf_append(o, L("true")));
        else
            OUT(buf_append(o, L("false")));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        OUT(jsonw_int(o, v->int_value));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        OUT(jsonw_double(o, v->double_value));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        OUT(buf_putc(o, '['));
        for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++) {
            if (i)
                OUT(buf_putc(o, ','));
            write_any(m, o, v->array_value->values[i], depth + 1);
        }
        OUT(buf_putc(o, ']'));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        if (depth + 1 > OTLP_ANY_DEPTH) {
            OUT(buf_append(o, L("null")));
        } else if (v->kvlist_value) {
            write_kvlist(m, o, v->kvlist_value->values, v->kvlist_value->n_values, depth + 1);
        } else {
            OUT(buf_append(o, L("{}")));
        }
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        OUT(write_quoted(o, base64_append, &v->bytes_value));
        break;
    default:
        OUT(buf_append(o, L("null")));
        break;
    }
}

/* Attributes as fields of o: with a prefix (resource., scope.) a key already written is skipped;
 * without one (the record's own), such a key, or a canonical field's name, becomes
 * attributes.<key> (skipped only when that is taken too). */
static void write_attrs(struct otlp_map *m, struct buf *o, KeyValue *const *kv, size_t n,
                        const char *prefix, size_t plen)
{
    static const struct {
        const char *s;
        size_t n;
    } canonical[] = {{L("timestamp")}, {L("kind")},    {L("source")}, {L("received_at")},
                     {L("service")},   {L("host")},    {L("level")},  {L("message")},
                     {L("trace_id")},  {L("span_id")}, {L("name")}};
    for (size_t i = 0; i < n; i++) {
        const char *k = kv[i]->key;
        size_t klen = otlp_strlen(k);
        int taken;
        if (prefix) {
            taken = put_key(m, o, &m->keys, ',', prefix, plen, k, klen);
        } else {
            int canon = 0;
            for (size_t c = 0; !canon && c < sizeof(canonical) / sizeof(canonical[0]); c++)
                canon = canonical[c].n == klen && !memcmp(canonical[c].s, k, klen);
            taken = (canon || put_key(m, o, &m->keys, ',', NULL, 0, k, klen)) &&
                    put_key(m, o, &m->keys, ',', L("attributes."), k, klen);
        }
        if (!taken)
            write_any(m, o, kv[i]->value, 0);
    }
}

/* The first string value of attribute key, or NULL. */
static const char *attr_string(KeyValue *const *kv, size_t n, const char *key, size_t klen)
{
    for (size_t i = 0; i < n; i++) {
        if (otlp_strlen(kv[i]->key) == klen && !memcmp(kv[i]->key, key, klen))
            return kv[i]->value &&
                           kv[i]->value->value_case ==
                               OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
                       ? kv[i]->value->string_value
                       : NULL;
    }
    return NULL;
}

/* ---- events ---- */

/* What every event of a scope carries after timestamp, kind and source: service and host from
 * the resource, its attributes as resource.<key>, the scope's name, version and attributes. */
static void build_head(struct otlp_map *m, const Resource *res, const Scope *scope)
{
    static const char *const fixed[] = {"\"timestamp\"", "\"kind\"", "\"source\"",
                                        "\"received_at\""};
    struct buf *o = &m->head;
    buf_reset(o);
    keyset_clear(&m->keys);
    m->in_head = 0;
    m->pending = NULL;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        reserve(m, fixed[i]);
    KeyValue *const *attrs = res ? res->attributes : NULL;
    size_t nattrs = res ? res->n_attributes : 0;
    const char *svc = attr_string(attrs, nattrs, L("service.name"));
    const char *host = attr_string(attrs, nattrs, L("host.name"));
    if (otlp_strlen(svc) && put_key(m, o, &m->keys, ',', NULL, 0, L("service")) == 0)
        OUT(jsonw_string(o, svc, otlp_strlen(svc)));
    if (otlp_strlen(host) && put_key(m, o, &m->keys, ',', NULL, 0, L("host")) == 0)
        OUT(jsonw_string(o, host, otlp_strlen(host)));
    write_attrs(m, o, attrs, nattrs, L("resource."));
    if (scope) {
        /* A scope attribute named name or version loses to these two. */
        if (otlp_strlen(scope->name) && put_key(m, o, &m->keys, ',', NULL, 0, L("scope.name")) == 0)
            OUT(jsonw_string(o, scope->name, otlp_strlen(scope->name)));
        if (otlp_strlen(scope->version) &&
            put_key(m, o, &m->keys, ',', NULL, 0, L("scope.version")) == 0)
            OUT(jsonw_string(o, scope->version, otlp_strlen(scope->version)));
        write_attrs(m, o, scope->attributes, scope->n_attributes, L("scope."));
    }
    key_ends(m, o, o->len);
    m->keys.mark = m->keys.nundo;
    /* Every record of the scope starts with the head: one that could not be written whole makes
     * each of them invalid (begin), not only the first. */
    m->head_nomem = m->nomem;
    m->nomem = 0;
}

/* Starts an event: its time (the record's, else the receive time), kind, source, the head. */
enum { FIXED_TIMESTAMP = 1, FIXED_KIND, FIXED_SOURCE, FIXED_RECEIVED_AT };

static void set_key(struct otlp_map *m, size_t at, size_t end)
{
    m->in_out = 1;
    m->out_at = at;
    m->out_end = end;
}

static void begin(struct otlp_map *m, uint64_t time_ns)
{
    struct buf *o = &m->out;
    keyset_to_mark(&m->keys);
    buf_reset(o);
    m->in_out = 0;
    m->pending = NULL;
    OUT(buf_append(o, L("{\"timestamp\":")));
    if (time_ns) {
        write_time(m, o, time_ns);
    } else {
        OUT(buf_putc(o, '"'));
        OUT(buf_append(o, m->rt->text, TIME_RFC3339_LEN));
        OUT(buf_putc(o, '"'));
    }
    /* Where the key field's value is, when it is one of the fields every event starts with or
     * one of the head's. */
    if (m->fixed == FIXED_TIMESTAMP)
        set_key(m, sizeof("{\"timestamp\":") - 1, o->len);
    else if (m->fixed == FIXED_KIND || m->fixed == FIXED_SOURCE)
        set_key(m, o->len + m->start_at, o->len + m->start_end);
    OUT(buf_append(o, m->start.data, m->start.len));
    if (m->in_head)
        set_key(m, o->len + m->head_at, o->len + m->head_end);
    OUT(buf_append(o, m->head.data, m->head.len));
    m->nomem |= m->head_nomem;
}

/* Hands the event over; one that could not be written whole goes as an invalid record. */
static void finish(struct otlp_map *m)
{
    struct buf *o = &m->out;
    key_ends(m, o, o->len);
    if (m->fixed == FIXED_RECEIVED_AT) {
        size_t at = o->len + sizeof(",\"received_at\":") - 1;
        set_key(m, at, at + TIME_RFC3339_LEN + 2);
    }
    int has_key = m->in_out;
    OUT(buf_append(o, m->tail, m->tail_len));
    if (m->nomem)
        m->o->invalid(m->o->ud, "out of memory building its event", "", 0);
    else
        m->o->event(m->o->ud, o->data, o->len, has_key ? o->data + m->out_at : NULL,
                    has_key ? m->out_end - m->out_at : 0);
    m->nomem = 0;
    m->count++;
}

/* Severity numbers 1-24 in groups of four: TRACE DEBUG INFO WARN ERROR FATAL. */
static const char *severity_level(int n)
{
    static const char *const names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
    return n >= 1 && n <= 24 ? names[(n - 1) / 4] : NULL;
}

static void log_record(struct otlp_map *m, const LogRecord *r)
{
    begin(m, r->time_unix_nano ? r->time_unix_nano : r->observed_time_unix_nano);
    size_t tlen = otlp_strlen(r->severity_text);
    if (tlen)
        put_str(m, L("level"), r->severity_text, tlen);
    else
        put_cstr(m, L("level"), severity_level(r->severity_number));
    if (r->severity_number && field(m, L("severity_number")) == 0)
        OUT(jsonw_int(&m->out, r->severity_number));
    if (r->body && field(m, L("message")) == 0)
        write_any(m, &m->out, r->body, 0);
    put_id(m, L("trace_id"), &r->trace_id);
    put_id(m, L("span_id"), &r->span_id);
    write_attrs(m, &m->out, r->attributes, r->n_attributes, NULL, 0);
    finish(m);
}

/* Writes the key of an object's next member: a comma before all but the first. */
static void member(struct otlp_map *m, struct buf *o, int *n, const char *key, size_t klen)
{
    if ((*n)++)
        OUT(buf_putc(o, ','));
    OUT(buf_putc(o, '"'));
    OUT(buf_append(o, key, klen));
    OUT(buf_append(o, L("\":")));
}

/* A span's events and links keep the proto3 JSON form (the fields that have a value, 64-bit
 * integers as strings, ids as hex), their attributes as a plain object. */
static void write_event(struct otlp_map *m, struct buf *o, const void *item)
{
    const SpanEvent *e = item;
    int n = 0;
    OUT(buf_putc(o, '{'));
    if (e->time_unix_nano) {
        member(m, o, &n, L("timeUnixNano"));
        OUT(buf_putc(o, '"'));
        OUT(jsonw_uint(o, e->time_unix_nano));
        OUT(buf_putc(o, '"'));
    }
    if (otlp_strlen(e->name)) {
        member(m, o, &n, L("name"));
        OUT(jsonw_string(o, e->name, otlp_strlen(e->name)));
    }
    if (e->n_attributes) {
        member(m, o, &n, L("attributes"));
        write_kvlist(m, o, e->attributes, e->n_attributes, 0);
    }
    if (e->dropped_attributes_count) {
        member(m, o, &n, L("droppedAttributesCount"));
        OUT(jsonw_uint(o, e->dropped_attributes_count));
    }
    OUT(buf_putc(o, '}'));
}

static void write_link(struct otlp_map *m, struct buf *o, const void *item)
{
    const SpanLink *l = item;
    int n = 0;
    OUT(buf_putc(o, '{'));
    if (l->trace_id.len) {
        member(m, o, &n, L("traceId"));
        OUT(write_quoted(o, hex_append, &l->trace_id));
    }
    if (l->span_id.len) {
        member(m, o, &n, L("spanId"));
        OUT(write_quoted(o, hex_append, &l->span_id));
    }
    if (otlp_strlen(l->trace_state)) {
        member(m, o, &n, L("traceState"));
        OUT(jsonw_string(o, l->trace_state, otlp_strlen(l->trace_state)));
    }
    if (l->n_attributes) {
        member(m, o, &n, L("attributes"));
        write_kvlist(m, o, l->attributes, l->n_attributes, 0);
    }
    if (l->dropped_attributes_count) {
        member(m, o, &n, L("droppedAttributesCount"));
        OUT(jsonw_uint(o, l->dropped_attributes_count));
    }
    if (l->flags) {
        member(m, o, &n, L("flags"));
        OUT(jsonw_uint(o, l->flags));
    }
    OUT(buf_putc(o, '}'));
}

/* ,"events":[...] or ,"links":[...], whose key was reserved: each element by write. */
static void write_list(struct otlp_map *m, const char *quoted, size_t qlen, void *const *items,
                       size_t n, void (*write)(struct otlp_map *, struct buf *, const void *))
{
    struct buf *o = &m->out;
    size_t at = o->len;
    OUT(buf_putc(o, ','));
    OUT(buf_append(o, quoted, qlen));
    OUT(buf_putc(o, ':'));
    track_key(m, o, at, at + 1, keyset_hash(quoted, qlen));
    OUT(buf_putc(o, '['));
    for (size_t i = 0; i < n; i++) {
        if (i)
            OUT(buf_putc(o, ','));
        write(m, o, items[i]);
    }
    OUT(buf_putc(o, ']'));
}

static void span(struct otlp_map *m, const Span *sp)
{
    /* SPAN_KIND_UNSPECIFIED (0) is no kind: protobuf cannot tell it from an absent one. */
    static const char *const kinds[] = {NULL,     "INTERNAL", "SERVER",
                                        "CLIENT", "PRODUCER", "CONSUMER"};
    static const char *const codes[] = {"UNSET", "OK", "ERROR"};
    struct buf *o = &m->out;
    uint64_t start = sp->start_time_unix_nano, end = sp->end_time_unix_nano;
    begin(m, start);
    put_id(m, L("trace_id"), &sp->trace_id);
    put_id(m, L("span_id"), &sp->span_id);
    put_id(m, L("parent_span_id"), &sp->parent_span_id);
    put_str(m, L("name"), sp->name, otlp_strlen(sp->name));
    if ((unsigned)sp->kind < sizeof(kinds) / sizeof(kinds[0]))
        put_cstr(m, L("span_kind"), kinds[sp->kind]);
    if (start && end >= start)
        put_uint(m, L("duration_ns"), ns(end) - ns(start));
    if (end)
        put_time(m, L("end_time"), end);
    unsigned code = sp->status ? (unsigned)sp->status->code : 0;
    put_cstr(m, L("status"), codes[code < 3 ? code : 0]);
    if (sp->status)
        put_str(m, L("status_message"), sp->status->message, otlp_strlen(sp->status->message));
    /* Events and links come after the attributes, but their names are taken first: an
     * attribute called events must not stand in for the span's events. */
    int has_events = sp->n_events && reserve(m, "\"events\"") == 0;
    int has_links = sp->n_links && reserve(m, "\"links\"") == 0;
    write_attrs(m, o, sp->attributes, sp->n_attributes, NULL, 0);
    if (has_events)
        write_list(m, L("\"events\""), (void *const *)sp->events, sp->n_events, write_event);
    if (has_links)
        write_list(m, L("\"links\""), (void *const *)sp->links, sp->n_links, write_link);
    finish(m);
}

/* ---- metrics: one event per data point ---- */

static void put_uints(struct otlp_map *m, const char *key, size_t klen, const uint64_t *v, size_t n)
{
    if (!n || field(m, key, klen))
        return;
    OUT(buf_putc(&m->out, '['));
    for (size_t i = 0; i < n; i++) {
        if (i)
            OUT(buf_putc(&m->out, ','));
        OUT(jsonw_uint(&m->out, v[i]));
    }
    OUT(buf_putc(&m->out, ']'));
}

static void put_doubles(struct otlp_map *m, const char *key, size_t klen, const double *v, size_t n)
{
    if (!n || field(m, key, klen))
        return;
    OUT(buf_putc(&m->out, '['));
    for (size_t i = 0; i < n; i++) {
        if (i)
            OUT(buf_putc(&m->out, ','));
        OUT(jsonw_double(&m->out, v[i]));
    }
    OUT(buf_putc(&m->out, ']'));
}

/* What the metric says of each of its points: name, unit, description, type (as the metric
 * model of docs/metrics.md names it: a monotonic sum is a counter, another sum a gauge with a
 * temporality, an up-down counter), temporality. The point's own fields follow. */
struct metric_info {
    const Metric *m;
    const char *type;
    int temporality; /* the aggregation temporality, 0 when the type has none */
};

static void point_begin(struct otlp_map *m, const struct metric_info *mi, uint64_t time,
                        uint64_t start)
{
    begin(m, time);
    put_str(m, L("name"), mi->m->name, otlp_strlen(mi->m->name));
    put_str(m, L("unit"), mi->m->unit, otlp_strlen(mi->m->unit));
    put_str(m, L("description"), mi->m->description, otlp_strlen(mi->m->description));
    put_cstr(m, L("metric_type"), mi->type);
    if (mi->temporality == 1 || mi->temporality == 2)
        put_cstr(m, L("temporality"), mi->temporality == 1 ? "delta" : "cumulative");
    if (start)
        put_time(m, L("start_time"), start);
}

/* A data point's attributes are its labels (docs/metrics.md): one object, "labels", written
 * whole (a key given twice keeps its first value), so that they never mix with the event's own
 * fields, whatever their names. */
static void point_end(struct otlp_map *m, KeyValue *const *attrs, size_t n)
{
    if (field(m, L("labels")) == 0)
        write_kvlist(m, &m->out, attrs, n, 0);
    finish(m);
}

static void number_point(struct otlp_map *m, const struct metric_info *mi, const NumberDataPoint *p)
{
    point_begin(m, mi, p->time_unix_nano, p->start_time_unix_nano);
    if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE)
        put_double(m, L("value"), p->as_double);
    else if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT &&
             field(m, L("value")) == 0)
        OUT(jsonw_int(&m->out, p->as_int));
    point_end(m, p->attributes, p->n_attributes);
}

static void histogram_point(struct otlp_map *m, const struct metric_info *mi,
                            const HistogramDataPoint *p)
{
    point_begin(m, mi, p->time_unix_nano, p->start_time_unix_nano);
    put_uint(m, L("count"), p->count);
    if (p->_sum_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM)
        put_double(m, L("sum"), p->sum);
    if (p->_min_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN)
        put_double(m, L("min"), p->min);
    if (p->_max_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX_MAX)
        put_double(m, L("max"), p->max);
    put_uints(m, L("bucket_counts"), p->bucket_counts, p->n_bucket_counts);
    put_doubles(m, L("explicit_bounds"), p->explicit_bounds, p->n_explicit_bounds);
    point_end(m, p->attributes, p->n_attributes);
}

/* An exponential histogram's positive or negative buckets: {"offset", "bucket_counts"}. */
static void put_buckets(struct otlp_map *m, const char *key, size_t klen, const Buckets *b)
{
    if (!b || field(m, key, klen))
        return;
    struct buf *o = &m->out;
    OUT(buf_append(o, L("{\"offset\":")));
    OUT(jsonw_int(o, b->offset));
    OUT(buf_append(o, L(",\"bucket_counts\":[")));
    for (size_t i = 0; i < b->n_bucket_counts; i++) {
        if (i)
            OUT(buf_putc(o, ','));
        OUT(jsonw_uint(o, b->bucket_counts[i]));
    }
    OUT(buf_append(o, L("]}")));
}

static void exponential_point(struct otlp_map *m, const struct metric_info *mi,
                              const ExpDataPoint *p)
{
    point_begin(m, mi, p->time_unix_nano, p->start_time_unix_nano);
    put_uint(m, L("count"), p->count);
    if (p->_sum_case ==
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM)
        put_double(m, L("sum"), p->sum);
    if (p->_min_case ==
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MIN_MIN)
        put_double(m, L("min"), p->min);
    if (p->_max_case ==
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MAX_MAX)
        put_double(m, L("max"), p->max);
    if (field(m, L("scale")) == 0)
        OUT(jsonw_int(&m->out, p->scale));
    put_uint(m, L("zero_count"), p->zero_count);
    if (p->zero_threshold != 0)
        put_double(m, L("zero_threshold"), p->zero_threshold);
    put_buckets(m, L("positive"), p->positive);
    put_buckets(m, L("negative"), p->negative);
    point_end(m, p->attributes, p->n_attributes);
}

static void summary_point(struct otlp_map *m, const struct metric_info *mi,
                          const SummaryDataPoint *p)
{
    point_begin(m, mi, p->time_unix_nano, p->start_time_unix_nano);
    put_uint(m, L("count"), p->count);
    put_double(m, L("sum"), p->sum);
    if (p->n_quantile_values && field(m, L("quantiles")) == 0) {
        /* {"<quantile>": value}; the same quantile twice keeps the first. */
        struct buf *o = &m->out;
        char sep = 0;
        OUT(buf_putc(o, '{'));
        for (size_t i = 0; i < p->n_quantile_values; i++) {
            char q[40];
            int n = snprintf(q, sizeof(q), "%g", p->quantile_values[i]->quantile);
            if (put_key(m, o, &m->kv[0], sep, NULL, 0, q, (size_t)n))
                continue;
            sep = ',';
            OUT(jsonw_double(o, p->quantile_values[i]->value));
        }
        OUT(buf_putc(o, '}'));
        keyset_clear(&m->kv[0]);
    }
    point_end(m, p->attributes, p->n_attributes);
}

static void metric(struct otlp_map *m, const Metric *mt)
{
    struct metric_info mi = {.m = mt};
    switch (mt->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        mi.type = "gauge";
        for (size_t i = 0; mt->gauge && i < mt->gauge->n_data_points; i++)
            number_point(m, &mi, mt->gauge->data_points[i]);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        if (!mt->sum)
            break;
        mi.type = mt->sum->is_monotonic ? "counter" : "gauge";
        /* A gauge has no temporality in OTLP: one written says the point is a sum's. An
         * unspecified temporality (not valid OTLP) is read as cumulative, as Prometheus would. */
        mi.temporality = mt->sum->aggregation_temporality;
        if (mi.temporality != 1 && mi.temporality != 2)
            mi.temporality = 2;
        for (size_t i = 0; i < mt->sum->n_data_points; i++)
            number_point(m, &mi, mt->sum->data_points[i]);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        mi.type = "histogram";
        if (!mt->histogram)
            break;
        mi.temporality = mt->histogram->aggregation_temporality;
        for (size_t i = 0; i < mt->histogram->n_data_points; i++)
            histogram_point(m, &mi, mt->histogram->data_points[i]);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        mi.type = "exponential_histogram";
        if (!mt->exponential_histogram)
            break;
        mi.temporality = mt->exponential_histogram->aggregation_temporality;
        for (size_t i = 0; i < mt->exponential_histogram->n_data_points; i++)
            exponential_point(m, &mi, mt->exponential_histogram->data_points[i]);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        mi.type = "summary";
        for (size_t i = 0; mt->summary && i < mt->summary->n_data_points; i++)
            summary_point(m, &mi, mt->summary->data_points[i]);
        break;
    default:
        break;
    }
}

/* ---- requests ---- */

static void map_logs(struct otlp_map *m,
                     const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *r)
{
    for (size_t i = 0; i < r->n_resource_logs; i++) {
        const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = r->resource_logs[i];
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
            if (!sl->n_log_records)
                continue;
            build_head(m, rl->resource, sl->scope);
            for (size_t k = 0; k < sl->n_log_records; k++)
                log_record(m, sl->log_records[k]);
        }
    }
}

static void
map_traces(struct otlp_map *m,
           const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r)
{
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            if (!ss->n_spans)
                continue;
            build_head(m, rs->resource, ss->scope);
            for (size_t k = 0; k < ss->n_spans; k++)
                span(m, ss->spans[k]);
        }
    }
}

static void
map_metrics(struct otlp_map *m,
            const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *r)
{
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = r->resource_metrics[i];
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
            if (!sm->n_metrics)
                continue;
            build_head(m, rm->resource, sm->scope);
            for (size_t k = 0; k < sm->n_metrics; k++)
                metric(m, sm->metrics[k]);
        }
    }
}

int otlp_map_prepare(struct otlp_map *m, enum otlp_signal sig, const struct recv_time *rt,
                     const struct otlp_out *o)
{
    static const char *const kinds[] = {
        [OTLP_LOGS] = "log", [OTLP_TRACES] = "trace", [OTLP_METRICS] = "metric"};
    m->rt = rt;
    m->o = o;
    m->count = 0;
    m->nomem = 0;
    struct buf *s = &m->start;
    buf_reset(s);
    if (buf_append(s, L(",\"kind\":\"")) || buf_puts(s, kinds[sig]) || buf_append(s, L("\",")) ||
        buf_append(s, m->source.data, m->source.len))
        return -ENOMEM;
    /* kind's value, then source's ("source": and the input's name as a JSON string). */
    m->start_at = m->fixed == FIXED_KIND ? sizeof(",\"kind\":") - 1 : s->len - m->source.len + 9;
    m->start_end = m->fixed == FIXED_KIND ? sizeof(",\"kind\":\"") + strlen(kinds[sig]) : s->len;
    m->tail_len = (size_t)snprintf(m->tail, sizeof(m->tail), ",\"received_at\":\"%s\"}", rt->text);
    return 0;
}

int otlp_map_request(struct otlp_map *m, enum otlp_signal sig, const ProtobufCMessage *req)
{
    if (sig == OTLP_LOGS)
        map_logs(m, (const void *)req);
    else if (sig == OTLP_TRACES)
        map_traces(m, (const void *)req);
    else
        map_metrics(m, (const void *)req);
    /* A rare huge record must not keep its memory for the life of the input. */
    buf_trim(&m->out, 1 << 20);
    buf_trim(&m->head, 1 << 20);
    m->nomem = 0;
    return m->count;
}

/* The bytes the records of a scope will take at least: its head, the fields every event has,
 * repeated for each record. */
static int add_scope(struct otlp_map *m, const Resource *res, const Scope *scope, size_t n,
                     size_t *total)
{
    if (!n)
        return 0;
    build_head(m, res, scope);
    if (m->head_nomem)
        return -ENOMEM;
    size_t each = m->head.len + m->start.len + m->tail_len + 64;
    *total += n > SIZE_MAX / each ? SIZE_MAX / 2 : each * n;
    return 0;
}

/* One walk for the three signals: resource (r) and scope (s) lists, their records (n). */
#define SCOPES(req, rlist, nr, slist, ns, recs, nrec)                                              \
    for (size_t i = 0; rc == 0 && i < (req)->nr; i++)                                              \
        for (size_t j = 0; rc == 0 && j < (req)->rlist[i]->ns; j++)                                \
            rc = add_scope(m, (req)->rlist[i]->resource, (req)->rlist[i]->slist[j]->scope,         \
                           (req)->rlist[i]->slist[j]->nrec, &total);

int otlp_map_check(struct otlp_map *m, enum otlp_signal sig, const ProtobufCMessage *req,
                   size_t budget)
{
    size_t total = 0;
    int rc = 0;
    if (sig == OTLP_LOGS) {
        const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *r =
            (const void *)req;
        SCOPES(r, resource_logs, n_resource_logs, scope_logs, n_scope_logs, log_records,
               n_log_records);
    } else if (sig == OTLP_TRACES) {
        const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
            (const void *)req;
        SCOPES(r, resource_spans, n_resource_spans, scope_spans, n_scope_spans, spans, n_spans);
    } else {
        const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *r =
            (const void *)req;
        SCOPES(r, resource_metrics, n_resource_metrics, scope_metrics, n_scope_metrics, metrics,
               n_metrics);
    }
    m->nomem = 0;
    return rc ? rc : total > budget ? -E2BIG : 0;
}

int otlp_map_init(struct otlp_map *m, const char *source, const char *key_field)
{
    memset(m, 0, sizeof(*m));
    if (buf_append(&m->source, L("\"source\":")) ||
        jsonw_string(&m->source, source, strlen(source)))
        return -ENOMEM;
    if (key_field && *key_field) {
        static const char *const fixed[] = {NULL, "timestamp", "kind", "source", "received_at"};
        if (jsonw_string(&m->key, key_field, strlen(key_field)))
            return -ENOMEM;
        m->key_hash = keyset_hash(m->key.data, m->key.len);
        for (int i = 1; i <= FIXED_RECEIVED_AT; i++)
            m->fixed = strcmp(key_field, fixed[i]) ? m->fixed : i;
    }
    return 0;
}

void otlp_map_free(struct otlp_map *m)
{
    buf_free(&m->source);
    buf_free(&m->key);
    buf_free(&m->start);
    buf_free(&m->head);
    buf_free(&m->out);
    keyset_free(&m->keys);
    for (size_t i = 0; i < sizeof(m->kv) / sizeof(m->kv[0]); i++)
        keyset_free(&m->kv[i]);
}
