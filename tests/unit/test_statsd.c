/* Unit tests of the StatsD parser (collector/format_statsd.h): every metric type, gauge deltas,
 * timer units, sets keeping their member as a string, sample rates, DogStatsD tags and timestamps,
 * and every kind of bad line refused with a reason and the output left as it was. Every
 * output is parsed with jansson (duplicate keys rejected) and compared as a whole with the
 * expected object. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "collector/format_statsd.h"

#define L(s) s, sizeof(s) - 1
#define N(a) (sizeof(a) / sizeof((a)[0]))

#define SRC     "statsd_in"
#define RT_NS   1767225600123456000LL /* 2026-01-01T00:00:00.123456Z */
#define RT_TEXT "2026-01-01T00:00:00.123456Z"

static struct recv_time fixed_rt(void)
{
    struct recv_time rt;
    rt.ns = RT_NS;
    time_format_rfc3339(rt.ns, rt.text);
    return rt;
}

struct result {
    int rc;
    const char *err;
    json_t *obj; /* the output parsed, duplicate keys rejected; NULL when it does not parse */
    char text[4096];
    size_t len;
};

/* Parses line into a buffer already holding "previous": appended to on success, untouched on
 * error. A built event must be one JSON object on one line. */
static void run(struct result *r, const char *line, size_t len)
{
    struct recv_time rt = fixed_rt();
    struct buf out = {0};
    buf_puts(&out, "previous");
    memset(r, 0, sizeof(*r));
    r->rc = statsd_to_event(line, len, SRC, &rt, &out, &r->err);
    assert_true(out.len >= 8);
    assert_memory_equal(out.data, "previous", 8);
    r->len = out.len - 8;
    assert_true(r->len < sizeof(r->text));
    memcpy(r->text, out.data + 8, r->len);
    buf_free(&out);
    if (r->rc != 0)
        return;
    assert_null(memchr(r->text, '\n', r->len));
    json_error_t e;
    r->obj = json_loadb(r->text, r->len, JSON_REJECT_DUPLICATES, &e);
    if (!r->obj)
        print_error("output does not parse (%s): %.*s\n", e.text, (int)r->len, r->text);
}

static void result_free(struct result *r)
{
    json_decref(r->obj);
    r->obj = NULL;
}

/* timestamp, kind, source first, received_at last. */
static int check_order(json_t *o)
{
    static const char *const first[] = {"timestamp", "kind", "source"};
    void *it = json_object_iter(o);
    for (int i = 0; i < 3; i++, it = json_object_iter_next(o, it)) {
        if (!it || strcmp(json_object_iter_key(it), first[i]) != 0)
            return -1;
    }
    const char *last = NULL;
    for (; it; it = json_object_iter_next(o, it))
        last = json_object_iter_key(it);
    return last && strcmp(last, "received_at") == 0 ? 0 : -1;
}

struct ok_case {
    const char *in;
    size_t in_len;
    const char *ts;   /* NULL: the receive time */
    const char *want; /* members other than timestamp, kind, source, received_at */
};

static int check_ok(const struct ok_case *c)
{
    struct result r;
    run(&r, c->in, c->in_len);
    int ok = 0;
    json_t *w = NULL;
    if (r.rc == 0 && r.obj && check_order(r.obj) == 0) {
        w = json_loads(c->want, 0, NULL);
        assert_non_null(w);
        json_object_set_new(w, "timestamp", json_string(c->ts ? c->ts : RT_TEXT));
        json_object_set_new(w, "kind", json_string("metric"));
        json_object_set_new(w, "source", json_string(SRC));
        json_object_set_new(w, "received_at", json_string(RT_TEXT));
        ok = json_equal(r.obj, w);
    }
    if (!ok) {
        char *ws = w ? json_dumps(w, JSON_COMPACT) : NULL;
        print_error("line `%.*s`: rc %d err %s\n  got  %.*s\n  want %s\n", (int)c->in_len, c->in,
                    r.rc, r.err ? r.err : "(none)", (int)r.len, r.text, ws ? ws : c->want);
        free(ws);
    }
    json_decref(w);
    result_free(&r);
    return ok ? 0 : -1;
}

