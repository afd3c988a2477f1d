/* Unit tests of the OTLP encoder (router/sinks/otlp_encode.h), the otlp sink's mapping of
 * canonical events back into OTLP. What must hold: the events the OTLP input makes of a request
 * (collector/otlp.h), encoded and decoded again by that input, are byte for byte the same events,
 * in protobuf and in OTLP/JSON, for log records, spans and every metric type; events of one
 * resource and scope share one ResourceLogs/ScopeLogs (and data points of one metric one Metric);
 * events from other inputs (NDJSON, statsd) get the OTLP form docs/sinks.md describes; and an
 * event with no OTLP form is refused with a reason, leaving nothing behind in the request. */
#include "otlp_test.h"

#include <math.h>

#include "router/sinks/otlp_encode.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsRequest;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceRequest;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsRequest;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;

static const enum otlp_encode_signal SIG[] = {
    [OTLP_LOGS] = OTLP_ENCODE_LOGS,
    [OTLP_TRACES] = OTLP_ENCODE_TRACES,
    [OTLP_METRICS] = OTLP_ENCODE_METRICS,
};

/* Encodes the events ev (all of signal sig) in format fmt into out. */
static void encode(const struct events *ev, enum otlp_signal sig, enum otlp_encode_format fmt,
                   struct buf *out)
{
    struct otlp_encoder *e = otlp_encoder_new();
    assert_non_null(e);
    for (int i = 0; i < ev->n; i++) {
        const char *why;
        int rc = otlp_encoder_add(e, ev->text[i], strlen(ev->text[i]), &why);
        if (rc < 0)
            print_error("event %d refused (%s): %s\n", i, why, ev->text[i]);
        assert_int_equal(rc, SIG[sig]);
    }
    assert_int_equal(otlp_encoder_count(e, SIG[sig]), (size_t)ev->n);
    buf_reset(out);
    assert_int_equal(otlp_encoder_write(e, SIG[sig], fmt, out), 0);
    otlp_encoder_free(e);
}

/* The events of body (OTLP/JSON of signal sig), encoded in both formats and decoded again, must
 * be the same bytes: n events. */
static void round_trip(enum otlp_signal sig, const char *body, int n)
{
    struct events first, again;
    const char *err;
    int rc = decode(&first, sig, OTLP_JSON, body, strlen(body), &err);
    if (rc < 0)
        print_error("the test's body does not decode: %s\n", err);
    for (int i = 0; i < first.ninvalid; i++)
        print_error("the test's record %d does not decode: %s\n", i, first.why[i]);
    assert_int_equal(first.ninvalid, 0);
    assert_int_equal(rc, n);
    struct buf out = {0};
    for (int fmt = OTLP_ENCODE_PROTOBUF; fmt <= OTLP_ENCODE_JSON; fmt++) {
        encode(&first, sig, fmt, &out);
        rc = decode(&again, sig, fmt == OTLP_ENCODE_JSON ? OTLP_JSON : OTLP_PROTOBUF, out.data,
                    out.len, &err);
        if (rc < 0)
            print_error("%s: the encoded request does not decode: %s\n",
                        fmt == OTLP_ENCODE_JSON ? "json" : "protobuf", err);
        assert_int_equal(rc, n);
        int bad = 0;
        for (int i = 0; i < n; i++) {
            if (strcmp(first.text[i], again.text[i])) {
                print_error("%s, event %d:\n  sent %s\n  back %s\n",
                            fmt == OTLP_ENCODE_JSON ? "json" : "protobuf", i, first.text[i],
                            again.text[i]);
                bad++;
            }
        }
        assert_int_equal(bad, 0);
        events_free(&again);
    }
    buf_free(&out);
    events_free(&first);
}

#define RESOURCE_A                                                                                 \
    "\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":"          \
    "\"checkout\"}},{\"key\":\"host.name\",\"value\":{\"stringValue\":\"web-1\"}},"                \
    "{\"key\":\"k8s.pod.uid\",\"value\":{\"intValue\":\"42\"}},{\"key\":\"tags\",\"value\":"       \
    "{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},{\"doubleValue\":1.5}]}}}]}"
#define RESOURCE_B                                                                                 \
    "\"resource\":{\"attributes\":[{\"key\":\"host.name\",\"value\":{\"stringValue\":\"db-2\"}}]}"
#define SCOPE_A                                                                                    \
    "\"scope\":{\"name\":\"lib\",\"version\":\"2.0\",\"attributes\":[{\"key\":\"lang\","           \
    "\"value\":{\"stringValue\":\"c\"}}]}"
#define SCOPE_B "\"scope\":{\"name\":\"other\"}"

