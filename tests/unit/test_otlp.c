/* Unit tests of the OTLP decoder (collector/otlp.h) on the examples of the opentelemetry-proto
 * repository (examples/logs.json, trace.json, metrics.json, kept in tests/fixtures/otlp/):
 * every field of every event, resource and scope attributes, typed record attributes, lowercase
 * ids, span kind/status/duration, one metric event per data point; then the encodings real
 * senders use (int64 as strings or numbers, enum names, snake_case names), attribute names
 * that collide with canonical fields, records that do not decode, and bodies that are not export
 * requests. Every event is parsed with jansson (duplicate keys rejected) and compared as a whole.
 * Protobuf, and its equivalence with OTLP/JSON, is test_otlp_pb.c's. */
#include "otlp_test.h"

#include "core/jsonw.h"

/* What every event of the examples carries from its resource and scope. */
#define RES_SCOPE                                                                                  \
    "\"source\":\"" SRC "\",\"service\":\"my.service\",\"resource.service.name\":\"my.service\","  \
    "\"scope.name\":\"my.library\",\"scope.version\":\"1.0.0\","                                   \
    "\"scope.my.scope.attribute\":\"some scope attribute\",\"received_at\":\"" RT_TEXT "\""

/* ---- the opentelemetry-proto examples ---- */

static void test_example_logs(void **state)
{
    size_t len;
    char *body = read_fixture("logs.json", &len);
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_LOGS, body, len, &err), 1);
    assert_int_equal(ev.n, 1);
    assert_int_equal(
        check_event(&ev, 0, "log",
                    "{\"timestamp\":\"2018-12-13T14:51:00.300000Z\",\"kind\":\"log\"," RES_SCOPE
                    ",\"level\":\"Information\",\"severity_number\":10,"
                    "\"message\":\"Example log record\","
                    "\"trace_id\":\"5b8efff798038103d269b633813fc60c\","
                    "\"span_id\":\"eee19b7ec3c1b174\","
                    "\"string.attribute\":\"some string\",\"boolean.attribute\":true,"
                    "\"int.attribute\":10,\"double.attribute\":637.704,"
                    "\"array.attribute\":[\"many\",\"values\"],"
                    "\"map.attribute\":{\"some.map.key\":\"some value\"}}"),
        0);
    /* The types, beyond what json_equal already told: an integer and an exact double. */
    json_t *o = ev.obj[0];
    assert_true(json_is_integer(json_object_get(o, "int.attribute")));
    assert_int_equal(json_integer_value(json_object_get(o, "int.attribute")), 10);
    assert_true(json_is_real(json_object_get(o, "double.attribute")));
    assert_true(json_real_value(json_object_get(o, "double.attribute")) == 637.704);
    assert_true(json_is_true(json_object_get(o, "boolean.attribute")));
    events_free(&ev);
    free(body);
}

static void test_example_trace(void **state)
{
    size_t len;
    char *body = read_fixture("trace.json", &len);
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_TRACES, body, len, &err), 1);
    assert_int_equal(
        check_event(&ev, 0, "trace",
                    "{\"timestamp\":\"2018-12-13T14:51:00.000000Z\",\"kind\":\"trace\"," RES_SCOPE
                    ",\"trace_id\":\"5b8efff798038103d269b633813fc60c\","
                    "\"span_id\":\"eee19b7ec3c1b174\",\"parent_span_id\":\"eee19b7ec3c1b173\","
                    "\"name\":\"I'm a server span\",\"span_kind\":\"SERVER\","
                    "\"duration_ns\":1000000000,\"end_time\":\"2018-12-13T14:51:01.000000Z\","
                    "\"status\":\"UNSET\",\"my.span.attr\":\"some value\"}"),
        0);
    events_free(&ev);
    free(body);
}

static void test_example_metrics(void **state)
{
    size_t len;
    char *body = read_fixture("metrics.json", &len);
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_METRICS, body, len, &err), 3);
    int bad = 0;
    bad +=
        check_event(&ev, 0, "metric",
                    "{\"timestamp\":\"2018-12-13T14:51:00.300000Z\",\"kind\":\"metric\"," RES_SCOPE
                    ",\"name\":\"my.counter\",\"unit\":\"1\",\"description\":\"I`m a Counter\","
                    "\"metric_type\":\"counter\",\"temporality\":\"delta\","
                    "\"start_time\":\"2018-12-13T14:51:00.300000Z\",\"value\":5,"
                    "\"labels\":{\"my.counter.attr\":\"some value\"}}") != 0;
    bad +=
        check_event(&ev, 1, "metric",
                    "{\"timestamp\":\"2018-12-13T14:51:00.300000Z\",\"kind\":\"metric\"," RES_SCOPE
                    ",\"name\":\"my.gauge\",\"unit\":\"1\",\"description\":\"I`m a Gauge\","
                    "\"metric_type\":\"gauge\",\"value\":10,"
                    "\"labels\":{\"my.gauge.attr\":\"some value\"}}") != 0;
    bad += check_event(
               &ev, 2, "metric",
               "{\"timestamp\":\"2018-12-13T14:51:00.300000Z\",\"kind\":\"metric\"," RES_SCOPE
               ",\"name\":\"my.histogram\",\"unit\":\"1\","
               "\"description\":\"I`m a Histogram\",\"metric_type\":\"histogram\","
               "\"temporality\":\"delta\",\"start_time\":\"2018-12-13T14:51:00.300000Z\","
               "\"count\":3,\"sum\":3,\"min\":1,\"max\":1,\"bucket_counts\":[1,1,1],"
               "\"explicit_bounds\":[1],\"labels\":{\"my.histogram.attr\":\"some value\"}}") != 0;
    assert_int_equal(bad, 0);
    events_free(&ev);
    free(body);
}

