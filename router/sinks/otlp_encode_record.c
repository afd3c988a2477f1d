/* An event's own fields into its OTLP record, the reverse of collector/otlp_map.c field by field:
 * a log event into a LogRecord, a trace event into a Span, a metric event into a data point of
 * its type (statsd's metric events too, as near as OTLP allows). A member that is not one of the
 * record's own fields, or one the record cannot take (a log's trace_id that is not 32 hex digits),
 * becomes an attribute, keeping its type; a field the record needs and cannot read (a span's ids,
 * a data point's value) refuses the event with the reason. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/sinks/otlp_encode_int.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- log records ---- */

/* The severity number of a level name (the OpenTelemetry log data model's, syslog's included),
 * case-insensitive; 0 when it is none of them. */
static int severity_of(const char *p, size_t n)
{
    static const struct {
        const char *name;
        int number;
    } names[] = {
        {"trace", 1},         {"debug", 5},   {"info", 9},   {"information", 9},
        {"informational", 9}, {"notice", 10}, {"warn", 13},  {"warning", 13},
        {"error", 17},        {"err", 17},    {"crit", 18},  {"critical", 18},
        {"alert", 19},        {"fatal", 21},  {"emerg", 21}, {"emergency", 21},
        {"panic", 21},
    };
    for (size_t i = 0; i < N(names); i++) {
        if (strlen(names[i].name) == n && !strncasecmp(names[i].name, p, n))
            return names[i].number;
    }
    return 0;
}

enum { LOG_LEVEL, LOG_SEVERITY, LOG_MESSAGE, LOG_TRACE_ID, LOG_SPAN_ID, LOG_FIELDS };

int oe_log(struct otlp_encoder *e, const struct oe_event *ev, LogRecord **out)
{
    static const char *const names[LOG_FIELDS] = {"level", "severity_number", "message", "trace_id",
                                                  "span_id"};
    int at[LOG_FIELDS], v;
    oe_own(e, names, LOG_FIELDS, at);
    LogRecord *r = oe_alloc(e, sizeof(*r));
    if (!r)
        return -ENOMEM;
    opentelemetry__proto__logs__v1__log_record__init(r);
    r->time_unix_nano = ev->time;
    /* When spillway received it: what the data model calls the observed time. */
    r->observed_time_unix_nano = ev->received ? ev->received : ev->time;
    if ((v = oe_val(e, at, LOG_LEVEL)) >= 0 && oe_tok(e, v)->type == JSMN_STRING) {
        r->severity_text = oe_string(e, v);
        oe_take(e, at, LOG_LEVEL);
    }
    int64_t sn;
    if ((v = oe_val(e, at, LOG_SEVERITY)) >= 0 && oe_int(e, v, &sn) == 0 && sn > 0 &&
        sn <= INT32_MAX) {
        r->severity_number = (int)sn;
        oe_take(e, at, LOG_SEVERITY);
    } else if (oe_strlen(r->severity_text)) {
        r->severity_number = severity_of(r->severity_text, oe_strlen(r->severity_text));
    }
    if ((v = oe_val(e, at, LOG_MESSAGE)) >= 0) {
        r->body = oe_any(e, v, 0);
        oe_take(e, at, LOG_MESSAGE);
    }
    /* Ids that are not OTLP's (16 and 8 bytes in hex) stay what they are, as attributes. */
    if ((v = oe_val(e, at, LOG_TRACE_ID)) >= 0 && oe_hex_id(e, v, 16, &r->trace_id) == 0)
        oe_take(e, at, LOG_TRACE_ID);
    if ((v = oe_val(e, at, LOG_SPAN_ID)) >= 0 && oe_hex_id(e, v, 8, &r->span_id) == 0)
        oe_take(e, at, LOG_SPAN_ID);
    if (oe_attrs(e, -1, &r->attributes, &r->n_attributes))
        return -ENOMEM;
    *out = r;
    return 0;
}

/* ---- spans ---- */

