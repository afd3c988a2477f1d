#include "collector/otlp.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"
#include "core/timeutil.h"

/* Everything one request shares while its events are built. */
struct ctx {
    struct buf keys; /* top-level keys written for the current event, NUL-separated */
    const char *source;
    const struct recv_time *rt;
    otlp_emit_fn emit;
    void *ud;
    struct buf out;
    int count;
    json_t *resource; /* attributes array of the current resource */
    json_t *scope;    /* the current scope object */
};

static void write_any(struct buf *o, json_t *v, int depth);

/* Remembers the keys written in one JSON object (length-prefixed: a key may hold NUL bytes).
 * Returns 1 when k was written already: each key appears once, the first wins. */
static int key_seen(struct buf *keys, const char *k, size_t n)
{
    for (size_t off = 0; off < keys->len;) {
        size_t l;
        memcpy(&l, keys->data + off, sizeof(l));
        off += sizeof(l);
        if (l == n && !memcmp(keys->data + off, k, n))
            return 1;
        off += l;
    }
    buf_append(keys, &n, sizeof(n));
    buf_append(keys, k, n);
    return 0;
}

/* [{key, value}] (a kvlistValue, an event's or link's attributes) -> a plain object. */
static void write_kvlist(struct buf *o, json_t *vals, int depth)
{
    struct buf keys = {0};
    json_t *kv;
    size_t i;
    int first = 1;
    buf_putc(o, '{');
    json_array_foreach(vals, i, kv)
    {
        json_t *kj = json_object_get(kv, "key");
        if (!json_is_string(kj) || key_seen(&keys, json_string_value(kj), json_string_length(kj)))
            continue;
        if (!first)
            buf_putc(o, ',');
        first = 0;
        jsonw_string(o, json_string_value(kj), json_string_length(kj));
        buf_putc(o, ':');
        write_any(o, json_object_get(kv, "value"), depth);
    }
    buf_putc(o, '}');
    buf_free(&keys);
}

/* AnyValue -> plain JSON. */
static void write_any(struct buf *o, json_t *v, int depth)
{
    json_t *x;
    if (!json_is_object(v) || depth > 32) {
        buf_puts(o, "null");
    } else if ((x = json_object_get(v, "stringValue"))) {
        const char *s = json_string_value(x);
        jsonw_string(o, s ? s : "", s ? json_string_length(x) : 0);
    } else if ((x = json_object_get(v, "boolValue"))) {
        buf_puts(o, json_is_true(x) ? "true" : "false");
    } else if ((x = json_object_get(v, "intValue"))) {
        /* int64 is a string in proto3 JSON, a number from some encoders. */
        if (json_is_integer(x))
            jsonw_int(o, json_integer_value(x));
        else if (json_is_string(x))
            jsonw_int(o, strtoll(json_string_value(x), NULL, 10));
        else
            buf_puts(o, "null");
    } else if ((x = json_object_get(v, "doubleValue"))) {
        jsonw_double(o, json_is_number(x)
                            ? json_number_value(x)
                            : strtod(json_string_value(x) ? json_string_value(x) : "", NULL));
    } else if ((x = json_object_get(v, "arrayValue"))) {
        json_t *vals = json_object_get(x, "values"), *e;
        size_t i;
        buf_putc(o, '[');
        json_array_foreach(vals, i, e)
        {
            if (i)
                buf_putc(o, ',');
            write_any(o, e, depth + 1);
        }
        buf_putc(o, ']');
    } else if ((x = json_object_get(v, "kvlistValue"))) {
        write_kvlist(o, json_object_get(x, "values"), depth + 1);
    } else if ((x = json_object_get(v, "bytesValue"))) {
        const char *s = json_string_value(x); /* base64, kept as text */
        jsonw_string(o, s ? s : "", s ? strlen(s) : 0);
    } else {
        buf_puts(o, "null");
    }
}

static _Thread_local struct ctx *cur_ctx; /* the request being parsed on this thread */