/* A body of another signal holds nothing for this one. */
static void test_example_wrong_signal(void **state)
{
    size_t len;
    char *body = read_fixture("logs.json", &len);
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_TRACES, body, len, &err), 0);
    assert_int_equal(parse(&ev, OTLP_METRICS, body, len, &err), 0);
    assert_int_equal(ev.n, 0);
    free(body);
}

/* ---- bad bodies ---- */

static void test_errors(void **state)
{
    static const struct {
        enum otlp_signal sig;
        const char *body;
        size_t len;
    } cases[] = {
        {OTLP_LOGS, L("not json")},
        {OTLP_LOGS, L("")},
        {OTLP_LOGS, L("{\"resourceLogs\":[")},
        {OTLP_LOGS, L("{\"resourceLogs\":[]} trailing")},
        {OTLP_LOGS, L("[1,2]")},
        {OTLP_LOGS, L("[{\"resourceLogs\":[]}]")},
        {OTLP_LOGS, L("\"resourceLogs\"")},
        {OTLP_LOGS, L("5")},
        {OTLP_LOGS, L("{\"resourceLogs\":5}")},
        {OTLP_LOGS, L("{\"resourceLogs\":\"x\"}")},
        {OTLP_LOGS, L("{\"resourceLogs\":{}}")},
        {OTLP_TRACES, L("{\"resourceSpans\":true}")},
        {OTLP_METRICS, L("{\"resourceMetrics\":{\"a\":1}}")},
        {OTLP_LOGS, L("{\"resourceLogs\":[{\"x\":\"\xff\"}]}")},
    };
    int bad = 0;
    for (size_t i = 0; i < N(cases); i++) {
        struct events ev;
        const char *err;
        int rc = parse(&ev, cases[i].sig, cases[i].body, cases[i].len, &err);
        if (rc != -EINVAL || !err || !*err || ev.n != 0) {
            print_error("body `%.*s`: rc %d err %s, %d event(s); want -EINVAL with a reason\n",
                        (int)cases[i].len, cases[i].body, rc, err ? err : "(null)", ev.n);
            bad++;
        }
        events_free(&ev);
    }
    assert_int_equal(bad, 0);
}

/* Requests with nothing in them are valid and give no events. */
static void test_empty_requests(void **state)
{
    static const char *const bodies[] = {
        "{}",
        "{\"resourceLogs\":[]}",
        "{\"resourceLogs\":[{}]}",
        "{\"resourceLogs\":[{\"scopeLogs\":[]}]}",
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[]}]}]}",
        "{\"somethingElse\":[1,2,3]}",
    };
    for (size_t i = 0; i < N(bodies); i++) {
        struct events ev;
        const char *err;
        int rc = parse(&ev, OTLP_LOGS, bodies[i], strlen(bodies[i]), &err);
        if (rc != 0 || ev.n != 0) {
            print_error("body %s: rc %d, %d event(s)\n", bodies[i], rc, ev.n);
            fail();
        }
    }
}

/* ---- logs ---- */

/* The smallest record: the receive time, the kind, the source and nothing made up. */
static void test_log_minimal(void **state)
{
    static const char body[] = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{}]}]}]}";
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_LOGS, L(body), &err), 1);
    assert_int_equal(check_event(&ev, 0, "log",
                                 "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"log\",\"source\":\"" SRC
                                 "\",\"received_at\":\"" RT_TEXT "\"}"),
                     0);
    events_free(&ev);
}

/* Record attributes named like canonical fields keep their value under "attributes.<name>";
 * the canonical fields keep theirs. */