static int run_ok_cases(const struct ok_case *cases, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += check_ok(&cases[i]) ? 1 : 0;
    return bad;
}

static const struct ok_case types[] = {
    {L("page.views:1|c"), NULL,
     "{\"name\":\"page.views\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,"
     "\"temporality\":\"delta\","
     "\"labels\":{}}"},
    {L("bytes:2.5|c"), NULL,
     "{\"name\":\"bytes\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":2.5,"
     "\"temporality\":\"delta\","
     "\"labels\":{}}"},
    {L("errors:-3|c"), NULL,
     "{\"name\":\"errors\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":-3,"
     "\"temporality\":\"delta\","
     "\"labels\":{}}"},
    {L("big:1e3|c"), NULL,
     "{\"name\":\"big\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1000,"
     "\"temporality\":\"delta\","
     "\"labels\":{}}"},
    {L("queue.depth:42|g"), NULL,
     "{\"name\":\"queue.depth\",\"metric_type\":\"gauge\",\"statsd_type\":\"gauge\",\"value\":42,"
     "\"labels\":{}}"},
    {L("queue.depth:0.25|g"), NULL,
     "{\"name\":\"queue.depth\",\"metric_type\":\"gauge\",\"statsd_type\":\"gauge\",\"value\":0.25,"
     "\"labels\":{}}"},
    {L("queue.depth:+4|g"), NULL,
     "{\"name\":\"queue.depth\",\"metric_type\":\"gauge\",\"statsd_type\":\"gauge\",\"value\":4,"
     "\"temporality\":\"delta\","
     "\"labels\":{}}"},
    {L("queue.depth:-7|g"), NULL,
     "{\"name\":\"queue.depth\",\"metric_type\":\"gauge\",\"statsd_type\":\"gauge\",\"value\":-7,"
     "\"temporality\":\"delta\","
     "\"labels\":{}}"},
    {L("queue.depth:-0.5|g"), NULL,
     "{\"name\":\"queue.depth\",\"metric_type\":\"gauge\",\"statsd_type\":\"gauge\",\"value\":-0.5,"
     "\"temporality\":\"delta\","
     "\"labels\":{}}"},
    {L("rt:320|ms"), NULL,
     "{\"name\":\"rt\",\"metric_type\":\"histogram\",\"temporality\":\"delta\",\"statsd_type\":"
     "\"timer\",\"value\":320,\"unit\":\"ms\",\"labels\":{}}"},
    {L("rt:0.125|ms"), NULL,
     "{\"name\":\"rt\",\"metric_type\":\"histogram\",\"temporality\":\"delta\",\"statsd_type\":"
     "\"timer\",\"value\":0.125,\"unit\":\"ms\",\"labels\":{}}"},
    {L("size:7|h"), NULL,
     "{\"name\":\"size\",\"metric_type\":\"histogram\",\"value\":7,\"temporality\":\"delta\","
     "\"statsd_type\":\"histogram\",\"labels\":{}}"},
    {L("lat:1.25|d"), NULL,
     "{\"name\":\"lat\",\"metric_type\":\"histogram\",\"temporality\":\"delta\",\"statsd_type\":"
     "\"distribution\",\"value\":1.25,\"labels\":{}}"},
    {L("users:alice|s"), NULL,
     "{\"name\":\"users\",\"metric_type\":\"set\",\"statsd_type\":\"set\",\"value\":\"alice\","
     "\"labels\":{}}"},
    {L("users:42|s"), NULL,
     "{\"name\":\"users\",\"metric_type\":\"set\",\"statsd_type\":\"set\",\"value\":\"42\","
     "\"labels\":{}}"},
    {L("users:\xc3\xa9t\xc3\xa9|s"), NULL,
     "{\"name\":\"users\",\"metric_type\":\"set\",\"statsd_type\":\"set\",\"value\":"
     "\"\\u00e9t\\u00e9\",\"labels\":{}}"},
    {L("a.b-c_d/e:1|c"), NULL,
     "{\"name\":\"a.b-c_d/"
     "e\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,\"temporality\":"
     "\"delta\",\"labels\":{}}"},
    {L("name with \"quotes\":1|c"), NULL,
     "{\"name\":\"name with "
     "\\\"quotes\\\"\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,"
     "\"temporality\":\"delta\","
     "\"labels\":{}}"},
};