/* Writes ,"prefix+key": and remembers the key. Returns 0, or -1 (nothing written) when that
 * key is already in the event: every key appears once. */
static int field_key(struct buf *o, const char *prefix, const char *key)
{
    struct ctx *c = cur_ctx;
    struct buf k = {0};
    buf_puts(&k, prefix ? prefix : "");
    buf_puts(&k, key);
    if (key_seen(&c->keys, k.data, k.len)) {
        buf_free(&k);
        return -1;
    }
    buf_putc(o, ',');
    jsonw_string(o, k.data, k.len);
    buf_putc(o, ':');
    buf_free(&k);
    return 0;
}

static int canonical(const char *k)
{
    static const char *const names[] = {"timestamp", "kind",    "source", "received_at",
                                        "service",   "host",    "level",  "message",
                                        "trace_id",  "span_id", "name",   NULL};
    for (int i = 0; names[i]; i++) {
        if (!strcmp(names[i], k))
            return 1;
    }
    return 0;
}

/* Attributes [{key, value}] as fields; plain ones clash-checked against canonical names. */
static void write_attrs(struct buf *o, json_t *attrs, const char *prefix)
{
    json_t *kv;
    size_t i;
    json_array_foreach(attrs, i, kv)
    {
        const char *k = json_string_value(json_object_get(kv, "key"));
        if (!k)
            continue;
        /* The record's own attributes go to the top level; one that would clash with a field
         * already written becomes attributes.<key> (and is dropped only if that clashes too). */
        if (field_key(o,
                      prefix         ? prefix
                      : canonical(k) ? "attributes."
                                     : NULL,
                      k) &&
            (prefix || field_key(o, "attributes.", k)))
            continue;
        write_any(o, json_object_get(kv, "value"), 0);
    }
}

static const char *attr_string(json_t *attrs, const char *key)
{
    json_t *kv;
    size_t i;
    json_array_foreach(attrs, i, kv)
    {
        const char *k = json_string_value(json_object_get(kv, "key"));
        if (k && !strcmp(k, key))
            return json_string_value(json_object_get(json_object_get(kv, "value"), "stringValue"));
    }
    return NULL;
}

/* A uint64 nanosecond field: a string (proto3 JSON) or a number. 0 when absent. */
static int64_t nanos(json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return 0;
}

static void put_time(struct buf *o, const char *key, int64_t ns)
{
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(ns, ts);
    if (field_key(o, NULL, key) == 0)
        buf_printf(o, "\"%s\"", ts);
}

static void put_str(struct buf *o, const char *key, const char *v)
{
    if (!v || !*v || field_key(o, NULL, key))
        return;
    jsonw_string(o, v, strlen(v));
}

static void put_hex_id(struct buf *o, const char *key, json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || !*s || field_key(o, NULL, key))
        return;
    size_t at = o->len;
    jsonw_string(o, s, strlen(s));
    for (size_t i = at; i < o->len; i++) {
        if (o->data[i] >= 'A' && o->data[i] <= 'F')
            o->data[i] = (char)(o->data[i] + 32);
    }
}

/* {"timestamp", "kind", "source", service/host, resource.*, scope.* — what every event of a
 * request starts with. */