static void test_log_attribute_collisions(void **state)
{
    static const char body[] =
        "{\"resourceLogs\":[{\"resource\":{\"attributes\":["
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"svc\"}},"
        "{\"key\":\"host.name\",\"value\":{\"stringValue\":\"node-1\"}}]},"
        "\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"1700000000000000000\","
        "\"severityText\":\"WARN\",\"body\":{\"stringValue\":\"real\"},"
        "\"traceId\":\"AA\",\"attributes\":["
        "{\"key\":\"message\",\"value\":{\"stringValue\":\"fake message\"}},"
        "{\"key\":\"service\",\"value\":{\"stringValue\":\"fake service\"}},"
        "{\"key\":\"host\",\"value\":{\"stringValue\":\"fake host\"}},"
        "{\"key\":\"level\",\"value\":{\"intValue\":3}},"
        "{\"key\":\"timestamp\",\"value\":{\"stringValue\":\"yesterday\"}},"
        "{\"key\":\"kind\",\"value\":{\"stringValue\":\"fake kind\"}},"
        "{\"key\":\"source\",\"value\":{\"stringValue\":\"fake source\"}},"
        "{\"key\":\"received_at\",\"value\":{\"stringValue\":\"never\"}},"
        "{\"key\":\"trace_id\",\"value\":{\"stringValue\":\"BB\"}},"
        "{\"key\":\"span_id\",\"value\":{\"stringValue\":\"CC\"}},"
        "{\"key\":\"name\",\"value\":{\"stringValue\":\"fake name\"}},"
        "{\"key\":\"plain\",\"value\":{\"stringValue\":\"kept\"}}]}]}]}]}";
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_LOGS, L(body), &err), 1);
    assert_int_equal(
        check_event(&ev, 0, "log",
                    "{\"timestamp\":\"2023-11-14T22:13:20.000000Z\",\"kind\":\"log\","
                    "\"source\":\"" SRC "\",\"service\":\"svc\",\"host\":\"node-1\","
                    "\"resource.service.name\":\"svc\",\"resource.host.name\":\"node-1\","
                    "\"level\":\"WARN\",\"message\":\"real\",\"trace_id\":\"aa\","
                    "\"attributes.message\":\"fake message\","
                    "\"attributes.service\":\"fake service\",\"attributes.host\":\"fake host\","
                    "\"attributes.level\":3,\"attributes.timestamp\":\"yesterday\","
                    "\"attributes.kind\":\"fake kind\",\"attributes.source\":\"fake source\","
                    "\"attributes.received_at\":\"never\",\"attributes.trace_id\":\"BB\","
                    "\"attributes.span_id\":\"CC\",\"attributes.name\":\"fake name\","
                    "\"plain\":\"kept\",\"received_at\":\"" RT_TEXT "\"}"),
        0);
    events_free(&ev);
}

/* AnyValue in every encoding senders use: intValue as a JSON number or string, doubles as
 * numbers or strings, bytes as base64 text, nested arrays and maps, an empty value. */
static void test_any_values(void **state)
{
    static const char body[] =
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{"
        "\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"k\",\"value\":{\"intValue\":1}}]}},"
        "\"attributes\":["
        "{\"key\":\"i_num\",\"value\":{\"intValue\":42}},"
        "{\"key\":\"i_str\",\"value\":{\"intValue\":\"-9007199254740993\"}},"
        "{\"key\":\"d_num\",\"value\":{\"doubleValue\":0.1}},"
        "{\"key\":\"d_int\",\"value\":{\"doubleValue\":3}},"
        "{\"key\":\"d_str\",\"value\":{\"doubleValue\":\"2.5\"}},"
        "{\"key\":\"b\",\"value\":{\"boolValue\":false}},"
        "{\"key\":\"bytes\",\"value\":{\"bytesValue\":\"aGVsbG8=\"}},"
        "{\"key\":\"empty\",\"value\":{}},"
        "{\"key\":\"nested\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":\"1\"},"
        "{\"arrayValue\":{\"values\":[]}},{\"kvlistValue\":{\"values\":[]}}]}}},"
        "{\"key\":\"esc\\\"aped\",\"value\":{\"stringValue\":\"line\\nbreak \\u00e9\"}}]}]}]}]}";
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_LOGS, L(body), &err), 1);
    assert_int_equal(
        check_event(&ev, 0, "log",
                    "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"log\",\"source\":\"" SRC "\","
                    "\"message\":{\"k\":1},\"i_num\":42,\"i_str\":-9007199254740993,"
                    "\"d_num\":0.1,\"d_int\":3,\"d_str\":2.5,\"b\":false,\"bytes\":\"aGVsbG8=\","
                    "\"empty\":null,\"nested\":[1,[],{}],\"esc\\\"aped\":\"line\\nbreak \\u00e9\","
                    "\"received_at\":\"" RT_TEXT "\"}"),
        0);
    /* A 64-bit integer beyond 2^53 keeps every digit. */
    assert_int_equal(json_integer_value(json_object_get(ev.obj[0], "i_str")), -9007199254740993LL);
    events_free(&ev);
}

/* Level from the severity number when there is no text; the observed time when there is no
 * event time; several resources and scopes, each event with its own. A severity number of 0
 * (SEVERITY_NUMBER_UNSPECIFIED) is no severity number: protobuf cannot tell it from an absent
 * one, so neither encoding writes it (the JSON decoder used to write "severity_number":0 when the
 * body said 0). */