static void test_logs_round_trip(void **state)
{
    static const char body[] =
        "{\"resourceLogs\":[{" RESOURCE_A ",\"scopeLogs\":[{" SCOPE_A ",\"logRecords\":["
        "{\"timeUnixNano\":\"1700000000123456789\",\"severityNumber\":17,\"severityText\":"
        "\"ERROR\",\"traceId\":\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":"
        "\"EEE19B7EC3C1B174\",\"body\":{\"stringValue\":\"h\\u00e9llo \\\"q\\\"\\n\\u0001\"},"
        "\"attributes\":["
        "{\"key\":\"http.status\",\"value\":{\"intValue\":\"402\"}},"
        "{\"key\":\"neg\",\"value\":{\"intValue\":\"-9007199254740993\"}},"
        "{\"key\":\"ratio\",\"value\":{\"doubleValue\":0.1}},"
        "{\"key\":\"whole\",\"value\":{\"doubleValue\":3}},"
        "{\"key\":\"big\",\"value\":{\"doubleValue\":1e300}},"
        "{\"key\":\"ok\",\"value\":{\"boolValue\":false}},"
        "{\"key\":\"blob\",\"value\":{\"bytesValue\":\"aGVsbG8=\"}},"
        "{\"key\":\"empty\",\"value\":{}},"
        "{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},"
        "{\"boolValue\":true},{},{\"kvlistValue\":{\"values\":[{\"key\":\"z\",\"value\":"
        "{\"intValue\":1}}]}}]}}},"
        "{\"key\":\"map\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"x\",\"value\":"
        "{\"stringValue\":\"y\"}},{\"key\":\"n\",\"value\":{\"kvlistValue\":{}}}]}}},"
        "{\"key\":\"message\",\"value\":{\"stringValue\":\"an attribute\"}},"
        "{\"key\":\"http.status\",\"value\":{\"stringValue\":\"again\"}},"
        "{\"key\":\"severity_number\",\"value\":{\"intValue\":\"3\"}},"
        "{\"key\":\"k\\\"ey\",\"value\":{\"stringValue\":\"escaped key\"}}]},"
        "{\"observedTimeUnixNano\":\"1700000001000000000\",\"severityNumber\":9,"
        "\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"user\",\"value\":{\"stringValue\":"
        "\"u1\"}},{\"key\":\"n\",\"value\":{\"intValue\":7}}]}}},"
        "{\"timeUnixNano\":\"1700000002000000000\",\"severityText\":\"Information\","
        "\"severityNumber\":10,\"body\":{\"intValue\":\"12\"}}]},"
        "{" SCOPE_B ",\"logRecords\":[{\"timeUnixNano\":\"1700000003000000000\","
        "\"severityNumber\":99,\"body\":{\"arrayValue\":{\"values\":[{\"doubleValue\":2.5}]}}}]},"
        "{\"logRecords\":[{\"timeUnixNano\":\"1700000004000000000\"}]}]},"
        "{" RESOURCE_B ",\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"1700000005000000000\","
        "\"severityNumber\":21,\"spanId\":\"0102030405060708\"}]}]},"
        "{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"1700000006000000000\","
        "\"body\":{\"stringValue\":\"no resource\"}}]}]}]}";
    round_trip(OTLP_LOGS, body, 7);
}

static void test_spans_round_trip(void **state)
{
    static const char body[] =
        "{\"resourceSpans\":[{" RESOURCE_A ",\"scopeSpans\":[{" SCOPE_A ",\"spans\":["
        "{\"traceId\":\"0123456789abcdef0123456789ABCDEF\",\"spanId\":\"0102030405060708\","
        "\"parentSpanId\":\"fffefdfcfbfaf9f8\",\"name\":\"POST /pay\",\"kind\":3,"
        "\"startTimeUnixNano\":\"1700000000000000123\",\"endTimeUnixNano\":\"1700000000250000456\","
        "\"status\":{\"code\":2,\"message\":\"declined\"},"
        "\"attributes\":[{\"key\":\"http.status\",\"value\":{\"intValue\":\"402\"}},"
        "{\"key\":\"status\",\"value\":{\"stringValue\":\"teapot\"}},"
        "{\"key\":\"events\",\"value\":{\"stringValue\":\"mine\"}},"
        "{\"key\":\"name\",\"value\":{\"stringValue\":\"attr name\"}}],"
        "\"events\":[{\"timeUnixNano\":\"1700000000100000000\",\"name\":\"retry\","
        "\"attributes\":[{\"key\":\"attempt\",\"value\":{\"intValue\":\"2\"}}],"
        "\"droppedAttributesCount\":1},{\"name\":\"bare\"}],"
        "\"links\":[{\"traceId\":\"0123456789abcdef0123456789abcdef\",\"spanId\":"
        "\"1112131415161718\",\"traceState\":\"k=v\",\"attributes\":[{\"key\":\"l\",\"value\":"
        "{\"boolValue\":true}}],\"droppedAttributesCount\":2,\"flags\":257}]},"
        "{\"traceId\":\"0123456789abcdef0123456789abcdef\",\"spanId\":\"0102030405060709\","
        "\"name\":\"child\",\"kind\":1,\"startTimeUnixNano\":\"1700000000000000999\","
        "\"endTimeUnixNano\":\"1700000000000001000\",\"status\":{\"code\":1}},"
        "{\"traceId\":\"0123456789abcdef0123456789abcdef\",\"spanId\":\"010203040506070a\","
        "\"kind\":5,\"startTimeUnixNano\":\"1700000000000500000\","
        "\"endTimeUnixNano\":\"1700000000000400000\",\"status\":{\"message\":\"unset but said\"}}"
        "]}]},{" RESOURCE_B ",\"scopeSpans\":[{" SCOPE_B ",\"spans\":["
        "{\"traceId\":\"0123456789abcdef0123456789abcdef\",\"spanId\":\"a1a2a3a4a5a6a7a8\","
        "\"kind\":2,\"startTimeUnixNano\":1700000001000000000,"
        "\"endTimeUnixNano\":1700000002000000000}]}]}]}";
    round_trip(OTLP_TRACES, body, 4);
}