/* Index of the name token i holds (case-insensitive, the enum's prefix allowed: SPAN_KIND_SERVER
 * as SERVER), or -1. */
static int enum_of(struct otlp_encoder *e, int i, const char *prefix, const char *const *names,
                   size_t n)
{
    const char *p;
    size_t len;
    if (oe_text(e, i, &p, &len))
        return -1;
    size_t plen = strlen(prefix);
    if (len > plen && !strncasecmp(p, prefix, plen))
        p += plen, len -= plen;
    for (size_t k = 0; k < n; k++) {
        if (names[k] && strlen(names[k]) == len && !strncasecmp(names[k], p, len))
            return (int)k;
    }
    return -1;
}

/* Key token k of a span event or link is camel (its proto3 JSON name) or snake. */
static int is_member(struct otlp_encoder *e, int k, const char *camel, const char *snake)
{
    return jsontok_str_eq(&e->tok, k, camel, strlen(camel)) ||
           jsontok_str_eq(&e->tok, k, snake, strlen(snake));
}

static int count32(struct otlp_encoder *e, int v, uint32_t *out)
{
    uint64_t u;
    if (oe_uint(e, v, &u, 1) || u > UINT32_MAX)
        return -1;
    *out = (uint32_t)u;
    return 0;
}

static int span_event(struct otlp_encoder *e, int obj, int idx, SpanEvent **out)
{
    SpanEvent *se = oe_alloc(e, sizeof(*se));
    if (!se)
        return -ENOMEM;
    opentelemetry__proto__trace__v1__span__event__init(se);
    for (int k = obj + 1, m = 0; m < oe_tok(e, obj)->size; m++, k = e->tok.next[k]) {
        int v = k + 1;
        const char *bad = NULL;
        if (is_member(e, k, "timeUnixNano", "time_unix_nano"))
            bad = oe_uint(e, v, &se->time_unix_nano, 1) ? "timeUnixNano: not a time in ns" : NULL;
        else if (is_member(e, k, "name", "name"))
            bad = (se->name = oe_string(e, v)) ? NULL : "name: not a string";
        else if (is_member(e, k, "attributes", "attributes"))
            bad = oe_kvs(e, v, &se->attributes, &se->n_attributes) ? "attributes: not an object"
                                                                   : NULL;
        else if (is_member(e, k, "droppedAttributesCount", "dropped_attributes_count"))
            bad = count32(e, v, &se->dropped_attributes_count) ? "droppedAttributesCount: not a "
                                                                 "32-bit count"
                                                               : NULL;
        if (bad)
            return oe_refuse(e, "trace event: events[%d].%s", idx, bad);
    }
    *out = se;
    return 0;
}

static int span_link(struct otlp_encoder *e, int obj, int idx, SpanLink **out)
{
    SpanLink *l = oe_alloc(e, sizeof(*l));
    if (!l)
        return -ENOMEM;
    opentelemetry__proto__trace__v1__span__link__init(l);
    for (int k = obj + 1, m = 0; m < oe_tok(e, obj)->size; m++, k = e->tok.next[k]) {
        int v = k + 1;
        const char *bad = NULL;
        if (is_member(e, k, "traceId", "trace_id"))
            bad = oe_hex_id(e, v, 16, &l->trace_id) ? "traceId: not 32 hex digits" : NULL;
        else if (is_member(e, k, "spanId", "span_id"))
            bad = oe_hex_id(e, v, 8, &l->span_id) ? "spanId: not 16 hex digits" : NULL;
        else if (is_member(e, k, "traceState", "trace_state"))
            bad = (l->trace_state = oe_string(e, v)) ? NULL : "traceState: not a string";
        else if (is_member(e, k, "attributes", "attributes"))
            bad =
                oe_kvs(e, v, &l->attributes, &l->n_attributes) ? "attributes: not an object" : NULL;
        else if (is_member(e, k, "droppedAttributesCount", "dropped_attributes_count"))
            bad = count32(e, v, &l->dropped_attributes_count) ? "droppedAttributesCount: not a "
                                                                "32-bit count"
                                                              : NULL;
        else if (is_member(e, k, "flags", "flags"))
            bad = count32(e, v, &l->flags) ? "flags: not a 32-bit integer" : NULL;
        if (bad)
            return oe_refuse(e, "trace event: links[%d].%s", idx, bad);
    }
    *out = l;
    return 0;
}