static void test_log_fallbacks_and_grouping(void **state)
{
    static const char body[] =
        "{\"resourceLogs\":["
        "{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":"
        "\"a\"}}]},\"scopeLogs\":["
        "{\"scope\":{\"name\":\"s1\"},\"logRecords\":["
        "{\"severityNumber\":17,\"observedTimeUnixNano\":\"1700000000500000000\"},"
        "{\"severityNumber\":1,\"timeUnixNano\":\"0\"}]},"
        "{\"logRecords\":[{\"severityNumber\":24,\"severityText\":\"\"}]}]},"
        "{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":0,"
        "\"timeUnixNano\":1700000000000000001}]}]}]}";
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_LOGS, L(body), &err), 4);
    int bad = 0;
    bad += check_event(&ev, 0, "log",
                       "{\"timestamp\":\"2023-11-14T22:13:20.500000Z\",\"kind\":\"log\","
                       "\"source\":\"" SRC "\",\"service\":\"a\",\"resource.service.name\":\"a\","
                       "\"scope.name\":\"s1\",\"level\":\"ERROR\",\"severity_number\":17,"
                       "\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 1, "log",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"log\","
                       "\"source\":\"" SRC "\",\"service\":\"a\",\"resource.service.name\":\"a\","
                       "\"scope.name\":\"s1\",\"level\":\"TRACE\",\"severity_number\":1,"
                       "\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 2, "log",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"log\","
                       "\"source\":\"" SRC "\",\"service\":\"a\",\"resource.service.name\":\"a\","
                       "\"level\":\"FATAL\",\"severity_number\":24,"
                       "\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 3, "log",
                       "{\"timestamp\":\"2023-11-14T22:13:20.000000Z\",\"kind\":\"log\","
                       "\"source\":\"" SRC "\",\"received_at\":\"" RT_TEXT "\"}") != 0;
    assert_int_equal(bad, 0);
    events_free(&ev);
}

/* Regression (was a bug, fixed): collector/otlp.c otlp_parse() loads the body with json_loadb(...,
 * 0, ...), without JSON_ALLOW_NUL, so a valid request whose log body holds "\u0000" (valid JSON,
 * valid UTF-8, valid OTLP) is refused as a whole with "body is not valid JSON", losing every record
 * of the batch. The record must be kept, its NUL escaped in the output. */
static void test_log_nul_in_string(void **state)
{
    static const char body[] = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
                               "{\"body\":{\"stringValue\":\"a\\u0000b\"}},"
                               "{\"body\":{\"stringValue\":\"next\"}}]}]}]}";
    struct events ev;
    const char *err;
    int rc = parse(&ev, OTLP_LOGS, L(body), &err);
    if (rc != 2)
        print_error("rc %d err %s\n", rc, err ? err : "(none)");
    assert_int_equal(rc, 2);
    json_t *o = json_loadb(ev.text[0], strlen(ev.text[0]), JSON_ALLOW_NUL, NULL);
    json_t *m = json_object_get(o, "message");
    assert_int_equal(json_string_length(m), 3);
    assert_memory_equal(json_string_value(m), "a\0b", 3);
    json_decref(o);
    events_free(&ev);
}

/* ---- traces ---- */

/* Kinds and status codes as numbers and as names (with or without their prefix). Kind 0
 * (SPAN_KIND_UNSPECIFIED) gives no span_kind, as no kind does: protobuf cannot tell them apart
 * (the JSON decoder used to write "UNSPECIFIED" for an explicit 0). */
static void test_span_kinds_and_status(void **state)
{
    static const char body[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
        "{\"traceId\":\"0123456789ABCDEF0123456789ABCDEF\",\"spanId\":\"0123456789ABCDEF\","
        "\"name\":\"GET /\",\"kind\":\"SPAN_KIND_CLIENT\","
        "\"startTimeUnixNano\":\"1700000000000000000\",\"endTimeUnixNano\":\"1700000000250000000\","
        "\"status\":{\"code\":2,\"message\":\"boom\"}},"
        "{\"name\":\"b\",\"kind\":5,\"status\":{\"code\":\"STATUS_CODE_OK\"}},"
        "{\"name\":\"c\",\"kind\":\"PRODUCER\",\"status\":{\"code\":1}},"
        "{\"name\":\"d\",\"kind\":0,\"status\":{}},"
        "{\"name\":\"e\",\"kind\":1,\"status\":{\"code\":\"STATUS_CODE_ERROR\","
        "\"message\":\"m\"},\"startTimeUnixNano\":5000000000,\"endTimeUnixNano\":4000000000},"
        "{\"name\":\"f\",\"kind\":99}]}]}]}";
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_TRACES, L(body), &err), 6);
    int bad = 0;
    bad += check_event(&ev, 0, "trace",
                       "{\"timestamp\":\"2023-11-14T22:13:20.000000Z\",\"kind\":\"trace\","
                       "\"source\":\"" SRC "\",\"trace_id\":\"0123456789abcdef0123456789abcdef\","
                       "\"span_id\":\"0123456789abcdef\",\"name\":\"GET /\","
                       "\"span_kind\":\"CLIENT\",\"duration_ns\":250000000,"
                       "\"end_time\":\"2023-11-14T22:13:20.250000Z\",\"status\":\"ERROR\","
                       "\"status_message\":\"boom\",\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 1, "trace",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"trace\",\"source\":\"" SRC "\","
                       "\"name\":\"b\",\"span_kind\":\"CONSUMER\",\"status\":\"OK\","
                       "\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 2, "trace",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"trace\",\"source\":\"" SRC "\","
                       "\"name\":\"c\",\"span_kind\":\"PRODUCER\",\"status\":\"OK\","
                       "\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 3, "trace",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"trace\",\"source\":\"" SRC "\","
                       "\"name\":\"d\",\"status\":\"UNSET\","
                       "\"received_at\":\"" RT_TEXT "\"}") != 0;
    /* An end before the start gives no duration. */
    bad += check_event(&ev, 4, "trace",
                       "{\"timestamp\":\"1970-01-01T00:00:05.000000Z\",\"kind\":\"trace\","
                       "\"source\":\"" SRC "\",\"name\":\"e\",\"span_kind\":\"INTERNAL\","
                       "\"end_time\":\"1970-01-01T00:00:04.000000Z\",\"status\":\"ERROR\","
                       "\"status_message\":\"m\",\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 5, "trace",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"trace\",\"source\":\"" SRC "\","
                       "\"name\":\"f\",\"status\":\"UNSET\",\"received_at\":\"" RT_TEXT "\"}") != 0;
    assert_int_equal(bad, 0);
    events_free(&ev);
}