static void test_types(void **state)
{
    assert_int_equal(run_ok_cases(types, N(types)), 0);
}

/* The value keeps its type: counters and timers are JSON numbers, set members strings. */
static void test_value_types(void **state)
{
    struct result r;
    run(&r, L("x:1.5|ms"));
    assert_true(json_is_real(json_object_get(r.obj, "value")));
    assert_true(json_real_value(json_object_get(r.obj, "value")) == 1.5);
    result_free(&r);
    run(&r, L("x:10|c"));
    assert_true(json_is_integer(json_object_get(r.obj, "value")));
    result_free(&r);
    run(&r, L("x:10|s"));
    assert_true(json_is_string(json_object_get(r.obj, "value")));
    result_free(&r);
}

static const struct ok_case extensions[] = {
    {L("hits:1|c|@0.5"), NULL,
     "{\"name\":\"hits\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,"
     "\"temporality\":\"delta\","
     "\"statsd_sample_rate\":0.5,\"labels\":{}}"},
    {L("rt:12|ms|@0.1"), NULL,
     "{\"name\":\"rt\",\"metric_type\":\"histogram\",\"temporality\":\"delta\",\"statsd_type\":"
     "\"timer\",\"value\":12,\"unit\":\"ms\","
     "\"statsd_sample_rate\":0.1,\"labels\":{}}"},
    /* A rate of 1 is the default and not written. */
    {L("hits:1|c|@1"), NULL,
     "{\"name\":\"hits\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,"
     "\"temporality\":\"delta\","
     "\"labels\":{}}"},
    {L("hits:1|c|@1.0"), NULL,
     "{\"name\":\"hits\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,"
     "\"temporality\":\"delta\","
     "\"labels\":{}}"},
    {L("hits:1|c|#env:prod,canary"), NULL,
     "{\"name\":\"hits\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,"
     "\"temporality\":\"delta\","
     "\"labels\":{\"env\":\"prod\",\"canary\":true}}"},
    {L("hits:1|c|#url:http://x/y"), NULL,
     "{\"name\":\"hits\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,"
     "\"temporality\":\"delta\","
     "\"labels\":{\"url\":\"http://x/y\"}}"},
    {L("hits:1|c|#a:,:b"), NULL,
     "{\"name\":\"hits\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,"
     "\"temporality\":\"delta\","
     "\"labels\":{\"a\":\"\",\"\":\"b\"}}"},
    {L("hits:1|c|#a:1,,b"), NULL,
     "{\"name\":\"hits\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,"
     "\"temporality\":\"delta\","
     "\"labels\":{\"a\":\"1\",\"b\":true}}"},
    /* A repeated key keeps every value, in the line's order, flags among them. */
    {L("hits:1|c|#b:2,a:1,b,c:x,b:3,a:0"), NULL,
     "{\"name\":\"hits\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,"
     "\"temporality\":\"delta\","
     "\"labels\":{\"b\":[\"2\",true,\"3\"],\"a\":[\"1\",\"0\"],\"c\":\"x\"}}"},
    {L("hits:1|c|#k\"q:v\\w"), NULL,
     "{\"name\":\"hits\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,"
     "\"temporality\":\"delta\","
     "\"labels\":{\"k\\\"q\":\"v\\\\w\"}}"},
    {L("hits:1|c|T1700000000"), "2023-11-14T22:13:20.000000Z",
     "{\"name\":\"hits\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,"
     "\"temporality\":\"delta\","
     "\"labels\":{}}"},
    {L("hits:3|c|@0.25|#env:prod,canary|T1700000000"), "2023-11-14T22:13:20.000000Z",
     "{\"name\":\"hits\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":3,"
     "\"temporality\":\"delta\","
     "\"statsd_sample_rate\":0.25,"
     "\"labels\":{\"env\":\"prod\",\"canary\":true}}"},
    /* Sections in any order. */
    {L("hits:3|c|T1700000000|#env:prod|@0.25"), "2023-11-14T22:13:20.000000Z",
     "{\"name\":\"hits\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":3,"
     "\"temporality\":\"delta\","
     "\"statsd_sample_rate\":0.25,"
     "\"labels\":{\"env\":\"prod\"}}"},
    /* The DogStatsD container id section is not a field. */
    {L("hits:1|c|#env:prod|c:83c0a99c0a54c0c187f461c7980e9b57f3f6a8b0c918c8d93df19a9de6f3fe1d"),
     NULL,
     "{\"name\":\"hits\",\"metric_type\":\"counter\",\"statsd_type\":\"counter\",\"value\":1,"
     "\"temporality\":\"delta\","
     "\"labels\":{\"env\":\"prod\"}}"},
    {L("g:+1.5|g|#host:a"), NULL,
     "{\"name\":\"g\",\"metric_type\":\"gauge\",\"statsd_type\":\"gauge\",\"value\":1.5,"
     "\"temporality\":\"delta\","
     "\"labels\":{\"host\":\"a\"}}"},
    {L("u:bob|s|@0.5|#team:x"), NULL,
     "{\"name\":\"u\",\"metric_type\":\"set\",\"statsd_type\":\"set\",\"value\":\"bob\",\"statsd_"
     "sample_rate\":0.5,"
     "\"labels\":{\"team\":\"x\"}}"},
};