/* A span's events: an array of objects in the proto3 JSON form the input writes. */
static int span_events(struct otlp_encoder *e, int arr, Span *sp)
{
    const jsmntok_t *t = oe_tok(e, arr);
    if (t->type != JSMN_ARRAY)
        return oe_refuse(e, "trace event: events: not an array");
    sp->events = oe_alloc(e, (t->size ? (size_t)t->size : 1) * sizeof(*sp->events));
    if (!sp->events)
        return -ENOMEM;
    for (int c = arr + 1, k = 0; k < t->size; k++, c = e->tok.next[c]) {
        if (oe_tok(e, c)->type != JSMN_OBJECT)
            return oe_refuse(e, "trace event: events[%d]: not an object", k);
        int rc = span_event(e, c, k, &sp->events[k]);
        if (rc)
            return rc;
        sp->n_events++;
    }
    return 0;
}

static int span_links(struct otlp_encoder *e, int arr, Span *sp)
{
    const jsmntok_t *t = oe_tok(e, arr);
    if (t->type != JSMN_ARRAY)
        return oe_refuse(e, "trace event: links: not an array");
    sp->links = oe_alloc(e, (t->size ? (size_t)t->size : 1) * sizeof(*sp->links));
    if (!sp->links)
        return -ENOMEM;
    for (int c = arr + 1, k = 0; k < t->size; k++, c = e->tok.next[c]) {
        if (oe_tok(e, c)->type != JSMN_OBJECT)
            return oe_refuse(e, "trace event: links[%d]: not an object", k);
        int rc = span_link(e, c, k, &sp->links[k]);
        if (rc)
            return rc;
        sp->n_links++;
    }
    return 0;
}

/* The end of a span whose start is known to the microsecond only (timestamp has six fraction
 * digits): with duration_ns and end_time both given, the start is moved within its microsecond so
 * that start + duration falls in end_time's microsecond, which gives the input back the same
 * timestamp, end_time and duration_ns. */
static void span_times(Span *sp, uint64_t start, int has_dur, uint64_t dur, int has_end,
                       uint64_t end)
{
    sp->start_time_unix_nano = start;
    if (has_dur && dur > UINT64_MAX - start) /* a duration past the end of time: not one */
        has_dur = 0;
    if (has_dur && has_end) {
        uint64_t gap = end >= start + dur ? end - start - dur : 0;
        if (gap < 1000)
            sp->start_time_unix_nano = start + gap;
        sp->end_time_unix_nano = sp->start_time_unix_nano + dur;
    } else if (has_dur) {
        sp->end_time_unix_nano = start + dur;
    } else if (has_end) {
        sp->end_time_unix_nano = end;
    } else {
        sp->end_time_unix_nano = start; /* OTLP wants an end: an event without one took no time */
    }
}

enum {
    SPAN_TRACE_ID,
    SPAN_SPAN_ID,
    SPAN_PARENT,
    SPAN_NAME,
    SPAN_KIND,
    SPAN_DURATION,
    SPAN_END,
    SPAN_STATUS,
    SPAN_STATUS_MESSAGE,
    SPAN_EVENTS,
    SPAN_LINKS,
    SPAN_FIELDS
};