static void begin(struct ctx *c, int64_t ts_ns, const char *kind)
{
    struct buf *o = &c->out;
    buf_reset(o);
    char ts[TIME_RFC3339_LEN + 1];
    if (ts_ns > 0)
        time_format_rfc3339(ts_ns, ts);
    else
        memcpy(ts, c->rt->text, sizeof(ts));
    buf_reset(&c->keys);
    static const char *const fixed[] = {"timestamp", "kind", "source", "received_at"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        key_seen(&c->keys, fixed[i], strlen(fixed[i]));
    buf_printf(o, "{\"timestamp\":\"%s\",\"kind\":\"%s\",\"source\":", ts, kind);
    jsonw_string(o, c->source, strlen(c->source));
    put_str(o, "service", attr_string(c->resource, "service.name"));
    put_str(o, "host", attr_string(c->resource, "host.name"));
    write_attrs(o, c->resource, "resource.");
    if (c->scope) {
        put_str(o, "scope.name", json_string_value(json_object_get(c->scope, "name")));
        put_str(o, "scope.version", json_string_value(json_object_get(c->scope, "version")));
        /* A scope attribute named name or version loses to the two above. */
        write_attrs(o, json_object_get(c->scope, "attributes"), "scope.");
    }
}

static void finish(struct ctx *c)
{
    struct buf *o = &c->out;
    buf_puts(o, ",\"received_at\":\"");
    buf_append(o, c->rt->text, TIME_RFC3339_LEN);
    buf_puts(o, "\"}");
    c->emit(c->ud, o->data, o->len);
    c->count++;
}

/* Severity numbers 1-24 in groups of four: TRACE DEBUG INFO WARN ERROR FATAL. */
static const char *severity_level(json_t *num)
{
    static const char *const names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
    json_int_t n = json_integer_value(num);
    return n >= 1 && n <= 24 ? names[(n - 1) / 4] : NULL;
}

static void log_record(struct ctx *c, json_t *r)
{
    int64_t ts = nanos(json_object_get(r, "timeUnixNano"));
    if (!ts)
        ts = nanos(json_object_get(r, "observedTimeUnixNano"));
    begin(c, ts, "log");
    struct buf *o = &c->out;
    const char *text = json_string_value(json_object_get(r, "severityText"));
    put_str(o, "level",
            text && *text ? text : severity_level(json_object_get(r, "severityNumber")));
    json_t *num = json_object_get(r, "severityNumber");
    if (json_is_integer(num))
        if (field_key(o, NULL, "severity_number") == 0)
            buf_printf(o, "%lld", (long long)json_integer_value(num));
    json_t *body = json_object_get(r, "body");
    if (body && !field_key(o, NULL, "message"))
        write_any(o, body, 0);
    put_hex_id(o, "trace_id", json_object_get(r, "traceId"));
    put_hex_id(o, "span_id", json_object_get(r, "spanId"));
    write_attrs(o, json_object_get(r, "attributes"), NULL);
    finish(c);
}

static const char *span_kind(json_t *k)
{
    static const char *const names[] = {"UNSPECIFIED", "INTERNAL", "SERVER",
                                        "CLIENT",      "PRODUCER", "CONSUMER"};
    if (json_is_integer(k)) {
        json_int_t n = json_integer_value(k);
        return n >= 0 && n <= 5 ? names[n] : NULL;
    }
    const char *s = json_string_value(k); /* "SPAN_KIND_SERVER" */
    return s && !strncmp(s, "SPAN_KIND_", 10) ? s + 10 : s;
}

static void span(struct ctx *c, json_t *sp)
{
    int64_t start = nanos(json_object_get(sp, "startTimeUnixNano"));
    int64_t end = nanos(json_object_get(sp, "endTimeUnixNano"));
    begin(c, start, "trace");
    struct buf *o = &c->out;
    put_hex_id(o, "trace_id", json_object_get(sp, "traceId"));
    put_hex_id(o, "span_id", json_object_get(sp, "spanId"));
    put_hex_id(o, "parent_span_id", json_object_get(sp, "parentSpanId"));
    put_str(o, "name", json_string_value(json_object_get(sp, "name")));
    put_str(o, "span_kind", span_kind(json_object_get(sp, "kind")));
    if (start && end >= start)
        if (field_key(o, NULL, "duration_ns") == 0)
            buf_printf(o, "%lld", (long long)(end - start));
    if (end)
        put_time(o, "end_time", end);
    json_t *st = json_object_get(sp, "status");
    json_t *code = json_object_get(st, "code");
    static const char *const codes[] = {"UNSET", "OK", "ERROR"};
    const char *cs =
        json_is_integer(code) && json_integer_value(code) >= 0 && json_integer_value(code) <= 2
            ? codes[json_integer_value(code)]
            : json_string_value(code);
    if (cs && !strncmp(cs, "STATUS_CODE_", 12))
        cs = cs + 12;
    put_str(o, "status", cs ? cs : "UNSET");
    put_str(o, "status_message", json_string_value(json_object_get(st, "message")));
    write_attrs(o, json_object_get(sp, "attributes"), NULL);
    static const char *const lists[] = {"events", "links", NULL};
    for (int i = 0; lists[i]; i++) {
        json_t *arr = json_object_get(sp, lists[i]);
        if (!json_is_array(arr) || json_array_size(arr) == 0 || field_key(o, NULL, lists[i]))
            continue;
        /* Kept close to the wire form, with attributes turned into plain objects. */
        json_t *e;
        size_t k;
        buf_putc(o, '[');
        json_array_foreach(arr, k, e)
        {
            if (k)
                buf_putc(o, ',');
            buf_putc(o, '{');
            int first = 1;
            const char *key;
            json_t *v;
            json_object_foreach(e, key, v)
            {
                if (!first)
                    buf_putc(o, ',');
                first = 0;
                jsonw_string(o, key, strlen(key));
                buf_putc(o, ':');
                if (!strcmp(key, "attributes")) {
                    write_kvlist(o, v, 0);
                } else {
                    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                    buf_puts(o, t ? t : "null");
                    free(t);
                }
            }
            buf_putc(o, '}');
        }
        buf_putc(o, ']');
    }
    finish(c);
}

static void number_field(struct buf *o, const char *key, json_t *v)
{
    if (!v || field_key(o, NULL, key))
        return;
    if (json_is_integer(v))
        jsonw_int(o, json_integer_value(v));
    else if (json_is_real(v))
        jsonw_double(o, json_real_value(v));
    else if (json_is_string(v)) /* int64/uint64 as strings */
        jsonw_int(o, strtoll(json_string_value(v), NULL, 10));
    else
        buf_puts(o, "null");
}

static void number_array(struct buf *o, const char *key, json_t *arr)
{
    if (!json_is_array(arr) || field_key(o, NULL, key))
        return;
    buf_putc(o, '[');
    json_t *v;
    size_t i;
    json_array_foreach(arr, i, v)
    {
        if (i)
            buf_putc(o, ',');
        if (json_is_string(v))
            jsonw_int(o, strtoll(json_string_value(v), NULL, 10));
        else if (json_is_integer(v))
            jsonw_int(o, json_integer_value(v));
        else
            jsonw_double(o, json_number_value(v));
    }
    buf_putc(o, ']');
}

static void data_point(struct ctx *c, json_t *m, const char *type, json_t *agg, json_t *dp)
{
    begin(c, nanos(json_object_get(dp, "timeUnixNano")), "metric");
    struct buf *o = &c->out;
    put_str(o, "name", json_string_value(json_object_get(m, "name")));
    put_str(o, "unit", json_string_value(json_object_get(m, "unit")));
    put_str(o, "description", json_string_value(json_object_get(m, "description")));
    put_str(o, "metric_type", type);
    json_t *temp = json_object_get(agg, "aggregationTemporality");
    if (json_is_integer(temp) && json_integer_value(temp))
        put_str(o, "temporality", json_integer_value(temp) == 1 ? "delta" : "cumulative");
    json_t *mono = json_object_get(agg, "isMonotonic");
    if (json_is_boolean(mono))
        if (field_key(o, NULL, "monotonic") == 0)
            buf_puts(o, json_is_true(mono) ? "true" : "false");
    int64_t start = nanos(json_object_get(dp, "startTimeUnixNano"));
    if (start)
        put_time(o, "start_time", start);
    if (json_object_get(dp, "asDouble"))
        number_field(o, "value", json_object_get(dp, "asDouble"));
    else if (json_object_get(dp, "asInt"))
        number_field(o, "value", json_object_get(dp, "asInt"));
    static const char *const nums[] = {"count", "sum", "min", "max", "scale", "zeroCount", NULL};
    static const char *const names[] = {"count", "sum", "min", "max", "scale", "zero_count", NULL};
    for (int i = 0; nums[i]; i++)
        number_field(o, names[i], json_object_get(dp, nums[i]));
    number_array(o, "bucket_counts", json_object_get(dp, "bucketCounts"));
    number_array(o, "explicit_bounds", json_object_get(dp, "explicitBounds"));
    json_t *qv = json_object_get(dp, "quantileValues");
    if (json_is_array(qv) && !field_key(o, NULL, "quantiles")) {
        struct buf keys = {0};
        buf_putc(o, '{');
        json_t *q;
        size_t i;
        int first = 1;
        json_array_foreach(qv, i, q)
        {
            char name[40];
            int n = snprintf(name, sizeof(name), "%g",
                             json_number_value(json_object_get(q, "quantile")));
            if (key_seen(&keys, name, (size_t)n))
                continue; /* the same quantile twice: the first wins */
            buf_printf(o, "%s\"%s\":", first ? "" : ",", name);
            first = 0;
            jsonw_double(o, json_number_value(json_object_get(q, "value")));
        }
        buf_putc(o, '}');
        buf_free(&keys);
    }
    write_attrs(o, json_object_get(dp, "attributes"), NULL);
    finish(c);
}

static void metric(struct ctx *c, json_t *m)
{
    static const char *const kinds[] = {"gauge",   "sum", "histogram", "exponentialHistogram",
                                        "summary", NULL};
    static const char *const types[] = {"gauge",   "sum", "histogram", "exponential_histogram",
                                        "summary", NULL};
    for (int i = 0; kinds[i]; i++) {
        json_t *agg = json_object_get(m, kinds[i]);
        if (!agg)
            continue;
        json_t *dp;
        size_t k;
        json_array_foreach(json_object_get(agg, "dataPoints"), k, dp)
            data_point(c, m, types[i], agg, dp);
    }
}

int otlp_parse(enum otlp_signal sig, const char *body, size_t len, const char *source,
               const struct recv_time *rt, otlp_emit_fn emit, void *ud, const char **err)
{
    static const char *const top[] = {"resourceLogs", "resourceSpans", "resourceMetrics"};
    static const char *const scopes[] = {"scopeLogs", "scopeSpans", "scopeMetrics"};
    static const char *const items[] = {"logRecords", "spans", "metrics"};
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        *err = "body is not valid JSON";
        return -EINVAL;
    }
    json_t *res_list = json_object_get(root, top[sig]);
    if (!json_is_object(root) || (res_list && !json_is_array(res_list))) {
        json_decref(root);
        *err = "body is not an OTLP JSON export request";
        return -EINVAL;
    }
    struct ctx c = {.source = source, .rt = rt, .emit = emit, .ud = ud};
    cur_ctx = &c;
    json_t *res;
    size_t i;
    json_array_foreach(res_list, i, res)
    {
        c.resource = json_object_get(json_object_get(res, "resource"), "attributes");
        json_t *sc;
        size_t j;
        json_array_foreach(json_object_get(res, scopes[sig]), j, sc)
        {
            c.scope = json_object_get(sc, "scope");
            json_t *it;
            size_t k;
            json_array_foreach(json_object_get(sc, items[sig]), k, it)
            {
                if (!json_is_object(it))
                    continue;
                if (sig == OTLP_LOGS)
                    log_record(&c, it);
                else if (sig == OTLP_TRACES)
                    span(&c, it);
                else
                    metric(&c, it);
            }
        }
    }
    buf_free(&c.out);
    buf_free(&c.keys);
    cur_ctx = NULL;
    json_decref(root);
    return c.count;
}