static void test_extensions(void **state)
{
    assert_int_equal(run_ok_cases(extensions, N(extensions)), 0);
}

static void test_errors(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *reason;
    } cases[] = {
        {L("hits1|c"), "not a statsd line (name:value|type)"},
        {L("hits"), "not a statsd line (name:value|type)"},
        {L(""), "not a statsd line (name:value|type)"},
        {L("hits:1"), "not a statsd line (name:value|type)"},
        {L(":1|c"), "not a statsd line (name:value|type)"},
        {L("hits|c:1"), "not a statsd line (name:value|type)"},
        {L("hits:1|"), "unknown statsd metric type (c, g, ms, h, s, d)"},
        {L("hits:1|x"), "unknown statsd metric type (c, g, ms, h, s, d)"},
        {L("hits:1|C"), "unknown statsd metric type (c, g, ms, h, s, d)"},
        {L("hits:1|cc"), "unknown statsd metric type (c, g, ms, h, s, d)"},
        {L("hits:1|m"), "unknown statsd metric type (c, g, ms, h, s, d)"},
        {L("hits:1||c"), "unknown statsd metric type (c, g, ms, h, s, d)"},
        {L("hits:abc|c"), "statsd value is not a number"},
        {L("hits:|c"), "statsd value is not a number"},
        {L("hits:1x|c"), "statsd value is not a number"},
        {L("hits:1 |c"), "statsd value is not a number"},
        {L("hits: 1|c"), "statsd value is not a number"},
        {L("hits:1.2.3|g"), "statsd value is not a number"},
        {L("hits:nan|g"), "statsd value is not a number"},
        {L("rt:fast|ms"), "statsd value is not a number"},
        {L("hits:1|c|@0"), "statsd sample rate must be in (0, 1]"},
        {L("hits:1|c|@0.0"), "statsd sample rate must be in (0, 1]"},
        {L("hits:1|c|@1.5"), "statsd sample rate must be in (0, 1]"},
        {L("hits:1|c|@-0.5"), "statsd sample rate must be in (0, 1]"},
        {L("hits:1|c|@abc"), "statsd sample rate must be in (0, 1]"},
        {L("hits:1|c|@nan"), "statsd sample rate must be in (0, 1]"},
        {L("hits:\xff|c"), "invalid UTF-8 or NUL in statsd line"},
        {L("hi\xc0\x80ts:1|c"), "invalid UTF-8 or NUL in statsd line"},
        {L("users:\xed\xa0\x80|s"), "invalid UTF-8 or NUL in statsd line"},
        {L("hits:1|c|#env:\xe2\x82"), "invalid UTF-8 or NUL in statsd line"},
        {L("hits:1|c\0"), "invalid UTF-8 or NUL in statsd line"},
        {L("hi\0ts:1|c"), "invalid UTF-8 or NUL in statsd line"},
    };
    int bad = 0;
    for (size_t i = 0; i < N(cases); i++) {
        struct result r;
        run(&r, cases[i].in, cases[i].len);
        if (r.rc != -EINVAL || r.len != 0 || !r.err || strcmp(r.err, cases[i].reason) != 0) {
            print_error("line `%.*s`: rc %d err %s, want -EINVAL \"%s\"; output %.*s\n",
                        (int)cases[i].len, cases[i].in, r.rc, r.err ? r.err : "(null)",
                        cases[i].reason, (int)r.len, r.text);
            bad++;
        }
        result_free(&r);
    }
    assert_int_equal(bad, 0);
}