/* The span's own fields but its times, events and links. */
static int span_fields(struct otlp_encoder *e, const int *at, Span *sp)
{
    static const char *const kinds[] = {"UNSPECIFIED", "INTERNAL", "SERVER",
                                        "CLIENT",      "PRODUCER", "CONSUMER"};
    static const char *const codes[] = {"UNSET", "OK", "ERROR"};
    int v;
    if ((v = oe_val(e, at, SPAN_TRACE_ID)) < 0 || oe_hex_id(e, v, 16, &sp->trace_id))
        return oe_refuse(e, "trace event: trace_id: %s", v < 0 ? "missing" : "not 32 hex digits");
    if ((v = oe_val(e, at, SPAN_SPAN_ID)) < 0 || oe_hex_id(e, v, 8, &sp->span_id))
        return oe_refuse(e, "trace event: span_id: %s", v < 0 ? "missing" : "not 16 hex digits");
    if ((v = oe_val(e, at, SPAN_PARENT)) >= 0 && !oe_text_is(e, v, "", 0) &&
        oe_hex_id(e, v, 8, &sp->parent_span_id))
        return oe_refuse(e, "trace event: parent_span_id: not 16 hex digits");
    if ((v = oe_val(e, at, SPAN_NAME)) >= 0 && !(sp->name = oe_string(e, v)))
        return oe_refuse(e, "trace event: name: not a string");
    int kind = 0;
    if ((v = oe_val(e, at, SPAN_KIND)) >= 0 &&
        (kind = enum_of(e, v, "SPAN_KIND_", kinds, N(kinds))) < 0)
        return oe_refuse(e, "trace event: span_kind: not INTERNAL, SERVER, CLIENT, PRODUCER or "
                            "CONSUMER");
    sp->kind = kind;
    int code = 0, msg = oe_val(e, at, SPAN_STATUS_MESSAGE);
    if ((v = oe_val(e, at, SPAN_STATUS)) >= 0 &&
        (code = enum_of(e, v, "STATUS_CODE_", codes, N(codes))) < 0)
        return oe_refuse(e, "trace event: status: not UNSET, OK or ERROR");
    if (msg >= 0 && oe_tok(e, msg)->type != JSMN_STRING)
        return oe_refuse(e, "trace event: status_message: not a string");
    if (code || msg >= 0) {
        if (!(sp->status = oe_alloc(e, sizeof(*sp->status))))
            return -ENOMEM;
        opentelemetry__proto__trace__v1__status__init(sp->status);
        sp->status->code = code;
        if (msg >= 0)
            sp->status->message = oe_string(e, msg);
    }
    return 0;
}

int oe_span(struct otlp_encoder *e, const struct oe_event *ev, Span **out)
{
    static const char *const names[SPAN_FIELDS] = {
        "trace_id", "span_id", "parent_span_id", "name",   "span_kind", "duration_ns",
        "end_time", "status",  "status_message", "events", "links"};
    int at[SPAN_FIELDS], v, rc;
    oe_own(e, names, SPAN_FIELDS, at);
    Span *sp = oe_alloc(e, sizeof(*sp));
    if (!sp)
        return -ENOMEM;
    opentelemetry__proto__trace__v1__span__init(sp);
    if ((rc = span_fields(e, at, sp)))
        return rc;
    uint64_t dur = 0, end = 0;
    int has_dur = (v = oe_val(e, at, SPAN_DURATION)) >= 0;
    if (has_dur && oe_uint(e, v, &dur, 0))
        return oe_refuse(e, "trace event: duration_ns: not a non-negative integer");
    int has_end = (v = oe_val(e, at, SPAN_END)) >= 0;
    if (has_end && oe_time(e, v, &end))
        return oe_refuse(e, "trace event: end_time: not an RFC 3339 time");
    span_times(sp, ev->time, has_dur, dur, has_end, end);
    if ((v = oe_val(e, at, SPAN_EVENTS)) >= 0 && (rc = span_events(e, v, sp)))
        return rc;
    if ((v = oe_val(e, at, SPAN_LINKS)) >= 0 && (rc = span_links(e, v, sp)))
        return rc;
    for (int j = 0; j < SPAN_FIELDS; j++)
        oe_take(e, at, j);
    if (oe_attrs(e, -1, &sp->attributes, &sp->n_attributes))
        return -ENOMEM;
    *out = sp;
    return 0;
}