static void test_metrics_round_trip(void **state)
{
    static const char body[] =
        "{\"resourceMetrics\":[{" RESOURCE_A ",\"scopeMetrics\":[{" SCOPE_A ",\"metrics\":["
        "{\"name\":\"temp\",\"unit\":\"Cel\",\"description\":\"how "
        "warm\",\"gauge\":{\"dataPoints\":"
        "[{\"timeUnixNano\":\"1700000000300000000\",\"asDouble\":21.5,\"attributes\":["
        "{\"key\":\"value\",\"value\":{\"stringValue\":\"mine\"}},"
        "{\"key\":\"temporality\",\"value\":{\"stringValue\":\"not a gauge's\"}}]},"
        "{\"timeUnixNano\":\"1700000000400000000\",\"asInt\":\"-3\"},"
        "{\"timeUnixNano\":\"1700000000500000000\",\"asDouble\":\"NaN\"}]}},"
        "{\"name\":\"orders\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,"
        "\"dataPoints\":[{\"asInt\":\"9223372036854775807\",\"timeUnixNano\":"
        "\"1700000000300000000\","
        "\"startTimeUnixNano\":\"1690000000000000000\"}]}},"
        "{\"name\":\"queue\",\"sum\":{\"aggregationTemporality\":1,\"dataPoints\":[{\"asDouble\":"
        "-1.25,\"timeUnixNano\":\"1700000000300000000\"}]}},"
        "{\"name\":\"raw\",\"sum\":{\"dataPoints\":[{\"asInt\":0,\"timeUnixNano\":"
        "\"1700000000300000000\"}]}},"
        "{\"name\":\"latency\",\"unit\":\"ms\",\"histogram\":{\"aggregationTemporality\":1,"
        "\"dataPoints\":[{\"timeUnixNano\":\"1700000000300000000\",\"count\":\"4\",\"sum\":10.5,"
        "\"min\":0.25,\"max\":7,\"bucketCounts\":[\"1\",\"0\",\"3\"],\"explicitBounds\":[0.5,2.5],"
        "\"attributes\":[{\"key\":\"count\",\"value\":{\"stringValue\":\"attr\"}},"
        "{\"key\":\"monotonic\",\"value\":{\"boolValue\":true}}]},"
        "{\"timeUnixNano\":\"1700000000300000000\",\"count\":\"18446744073709551615\"}]}},"
        "{\"name\":\"size\",\"exponentialHistogram\":{\"aggregationTemporality\":2,\"dataPoints\":["
        "{\"timeUnixNano\":\"1700000000300000000\",\"startTimeUnixNano\":\"1690000000000000000\","
        "\"count\":\"5\",\"sum\":12,\"min\":-2,\"max\":9.5,\"scale\":-3,\"zeroCount\":\"1\","
        "\"zeroThreshold\":0.001,\"positive\":{\"offset\":-1,\"bucketCounts\":[\"2\",\"2\"]},"
        "\"negative\":{\"offset\":3,\"bucketCounts\":[]}},"
        "{\"timeUnixNano\":\"1700000000300000000\",\"count\":\"0\"}]}},"
        "{\"name\":\"rtt\",\"summary\":{\"dataPoints\":[{\"timeUnixNano\":\"1700000000300000000\","
        "\"count\":\"3\",\"sum\":0.9,\"quantileValues\":[{\"quantile\":0.5,\"value\":0.2},"
        "{\"quantile\":0.99,\"value\":0.5},{\"quantile\":1,\"value\":0.7}]},"
        "{\"timeUnixNano\":\"1700000000300000000\"}]}}]}]},"
        "{" RESOURCE_B ",\"scopeMetrics\":[{\"metrics\":[{\"name\":\"temp\",\"unit\":\"Cel\","
        "\"gauge\":{\"dataPoints\":[{\"timeUnixNano\":\"1700000000300000000\",\"asDouble\":1e-7}]"
        "}}]}]}]}";
    round_trip(OTLP_METRICS, body, 13);
}

/* The specification's examples (tests/fixtures/otlp, as the input's tests use them). */
static void test_fixtures_round_trip(void **state)
{
    static const struct {
        const char *file;
        enum otlp_signal sig;
        int n;
    } fx[] = {{"logs.json", OTLP_LOGS, 1},
              {"trace.json", OTLP_TRACES, 1},
              {"metrics.json", OTLP_METRICS, 3}};
    for (size_t i = 0; i < N(fx); i++) {
        size_t len;
        char *body = read_fixture(fx[i].file, &len);
        body[len] = '\0';
        struct events ev;
        const char *err;
        int n = decode(&ev, fx[i].sig, OTLP_JSON, body, len, &err);
        events_free(&ev);
        if (n != fx[i].n)
            print_error("%s: %d events (%s)\n", fx[i].file, n, n < 0 ? err : "");
        assert_int_equal(n, fx[i].n);
        round_trip(fx[i].sig, body, n);
        free(body);
    }
}

/* ---- the grouping ---- */

static const char *const A1 =
    "{\"timestamp\":\"2026-01-01T00:00:01.000000Z\",\"kind\":\"log\",\"source\":\"x\","
    "\"service\":\"a\",\"resource.service.name\":\"a\",\"scope.name\":\"s\",\"message\":\"1\"}";
static const char *const B1 =
    "{\"timestamp\":\"2026-01-01T00:00:02.000000Z\",\"kind\":\"log\",\"source\":\"x\","
    "\"service\":\"b\",\"resource.service.name\":\"b\",\"scope.name\":\"s\",\"message\":\"2\"}";
static const char *const A2 =
    "{\"timestamp\":\"2026-01-01T00:00:03.000000Z\",\"kind\":\"log\",\"source\":\"y\","
    "\"service\":\"a\",\"resource.service.name\":\"a\",\"scope.name\":\"s\",\"message\":\"3\"}";
static const char *const A3 =
    "{\"timestamp\":\"2026-01-01T00:00:04.000000Z\",\"kind\":\"log\",\"source\":\"x\","
    "\"service\":\"a\",\"resource.service.name\":\"a\",\"scope.name\":\"t\",\"message\":\"4\"}";

static void add_ok(struct otlp_encoder *e, const char *ev, int sig)
{
    const char *why;
    int rc = otlp_encoder_add(e, ev, strlen(ev), &why);
    if (rc != sig)
        print_error("refused (%s): %s\n", rc < 0 ? why : "other signal", ev);
    assert_int_equal(rc, sig);
}