/* Span events and links: kept in the proto3 JSON form (the fields that have a value, so an empty
 * attribute list is left out; 64-bit integers as strings; ids as lowercase hex), their
 * attributes as plain objects. */
static void test_span_events_links(void **state)
{
    static const char body[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"s\","
        "\"events\":[{\"timeUnixNano\":\"1700000000000000000\",\"name\":\"exception\","
        "\"attributes\":[{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"E\"}}]}],"
        "\"links\":[{\"traceId\":\"AB\",\"spanId\":\"cd\",\"attributes\":[]}]}]}]}]}";
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_TRACES, L(body), &err), 1);
    assert_int_equal(
        check_event(&ev, 0, "trace",
                    "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"trace\",\"source\":\"" SRC "\","
                    "\"name\":\"s\",\"status\":\"UNSET\","
                    "\"events\":[{\"timeUnixNano\":\"1700000000000000000\",\"name\":\"exception\","
                    "\"attributes\":{\"exception.type\":\"E\"}}],"
                    "\"links\":[{\"traceId\":\"ab\",\"spanId\":\"cd\"}],"
                    "\"received_at\":\"" RT_TEXT "\"}"),
        0);
    events_free(&ev);
}

/* Regression (was a bug, fixed): collector/otlp.c canonical() lists only
 * timestamp/kind/source/received_at/service/ host/level/message/trace_id/span_id/name, but the
 * parser writes more fields of its own (span: parent_span_id, span_kind, duration_ns, end_time,
 * status, status_message, events, links; log: severity_number; data point: value, unit,
 * description, metric_type, temporality, monotonic, start_time, count, sum, min, max,
 * bucket_counts, ...). A span attribute "status" or a data point attribute "value" is then written
 * as a second member of the same name: the event has duplicate keys and, for any reader keeping the
 * last, the attribute replaces the parser's field (status "UNSET" -> "teapot"). Likewise a scope
 * attribute "name" or "version" duplicates scope.name / scope.version. Attributes must not
 * collide with any field the parser writes (they belong under "attributes.<name>"). */
static void test_attribute_collides_with_parser_fields(void **state)
{
    static const struct {
        enum otlp_signal sig;
        const char *body;
        const char *field, *want; /* the parser's field must keep this value */
    } cases[] = {
        {OTLP_TRACES,
         "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"s\",\"attributes\":["
         "{\"key\":\"status\",\"value\":{\"stringValue\":\"teapot\"}}]}]}]}]}",
         "status", "UNSET"},
        {OTLP_TRACES,
         "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"s\",\"kind\":2,"
         "\"attributes\":[{\"key\":\"span_kind\",\"value\":{\"stringValue\":\"mine\"}}]}]}]}]}",
         "span_kind", "SERVER"},
        {OTLP_METRICS,
         "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"m\",\"gauge\":"
         "{\"dataPoints\":[{\"asDouble\":1.5,\"attributes\":[{\"key\":\"metric_type\","
         "\"value\":{\"stringValue\":\"mine\"}}]}]}}]}]}]}",
         "metric_type", "gauge"},
        {OTLP_LOGS,
         "{\"resourceLogs\":[{\"scopeLogs\":[{\"scope\":{\"name\":\"lib\",\"attributes\":["
         "{\"key\":\"name\",\"value\":{\"stringValue\":\"other\"}}]},\"logRecords\":[{}]}]}]}",
         "scope.name", "lib"},
    };
    int bad = 0;
    for (size_t i = 0; i < N(cases); i++) {
        struct events ev;
        const char *err;
        int rc = parse(&ev, cases[i].sig, cases[i].body, strlen(cases[i].body), &err);
        const char *v =
            rc == 1 ? json_string_value(json_object_get(ev.obj[0], cases[i].field)) : NULL;
        if (rc != 1 || !ev.obj[0] || !v || strcmp(v, cases[i].want) != 0) {
            print_error("case %zu: rc %d, %s must be \"%s\" without duplicate keys: %s\n", i, rc,
                        cases[i].field, cases[i].want, ev.n ? ev.text[0] : "(no event)");
            bad++;
        }
        events_free(&ev);
    }
    assert_int_equal(bad, 0);
}

/* ---- metrics ---- */

/* int64 as proto3 JSON strings, cumulative temporality, non-monotonic sums (gauges with a
 * temporality in the metric model), summaries and exponential histograms. */
