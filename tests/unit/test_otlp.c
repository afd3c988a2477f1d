/* Unit tests of the OTLP/HTTP JSON parser (collector/otlp.h) on the examples of the
 * opentelemetry-proto repository (examples/logs.json, trace.json, metrics.json, kept in
 * tests/fixtures/otlp/): every field of every event, resource and scope attributes, typed
 * record attributes, lowercase ids, span kind/status/duration, one metric event per data point;
 * then the encodings real senders use (int64 as strings or numbers, enum names), attribute
 * names that collide with canonical fields, and bodies that are not export requests. Every
 * event is parsed with jansson (duplicate keys rejected) and compared as a whole. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "collector/otlp.h"

#define L(s) s, sizeof(s) - 1
#define N(a) (sizeof(a) / sizeof((a)[0]))

#define SRC     "otlp_in"
#define RT_NS   1767225600123456000LL /* 2026-01-01T00:00:00.123456Z */
#define RT_TEXT "2026-01-01T00:00:00.123456Z"

#define MAX_EVENTS 16

static struct recv_time fixed_rt(void)
{
    struct recv_time rt;
    rt.ns = RT_NS;
    time_format_rfc3339(rt.ns, rt.text);
    return rt;
}

/* Every event emitted, as text and parsed (NULL when it does not parse without duplicate
 * keys). */
struct events {
    int n;
    char *text[MAX_EVENTS];
    json_t *obj[MAX_EVENTS];
};

static void on_event(void *ud, const char *json, size_t len)
{
    struct events *ev = ud;
    assert_true(ev->n < MAX_EVENTS);
    assert_null(memchr(json, '\n', len));
    ev->text[ev->n] = strndup(json, len);
    json_error_t e;
    ev->obj[ev->n] = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
    if (!ev->obj[ev->n])
        print_error("event does not parse (%s): %.*s\n", e.text, (int)len, json);
    ev->n++;
}

static void events_free(struct events *ev)
{
    for (int i = 0; i < ev->n; i++) {
        free(ev->text[i]);
        json_decref(ev->obj[i]);
    }
    memset(ev, 0, sizeof(*ev));
}

static int parse(struct events *ev, enum otlp_signal sig, const char *body, size_t len,
                 const char **err)
{
    struct recv_time rt = fixed_rt();
    memset(ev, 0, sizeof(*ev));
    *err = NULL;
    return otlp_parse(sig, body, len, SRC, &rt, on_event, ev, err);
}

/* True when s is "YYYY-MM-DDTHH:MM:SS.ffffffZ". */
static int canonical_time(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if (!s || strlen(s) != sizeof(pat) - 1)
        return 0;
    for (size_t i = 0; pat[i]; i++) {
        if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
            return 0;
    }
    return 1;
}

/* timestamp, kind, source first, received_at last, times canonical. */
static int check_shape(json_t *o, const char *kind)
{
    static const char *const first[] = {"timestamp", "kind", "source"};
    if (!json_is_object(o))
        return -1;
    void *it = json_object_iter(o);
    for (int i = 0; i < 3; i++, it = json_object_iter_next(o, it)) {
        if (!it || strcmp(json_object_iter_key(it), first[i]) != 0)
            return -1;
    }
    const char *last = NULL;
    for (; it; it = json_object_iter_next(o, it))
        last = json_object_iter_key(it);
    if (!last || strcmp(last, "received_at") != 0)
        return -1;
    const char *k = json_string_value(json_object_get(o, "kind"));
    const char *s = json_string_value(json_object_get(o, "source"));
    const char *r = json_string_value(json_object_get(o, "received_at"));
    return canonical_time(json_string_value(json_object_get(o, "timestamp"))) && k &&
                   strcmp(k, kind) == 0 && s && strcmp(s, SRC) == 0 && r && strcmp(r, RT_TEXT) == 0
               ? 0
               : -1;
}

/* Event i must be exactly want_json (its canonical fields included). */
static int check_event(const struct events *ev, int i, const char *kind, const char *want_json)
{
    if (i >= ev->n) {
        print_error("event %d missing (%d emitted)\n", i, ev->n);
        return -1;
    }
    json_error_t e;
    json_t *w = json_loads(want_json, 0, &e);
    if (!w) {
        print_error("bad expectation in the test (%s): %s\n", e.text, want_json);
        fail();
    }
    int ok = ev->obj[i] && check_shape(ev->obj[i], kind) == 0 && json_equal(ev->obj[i], w);
    if (!ok) {
        char *ws = json_dumps(w, JSON_COMPACT);
        print_error("event %d:\n  got  %s\n  want %s\n", i, ev->text[i], ws);
        free(ws);
    }
    json_decref(w);
    return ok ? 0 : -1;
}

