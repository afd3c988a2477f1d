/* Unit tests of the OTLP decoder (collector/otlp.h) on protobuf: the same telemetry built with
 * the generated protobuf-c structures and packed, and written by hand as OTLP/JSON, must give
 * byte-identical events, for log records, spans (events, links, status) and data points of every
 * metric type (gauge, sum, histogram, exponential histogram, summary); strings keep their NUL
 * bytes; and malformed protobuf (every truncation of a real request, wrong wire types, a 100 MB
 * length prefix, groups, messages nested a million deep, millions of empty messages, random
 * bytes) is refused with a reason, never a crash, and hands nothing over. */
#include "otlp_test.h"

#include "core/jsontok.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__ArrayValue ArrayValue;
typedef Opentelemetry__Proto__Common__V1__KeyValueList KeyValueList;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;

/* ---- building messages (everything from one pool, freed at the end of each test) ---- */

static void *pool[4096];
static int npool;

static void *P(size_t n)
{
    assert_true(npool < (int)N(pool));
    return pool[npool++] = calloc(1, n);
}

static void pool_free(void)
{
    while (npool)
        free(pool[--npool]);
}

static AnyValue *any(void)
{
    AnyValue *v = P(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    return v;
}

static AnyValue *s_val(const char *s)
{
    AnyValue *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    return v;
}

static AnyValue *i_val(int64_t i)
{
    AnyValue *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return v;
}

static AnyValue *d_val(double d)
{
    AnyValue *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = d;
    return v;
}

static AnyValue *b_val(int b)
{
    AnyValue *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = b;
    return v;
}

static AnyValue *bytes_val(const char *s, size_t n)
{
    AnyValue *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    v->bytes_value.data = (uint8_t *)s;
    v->bytes_value.len = n;
    return v;
}

static KeyValue *kv(const char *k, AnyValue *v)
{
    KeyValue *x = P(sizeof(*x));
    opentelemetry__proto__common__v1__key_value__init(x);
    x->key = (char *)k;
    x->value = v;
    return x;
}

/* A NULL-terminated list of pointers as a protobuf-c array: sets *n. */
static void *list(size_t *n, ...)
{
    void *items[64];
    va_list ap;
    va_start(ap, n);
    for (*n = 0; (items[*n] = va_arg(ap, void *)); (*n)++)
        ;
    va_end(ap);
    void **arr = P(sizeof(void *) * (*n + 1));
    memcpy(arr, items, sizeof(void *) * *n);
    return arr;
}

static AnyValue *arr_val(AnyValue *a, AnyValue *b)
{
    ArrayValue *x = P(sizeof(*x));
    opentelemetry__proto__common__v1__array_value__init(x);
    x->values = list(&x->n_values, a, b, NULL);
    AnyValue *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    v->array_value = x;
    return v;
}

static AnyValue *map_val(KeyValue *a, KeyValue *b)
{
    KeyValueList *x = P(sizeof(*x));
    opentelemetry__proto__common__v1__key_value_list__init(x);
    x->values = list(&x->n_values, a, b, NULL);
    AnyValue *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    v->kvlist_value = x;
    return v;
}

static ProtobufCBinaryData id(const char *bytes, size_t n)
{
    return (ProtobufCBinaryData){n, (uint8_t *)bytes};
}

static Resource *resource(void)
{
    Resource *r = P(sizeof(*r));
    opentelemetry__proto__resource__v1__resource__init(r);
    r->attributes = list(&r->n_attributes, kv("service.name", s_val("checkout")),
                         kv("host.name", s_val("web-1")), kv("pod", i_val(7)), NULL);
    r->dropped_attributes_count = 2;
    return r;
}

static Scope *scope(void)
{
    Scope *s = P(sizeof(*s));
    opentelemetry__proto__common__v1__instrumentation_scope__init(s);
    s->name = "lib";
    s->version = "1.2";
    s->attributes = list(&s->n_attributes, kv("lang", s_val("c")), NULL);
    return s;
}

/* The resource and scope above in OTLP/JSON. */
#define JSON_RESOURCE                                                                              \
    "\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":"          \
    "\"checkout\"}},{\"key\":\"host.name\",\"value\":{\"stringValue\":\"web-1\"}},"                \
    "{\"key\":\"pod\",\"value\":{\"intValue\":\"7\"}}],\"droppedAttributesCount\":2}"
#define JSON_SCOPE                                                                                 \
    "\"scope\":{\"name\":\"lib\",\"version\":\"1.2\",\"attributes\":[{\"key\":\"lang\","           \
    "\"value\":{\"stringValue\":\"c\"}}]}"

static uint8_t *packed(const ProtobufCMessage *m, size_t *n)
{
    *n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = P(*n ? *n : 1);
    assert_int_equal(protobuf_c_message_pack(m, b), *n);
    return b;
}

/* Decodes pb[0..pblen) and json, and checks both give the same events, byte for byte, n of
 * them. */
static void same_events(enum otlp_signal sig, const uint8_t *pb, size_t pblen, const char *json,
                        int n)
{
    struct events a, b;
    const char *err;
    int rc = decode(&a, sig, OTLP_PROTOBUF, (const char *)pb, pblen, &err);
    if (rc < 0)
        print_error("protobuf: %s\n", err);
    assert_int_equal(rc, n);
    rc = decode(&b, sig, OTLP_JSON, json, strlen(json), &err);
    if (rc < 0)
        print_error("json: %s\n", err);
    assert_int_equal(rc, n);
    int bad = 0;
    struct jsontok t = {0};
    for (int i = 0; i < n; i++) {
        /* Valid JSON (checked by the strict tokenizer: jansson cannot load integers past
         * INT64_MAX), one object, the same bytes both ways. */
        if (strcmp(a.text[i], b.text[i]) || jsontok_parse(&t, a.text[i], strlen(a.text[i])) ||
            t.tok[0].type != JSMN_OBJECT) {
            print_error("event %d:\n  protobuf %s\n  json     %s\n", i, a.text[i], b.text[i]);
            bad++;
        }
    }
    jsontok_free(&t);
    assert_int_equal(bad, 0);
    events_free(&a);
    events_free(&b);
}

/* ---- the same telemetry in both encodings ---- */

static void test_logs_both_encodings(void **state)
{
    typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;
    LogRecord *r1 = P(sizeof(*r1)), *r2 = P(sizeof(*r2)), *r3 = P(sizeof(*r3));
    opentelemetry__proto__logs__v1__log_record__init(r1);
    opentelemetry__proto__logs__v1__log_record__init(r2);
    opentelemetry__proto__logs__v1__log_record__init(r3);
    r1->time_unix_nano = 1700000000123456789ULL;
    r1->observed_time_unix_nano = 1700000001000000000ULL;
    r1->severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
    r1->severity_text = "Information";
    r1->body = s_val("h\xc3\xa9llo \"quoted\"\n\ttab");
    r1->trace_id = id("\x5b\x8e\xff\xf7\x98\x03\x81\x03\xd2\x69\xb6\x33\x81\x3f\xc6\x0c", 16);
    r1->span_id = id("\xee\xe1\x9b\x7e\xc3\xc1\xb1\x74", 8);
    r1->flags = 1;
    r1->dropped_attributes_count = 3;
    r1->event_name = "evt";
    r1->attributes = list(
        &r1->n_attributes, kv("str", s_val("v")), kv("int", i_val(-9007199254740993LL)),
        kv("dbl", d_val(0.1)), kv("dbl2", d_val(637.704)), kv("big", d_val(1e300)),
        kv("bool", b_val(1)), kv("bytes", bytes_val("hello\0\xff", 7)),
        kv("arr", arr_val(s_val("a"), i_val(1))),
        kv("map", map_val(kv("x", b_val(0)), kv("y", arr_val(any(), d_val(2.5))))),
        kv("empty", any()), kv("message", s_val("an attribute")), kv("str", s_val("again")), NULL);
    r2->observed_time_unix_nano = 1700000002000000000ULL;
    r2->severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_ERROR2;
    r2->body = map_val(kv("k", i_val(1)), kv("k", i_val(2)));
    r3->severity_number = 99; /* not a SeverityNumber: no level, the number kept */
    Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    sl.scope = scope();
    sl.log_records = list(&sl.n_log_records, r1, r2, r3, NULL);
    Opentelemetry__Proto__Logs__V1__ResourceLogs rl =
        OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    rl.resource = resource();
    rl.scope_logs = list(&rl.n_scope_logs, &sl, NULL);
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req.resource_logs = list(&req.n_resource_logs, &rl, NULL);
    size_t n;
    uint8_t *pb = packed(&req.base, &n);
    static const char json[] =
        "{\"resourceLogs\":[{" JSON_RESOURCE ",\"scopeLogs\":[{" JSON_SCOPE ",\"logRecords\":[{"
        "\"timeUnixNano\":\"1700000000123456789\",\"observedTimeUnixNano\":1700000001000000000,"
        "\"severityNumber\":9,\"severityText\":\"Information\","
        "\"body\":{\"stringValue\":\"h\\u00e9llo \\\"quoted\\\"\\n\\ttab\"},"
        "\"traceId\":\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":\"eee19b7ec3c1b174\","
        "\"flags\":1,\"droppedAttributesCount\":3,\"eventName\":\"evt\",\"attributes\":["
        "{\"key\":\"str\",\"value\":{\"stringValue\":\"v\"}},"
        "{\"key\":\"int\",\"value\":{\"intValue\":\"-9007199254740993\"}},"
        "{\"key\":\"dbl\",\"value\":{\"doubleValue\":0.1}},"
        "{\"key\":\"dbl2\",\"value\":{\"doubleValue\":637.704}},"
        "{\"key\":\"big\",\"value\":{\"doubleValue\":1e300}},"
        "{\"key\":\"bool\",\"value\":{\"boolValue\":true}},"
        "{\"key\":\"bytes\",\"value\":{\"bytesValue\":\"aGVsbG8A_w\"}},"
        "{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},"
        "{\"intValue\":1}]}}},"
        "{\"key\":\"map\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"x\",\"value\":"
        "{\"boolValue\":false}},{\"key\":\"y\",\"value\":{\"arrayValue\":{\"values\":[{},"
        "{\"doubleValue\":\"2.5\"}]}}}]}}},"
        "{\"key\":\"empty\",\"value\":{}},"
        "{\"key\":\"message\",\"value\":{\"stringValue\":\"an attribute\"}},"
        "{\"key\":\"str\",\"value\":{\"stringValue\":\"again\"}}]},"
        "{\"observed_time_unix_nano\":\"1700000002000000000\","
        "\"severityNumber\":\"SEVERITY_NUMBER_ERROR2\",\"body\":{\"kvlistValue\":{\"values\":["
        "{\"key\":\"k\",\"value\":{\"intValue\":1}},{\"key\":\"k\",\"value\":{\"intValue\":2}}]}}},"
        "{\"severityNumber\":99}]}]}]}";
    same_events(OTLP_LOGS, pb, n, json, 3);
    /* And what the events are. */
    struct events ev;
    const char *err;
    assert_int_equal(decode(&ev, OTLP_LOGS, OTLP_PROTOBUF, (const char *)pb, n, &err), 3);
    assert_int_equal(
        check_event(
            &ev, 0, "log",
            "{\"timestamp\":\"2023-11-14T22:13:20.123456Z\",\"kind\":\"log\",\"source\":\"" SRC
            "\",\"service\":\"checkout\",\"host\":\"web-1\",\"resource.service.name\":\"checkout\","
            "\"resource.host.name\":\"web-1\",\"resource.pod\":7,\"scope.name\":\"lib\","
            "\"scope.version\":\"1.2\",\"scope.lang\":\"c\",\"level\":\"Information\","
            "\"severity_number\":9,\"message\":\"h\\u00e9llo \\\"quoted\\\"\\n\\ttab\","
            "\"trace_id\":\"5b8efff798038103d269b633813fc60c\",\"span_id\":\"eee19b7ec3c1b174\","
            "\"str\":\"v\",\"int\":-9007199254740993,\"dbl\":0.1,\"dbl2\":637.704,\"big\":1e+300,"
            "\"bool\":true,\"bytes\":\"aGVsbG8A/w==\",\"arr\":[\"a\",1],"
            "\"map\":{\"x\":false,\"y\":[null,2.5]},\"empty\":null,"
            "\"attributes.message\":\"an attribute\",\"attributes.str\":\"again\","
            "\"received_at\":\"" RT_TEXT "\"}"),
        0);
    assert_int_equal(check_event(&ev, 1, "log",
                                 "{\"timestamp\":\"2023-11-14T22:13:22.000000Z\",\"kind\":\"log\","
                                 "\"source\":\"" SRC
                                 "\",\"service\":\"checkout\",\"host\":\"web-1\","
                                 "\"resource.service.name\":\"checkout\",\"resource.host.name\":"
                                 "\"web-1\",\"resource.pod\":7,\"scope.name\":\"lib\","
                                 "\"scope.version\":\"1.2\",\"scope.lang\":\"c\","
                                 "\"level\":\"ERROR\",\"severity_number\":18,"
                                 "\"message\":{\"k\":1},\"received_at\":\"" RT_TEXT "\"}"),
                     0);
    assert_non_null(strstr(ev.text[2], "\"severity_number\":99,"));
    assert_null(strstr(ev.text[2], "\"level\""));
    events_free(&ev);
    pool_free();
}

static void test_spans_both_encodings(void **state)
{
    typedef Opentelemetry__Proto__Trace__V1__Span Span;
    Span *s1 = P(sizeof(*s1)), *s2 = P(sizeof(*s2));
    opentelemetry__proto__trace__v1__span__init(s1);
    opentelemetry__proto__trace__v1__span__init(s2);
    s1->trace_id = id("\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef", 16);
    s1->span_id = id("\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    s1->parent_span_id = id("\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", 8);
    s1->trace_state = "k=v";
    s1->flags = 257;
    s1->name = "POST /pay";
    s1->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
    s1->start_time_unix_nano = 1700000000000000000ULL;
    s1->end_time_unix_nano = 1700000000250000000ULL;
    s1->attributes = list(&s1->n_attributes, kv("http.status", i_val(402)),
                          kv("status", s_val("teapot")), kv("events", s_val("mine")), NULL);
    s1->dropped_attributes_count = 1;
    Opentelemetry__Proto__Trace__V1__Span__Event e1 =
        OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
    Opentelemetry__Proto__Trace__V1__Span__Event e2 =
        OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
    e1.time_unix_nano = 1700000000100000000ULL;
    e1.name = "exception";
    e1.attributes = list(&e1.n_attributes, kv("exception.type", s_val("E")), NULL);
    e1.dropped_attributes_count = 4;
    s1->events = list(&s1->n_events, &e1, &e2, NULL);
    s1->dropped_events_count = 5;
    Opentelemetry__Proto__Trace__V1__Span__Link l1 =
        OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
    l1.trace_id = id("\xaa\xbb", 2);
    l1.span_id = id("\xcc\xdd", 2);
    l1.trace_state = "x=y";
    l1.attributes = list(&l1.n_attributes, kv("a", b_val(1)), NULL);
    l1.dropped_attributes_count = 6;
    l1.flags = 1;
    s1->links = list(&s1->n_links, &l1, NULL);
    Opentelemetry__Proto__Trace__V1__Status st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    st.message = "declined";
    s1->status = &st;
    s2->name = "b";
    s2->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER;
    s2->start_time_unix_nano = 5000000000ULL;
    s2->end_time_unix_nano = 4000000000ULL;
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
        OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.scope = scope();
    ss.spans = list(&ss.n_spans, s1, s2, NULL);
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.resource = resource();
    rs.scope_spans = list(&rs.n_scope_spans, &ss, NULL);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.resource_spans = list(&req.n_resource_spans, &rs, NULL);
    size_t n;
    uint8_t *pb = packed(&req.base, &n);
    static const char json[] =
        "{\"resourceSpans\":[{" JSON_RESOURCE ",\"scopeSpans\":[{" JSON_SCOPE ",\"spans\":[{"
        "\"traceId\":\"0123456789abcdef0123456789ABCDEF\",\"spanId\":\"0102030405060708\","
        "\"parentSpanId\":\"fffefdfcfbfaf9f8\",\"traceState\":\"k=v\",\"flags\":257,"
        "\"name\":\"POST /pay\",\"kind\":\"SPAN_KIND_CLIENT\","
        "\"startTimeUnixNano\":\"1700000000000000000\",\"endTimeUnixNano\":1700000000250000000,"
        "\"attributes\":[{\"key\":\"http.status\",\"value\":{\"intValue\":402}},"
        "{\"key\":\"status\",\"value\":{\"stringValue\":\"teapot\"}},"
        "{\"key\":\"events\",\"value\":{\"stringValue\":\"mine\"}}],"
        "\"droppedAttributesCount\":1,\"events\":[{\"timeUnixNano\":\"1700000000100000000\","
        "\"name\":\"exception\",\"attributes\":[{\"key\":\"exception.type\",\"value\":"
        "{\"stringValue\":\"E\"}}],\"droppedAttributesCount\":4},{}],\"droppedEventsCount\":5,"
        "\"links\":[{\"traceId\":\"aabb\",\"spanId\":\"ccdd\",\"traceState\":\"x=y\","
        "\"attributes\":[{\"key\":\"a\",\"value\":{\"boolValue\":true}}],"
        "\"droppedAttributesCount\":6,\"flags\":1}],"
        "\"status\":{\"code\":2,\"message\":\"declined\"}},"
        "{\"name\":\"b\",\"kind\":5,\"startTimeUnixNano\":5000000000,"
        "\"endTimeUnixNano\":\"4000000000\"}]}]}]}";
    same_events(OTLP_TRACES, pb, n, json, 2);
    struct events ev;
    const char *err;
    assert_int_equal(decode(&ev, OTLP_TRACES, OTLP_PROTOBUF, (const char *)pb, n, &err), 2);
    assert_int_equal(
        check_event(
            &ev, 0, "trace",
            "{\"timestamp\":\"2023-11-14T22:13:20.000000Z\",\"kind\":\"trace\",\"source\":\"" SRC
            "\",\"service\":\"checkout\",\"host\":\"web-1\",\"resource.service.name\":\"checkout\","
            "\"resource.host.name\":\"web-1\",\"resource.pod\":7,\"scope.name\":\"lib\","
            "\"scope.version\":\"1.2\",\"scope.lang\":\"c\","
            "\"trace_id\":\"0123456789abcdef0123456789abcdef\",\"span_id\":\"0102030405060708\","
            "\"parent_span_id\":\"fffefdfcfbfaf9f8\",\"name\":\"POST "
            "/pay\",\"span_kind\":\"CLIENT\","
            "\"duration_ns\":250000000,\"end_time\":\"2023-11-14T22:13:20.250000Z\","
            "\"status\":\"ERROR\",\"status_message\":\"declined\",\"http.status\":402,"
            "\"attributes.status\":\"teapot\",\"attributes.events\":\"mine\","
            "\"events\":[{\"timeUnixNano\":\"1700000000100000000\",\"name\":\"exception\","
            "\"attributes\":{\"exception.type\":\"E\"},\"droppedAttributesCount\":4},{}],"
            "\"links\":[{\"traceId\":\"aabb\",\"spanId\":\"ccdd\",\"traceState\":\"x=y\","
            "\"attributes\":{\"a\":true},\"droppedAttributesCount\":6,\"flags\":1}],"
            "\"received_at\":\"" RT_TEXT "\"}"),
        0);
    events_free(&ev);
    pool_free();
}

/* One metric of each type, each point's events the same both ways. */
static void test_metrics_both_encodings(void **state)
{
    typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
    typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDataPoint;
    NumberDataPoint g1 = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT,
                    g2 = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT,
                    s1 = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
    g1.time_unix_nano = 1700000000000000000ULL;
    g1.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    g1.as_double = 0.25;
    g1.attributes = list(&g1.n_attributes, kv("value", s_val("mine")), NULL);
    g2.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    g2.as_int = -3;
    g2.flags = 1;
    s1.start_time_unix_nano = 1690000000000000000ULL;
    s1.time_unix_nano = 1700000000000000000ULL;
    s1.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    s1.as_int = INT64_MAX;
    Opentelemetry__Proto__Metrics__V1__Gauge gauge = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
    gauge.data_points = list(&gauge.n_data_points, &g1, &g2, NULL);
    Opentelemetry__Proto__Metrics__V1__Sum sum = OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
    sum.data_points = list(&sum.n_data_points, &s1, NULL);
    sum.aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
    sum.is_monotonic = 1;
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint h1 =
        OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
    h1.count = 4;
    h1._sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    h1.sum = 10.5;
    h1._min_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN;
    h1.min = -1;
    h1._max_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX_MAX;
    h1.max = 7.75;
    uint64_t buckets[] = {1, 0, 3};
    double bounds[] = {0.5, 2.5};
    h1.bucket_counts = buckets;
    h1.n_bucket_counts = 3;
    h1.explicit_bounds = bounds;
    h1.n_explicit_bounds = 2;
    Opentelemetry__Proto__Metrics__V1__Exemplar ex =
        OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__INIT;
    ex.trace_id = id("\x01\x02", 2);
    ex.value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
    ex.as_double = 1;
    h1.exemplars = list(&h1.n_exemplars, &ex, NULL);
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint h2 =
        OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT; /* nothing but the count */
    h2.count = 18446744073709551615ULL;
    Opentelemetry__Proto__Metrics__V1__Histogram hist =
        OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT;
    hist.data_points = list(&hist.n_data_points, &h1, &h2, NULL);
    hist.aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint e1 =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets pos =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets neg =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT;
    uint64_t pc[] = {4, 5};
    pos.offset = -2;
    pos.bucket_counts = pc;
    pos.n_bucket_counts = 2;
    e1.count = 12;
    e1._sum_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM;
    e1.sum = 3.5;
    e1.scale = -3;
    e1.zero_count = 3;
    e1.zero_threshold = 1e-9;
    e1.positive = &pos;
    e1.negative = &neg;
    e1._max_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MAX_MAX;
    e1.max = 9;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogram exph =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM__INIT;
    exph.data_points = list(&exph.n_data_points, &e1, NULL);
    exph.aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint q1 =
        OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__INIT;
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile v1 =
        OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__VALUE_AT_QUANTILE__INIT;
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile v2 =
        OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__VALUE_AT_QUANTILE__INIT;
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile v3 =
        OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__VALUE_AT_QUANTILE__INIT;
    v1.quantile = 0.5;
    v1.value = 1;
    v2.quantile = 0.99;
    v2.value = 2.5;
    v3.quantile = 0.5; /* the same quantile twice: the first wins */
    v3.value = 100;
    q1.count = 2;
    q1.sum = 3;
    q1.quantile_values = list(&q1.n_quantile_values, &v1, &v2, &v3, NULL);
    Opentelemetry__Proto__Metrics__V1__Summary summary =
        OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY__INIT;
    summary.data_points = list(&summary.n_data_points, &q1, NULL);
    Metric m[5];
    for (int i = 0; i < 5; i++)
        opentelemetry__proto__metrics__v1__metric__init(&m[i]);
    m[0].name = "temp";
    m[0].unit = "Cel";
    m[0].description = "a gauge";
    m[0].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m[0].gauge = &gauge;
    m[1].name = "reqs";
    m[1].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m[1].sum = &sum;
    m[2].name = "lat";
    m[2].unit = "ms";
    m[2].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m[2].histogram = &hist;
    m[3].name = "exp";
    m[3].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    m[3].exponential_histogram = &exph;
    m[4].name = "q";
    m[4].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
    m[4].summary = &summary;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm =
        OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
    sm.scope = scope();
    sm.metrics = list(&sm.n_metrics, &m[0], &m[1], &m[2], &m[3], &m[4], NULL);
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm =
        OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
    rm.resource = resource();
    rm.scope_metrics = list(&rm.n_scope_metrics, &sm, NULL);
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    req.resource_metrics = list(&req.n_resource_metrics, &rm, NULL);
    size_t n;
    uint8_t *pb = packed(&req.base, &n);
    static const char json[] =
        "{\"resourceMetrics\":[{" JSON_RESOURCE ",\"scopeMetrics\":[{" JSON_SCOPE ",\"metrics\":["
        "{\"name\":\"temp\",\"unit\":\"Cel\",\"description\":\"a "
        "gauge\",\"gauge\":{\"dataPoints\":["
        "{\"timeUnixNano\":\"1700000000000000000\",\"asDouble\":0.25,\"attributes\":[{\"key\":"
        "\"value\",\"value\":{\"stringValue\":\"mine\"}}]},{\"asInt\":\"-3\",\"flags\":1}]}},"
        "{\"name\":\"reqs\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,"
        "\"dataPoints\":[{\"startTimeUnixNano\":1690000000000000000,"
        "\"timeUnixNano\":\"1700000000000000000\",\"asInt\":\"9223372036854775807\"}]}},"
        "{\"name\":\"lat\",\"unit\":\"ms\",\"histogram\":{\"aggregationTemporality\":"
        "\"AGGREGATION_TEMPORALITY_DELTA\",\"dataPoints\":[{\"count\":4,"
        "\"sum\":10.5,\"min\":-1,\"max\":7.75,\"bucketCounts\":[\"1\",0,\"3\"],"
        "\"explicitBounds\":[0.5,2.5],\"exemplars\":[{\"traceId\":\"0102\",\"asDouble\":1}]},"
        "{\"count\":\"18446744073709551615\"}]}},"
        "{\"name\":\"exp\",\"exponentialHistogram\":{\"aggregationTemporality\":2,\"dataPoints\":[{"
        "\"count\":\"12\",\"sum\":3.5,\"scale\":-3,\"zeroCount\":\"3\",\"zeroThreshold\":1e-9,"
        "\"positive\":{\"offset\":-2,\"bucketCounts\":[\"4\",\"5\"]},\"negative\":{},\"max\":9}]}},"
        "{\"name\":\"q\",\"summary\":{\"dataPoints\":[{\"count\":\"2\",\"sum\":3,"
        "\"quantileValues\":[{\"quantile\":0.5,\"value\":1},{\"quantile\":0.99,\"value\":2.5},"
        "{\"quantile\":0.5,\"value\":100}]}]}}]}]}]}";
    same_events(OTLP_METRICS, pb, n, json, 7);
    struct events ev;
    const char *err;
    assert_int_equal(decode(&ev, OTLP_METRICS, OTLP_PROTOBUF, (const char *)pb, n, &err), 7);
#define HEAD                                                                                       \
    "\"kind\":\"metric\",\"source\":\"" SRC "\",\"service\":\"checkout\",\"host\":\"web-1\","      \
    "\"resource.service.name\":\"checkout\",\"resource.host.name\":\"web-1\","                     \
    "\"resource.pod\":7,\"scope.name\":\"lib\",\"scope.version\":\"1.2\",\"scope.lang\":\"c\","
    int bad = 0;
    bad += check_event(&ev, 0, "metric",
                       "{\"timestamp\":\"2023-11-14T22:13:20.000000Z\"," HEAD
                       "\"name\":\"temp\",\"unit\":\"Cel\",\"description\":\"a gauge\","
                       "\"metric_type\":\"gauge\",\"value\":0.25,\"labels\":{\"value\":\"mine\"},"
                       "\"received_at\":\"" RT_TEXT "\"}");
    bad += check_event(
        &ev, 1, "metric",
        "{\"timestamp\":\"" RT_TEXT "\"," HEAD
        "\"name\":\"temp\",\"unit\":\"Cel\",\"description\":\"a gauge\","
        "\"metric_type\":\"gauge\",\"value\":-3,\"labels\":{},\"received_at\":\"" RT_TEXT "\"}");
    bad +=
        check_event(&ev, 2, "metric",
                    "{\"timestamp\":\"2023-11-14T22:13:20.000000Z\"," HEAD
                    "\"name\":\"reqs\",\"metric_type\":\"counter\",\"temporality\":\"cumulative\","
                    "\"start_time\":\"2023-07-22T04:26:40.000000Z\","
                    "\"value\":9223372036854775807,\"labels\":{},\"received_at\":\"" RT_TEXT "\"}");
    bad +=
        check_event(&ev, 3, "metric",
                    "{\"timestamp\":\"" RT_TEXT "\"," HEAD
                    "\"name\":\"lat\",\"unit\":\"ms\",\"metric_type\":\"histogram\","
                    "\"temporality\":\"delta\",\"count\":4,\"sum\":10.5,"
                    "\"min\":-1,\"max\":7.75,\"bucket_counts\":[1,0,3],"
                    "\"explicit_bounds\":[0.5,2.5],\"labels\":{},\"received_at\":\"" RT_TEXT "\"}");
    bad += check_event(&ev, 5, "metric",
                       "{\"timestamp\":\"" RT_TEXT "\"," HEAD
                       "\"name\":\"exp\",\"metric_type\":\"exponential_histogram\","
                       "\"temporality\":\"cumulative\",\"count\":12,\"sum\":3.5,\"max\":9,"
                       "\"scale\":-3,\"zero_count\":3,\"zero_threshold\":1e-09,"
                       "\"positive\":{\"offset\":-2,\"bucket_counts\":[4,5]},"
                       "\"negative\":{\"offset\":0,\"bucket_counts\":[]},"
                       "\"labels\":{},\"received_at\":\"" RT_TEXT "\"}");
    bad += check_event(
        &ev, 6, "metric",
        "{\"timestamp\":\"" RT_TEXT "\"," HEAD
        "\"name\":\"q\",\"metric_type\":\"summary\",\"count\":2,\"sum\":3,"
        "\"quantiles\":{\"0.5\":1,\"0.99\":2.5},\"labels\":{},\"received_at\":\"" RT_TEXT "\"}");
#undef HEAD
    assert_int_equal(bad, 0);
    /* The largest count keeps every digit (jansson cannot read it: compare the text). */
    assert_non_null(strstr(ev.text[4], "\"metric_type\":\"histogram\",\"temporality\":\"delta\","
                                       "\"count\":18446744073709551615,\"labels\":{},"
                                       "\"received_at\""));
    events_free(&ev);
    pool_free();
}

/* A string may hold U+0000 (valid UTF-8): protobuf-c keeps it (its strings are C strings, the
 * decoder knows their length from its arena), and the event escapes it. */
static void test_nul_in_protobuf_string(void **state)
{
    Opentelemetry__Proto__Logs__V1__LogRecord r = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    r.body = s_val("a#b");
    r.attributes = list(&r.n_attributes, kv("k#", s_val("#")), NULL);
    Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    sl.log_records = list(&sl.n_log_records, &r, NULL);
    Opentelemetry__Proto__Logs__V1__ResourceLogs rl =
        OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    rl.scope_logs = list(&rl.n_scope_logs, &sl, NULL);
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req.resource_logs = list(&req.n_resource_logs, &rl, NULL);
    size_t n;
    uint8_t *pb = packed(&req.base, &n);
    for (size_t i = 0; i < n; i++)
        pb[i] = pb[i] == '#' ? 0 : pb[i]; /* protobuf-c packs C strings: NULs put in after */
    struct events ev;
    const char *err;
    assert_int_equal(decode(&ev, OTLP_LOGS, OTLP_PROTOBUF, (const char *)pb, n, &err), 1);
    assert_non_null(strstr(ev.text[0], "\"message\":\"a\\u0000b\",\"k\\u0000\":\"\\u0000\","));
    events_free(&ev);
    pool_free();
}

/* ---- malformed protobuf ---- */

static int refused(const char *what, const void *body, size_t len, enum otlp_signal sig,
                   int want_rc, const char *want_why)
{
    struct events ev;
    const char *err;
    int rc = decode(&ev, sig, OTLP_PROTOBUF, body, len, &err);
    int ok = rc == want_rc && (!want_why || strstr(err, want_why));
    if (!ok)
        print_error("%s: rc %d (%s), want %d with \"%s\"\n", what, rc, rc < 0 ? err : "", want_rc,
                    want_why ? want_why : "");
    events_free(&ev);
    return ok ? 0 : 1;
}

static void test_malformed_protobuf(void **state)
{
    int bad = 0;
    /* resource_logs (field 1) as a 32-bit value, not a message. */
    static const uint8_t wire5[] = {0x0d, 1, 2, 3, 4};
    bad += refused("wrong wire type", wire5, sizeof(wire5), OTLP_LOGS, -EINVAL,
                   "field resource_logs of opentelemetry.proto.collector.logs.v1."
                   "ExportLogsServiceRequest has wire type 32-bit, not length-delimited");
    /* A LogRecord's time (fixed64) as a varint, deep inside. */
    static const uint8_t wire0[] = {0x0a, 6, 0x12, 4, 0x12, 2, 0x08, 1};
    bad += refused("wrong wire type inside a record", wire0, sizeof(wire0), OTLP_LOGS, -EINVAL,
                   "field time_unix_nano of opentelemetry.proto.logs.v1.LogRecord has wire type "
                   "varint, not 64-bit (offset 6)");
    /* A length prefix of 100 MB in a body of a few bytes. */
    static const uint8_t huge[] = {0x0a, 0x80, 0xc2, 0xd7, 0x2f, 0x12, 0x00};
    bad += refused("100 MB length prefix", huge, sizeof(huge), OTLP_LOGS, -EINVAL,
                   "length 100000000 at offset 0 in opentelemetry.proto.collector.logs.v1."
                   "ExportLogsServiceRequest runs past the end of the message (2 bytes left)");
    static const uint8_t group[] = {0x0b, 0x0c};
    bad += refused("group", group, sizeof(group), OTLP_TRACES, -EINVAL, "group start");
    static const uint8_t cut_varint[] = {0x0a, 0x02, 0x08, 0xff};
    bad += refused("cut varint", cut_varint, sizeof(cut_varint), OTLP_METRICS, -EINVAL, "");
    static const uint8_t field0[] = {0x00, 0x01};
    bad += refused("field number 0", field0, sizeof(field0), OTLP_LOGS, -EINVAL, "bad field tag");
    /* Unknown fields of any valid wire type are skipped, as in a newer sender's message. */
    static const uint8_t unknown[] = {0xf8, 0x07, 0x01, 0x81, 0x08, 1,    2,   3,
                                      4,    5,    6,    7,    8,    0x0a, 0x00};
    bad += refused("unknown fields", unknown, sizeof(unknown), OTLP_LOGS, 0, NULL);
    /* A message that is a JSON body. */
    bad += refused("JSON sent as protobuf", "{\"resourceLogs\":[]}", 19, OTLP_LOGS, -EINVAL,
                   "protobuf: ");
    assert_int_equal(bad, 0);
}

/* Every prefix of a real request either decodes (a shorter valid request) or is refused with
 * a reason; never a crash (this runs under the sanitizers in `make test-sanitize`). */
static void test_every_truncation(void **state)
{
    Opentelemetry__Proto__Logs__V1__LogRecord r = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    r.time_unix_nano = 1700000000000000000ULL;
    r.body = map_val(kv("x", arr_val(s_val("y"), d_val(1.5))), kv("z", i_val(-1)));
    r.trace_id = id("0123456789abcdef", 16);
    r.attributes = list(&r.n_attributes, kv("a", s_val("b")), NULL);
    Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    sl.scope = scope();
    sl.log_records = list(&sl.n_log_records, &r, &r, NULL);
    Opentelemetry__Proto__Logs__V1__ResourceLogs rl =
        OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    rl.resource = resource();
    rl.scope_logs = list(&rl.n_scope_logs, &sl, NULL);
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req.resource_logs = list(&req.n_resource_logs, &rl, NULL);
    size_t n;
    uint8_t *pb = packed(&req.base, &n);
    int refusals = 0;
    for (size_t cut = 1; cut < n; cut++) {
        uint8_t *copy = malloc(cut); /* exactly cut bytes: ASan sees a read past them */
        memcpy(copy, pb, cut);
        struct events ev;
        const char *err;
        int rc = decode(&ev, OTLP_LOGS, OTLP_PROTOBUF, (const char *)copy, cut, &err);
        assert_true(rc >= 0 || rc == -EINVAL);
        refusals += rc < 0;
        events_free(&ev);
        free(copy);
    }
    /* The request is one top-level message: every cut leaves it short. */
    assert_int_equal(refusals, (int)n - 1);
    pool_free();
}

/* Messages nested a million deep (AnyValue in ArrayValue in AnyValue...) would take protobuf-c's
 * recursion past the stack: refused at OTLP_MAX_DEPTH. */
static void test_nesting_without_end(void **state)
{
    size_t cap = 8 << 20, at = cap;
    uint8_t *b = malloc(cap);
    /* Built from the inside out: each level a tag and a length before what it holds. */
    for (int level = 0; level < 1000000 && at > 64; level++) {
        size_t inner = cap - at;
        uint8_t tag = level % 2 ? 0x2a /* AnyValue.array_value */ : 0x0a /* ArrayValue.values */;
        uint8_t len[10];
        int nl = 0;
        for (size_t v = inner; nl == 0 || v; v >>= 7)
            len[nl++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
        at -= (size_t)nl;
        memcpy(b + at, len, (size_t)nl);
        b[--at] = tag;
        if (level % 2 == 1 && cap - at > 4 << 20)
            break;
    }
    /* ...as the body of a log record in a request. */
    size_t inner = cap - at;
    struct buf w = {0};
    const uint8_t prefix_tags[] = {0x0a, 0x12, 0x12, 0x2a}; /* request, resource, scope, record */
    size_t sizes[4];
    sizes[3] = inner;
    for (int i = 2; i >= 0; i--)
        sizes[i] = sizes[i + 1] + 1 + 4;
    for (int i = 0; i < 4; i++) {
        uint8_t len[5] = {(uint8_t)(sizes[i] | 0x80), (uint8_t)(sizes[i] >> 7 | 0x80),
                          (uint8_t)(sizes[i] >> 14 | 0x80), (uint8_t)(sizes[i] >> 21 & 0x7f)};
        buf_putc(&w, (char)prefix_tags[i]);
        buf_append(&w, len, 4);
    }
    buf_append(&w, b + at, inner);
    free(b);
    int bad = refused("nested without end", w.data, w.len, OTLP_LOGS, -EINVAL,
                      "messages nested deeper than 100");
    buf_free(&w);
    assert_int_equal(bad, 0);
}

/* A body of millions of empty log records (two bytes each, some 150 decoded) would take gigabytes
 * of memory: refused as too large once it passes OTLP_MEMORY_PER_BYTE times its size. The same
 * records a thousand at a time decode. */
static void test_decode_memory_bound(void **state)
{
    struct buf w = {0};
    size_t records = 2000000;
    size_t scope = records * 2, res = scope + 1 + 4;
    uint8_t head[] = {0x0a,
                      (uint8_t)(res | 0x80),
                      (uint8_t)(res >> 7 | 0x80),
                      (uint8_t)(res >> 14 | 0x80),
                      (uint8_t)(res >> 21 & 0x7f),
                      0x12,
                      (uint8_t)(scope | 0x80),
                      (uint8_t)(scope >> 7 | 0x80),
                      (uint8_t)(scope >> 14 | 0x80),
                      (uint8_t)(scope >> 21 & 0x7f)};
    buf_append(&w, head, sizeof(head));
    for (size_t i = 0; i < records; i++)
        buf_append(&w, "\x12\x00", 2);
    int bad = refused("two million empty records", w.data, w.len, OTLP_LOGS, -E2BIG,
                      "decodes into more than");
    buf_free(&w);
    static const uint8_t small[] = {0x0a, 0x06, 0x12, 0x04, 0x12, 0x00, 0x12, 0x00};
    bad += refused("two empty records", small, sizeof(small), OTLP_LOGS, 2, NULL);
    assert_int_equal(bad, 0);
}

static void put_varint(struct buf *b, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        buf_putc(b, (char)(c | (v ? 0x80 : 0)));
    } while (v);
}

/* A resource of one 1 MB attribute over 20,000 empty log records: a 1 MB body whose events
 * would copy the attribute 20,000 times (20 GB on the collector's thread). Refused before a
 * single event is made, at once. */
static void test_expansion_bound(void **state)
{
    size_t big = 1000000, records = 20000;
    struct buf val = {0}, kvb = {0}, resb = {0}, scope = {0}, rl = {0}, req = {0};
    buf_putc(&val, 0x0a); /* AnyValue.string_value */
    put_varint(&val, big);
    for (size_t i = 0; i < big; i++)
        buf_putc(&val, 'x');
    buf_append(&kvb, "\x0a\x01k\x12", 4); /* KeyValue: key "k", value */
    put_varint(&kvb, val.len);
    buf_append(&kvb, val.data, val.len);
    buf_putc(&resb, 0x0a); /* Resource.attributes */
    put_varint(&resb, kvb.len);
    buf_append(&resb, kvb.data, kvb.len);
    for (size_t i = 0; i < records; i++) /* ScopeLogs.log_records, empty */
        buf_append(&scope, "\x12\x00", 2);
    buf_putc(&rl, 0x0a); /* ResourceLogs.resource */
    put_varint(&rl, resb.len);
    buf_append(&rl, resb.data, resb.len);
    buf_putc(&rl, 0x12); /* ResourceLogs.scope_logs */
    put_varint(&rl, scope.len);
    buf_append(&rl, scope.data, scope.len);
    buf_putc(&req, 0x0a); /* ExportLogsServiceRequest.resource_logs */
    put_varint(&req, rl.len);
    buf_append(&req, rl.data, rl.len);
    int64_t t0 = time_mono_ns();
    int bad = refused("a big resource over many records", req.data, req.len, OTLP_LOGS, -E2BIG,
                      "repeated in every record");
    assert_true(time_mono_ns() - t0 < 5000000000LL);
    /* The same resource over 10 records is fine. */
    buf_reset(&scope);
    for (size_t i = 0; i < 10; i++)
        buf_append(&scope, "\x12\x00", 2);
    buf_reset(&rl);
    buf_putc(&rl, 0x0a);
    put_varint(&rl, resb.len);
    buf_append(&rl, resb.data, resb.len);
    buf_putc(&rl, 0x12);
    put_varint(&rl, scope.len);
    buf_append(&rl, scope.data, scope.len);
    buf_reset(&req);
    buf_putc(&req, 0x0a);
    put_varint(&req, rl.len);
    buf_append(&req, rl.data, rl.len);
    bad += refused("the same over ten records", req.data, req.len, OTLP_LOGS, 10, NULL);
    assert_int_equal(bad, 0);
    buf_free(&val);
    buf_free(&kvb);
    buf_free(&resb);
    buf_free(&scope);
    buf_free(&rl);
    buf_free(&req);
}

/* Random bytes: refused or decoded, nothing else. */
static void test_random_bytes(void **state)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    uint8_t b[256];
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(x % sizeof(b));
        for (size_t k = 0; k < n; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[k] = (uint8_t)x;
        }
        struct events ev;
        const char *err;
        int rc = decode(&ev, (enum otlp_signal)(i % 3), OTLP_PROTOBUF, (const char *)b, n, &err);
        assert_true(rc >= 0 || rc == -EINVAL);
        events_free(&ev);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logs_both_encodings),
        cmocka_unit_test(test_spans_both_encodings),
        cmocka_unit_test(test_metrics_both_encodings),
        cmocka_unit_test(test_nul_in_protobuf_string),
        cmocka_unit_test(test_malformed_protobuf),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_nesting_without_end),
        cmocka_unit_test(test_decode_memory_bound),
        cmocka_unit_test(test_expansion_bound),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests_name("otlp_pb", tests, NULL, NULL);
}