static void test_metric_encodings(void **state)
{
    static const char body[] =
        "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"host.name\","
        "\"value\":{\"stringValue\":\"h1\"}}]},\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"reqs\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":false,"
        "\"dataPoints\":[{\"asInt\":\"7\",\"timeUnixNano\":\"1700000000000000000\"},"
        "{\"asInt\":8}]}},"
        "{\"name\":\"lat\",\"histogram\":{\"aggregationTemporality\":2,\"dataPoints\":[{"
        "\"count\":\"4\",\"sum\":10.5,\"bucketCounts\":[\"1\",\"0\",\"3\"],"
        "\"explicitBounds\":[0.5,2.5]}]}},"
        "{\"name\":\"q\",\"summary\":{\"dataPoints\":[{\"count\":\"2\",\"sum\":3,"
        "\"quantileValues\":[{\"quantile\":0.5,\"value\":1},{\"quantile\":0.99,\"value\":2.5}]}]}},"
        "{\"name\":\"e\",\"exponentialHistogram\":{\"aggregationTemporality\":1,\"dataPoints\":[{"
        "\"count\":\"3\",\"scale\":2,\"zeroCount\":\"1\"}]}}]}]}]}";
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_METRICS, L(body), &err), 5);
#define HOST "\"source\":\"" SRC "\",\"host\":\"h1\",\"resource.host.name\":\"h1\","
    int bad = 0;
    bad += check_event(&ev, 0, "metric",
                       "{\"timestamp\":\"2023-11-14T22:13:20.000000Z\",\"kind\":\"metric\"," HOST
                       "\"name\":\"reqs\",\"metric_type\":\"gauge\",\"temporality\":\"cumulative\","
                       "\"value\":7,\"labels\":{},\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 1, "metric",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"metric\"," HOST
                       "\"name\":\"reqs\",\"metric_type\":\"gauge\",\"temporality\":\"cumulative\","
                       "\"value\":8,\"labels\":{},\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 2, "metric",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"metric\"," HOST
                       "\"name\":\"lat\",\"metric_type\":\"histogram\","
                       "\"temporality\":\"cumulative\",\"count\":4,\"sum\":10.5,"
                       "\"bucket_counts\":[1,0,3],\"explicit_bounds\":[0.5,2.5],\"labels\":{},"
                       "\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 3, "metric",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"metric\"," HOST
                       "\"name\":\"q\",\"metric_type\":\"summary\",\"count\":2,\"sum\":3,"
                       "\"quantiles\":{\"0.5\":1,\"0.99\":2.5},\"labels\":{},"
                       "\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 4, "metric",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"metric\"," HOST
                       "\"name\":\"e\",\"metric_type\":\"exponential_histogram\","
                       "\"temporality\":\"delta\",\"count\":3,\"scale\":2,\"zero_count\":1,"
                       "\"labels\":{},\"received_at\":\"" RT_TEXT "\"}") != 0;
#undef HOST
    assert_int_equal(bad, 0);
    events_free(&ev);
}

/* The decoder says where the partition key's value is in each event (on_event checks it against
 * the event's member, or that there is none), wherever the field comes from: the resource, the
 * scope, the record's own fields, an attribute (renamed or not), a span's events. */