static const char *body_text(const AnyValue *v)
{
    assert_non_null(v);
    assert_int_equal(v->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    return v->string_value;
}

static void test_grouping_by_resource_and_scope(void **state)
{
    struct otlp_encoder *e = otlp_encoder_new();
    assert_non_null(e);
    struct buf out = {0};
    for (int round = 0; round < 2; round++) { /* the second after a reset: nothing carried */
        otlp_encoder_reset(e);
        add_ok(e, A1, OTLP_ENCODE_LOGS);
        add_ok(e, B1, OTLP_ENCODE_LOGS);
        add_ok(e, A2, OTLP_ENCODE_LOGS);
        add_ok(e, A3, OTLP_ENCODE_LOGS);
        buf_reset(&out);
        assert_int_equal(otlp_encoder_write(e, OTLP_ENCODE_LOGS, OTLP_ENCODE_PROTOBUF, &out), 0);
        LogsRequest *r =
            opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
                NULL, out.len, (const uint8_t *)out.data);
        assert_non_null(r);
        /* a: scope s (1, 3) and scope t (4); b: scope s (2). The source is not the resource. */
        assert_int_equal(r->n_resource_logs, 2);
        assert_int_equal(r->resource_logs[0]->n_scope_logs, 2);
        assert_int_equal(r->resource_logs[0]->scope_logs[0]->n_log_records, 2);
        assert_string_equal(body_text(r->resource_logs[0]->scope_logs[0]->log_records[0]->body),
                            "1");
        assert_string_equal(body_text(r->resource_logs[0]->scope_logs[0]->log_records[1]->body),
                            "3");
        assert_string_equal(r->resource_logs[0]->scope_logs[1]->scope->name, "t");
        assert_int_equal(r->resource_logs[1]->n_scope_logs, 1);
        assert_string_equal(body_text(r->resource_logs[1]->scope_logs[0]->log_records[0]->body),
                            "2");
        /* service.name once: from resource.service.name, service being the same. */
        const Opentelemetry__Proto__Resource__V1__Resource *res = r->resource_logs[1]->resource;
        assert_int_equal(res->n_attributes, 1);
        assert_string_equal(res->attributes[0]->key, "service.name");
        assert_string_equal(res->attributes[0]->value->string_value, "b");
        opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(r,
                                                                                              NULL);
        assert_int_equal(otlp_encoder_count(e, OTLP_ENCODE_LOGS), 4);
        assert_int_equal(otlp_encoder_count(e, OTLP_ENCODE_TRACES), 0);
    }
    buf_free(&out);
    otlp_encoder_free(e);
}

/* Points of one metric share a Metric; another temporality is another metric. */
static void test_grouping_of_metrics(void **state)
{
    static const char *const ev[] = {
        "{\"timestamp\":\"2026-01-01T00:00:01.000000Z\",\"kind\":\"metric\",\"name\":\"m\","
        "\"metric_type\":\"counter\",\"temporality\":\"delta\",\"value\":1,"
        "\"route\":\"/a\"}",
        "{\"timestamp\":\"2026-01-01T00:00:01.000000Z\",\"kind\":\"metric\",\"name\":\"m\","
        "\"metric_type\":\"counter\",\"temporality\":\"cumulative\",\"value\":5}",
        "{\"timestamp\":\"2026-01-01T00:00:02.000000Z\",\"kind\":\"metric\",\"name\":\"m\","
        "\"metric_type\":\"counter\",\"temporality\":\"delta\",\"value\":2.5,"
        "\"route\":\"/b\"}",
    };
    struct otlp_encoder *e = otlp_encoder_new();
    for (size_t i = 0; i < N(ev); i++)
        add_ok(e, ev[i], OTLP_ENCODE_METRICS);
    struct buf out = {0};
    assert_int_equal(otlp_encoder_write(e, OTLP_ENCODE_METRICS, OTLP_ENCODE_PROTOBUF, &out), 0);
    MetricsRequest *r =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
            NULL, out.len, (const uint8_t *)out.data);
    assert_non_null(r);
    assert_int_equal(r->n_resource_metrics, 1);
    const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
        r->resource_metrics[0]->scope_metrics[0];
    assert_null(sm->scope);
    assert_int_equal(sm->n_metrics, 2);
    assert_int_equal(sm->metrics[0]->sum->n_data_points, 2);
    assert_int_equal(sm->metrics[0]->sum->aggregation_temporality, 1);
    assert_int_equal(sm->metrics[0]->sum->data_points[0]->as_int, 1);
    assert_true(sm->metrics[0]->sum->data_points[1]->as_double == 2.5);
    assert_string_equal(sm->metrics[0]->sum->data_points[1]->attributes[0]->value->string_value,
                        "/b");
    assert_int_equal(sm->metrics[1]->sum->aggregation_temporality, 2);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        r, NULL);
    buf_free(&out);
    otlp_encoder_free(e);
}

/* ---- events from other inputs ---- */

static const KeyValue *attr(KeyValue *const *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(kv[i]->key, key))
            return kv[i];
    }
    print_error("no attribute %s\n", key);
    fail();
    return NULL;
}

static LogsRequest *one_log(const char *event)
{
    struct otlp_encoder *e = otlp_encoder_new();
    add_ok(e, event, OTLP_ENCODE_LOGS);
    struct buf out = {0};
    assert_int_equal(otlp_encoder_write(e, OTLP_ENCODE_LOGS, OTLP_ENCODE_PROTOBUF, &out), 0);
    LogsRequest *r = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
        NULL, out.len, (const uint8_t *)out.data);
    assert_non_null(r);
    buf_free(&out);
    otlp_encoder_free(e);
    return r;
}

/* What an NDJSON or syslog input writes: service and host name the resource, level the severity
 * (its number derived), message the body, every other field a typed attribute; received_at is the
 * observed time; an id that is not OTLP's stays an attribute. */