/* Regression (was a bug, fixed): collector/statsd.c number() hands the value to strtod(), which
 * also reads "inf", "infinity", hexadecimal ("0x10") and overflowing exponents ("1e999" -> inf),
 * although its comment promises the strict [+-]digits[.digits][e[+-]digits]. "hits:inf|c" and
 * "hits:1e999|c" are accepted and written as "value":null, "hits:0x10|c" as 16. Each must be
 * refused like any other non-number; so must a hexadecimal sample rate ("@0x0.8" is read as
 * 0.5). */
static void test_non_decimal_values(void **state)
{
    static const char *const lines[] = {"hits:inf|c",  "hits:-Infinity|g", "hits:1e999|c",
                                        "hits:0x10|c", "rt:0x1p4|ms",      "hits:+inf|g"};
    int bad = 0;
    for (size_t i = 0; i < N(lines); i++) {
        struct result r;
        run(&r, lines[i], strlen(lines[i]));
        if (r.rc != -EINVAL || !r.err || strcmp(r.err, "statsd value is not a number") != 0) {
            print_error("line `%s`: rc %d, output %.*s; want -EINVAL\n", lines[i], r.rc, (int)r.len,
                        r.text);
            bad++;
        }
        result_free(&r);
    }
    /* The same strtod() reads the sample rate: "@0x0.8" is taken as 0.5. */
    struct result r;
    run(&r, L("hits:1|c|@0x0.8"));
    if (r.rc != -EINVAL || !r.err || strcmp(r.err, "statsd sample rate must be in (0, 1]") != 0) {
        print_error("line `hits:1|c|@0x0.8`: rc %d, output %.*s; want -EINVAL\n", r.rc, (int)r.len,
                    r.text);
        bad++;
    }
    result_free(&r);
    assert_int_equal(bad, 0);
}

/* Regression (was a bug, fixed): collector/statsd.c put_tags() writes every tag as an object
 * member, so a key given twice ("#role:web,role:db", common in DogStatsD where tags are a list)
 * becomes a duplicate JSON key and one value is lost by any reader. Both values must survive, as an
 * array in their order. */
static void test_repeated_tag_key(void **state)
{
    struct result r;
    run(&r, L("hits:1|c|#role:web,role:db,env:prod"));
    assert_int_equal(r.rc, 0);
    json_t *want = json_loads("[\"web\",\"db\"]", 0, NULL);
    json_t *tags = json_object_get(r.obj, "labels");
    int ok = r.obj && json_equal(json_object_get(tags, "role"), want) &&
             json_string_value(json_object_get(tags, "env")) &&
             strcmp(json_string_value(json_object_get(tags, "env")), "prod") == 0;
    if (!ok)
        print_error("output: %.*s\n", (int)r.len, r.text);
    json_decref(want);
    result_free(&r);
    assert_true(ok);
    /* Keys in the order they first come, as written. */
    run(&r, L("hits:1|c|#b:2,a:1,b,c:x"));
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.text, ",\"labels\":{\"b\":[\"2\",true],\"a\":\"1\",\"c\":\"x\"},"));
    result_free(&r);
    /* More tags than fit on the stack, every other one a repeat of k: all kept, in order. */
    char line[2048], want_k[2048];
    size_t n = (size_t)snprintf(line, sizeof(line), "hits:1|c|#"), w = 0;
    w += (size_t)snprintf(want_k + w, sizeof(want_k) - w, "[");
    for (int i = 0; i < 100; i++) {
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%sk:%d,t%d", i ? "," : "", i, i);
        w += (size_t)snprintf(want_k + w, sizeof(want_k) - w, "%s\"%d\"", i ? "," : "", i);
    }
    snprintf(want_k + w, sizeof(want_k) - w, "]");
    run(&r, line, n);
    tags = json_object_get(r.obj, "labels");
    want = json_loads(want_k, 0, NULL);
    ok = r.rc == 0 && json_object_size(tags) == 101 &&
         json_equal(json_object_get(tags, "k"), want) && json_is_true(json_object_get(tags, "t99"));
    if (!ok)
        print_error("output: %.*s\n", (int)r.len, r.text);
    json_decref(want);
    result_free(&r);
    assert_true(ok);
}