static void test_key_field_anywhere(void **state)
{
    static const char *const keys[] = {"service",       "resource.service.name",
                                       "scope.name",    "scope.my.scope.attribute",
                                       "level",         "message",
                                       "span_id",       "my.span.attr",
                                       "events",        "value",
                                       "bucket_counts", "name",
                                       "received_at",   "timestamp",
                                       "kind",          "source",
                                       "absent"};
    static const char *const files[] = {"logs.json", "trace.json", "metrics.json"};
    static const enum otlp_signal sigs[] = {OTLP_LOGS, OTLP_TRACES, OTLP_METRICS};
    static const char spans[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"s\",\"events\":[{}],"
        "\"attributes\":[{\"key\":\"name\",\"value\":{\"stringValue\":\"x\\\"y\"}}]}]}]}]}";
    for (size_t k = 0; k < N(keys); k++) {
        key_field = keys[k];
        for (size_t f = 0; f < N(files); f++) {
            size_t len;
            char *body = read_fixture(files[f], &len);
            struct events ev;
            const char *err;
            assert_true(parse(&ev, sigs[f], body, len, &err) > 0);
            events_free(&ev);
            free(body);
        }
        struct events ev;
        const char *err;
        assert_int_equal(parse(&ev, OTLP_TRACES, L(spans), &err), 1);
        events_free(&ev);
    }
    key_field = "trace_id";
}

/* ---- records that do not decode ---- */

/* A log record, span or metric that does not decode is handed over as invalid (why, and its
 * text, for the dead-letter sink) and the others of the body are delivered. */
static void test_invalid_records_left_out(void **state)
{
    static const char body[] =
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
        "{\"body\":{\"stringValue\":\"first\"}},"
        "{\"body\":{\"stringValue\":\"bad id\"},\"traceId\":\"xyz\"},"
        "1,\"x\",null,"
        "{\"severityNumber\":\"SEVERITY_NUMBER_LOUD\"},"
        "{\"timeUnixNano\":\"-5\"},"
        "{\"attributes\":[{\"key\":\"k\",\"value\":{\"intValue\":\"1.5\"}}]},"
        "{\"body\":{\"stringValue\":\"last\"}}]}]}]}";
    static const char *const why[] = {
        "logRecords[1].traceId: \"xyz\" is not hex (an odd number of digits)",
        "logRecords[2]: not an object",
        "logRecords[3]: not an object",
        "logRecords[4]: null",
        ("logRecords[5].severityNumber: \"SEVERITY_NUMBER_LOUD\" is not a value of "
         "opentelemetry.proto.logs.v1.SeverityNumber"),
        "logRecords[6].timeUnixNano: -5 is out of range",
        "logRecords[7].attributes[0].value.intValue: 1.5 is not an integer",
    };
    static const char *const raw[] = {
        "{\"body\":{\"stringValue\":\"bad id\"},\"traceId\":\"xyz\"}",
        "1",
        "\"x\"",
        "null",
        "{\"severityNumber\":\"SEVERITY_NUMBER_LOUD\"}",
        "{\"timeUnixNano\":\"-5\"}",
        "{\"attributes\":[{\"key\":\"k\",\"value\":{\"intValue\":\"1.5\"}}]}"};
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_LOGS, L(body), &err), 9);
    assert_int_equal(ev.ninvalid, 7);
    int bad = 0;
    for (int i = 0; i < 7; i++) {
        if (strcmp(ev.why[i], why[i]) || strcmp(ev.raw[i], raw[i])) {
            print_error("invalid %d: %s (%s), want %s (%s)\n", i, ev.why[i], ev.raw[i], why[i],
                        raw[i]);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
    assert_int_equal(ev.n, 2);
    assert_string_equal(json_string_value(json_object_get(ev.obj[0], "message")), "first");
    assert_string_equal(json_string_value(json_object_get(ev.obj[1], "message")), "last");
    events_free(&ev);
}

/* What is not a record refuses the whole body, with the path of what is wrong. */
static void test_errors_name_the_path(void **state)
{
    static const struct {
        enum otlp_signal sig;
        const char *body, *why;
    } cases[] = {
        {OTLP_LOGS,
         "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"a\",\"value\":"
         "{\"intValue\":true}}]}}]}",
         "resourceLogs[0].resource.attributes[0].value.intValue: not a number"},
        {OTLP_TRACES, "{\"resourceSpans\":[{\"scopeSpans\":[{\"scope\":{\"name\":5}}]}]}",
         "resourceSpans[0].scopeSpans[0].scope.name: not a string"},
        {OTLP_METRICS, "{\"resourceMetrics\":[{\"scopeMetrics\":{}}]}",
         "resourceMetrics[0].scopeMetrics: not an array"},
        {OTLP_LOGS, "{\"resourceLogs\":[{},null]}", "resourceLogs[1]: null"},
        {OTLP_LOGS, "{\"resourceLogs\":[1", "body is not valid JSON"},
    };
    int bad = 0;
    for (size_t i = 0; i < N(cases); i++) {
        struct events ev;
        const char *err;
        int rc = parse(&ev, cases[i].sig, cases[i].body, strlen(cases[i].body), &err);
        if (rc != -EINVAL || strncmp(err, cases[i].why, strlen(cases[i].why))) {
            print_error("%s: rc %d, %s; want %s\n", cases[i].body, rc, rc < 0 ? err : "-",
                        cases[i].why);
            bad++;
        }
        events_free(&ev);
    }
    assert_int_equal(bad, 0);
}

/* The specification lets senders write the .proto's field names (snake_case) as well; unknown
 * fields are ignored, null is the default, enums come as names, 64-bit integers as numbers or
 * strings, doubles as "NaN"/"Infinity" strings. */
static void test_field_name_forms(void **state)
{
    static const char camel[] =
        "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"stringValue\":\"svc\"}}]},\"scopeLogs\":[{\"logRecords\":[{"
        "\"timeUnixNano\":\"1700000000000000000\",\"severityNumber\":9,\"severityText\":\"I\","
        "\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\","
        "\"attributes\":[{\"key\":\"d\",\"value\":{\"doubleValue\":\"Infinity\"}}]}]}]}]}";
    static const char snake[] =
        "{\"resource_logs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"string_value\":\"svc\"}}],\"droppedAttributesCount\":null},"
        "\"unknown\":{\"deep\":[1,2]},\"scope_logs\":[{\"log_records\":[{"
        "\"time_unix_nano\":1700000000000000000,\"severity_number\":\"SEVERITY_NUMBER_INFO\","
        "\"severity_text\":\"I\",\"trace_id\":\"0102030405060708090A0B0C0D0E0F10\","
        "\"span_id\":\"0102030405060708\",\"eventName\":null,\"futureField\":7,"
        "\"attributes\":[{\"key\":\"d\",\"value\":{\"double_value\":\"Infinity\"}}]}]}]}]}";
    struct events a, b;
    const char *err;
    assert_int_equal(parse(&a, OTLP_LOGS, L(camel), &err), 1);
    assert_int_equal(parse(&b, OTLP_LOGS, L(snake), &err), 1);
    assert_string_equal(a.text[0], b.text[0]);
    assert_int_equal(check_event(&a, 0, "log",
                                 "{\"timestamp\":\"2023-11-14T22:13:20.000000Z\",\"kind\":\"log\","
                                 "\"source\":\"" SRC
                                 "\",\"service\":\"svc\",\"resource.service.name\":\"svc\","
                                 "\"level\":\"I\",\"severity_number\":9,"
                                 "\"trace_id\":\"0102030405060708090a0b0c0d0e0f10\","
                                 "\"span_id\":\"0102030405060708\",\"d\":null,"
                                 "\"received_at\":\"" RT_TEXT "\"}"),
                     0);
    events_free(&a);
    events_free(&b);
}

/* Doubles read from OTLP/JSON are the doubles strtod reads (the decoder reads short decimals
 * without it): the same text written back, for decimals of every length and random ones. */
static void test_doubles_read_exactly(void **state)
{
    static const char *const fixed[] = {
        "0.1",
        "-0.0",
        "123.456",
        "1e5",
        "1.5E-7",
        "0.000001",
        "2.50",
        "007.25",
        "-12",
        "9007199254740993",
        "123456789012345.6",
        "0.30000000000000004",
        "1234567890123456789012345678901234567890123456789012345678901234567890.5"};
    uint64_t x = 0x243f6a8885a308d3ULL;
    int bad = 0;
    for (int i = 0; i < 400; i++) {
        char num[120];
        if (i < (int)N(fixed)) {
            snprintf(num, sizeof(num), "%s", fixed[i]);
        } else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int digits = 1 + (int)(x % 18), point = (int)((x >> 8) % (digits + 1));
            size_t n = 0;
            if (x >> 63)
                num[n++] = '-';
            for (int d = 0; d < digits; d++) {
                if (d == point && d)
                    num[n++] = '.';
                num[n++] = (char)('0' + (x >> (d * 3 + 10)) % 10);
            }
            num[n] = '\0';
        }
        const char *digit = num + (num[0] == '-');
        int leading_zero = digit[0] == '0' && digit[1] >= '0' && digit[1] <= '9';
        for (int quoted = leading_zero; quoted < 2; quoted++) { /* 007 is JSON only quoted */
            char body[400];
            snprintf(body, sizeof(body),
                     "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"attributes\":["
                     "{\"key\":\"d\",\"value\":{\"doubleValue\":%s%s%s}}]}]}]}]}",
                     quoted ? "\"" : "", num, quoted ? "\"" : "");
            struct events ev;
            const char *err;
            struct buf want = {0};
            buf_puts(&want, "\"d\":");
            jsonw_double(&want, strtod(num, NULL));
            buf_puts(&want, ",\"received_at\"");
            buf_putc(&want, '\0');
            if (parse(&ev, OTLP_LOGS, body, strlen(body), &err) != 1 ||
                !strstr(ev.text[0], want.data)) {
                print_error("%s: %s, want %s\n", num, ev.n ? ev.text[0] : err, want.data);
                bad++;
            }
            buf_free(&want);
            events_free(&ev);
        }
    }
    assert_int_equal(bad, 0);
}