static void test_event_from_another_input(void **state)
{
    LogsRequest *r = one_log(
        "{\"timestamp\":\"2026-11-27T10:00:00.123456Z\",\"kind\":\"log\",\"source\":\"app\","
        "\"host\":\"web-1\",\"service\":\"checkout\",\"level\":\"warning\",\"message\":\"slow\","
        "\"trace_id\":\"4BF92F3577B34DA6A3CE929D0E0E4736\",\"span_id\":\"not-hex\",\"n\":-7,"
        "\"ms\":12.5,\"ok\":true,\"tags\":[\"a\",2],\"http\":{\"status\":503},\"none\":null,"
        "\"resource.region\":\"eu\",\"scope.name\":\"app\",\"attributes.kind\":\"custom\","
        "\"received_at\":\"2026-11-27T10:00:01.000000Z\"}");
    const Opentelemetry__Proto__Resource__V1__Resource *res = r->resource_logs[0]->resource;
    assert_int_equal(res->n_attributes, 3);
    assert_string_equal(res->attributes[0]->key, "service.name");
    assert_string_equal(res->attributes[0]->value->string_value, "checkout");
    assert_string_equal(res->attributes[1]->key, "host.name");
    assert_string_equal(res->attributes[2]->key, "region");
    assert_string_equal(r->resource_logs[0]->scope_logs[0]->scope->name, "app");
    const Opentelemetry__Proto__Logs__V1__LogRecord *l =
        r->resource_logs[0]->scope_logs[0]->log_records[0];
    assert_true(l->time_unix_nano == 1795773600123456000ULL);
    assert_true(l->observed_time_unix_nano == 1795773601000000000ULL);
    assert_string_equal(l->severity_text, "warning");
    assert_int_equal(l->severity_number, 13);
    assert_string_equal(body_text(l->body), "slow");
    assert_int_equal(l->trace_id.len, 16);
    assert_int_equal(l->trace_id.data[0], 0x4b);
    assert_int_equal(l->span_id.len, 0);
    assert_int_equal(l->n_attributes, 8);
    assert_string_equal(attr(l->attributes, l->n_attributes, "span_id")->value->string_value,
                        "not-hex");
    assert_int_equal(attr(l->attributes, l->n_attributes, "n")->value->int_value, -7);
    assert_true(attr(l->attributes, l->n_attributes, "ms")->value->double_value == 12.5);
    assert_int_equal(attr(l->attributes, l->n_attributes, "ok")->value->bool_value, 1);
    const AnyValue *tags = attr(l->attributes, l->n_attributes, "tags")->value;
    assert_int_equal(tags->array_value->n_values, 2);
    assert_int_equal(tags->array_value->values[1]->int_value, 2);
    const AnyValue *http = attr(l->attributes, l->n_attributes, "http")->value;
    assert_string_equal(http->kvlist_value->values[0]->key, "status");
    assert_int_equal(http->kvlist_value->values[0]->value->int_value, 503);
    assert_int_equal(attr(l->attributes, l->n_attributes, "none")->value->value_case, 0);
    assert_string_equal(attr(l->attributes, l->n_attributes, "kind")->value->string_value,
                        "custom");
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(r, NULL);
    /* `service` wins over a resource.service.name a script left behind. */
    r = one_log("{\"timestamp\":\"2026-11-27T10:00:00.123456Z\",\"service\":\"renamed\","
                "\"resource.service.name\":\"old\",\"resource.x\":1}");
    res = r->resource_logs[0]->resource;
    assert_int_equal(res->n_attributes, 2);
    assert_string_equal(res->attributes[0]->value->string_value, "renamed");
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(r, NULL);
}

/* A log record with a severity text and no number comes back with the number its text names
 * (the only field the round trip adds; docs/sinks.md says why). */
static void test_severity_number_from_level(void **state)
{
    static const char body[] = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
                               "{\"timeUnixNano\":\"1700000000000000000\",\"severityText\":"
                               "\"Err\"},{\"timeUnixNano\":\"1700000000000000000\","
                               "\"severityText\":\"custom\"}]}]}]}";
    struct events first, again;
    const char *err;
    assert_int_equal(decode(&first, OTLP_LOGS, OTLP_JSON, body, strlen(body), &err), 2);
    struct buf out = {0};
    encode(&first, OTLP_LOGS, OTLP_ENCODE_PROTOBUF, &out);
    assert_int_equal(decode(&again, OTLP_LOGS, OTLP_PROTOBUF, out.data, out.len, &err), 2);
    assert_null(strstr(first.text[0], "severity_number"));
    assert_non_null(strstr(again.text[0], "\"level\":\"Err\",\"severity_number\":17,"));
    assert_string_equal(first.text[1], again.text[1]); /* a name it does not know: no number */
    events_free(&first);
    events_free(&again);
    buf_free(&out);
}

static MetricsRequest *metrics_of(const char *const *ev, size_t n)
{
    struct otlp_encoder *e = otlp_encoder_new();
    for (size_t i = 0; i < n; i++)
        add_ok(e, ev[i], OTLP_ENCODE_METRICS);
    struct buf out = {0};
    assert_int_equal(otlp_encoder_write(e, OTLP_ENCODE_METRICS, OTLP_ENCODE_PROTOBUF, &out), 0);
    MetricsRequest *r =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
            NULL, out.len, (const uint8_t *)out.data);
    assert_non_null(r);
    buf_free(&out);
    otlp_encoder_free(e);
    return r;
}

#define STATSD(rest)                                                                               \
    "{\"timestamp\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"metric\",\"source\":"               \
    "\"statsd\"," rest ",\"received_at\":\"2026-01-01T00:00:00.000000Z\"}"