static char *read_fixture(const char *name, size_t *len)
{
    char path[4096];
    const char *src = getenv("SPILLWAY_SRC");
    if (src && *src) {
        snprintf(path, sizeof(path), "%s/tests/fixtures/otlp/%s", src, name);
    } else {
        /* This file is tests/unit/test_otlp.c: the fixtures are in tests/fixtures/otlp/. */
        const char *f = __FILE__;
        const char *unit = strstr(f, "unit/test_otlp.c");
        assert_non_null(unit);
        snprintf(path, sizeof(path), "%.*sfixtures/otlp/%s", (int)(unit - f), f, name);
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        print_error("cannot open fixture %s (set SPILLWAY_SRC to the source tree)\n", path);
        fail();
    }
    char *data = malloc(1 << 16);
    assert_non_null(data);
    *len = fread(data, 1, 1 << 16, fp);
    assert_true(*len > 0 && *len < (1 << 16));
    fclose(fp);
    return data;
}

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
                    "\"metric_type\":\"sum\",\"temporality\":\"delta\",\"monotonic\":true,"
                    "\"start_time\":\"2018-12-13T14:51:00.300000Z\",\"value\":5,"
                    "\"my.counter.attr\":\"some value\"}") != 0;
    bad +=
        check_event(&ev, 1, "metric",
                    "{\"timestamp\":\"2018-12-13T14:51:00.300000Z\",\"kind\":\"metric\"," RES_SCOPE
                    ",\"name\":\"my.gauge\",\"unit\":\"1\",\"description\":\"I`m a Gauge\","
                    "\"metric_type\":\"gauge\",\"value\":10,"
                    "\"my.gauge.attr\":\"some value\"}") != 0;
    bad +=
        check_event(&ev, 2, "metric",
                    "{\"timestamp\":\"2018-12-13T14:51:00.300000Z\",\"kind\":\"metric\"," RES_SCOPE
                    ",\"name\":\"my.histogram\",\"unit\":\"1\","
                    "\"description\":\"I`m a Histogram\",\"metric_type\":\"histogram\","
                    "\"temporality\":\"delta\",\"start_time\":\"2018-12-13T14:51:00.300000Z\","
                    "\"count\":3,\"sum\":3,\"min\":1,\"max\":1,\"bucket_counts\":[1,1,1],"
                    "\"explicit_bounds\":[1],\"my.histogram.attr\":\"some value\"}") != 0;
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
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"scope\":{},\"logRecords\":[1,\"x\",null]}]}]}",
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
 * event time; several resources and scopes, each event with its own. */
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
                       "\"source\":\"" SRC "\",\"severity_number\":0,"
                       "\"received_at\":\"" RT_TEXT "\"}") != 0;
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
                       "\"name\":\"d\",\"span_kind\":\"UNSPECIFIED\",\"status\":\"UNSET\","
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

/* Span events and links: kept close to the wire form, their attributes as plain objects. */
static void test_span_events_links(void **state)
{
    static const char body[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"s\","
        "\"events\":[{\"timeUnixNano\":\"1700000000000000000\",\"name\":\"exception\","
        "\"attributes\":[{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"E\"}}]}],"
        "\"links\":[{\"traceId\":\"ab\",\"spanId\":\"cd\",\"attributes\":[]}]}]}]}]}";
    struct events ev;
    const char *err;
    assert_int_equal(parse(&ev, OTLP_TRACES, L(body), &err), 1);
    assert_int_equal(
        check_event(&ev, 0, "trace",
                    "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"trace\",\"source\":\"" SRC "\","
                    "\"name\":\"s\",\"status\":\"UNSET\","
                    "\"events\":[{\"timeUnixNano\":\"1700000000000000000\",\"name\":\"exception\","
                    "\"attributes\":{\"exception.type\":\"E\"}}],"
                    "\"links\":[{\"traceId\":\"ab\",\"spanId\":\"cd\",\"attributes\":{}}],"
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

/* int64 as proto3 JSON strings, cumulative temporality, non-monotonic sums, summaries and
 * exponential histograms. */
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
                       "\"name\":\"reqs\",\"metric_type\":\"sum\",\"temporality\":\"cumulative\","
                       "\"monotonic\":false,\"value\":7,\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 1, "metric",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"metric\"," HOST
                       "\"name\":\"reqs\",\"metric_type\":\"sum\",\"temporality\":\"cumulative\","
                       "\"monotonic\":false,\"value\":8,\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 2, "metric",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"metric\"," HOST
                       "\"name\":\"lat\",\"metric_type\":\"histogram\","
                       "\"temporality\":\"cumulative\",\"count\":4,\"sum\":10.5,"
                       "\"bucket_counts\":[1,0,3],\"explicit_bounds\":[0.5,2.5],"
                       "\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 3, "metric",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"metric\"," HOST
                       "\"name\":\"q\",\"metric_type\":\"summary\",\"count\":2,\"sum\":3,"
                       "\"quantiles\":{\"0.5\":1,\"0.99\":2.5},"
                       "\"received_at\":\"" RT_TEXT "\"}") != 0;
    bad += check_event(&ev, 4, "metric",
                       "{\"timestamp\":\"" RT_TEXT "\",\"kind\":\"metric\"," HOST
                       "\"name\":\"e\",\"metric_type\":\"exponential_histogram\","
                       "\"temporality\":\"delta\",\"count\":3,\"scale\":2,\"zero_count\":1,"
                       "\"received_at\":\"" RT_TEXT "\"}") != 0;
#undef HOST
    assert_int_equal(bad, 0);
    events_free(&ev);
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
    };
    return cmocka_run_group_tests_name("otlp", tests, NULL, NULL);
}