/* Values nested past what a decoder may recurse into: the record is invalid, the body is not
 * refused, nothing crashes. */
static void test_deep_nesting(void **state)
{
    struct buf b = {0};
    buf_puts(&b, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":");
    for (int i = 0; i < 100000; i++)
        buf_puts(&b, "{\"arrayValue\":{\"values\":[");
    for (int i = 0; i < 100000; i++)
        buf_puts(&b, "]}}");
    buf_puts(&b, "},{}]}]}]}");
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_LOGS, b.data, b.len, &err), 2);
    assert_int_equal(ev.ninvalid, 1);
    if (!strstr(ev.why[0], "nested deeper than 100"))
        print_error("why: %s\n", ev.why[0]);
    assert_non_null(strstr(ev.why[0], "nested deeper than 100"));
    assert_int_equal(ev.n, 1);
    events_free(&ev);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_logs),
        cmocka_unit_test(test_example_trace),
        cmocka_unit_test(test_example_metrics),
        cmocka_unit_test(test_example_wrong_signal),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_empty_requests),
        cmocka_unit_test(test_log_minimal),
        cmocka_unit_test(test_log_attribute_collisions),
        cmocka_unit_test(test_any_values),
        cmocka_unit_test(test_log_fallbacks_and_grouping),
        cmocka_unit_test(test_log_nul_in_string),
        cmocka_unit_test(test_span_kinds_and_status),
        cmocka_unit_test(test_span_events_links),
        cmocka_unit_test(test_attribute_collides_with_parser_fields),
        cmocka_unit_test(test_metric_encodings),
        cmocka_unit_test(test_invalid_records_left_out),
        cmocka_unit_test(test_errors_name_the_path),
        cmocka_unit_test(test_field_name_forms),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_doubles_read_exactly),
        cmocka_unit_test(test_key_field_anywhere), /* last: it changes key_field */
    };
    return cmocka_run_group_tests_name("otlp", tests, NULL, NULL);
}