/* Regression (was a bug, fixed): collector/statsd.c statsd_to_event() converts a DogStatsD
 * timestamp with (int64_t)t * 1000000000 without a range check: "|T99999999999" (year 5138)
 * overflows int64 (undefined behaviour, flagged by -fsanitize=undefined) and stamps the metric with
 * a wrapped-around date, and "|T1e300" converts an out-of-range double to int64. A timestamp that
 * cannot be represented must be refused (-EINVAL) or ignored in favour of the receive time, never
 * turned into another date. */
static void test_timestamp_out_of_range(void **state)
{
    static const char *const lines[] = {"hits:1|c|T99999999999", "hits:1|c|T1e300"};
    int bad = 0;
    for (size_t i = 0; i < N(lines); i++) {
        /* In a child: under -fsanitize=undefined the overflow aborts the process, which must
         * fail this test rather than end the whole binary. */
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* No cmocka assertions here: they would unwind into the runner in the child. */
            struct recv_time rt = fixed_rt();
            struct buf out = {0};
            const char *err = NULL;
            int rc = statsd_to_event(lines[i], strlen(lines[i]), SRC, &rt, &out, &err);
            json_t *o = rc == 0 ? json_loadb(out.data, out.len, 0, NULL) : NULL;
            const char *ts = json_string_value(json_object_get(o, "timestamp"));
            int ok = rc == -EINVAL || (rc == 0 && ts && strcmp(ts, RT_TEXT) == 0);
            if (!ok)
                fprintf(stderr, "line `%s`: rc %d, output %.*s\n", lines[i], rc, (int)out.len,
                        out.data);
            json_decref(o);
            buf_free(&out);
            _exit(ok ? 0 : 1);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            print_error("line `%s`: wrong timestamp or the parser crashed (status %#x)\n", lines[i],
                        st);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* Timestamps that are not a positive number of seconds are ignored: the receive time. */
static void test_timestamp_ignored(void **state)
{
    static const char *const lines[] = {"hits:1|c|T", "hits:1|c|Tabc", "hits:1|c|T-5",
                                        "hits:1|c|T0"};
    for (size_t i = 0; i < N(lines); i++) {
        struct result r;
        run(&r, lines[i], strlen(lines[i]));
        assert_int_equal(r.rc, 0);
        assert_non_null(r.obj);
        assert_string_equal(json_string_value(json_object_get(r.obj, "timestamp")), RT_TEXT);
        result_free(&r);
    }
}

/* One output buffer, many lines: each event is appended after the previous one. */
static void test_appends(void **state)
{
    struct recv_time rt = fixed_rt();
    struct buf out = {0};
    const char *err = NULL;
    assert_int_equal(statsd_to_event(L("a:1|c"), SRC, &rt, &out, &err), 0);
    size_t cut = out.len;
    assert_int_equal(statsd_to_event(L("b:x|s"), SRC, &rt, &out, &err), 0);
    assert_int_equal(statsd_to_event(L("bad"), SRC, &rt, &out, &err), -EINVAL);
    json_t *x = json_loadb(out.data, cut, JSON_REJECT_DUPLICATES, NULL);
    json_t *y = json_loadb(out.data + cut, out.len - cut, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(x);
    assert_non_null(y);
    assert_string_equal(json_string_value(json_object_get(x, "name")), "a");
    assert_string_equal(json_string_value(json_object_get(y, "value")), "x");
    json_decref(x);
    json_decref(y);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_value_types),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_non_decimal_values),
        cmocka_unit_test(test_repeated_tag_key),
        cmocka_unit_test(test_timestamp_out_of_range),
        cmocka_unit_test(test_timestamp_ignored),
        cmocka_unit_test(test_appends),
    };
    return cmocka_run_group_tests_name("statsd", tests, NULL, NULL);
}