/* statsd's events, as collector/format_statsd.c writes them. */
static void test_statsd_metrics(void **state)
{
    static const char *const ev[] = {
        STATSD("\"name\":\"page.views\",\"metric_type\":\"counter\",\"value\":3,"
               "\"temporality\":\"delta\",\"statsd_sample_rate\":0.5,\"labels\":{\"env\":"
               "\"prod\",\"flag\":true,\"r\":[\"a\",\"b\"]}"),
        STATSD("\"name\":\"hits\",\"metric_type\":\"counter\",\"value\":2,"
               "\"temporality\":\"delta\",\"labels\":{}"),
        STATSD("\"name\":\"queue\",\"metric_type\":\"gauge\",\"value\":-4,"
               "\"temporality\":\"delta\",\"labels\":{}"),
        STATSD("\"name\":\"depth\",\"metric_type\":\"gauge\",\"value\":42,\"labels\":{}"),
        STATSD("\"name\":\"req\",\"metric_type\":\"histogram\",\"value\":320,"
               "\"temporality\":\"delta\",\"unit\":\"ms\",\"statsd_type\":\"timer\","
               "\"statsd_sample_rate\":0.1,\"labels\":{}"),
        STATSD("\"name\":\"size\",\"metric_type\":\"histogram\",\"value\":1.5,"
               "\"temporality\":\"delta\",\"statsd_type\":\"histogram\",\"labels\":{}"),
    };
    MetricsRequest *r = metrics_of(ev, N(ev));
    const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
        r->resource_metrics[0]->scope_metrics[0];
    assert_int_equal(sm->n_metrics, 6);
    Opentelemetry__Proto__Metrics__V1__Metric *const *m = sm->metrics;
    /* A sampled counter counts value / rate, as a statsd server does; its labels are attributes. */
    assert_int_equal(m[0]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    assert_int_equal(m[0]->sum->aggregation_temporality, 1);
    assert_true(m[0]->sum->is_monotonic);
    const Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p = m[0]->sum->data_points[0];
    assert_true(p->as_double == 6);
    assert_int_equal(p->n_attributes, 3);
    assert_string_equal(attr(p->attributes, 3, "env")->value->string_value, "prod");
    assert_int_equal(attr(p->attributes, 3, "flag")->value->bool_value, 1);
    assert_int_equal(attr(p->attributes, 3, "r")->value->array_value->n_values, 2);
    assert_int_equal(m[1]->sum->data_points[0]->as_int, 2);
    /* A +/- gauge: an up-down counter's increment. */
    assert_int_equal(m[2]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    assert_false(m[2]->sum->is_monotonic);
    assert_int_equal(m[2]->sum->aggregation_temporality, 1);
    assert_int_equal(m[2]->sum->data_points[0]->as_int, -4);
    assert_int_equal(m[3]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
    assert_int_equal(m[3]->gauge->data_points[0]->as_int, 42);
    /* A timer value: a delta histogram of that one value; the rate stays an attribute. */
    assert_int_equal(m[4]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
    assert_string_equal(m[4]->unit, "ms");
    const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *h =
        m[4]->histogram->data_points[0];
    assert_int_equal(h->count, 1);
    assert_true(h->sum == 320 && h->min == 320 && h->max == 320);
    assert_int_equal(h->n_bucket_counts, 1);
    assert_int_equal(h->n_explicit_bounds, 0);
    assert_true(attr(h->attributes, h->n_attributes, "statsd_sample_rate")->value->double_value ==
                0.1);
    assert_int_equal(m[5]->histogram->data_points[0]->count, 1);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        r, NULL);
}

/* ---- events with no OTLP form ---- */

static void test_refused_with_a_reason(void **state)
{
#define TS  "\"timestamp\":\"2026-01-01T00:00:00.000000Z\","
#define IDS "\"trace_id\":\"0123456789abcdef0123456789abcdef\",\"span_id\":\"0102030405060708\""
    static const struct {
        const char *event, *why;
    } bad[] = {
        {"[1,2]", "not a JSON object"},
        {"{\"kind\":\"log\",\"message\":\"x\"}", "no timestamp"},
        {"{\"timestamp\":\"yesterday\",\"message\":\"x\"}", "timestamp: not an RFC 3339 time"},
        {"{" TS "\"kind\":\"trace\",\"span_id\":\"0102030405060708\"}", "trace_id: missing"},
        {"{" TS "\"kind\":\"trace\",\"trace_id\":\"abc\",\"span_id\":\"0102030405060708\"}",
         "trace_id: not 32 hex digits"},
        {"{" TS "\"kind\":\"trace\"," IDS ",\"span_kind\":\"SIDEWAYS\"}", "span_kind"},
        {"{" TS "\"kind\":\"trace\"," IDS ",\"status\":\"BAD\"}", "status: not UNSET"},
        {"{" TS "\"kind\":\"trace\"," IDS ",\"duration_ns\":-1}", "duration_ns"},
        {"{" TS "\"kind\":\"trace\"," IDS ",\"events\":{}}", "events: not an array"},
        {"{" TS "\"kind\":\"trace\"," IDS ",\"events\":[{\"name\":1}]}", "events[0].name"},
        {"{" TS "\"kind\":\"trace\"," IDS ",\"links\":[{\"traceId\":\"zz\"}]}", "links[0].traceId"},
        {"{" TS "\"kind\":\"metric\",\"name\":\"m\",\"metric_type\":\"gauge\"}",
         "metric event without a value"},
        {"{" TS "\"kind\":\"metric\",\"name\":\"m\",\"metric_type\":\"gauge\",\"value\":\"high\"}",
         "value: not a number"},
        {"{" TS "\"kind\":\"metric\",\"name\":\"m\"}", "without metric_type"},
        {"{" TS "\"kind\":\"metric\",\"metric_type\":\"gauge\",\"value\":1}",
         "metric event without a name"},
        {"{" TS "\"kind\":\"metric\",\"name\":\"m\",\"metric_type\":\"set\",\"value\":\"u1\"}",
         "a statsd set has no OTLP form"},
        {"{" TS "\"kind\":\"metric\",\"name\":\"m\",\"metric_type\":\"bogus\",\"value\":1}",
         "metric_type \"bogus\""},
        {"{" TS "\"kind\":\"metric\",\"name\":\"m\",\"metric_type\":\"histogram\"}",
         "count: missing"},
        {"{" TS "\"kind\":\"metric\",\"name\":\"m\",\"metric_type\":\"summary\",\"count\":1,"
         "\"quantiles\":{\"half\":1}}",
         "quantiles"},
        {"{" TS "\"kind\":\"metric\",\"name\":\"m\",\"metric_type\":\"counter\",\"value\":1,"
         "\"temporality\":\"sometimes\"}",
         "temporality"},
        {"{" TS "\"kind\":\"metric\",\"name\":\"m\",\"metric_type\":\"counter\",\"value\":1,"
         "\"statsd_sample_rate\":2}",
         "statsd_sample_rate"},
    };
    struct otlp_encoder *e = otlp_encoder_new();
    for (size_t i = 0; i < N(bad); i++) {
        const char *why = NULL;
        int rc = otlp_encoder_add(e, bad[i].event, strlen(bad[i].event), &why);
        if (rc != -EINVAL || !why || !strstr(why, bad[i].why))
            print_error("%s: rc %d, why \"%s\", want \"%s\"\n", bad[i].event, rc,
                        why ? why : "(null)", bad[i].why);
        assert_int_equal(rc, -EINVAL);
        assert_non_null(strstr(why, bad[i].why));
    }
    /* Nothing of them in any request: no empty resource or scope was left behind. */
    struct buf out = {0};
    for (int s = 0; s < OTLP_ENCODE_SIGNALS; s++) {
        assert_int_equal(otlp_encoder_count(e, s), 0);
        buf_reset(&out);
        assert_int_equal(otlp_encoder_write(e, s, OTLP_ENCODE_JSON, &out), 0);
        assert_int_equal(out.len, 2);
        assert_memory_equal(out.data, "{}", 2);
    }
    buf_free(&out);
    otlp_encoder_free(e);
}

/* OTLP/JSON as the specification writes it: lowerCamelCase, ids in hex, 64-bit integers as
 * strings, enums as integers, NaN as a string. */
static void test_json_form(void **state)
{
    struct otlp_encoder *e = otlp_encoder_new();
    add_ok(e,
           "{\"timestamp\":\"2026-01-01T00:00:00.000001Z\",\"kind\":\"trace\",\"trace_id\":"
           "\"0123456789ABCDEF0123456789abcdef\",\"span_id\":\"0102030405060708\",\"name\":\"n\","
           "\"span_kind\":\"SERVER\",\"duration_ns\":5,\"status\":\"ERROR\",\"x\":1}",
           OTLP_ENCODE_TRACES);
    add_ok(e,
           "{\"timestamp\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"metric\",\"name\":\"g\","
           "\"metric_type\":\"gauge\",\"value\":null}",
           OTLP_ENCODE_METRICS);
    struct buf out = {0};
    assert_int_equal(otlp_encoder_write(e, OTLP_ENCODE_TRACES, OTLP_ENCODE_JSON, &out), 0);
    buf_putc(&out, '\0');
    static const char *const want[] = {
        "{\"resourceSpans\":[{\"resource\":{},\"scopeSpans\":[{\"spans\":[{",
        "\"traceId\":\"0123456789abcdef0123456789abcdef\"",
        "\"spanId\":\"0102030405060708\"",
        "\"kind\":2",
        "\"startTimeUnixNano\":\"1767225600000001000\"",
        "\"endTimeUnixNano\":\"1767225600000001005\"",
        "\"attributes\":[{\"key\":\"x\",\"value\":{\"intValue\":\"1\"}}]",
        "\"status\":{\"code\":2}",
    };
    for (size_t i = 0; i < N(want); i++) {
        if (!strstr(out.data, want[i]))
            print_error("%s not in %s\n", want[i], out.data);
        assert_non_null(strstr(out.data, want[i]));
    }
    buf_reset(&out);
    assert_int_equal(otlp_encoder_write(e, OTLP_ENCODE_METRICS, OTLP_ENCODE_JSON, &out), 0);
    buf_putc(&out, '\0');
    assert_non_null(strstr(out.data, "\"gauge\":{\"dataPoints\":[{\"timeUnixNano\":"
                                     "\"1767225600000000000\",\"asDouble\":\"NaN\"}]}"));
    buf_free(&out);
    otlp_encoder_free(e);
}

/* A string holding U+0000 keeps it in OTLP/JSON and ends there in protobuf (protobuf-c's strings
 * are C strings), as docs/sinks.md says. */
static void test_nul_in_strings(void **state)
{
    static const char ev[] = "{\"timestamp\":\"2026-01-01T00:00:00.000000Z\",\"message\":"
                             "\"a\\u0000b\",\"k\":\"c\\u0000\"}";
    struct otlp_encoder *e = otlp_encoder_new();
    add_ok(e, ev, OTLP_ENCODE_LOGS);
    struct buf out = {0};
    assert_int_equal(otlp_encoder_write(e, OTLP_ENCODE_LOGS, OTLP_ENCODE_JSON, &out), 0);
    buf_putc(&out, '\0');
    assert_non_null(strstr(out.data, "{\"stringValue\":\"a\\u0000b\"}"));
    assert_non_null(strstr(out.data, "{\"stringValue\":\"c\\u0000\"}"));
    buf_reset(&out);
    assert_int_equal(otlp_encoder_write(e, OTLP_ENCODE_LOGS, OTLP_ENCODE_PROTOBUF, &out), 0);
    LogsRequest *r = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
        NULL, out.len, (const uint8_t *)out.data);
    assert_non_null(r);
    const Opentelemetry__Proto__Logs__V1__LogRecord *l =
        r->resource_logs[0]->scope_logs[0]->log_records[0];
    assert_string_equal(body_text(l->body), "a");
    assert_string_equal(l->attributes[0]->value->string_value, "c");
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(r, NULL);
    buf_free(&out);
    otlp_encoder_free(e);
}

/* Values nested deeper than the input keeps come back as it wrote them (null past depth 32; 35
 * levels stay within the 100 messages the decoder takes), and escaped keys keep their text. */
static void test_deep_values_and_escapes(void **state)
{
    struct buf body = {0};
    buf_puts(&body, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
                    "\"1700000000000000000\",\"attributes\":[{\"key\":\"d\",\"value\":");
    for (int i = 0; i < 35; i++)
        buf_puts(&body, i % 2 ? "{\"arrayValue\":{\"values\":["
                              : "{\"kvlistValue\":{\"values\":"
                                "[{\"key\":\"k\\u00e9\\\\\","
                                "\"value\":");
    buf_puts(&body, "{\"stringValue\":\"bottom\"}");
    for (int i = 34; i >= 0; i--)
        buf_puts(&body, i % 2 ? "]}}" : "}]}}");
    buf_puts(&body, "}]}]}]}]}");
    buf_putc(&body, '\0');
    round_trip(OTLP_LOGS, body.data, 1);
    buf_free(&body);
}

/* Every field of a log, span and metric event of each shape given every kind of value: each
 * event is either refused with a reason or encoded into a request that the input decodes (in
 * both formats), never a crash or a request the input cannot read. */
static void test_any_value_in_any_field(void **state)
{
    static const char *const templates[] = {
        "{\"timestamp\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"log\",\"service\":\"s\","
        "\"host\":\"h\",\"resource.service.name\":\"s\",\"scope.name\":\"n\","
        "\"scope.version\":\"v\",\"level\":\"INFO\",\"severity_number\":9,\"message\":\"m\","
        "\"trace_id\":\"0123456789abcdef0123456789abcdef\",\"span_id\":\"0102030405060708\","
        "\"attributes.x\":1,\"received_at\":\"2026-01-01T00:00:01.000000Z\"}",
        "{\"timestamp\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"trace\","
        "\"trace_id\":\"0123456789abcdef0123456789abcdef\",\"span_id\":\"0102030405060708\","
        "\"parent_span_id\":\"0102030405060709\",\"name\":\"n\",\"span_kind\":\"SERVER\","
        "\"duration_ns\":5,\"end_time\":\"2026-01-01T00:00:00.000000Z\",\"status\":\"OK\","
        "\"status_message\":\"m\",\"events\":[{\"timeUnixNano\":\"1\",\"name\":\"e\","
        "\"attributes\":{\"a\":1},\"droppedAttributesCount\":1}],\"links\":[{\"traceId\":"
        "\"0123456789abcdef0123456789abcdef\",\"spanId\":\"0102030405060708\",\"traceState\":"
        "\"t\",\"attributes\":{},\"flags\":1}]}",
        "{\"timestamp\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"metric\",\"name\":\"m\","
        "\"unit\":\"u\",\"description\":\"d\",\"metric_type\":\"counter\",\"temporality\":"
        "\"delta\",\"start_time\":\"2026-01-01T00:00:00.000000Z\","
        "\"value\":1}",
        "{\"timestamp\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"metric\",\"name\":\"m\","
        "\"metric_type\":\"histogram\",\"temporality\":\"cumulative\",\"count\":3,\"sum\":1,"
        "\"min\":0,\"max\":1,\"bucket_counts\":[1,2],\"explicit_bounds\":[0.5]}",
        "{\"timestamp\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"metric\",\"name\":\"m\","
        "\"metric_type\":\"exponential_histogram\",\"count\":3,\"sum\":1,\"scale\":2,"
        "\"zero_count\":1,\"zero_threshold\":0.1,\"positive\":{\"offset\":1,\"bucket_counts\":"
        "[1]},\"negative\":{\"offset\":-1,\"bucket_counts\":[]}}",
        "{\"timestamp\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"metric\",\"name\":\"m\","
        "\"metric_type\":\"summary\",\"count\":3,\"sum\":1,\"quantiles\":{\"0.5\":1}}",
        "{\"timestamp\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"metric\",\"name\":\"m\","
        "\"metric_type\":\"counter\",\"value\":2,\"statsd_sample_rate\":0.5,\"labels\":"
        "{\"a\":[\"b\"],\"f\":true}}",
        "{\"timestamp\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"metric\",\"name\":\"m\","
        "\"metric_type\":\"gauge\",\"temporality\":\"delta\",\"value\":-2}",
    };
    static const char *const values[] = {"null",
                                         "true",
                                         "false",
                                         "0",
                                         "-1",
                                         "1.5",
                                         "1e400",
                                         "18446744073709551616",
                                         "\"\"",
                                         "\"x\"",
                                         "\"\\u0001\\\"\"",
                                         "\"0123456789ABCDEF0123456789abcdef\"",
                                         "\"2026-01-01T00:00:00Z\"",
                                         "[]",
                                         "{}",
                                         "[1,\"a\",null,[{}]]",
                                         "{\"a\":{\"b\":[1]}}",
                                         "[{\"name\":1}]",
                                         "[{\"traceId\":\"zz\"}]",
                                         "{\"offset\":\"x\"}"};
    struct otlp_encoder *e = otlp_encoder_new();
    struct jsontok t = {0};
    struct buf ev = {0}, out = {0};
    int accepted = 0, refused = 0;
    for (size_t ti = 0; ti < N(templates); ti++) {
        assert_int_equal(jsontok_parse(&t, templates[ti], strlen(templates[ti])), 0);
        /* Each top-level member's value, replaced by each value in turn. */
        for (int k = 1, m = 0; m < t.tok[0].size; m++, k = t.next[k]) {
            for (size_t vi = 0; vi < N(values); vi++) {
                const char *js = templates[ti];
                buf_reset(&ev);
                buf_append(&ev, js,
                           (size_t)t.tok[k + 1].start - (t.tok[k + 1].type == JSMN_STRING));
                buf_puts(&ev, values[vi]);
                size_t end = jsontok_text_end(&t, k + 1);
                buf_append(&ev, js + end, strlen(js) - end);
                otlp_encoder_reset(e);
                const char *why;
                int sig = otlp_encoder_add(e, ev.data, ev.len, &why);
                if (sig < 0) {
                    assert_int_equal(sig, -EINVAL);
                    assert_true(why && *why);
                    refused++;
                    continue;
                }
                accepted++;
                static const enum otlp_signal back[] = {OTLP_LOGS, OTLP_TRACES, OTLP_METRICS};
                for (int fmt = OTLP_ENCODE_PROTOBUF; fmt <= OTLP_ENCODE_JSON; fmt++) {
                    buf_reset(&out);
                    assert_int_equal(otlp_encoder_write(e, sig, fmt, &out), 0);
                    struct events got;
                    const char *err;
                    int rc =
                        decode(&got, back[sig], fmt == OTLP_ENCODE_JSON ? OTLP_JSON : OTLP_PROTOBUF,
                               out.data, out.len, &err);
                    if (rc != 1 || got.ninvalid)
                        print_error("%.*s: %s\n", (int)ev.len, ev.data, rc < 0 ? err : "invalid");
                    assert_int_equal(rc, 1);
                    assert_int_equal(got.ninvalid, 0);
                    events_free(&got);
                }
            }
        }
    }
    assert_true(accepted > 100 && refused > 50);
    jsontok_free(&t);
    buf_free(&ev);
    buf_free(&out);
    otlp_encoder_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logs_round_trip),
        cmocka_unit_test(test_spans_round_trip),
        cmocka_unit_test(test_metrics_round_trip),
        cmocka_unit_test(test_fixtures_round_trip),
        cmocka_unit_test(test_grouping_by_resource_and_scope),
        cmocka_unit_test(test_grouping_of_metrics),
        cmocka_unit_test(test_event_from_another_input),
        cmocka_unit_test(test_severity_number_from_level),
        cmocka_unit_test(test_statsd_metrics),
        cmocka_unit_test(test_refused_with_a_reason),
        cmocka_unit_test(test_json_form),
        cmocka_unit_test(test_nul_in_strings),
        cmocka_unit_test(test_deep_values_and_escapes),
        cmocka_unit_test(test_any_value_in_any_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
