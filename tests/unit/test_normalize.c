/* Unit tests of normalization (collector/normalize.h): canonical fields first and received_at
 * last, aliases (default and custom, never over a canonical name already present), timestamp
 * normalization, kind/source/received_at, hex ids lowercased, the partition key hash, every
 * kind of bad input, wide events keeping every other field, and dead-letter records. Every
 * output is checked by parsing it with jansson. */
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

#include "collector/input.h"
#include "collector/normalize.h"

#define L(s) s, sizeof(s) - 1

#define RT_NS   1767225600123456000LL /* 2026-01-01T00:00:00.123456Z */
#define RT_TEXT "2026-01-01T00:00:00.123456Z"

static struct recv_time fixed_rt(void)
{
    struct recv_time rt;
    rt.ns = RT_NS;
    time_format_rfc3339(rt.ns, rt.text);
    return rt;
}

/* Aliases in force for an input with none configured: the defaults. */
static const struct cfg_strmap *default_aliases(void)
{
    static struct input_common none;
    return input_aliases(&none);
}

struct result {
    int rc;
    const char *err;
    uint64_t hash;
    int has_hash;
    json_t *obj; /* the output parsed (duplicate keys rejected) */
    char text[8192];
    size_t len;
};

/* Normalizes json with a fresh normalizer; on success the output must parse as one JSON
 * object without duplicate keys and fit on one line. */
static void run_norm(struct result *r, const char *json, size_t len,
                     const struct cfg_strmap *aliases, const char *key)
{
    struct normalizer n;
    normalizer_init(&n, "app", aliases, key);
    struct recv_time rt = fixed_rt();
    struct buf out = {0};
    memset(r, 0, sizeof(*r));
    r->rc = normalize_json(&n, json, len, &rt, &out, &r->hash, &r->has_hash, &r->err);
    assert_true(out.len < sizeof(r->text));
    if (out.len)
        memcpy(r->text, out.data, out.len);
    r->len = out.len;
    if (r->rc == 0) {
        json_error_t e;
        r->obj = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
        if (!r->obj) {
            print_error("output does not parse (%s): %.*s\n", e.text, (int)out.len, out.data);
            fail();
        }
        assert_true(json_is_object(r->obj));
        assert_null(memchr(out.data, '\n', out.len));
    }
    buf_free(&out);
    normalizer_free(&n);
}

static void result_free(struct result *r)
{
    json_decref(r->obj);
    r->obj = NULL;
}

static const char *str_of(const struct result *r, const char *key)
{
    return json_string_value(json_object_get(r->obj, key));
}

/* The top-level keys of the output text, in order, NUL-separated into keys. */
static int key_order(const struct result *r, char *keys, size_t cap)
{
    struct jsontok t = {0};
    assert_int_equal(jsontok_parse(&t, r->text, r->len), 0);
    size_t o = 0;
    int k = 1, n = t.tok[0].size;
    for (int m = 0; m < n; m++, k = t.next[k]) {
        size_t l = (size_t)(t.tok[k].end - t.tok[k].start);
        assert_true(o + l + 1 < cap);
        memcpy(keys + o, r->text + t.tok[k].start, l);
        keys[o + l] = ',';
        o += l + 1;
    }
    keys[o ? o - 1 : 0] = '\0';
    jsontok_free(&t);
    return n;
}

/* ---- shape ---- */

static void test_canonical_order(void **state)
{
    struct result r;
    static const char in[] = "{\"level\":\"info\",\"msg\":\"hi\",\"user\":{\"id\":7},"
                             "\"timestamp\":\"2024-03-01T12:00:00Z\",\"n\":[1,2.5,null]}";
    run_norm(&r, L(in), default_aliases(), "trace_id");
    assert_int_equal(r.rc, 0);
    char keys[256];
    assert_int_equal(key_order(&r, keys, sizeof(keys)), 8);
    assert_string_equal(keys, "timestamp,kind,source,level,message,user,n,received_at");
    assert_string_equal(str_of(&r, "timestamp"), "2024-03-01T12:00:00.000000Z");
    assert_string_equal(str_of(&r, "kind"), "log");
    assert_string_equal(str_of(&r, "source"), "app");
    assert_string_equal(str_of(&r, "message"), "hi");
    assert_string_equal(str_of(&r, "received_at"), RT_TEXT);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r.obj, "user"), "id")), 7);
    assert_int_equal(r.has_hash, 0);
    result_free(&r);
}

/* Without a timestamp the receive time stands in, and nothing else is added. */
static void test_minimal_event(void **state)
{
    struct result r;
    run_norm(&r, L("{}"), default_aliases(), "trace_id");
    assert_int_equal(r.rc, 0);
    char keys[256];
    assert_int_equal(key_order(&r, keys, sizeof(keys)), 4);
    assert_string_equal(keys, "timestamp,kind,source,received_at");
    assert_string_equal(str_of(&r, "timestamp"), RT_TEXT);
    assert_null(json_object_get(r.obj, "timestamp_raw"));
    result_free(&r);
}

static void test_default_aliases(void **state)
{
    struct result r;
    run_norm(&r,
             L("{\"@timestamp\":\"2024-03-01T12:00:00+01:00\",\"severity\":\"WARN\","
               "\"msg\":\"disk full\",\"m\\u0073g2\":1}"),
             default_aliases(), "");
    assert_int_equal(r.rc, 0);
    assert_string_equal(str_of(&r, "timestamp"), "2024-03-01T11:00:00.000000Z");
    assert_string_equal(str_of(&r, "level"), "WARN");
    assert_string_equal(str_of(&r, "message"), "disk full");
    assert_null(json_object_get(r.obj, "@timestamp"));
    assert_null(json_object_get(r.obj, "severity"));
    assert_null(json_object_get(r.obj, "msg"));
    assert_non_null(json_object_get(r.obj, "msg2"));
    assert_int_equal(json_object_size(r.obj), 7);
    result_free(&r);

    /* An escaped spelling of an alias is the same key. */
    run_norm(&r, L("{\"m\\u0073g\":\"escaped\"}"), default_aliases(), "");
    assert_int_equal(r.rc, 0);
    assert_string_equal(str_of(&r, "message"), "escaped");
    assert_null(json_object_get(r.obj, "msg"));
    result_free(&r);
}

/* An alias is not applied when the source also carries the canonical name: both survive. */
static void test_alias_not_over_canonical(void **state)
{
    struct result r;
    run_norm(&r,
             L("{\"msg\":\"alias\",\"message\":\"canonical\",\"severity\":2,\"level\":\"info\","
               "\"@timestamp\":\"x\",\"timestamp\":\"2024-03-01T12:00:00Z\"}"),
             default_aliases(), "");
    assert_int_equal(r.rc, 0);
    assert_string_equal(str_of(&r, "message"), "canonical");
    assert_string_equal(str_of(&r, "msg"), "alias");
    assert_string_equal(str_of(&r, "level"), "info");
    assert_int_equal(json_integer_value(json_object_get(r.obj, "severity")), 2);
    assert_string_equal(str_of(&r, "timestamp"), "2024-03-01T12:00:00.000000Z");
    assert_string_equal(str_of(&r, "@timestamp"), "x");
    assert_null(json_object_get(r.obj, "timestamp_raw"));
    result_free(&r);
}

static void test_custom_aliases(void **state)
{
    char *keys[] = {"lvl", "text", "ts", "svc"};
    char *vals[] = {"level", "message", "timestamp", "service"};
    struct cfg_strmap m = {keys, vals, 4};
    struct result r;
    run_norm(&r,
             L("{\"lvl\":\"debug\",\"text\":\"t\",\"ts\":1709294400,\"svc\":\"api\","
               "\"msg\":\"not an alias here\"}"),
             &m, "service");
    assert_int_equal(r.rc, 0);
    assert_string_equal(str_of(&r, "level"), "debug");
    assert_string_equal(str_of(&r, "message"), "t");
    assert_string_equal(str_of(&r, "timestamp"), "2024-03-01T12:00:00.000000Z");
    assert_string_equal(str_of(&r, "service"), "api");
    /* The defaults do not apply once aliases are configured. */
    assert_string_equal(str_of(&r, "msg"), "not an alias here");
    assert_null(json_object_get(r.obj, "lvl"));
    /* The partition key is looked up by its canonical (aliased) name. */
    assert_int_equal(r.has_hash, 1);
    uint64_t h1 = r.hash;
    result_free(&r);
    run_norm(&r, L("{\"service\":\"api\"}"), &m, "service");
    assert_int_equal(r.has_hash, 1);
    assert_true(r.hash == h1);
    result_free(&r);

    /* Alias keys are prefiltered by length and first byte: an empty key, keys of 63 bytes and
     * more (one length class), and near misses of each. */
    char l63[64], l64[65], l65[66];
    memset(l63, 'k', 63), l63[63] = '\0';
    memset(l64, 'k', 64), l64[64] = '\0';
    memset(l65, 'k', 65), l65[65] = '\0';
    char *keys2[] = {"", l64, "ab"};
    char *vals2[] = {"empty", "long", "xy"};
    struct cfg_strmap m2 = {keys2, vals2, 3};
    char in[512];
    snprintf(in, sizeof(in),
             "{\"\":1,\"%s\":2,\"ab\":3,\"ac\":4,\"abc\":5,\"%s\":6,\"%s\":7,\"b\":8}", l64, l63,
             l65);
    run_norm(&r, in, strlen(in), &m2, "");
    assert_int_equal(r.rc, 0);
    assert_int_equal(json_integer_value(json_object_get(r.obj, "empty")), 1);
    assert_int_equal(json_integer_value(json_object_get(r.obj, "long")), 2);
    assert_int_equal(json_integer_value(json_object_get(r.obj, "xy")), 3);
    assert_int_equal(json_integer_value(json_object_get(r.obj, "ac")), 4);
    assert_int_equal(json_integer_value(json_object_get(r.obj, "abc")), 5);
    assert_int_equal(json_integer_value(json_object_get(r.obj, l63)), 6);
    assert_int_equal(json_integer_value(json_object_get(r.obj, l65)), 7);
    assert_int_equal(json_integer_value(json_object_get(r.obj, "b")), 8);
    assert_null(json_object_get(r.obj, ""));
    assert_null(json_object_get(r.obj, l64));
    result_free(&r);
}

/* Regression (was a bug, fixed): collector/normalize.c classify() skips an alias only when the
 * canonical name itself is present, not when another alias of the same target already supplies it:
 * with aliases {msg: message, log: message} (a natural config for mixed senders),
 * {"msg":"a","log":"b"} is normalized with two "message" members. The output must not carry
 * duplicate keys; the first alias should win and the other member keep its own name. */
static void test_two_aliases_same_target(void **state)
{
    char *keys[] = {"msg", "log"};
    char *vals[] = {"message", "message"};
    struct cfg_strmap m = {keys, vals, 2};
    struct normalizer n;
    normalizer_init(&n, "app", &m, "");
    struct recv_time rt = fixed_rt();
    struct buf out = {0};
    uint64_t h;
    int hh;
    const char *err;
    static const char in[] = "{\"msg\":\"a\",\"log\":\"b\"}";
    assert_int_equal(normalize_json(&n, in, strlen(in), &rt, &out, &h, &hh, &err), 0);
    json_t *o = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
    int ok = o && json_string_value(json_object_get(o, "message")) &&
             strcmp(json_string_value(json_object_get(o, "message")), "a") == 0 &&
             json_object_get(o, "log");
    if (!ok)
        print_error("output: %.*s\n", (int)out.len, out.data);
    json_decref(o);
    buf_free(&out);
    normalizer_free(&n);
    assert_true(ok);
}

/* ---- timestamps ---- */

struct ts_case {
    const char *value; /* JSON text of the timestamp member's value */
    const char *want;  /* canonical result, or NULL: unreadable, receive time + timestamp_raw */
};

static const struct ts_case ts_cases[] = {
    {"\"2024-03-01T12:00:00Z\"", "2024-03-01T12:00:00.000000Z"},
    {"\"2024-03-01t12:00:00z\"", "2024-03-01T12:00:00.000000Z"},
    {"\"2024-03-01T12:00:00.5+02:00\"", "2024-03-01T10:00:00.500000Z"},
    {"\"2024-03-01T01:30:00-05:30\"", "2024-03-01T07:00:00.000000Z"},
    {"\"2024-03-01 12:00:00+0000\"", "2024-03-01T12:00:00.000000Z"},
    {"\"2024-03-01T12:00:00,25Z\"", "2024-03-01T12:00:00.250000Z"},
    {"\"2024-02-29T23:59:59.999999999-01:00\"", "2024-03-01T00:59:59.999999Z"},
    {"\"2023-12-31T23:30:00-01:00\"", "2024-01-01T00:30:00.000000Z"},
    {"\"2024-01-01T00:30:00+01:00\"", "2023-12-31T23:30:00.000000Z"},
    {"\"2000-02-29T00:00:00Z\"", "2000-02-29T00:00:00.000000Z"},
    {"\"1970-01-01T00:00:00Z\"", "1970-01-01T00:00:00.000000Z"},
    {"\"2024-03-01T12:00:00.123456Z\"", "2024-03-01T12:00:00.123456Z"},
    {"\"2024-03-01T12:00:00.1234567Z\"", "2024-03-01T12:00:00.123456Z"},
    {"1709294400", "2024-03-01T12:00:00.000000Z"},
    {"1709294400.5", "2024-03-01T12:00:00.500000Z"},
    {"1709294400000", "2024-03-01T12:00:00.000000Z"},
    {"1709294400500", "2024-03-01T12:00:00.500000Z"},
    {"1709294400123456", "2024-03-01T12:00:00.123456Z"},
    {"1709294400123456789", "2024-03-01T12:00:00.123456Z"},
    {"1.7092944e9", "2024-03-01T12:00:00.000000Z"},
    {"0", "1970-01-01T00:00:00.000000Z"},
    {"\"1709294400\"", "2024-03-01T12:00:00.000000Z"},
    {"\"1709294400.5\"", "2024-03-01T12:00:00.500000Z"},
    {"\"1709294400000\"", "2024-03-01T12:00:00.000000Z"},
    /* unreadable: the receive time, and the original kept */
    {"\"yesterday\"", NULL},
    {"\"\"", NULL},
    {"\"2024-03-01T12:00:00\"", NULL}, /* no zone: ambiguous */
    {"\"2024-03-01\"", NULL},
    {"\"2024-13-01T12:00:00Z\"", NULL},
    {"\"2024-03-01T24:00:00Z\"", NULL},
    {"\"2024-03-01T12:00:00+25:00\"", NULL},
    {"\"2024-03-01T12:00:00Zjunk\"", NULL},
    {"\"1709294400abc\"", NULL},
    {"-5", NULL},
    {"1e300", NULL},
    {"null", NULL},
    {"true", NULL},
    {"{\"s\":1}", NULL},
    {"[1709294400]", NULL},
};

static void test_timestamps(void **state)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof(ts_cases) / sizeof(ts_cases[0]); i++) {
        const struct ts_case *c = &ts_cases[i];
        char in[256];
        int n = snprintf(in, sizeof(in), "{\"a\":1,\"timestamp\":%s,\"z\":2}", c->value);
        struct result r;
        run_norm(&r, in, (size_t)n, default_aliases(), "");
        assert_int_equal(r.rc, 0);
        const char *got = str_of(&r, "timestamp");
        json_t *raw = json_object_get(r.obj, "timestamp_raw");
        json_t *orig = json_loads(c->value, JSON_DECODE_ANY, NULL);
        int ok;
        if (c->want)
            ok = got && strcmp(got, c->want) == 0 && raw == NULL;
        else
            ok = got && strcmp(got, RT_TEXT) == 0 && raw && json_equal(raw, orig);
        if (!ok) {
            print_error("timestamp %s: want %s, got %.*s\n", c->value,
                        c->want ? c->want : "receive time + timestamp_raw", (int)r.len, r.text);
            bad++;
        }
        /* timestamp_raw, when present, comes right after source. */
        if (raw) {
            char keys[256];
            key_order(&r, keys, sizeof(keys));
            assert_string_equal(keys, "timestamp,kind,source,timestamp_raw,a,z,received_at");
        }
        json_decref(orig);
        result_free(&r);
    }
    assert_int_equal(bad, 0);
}

/* Regression (was a bug, fixed): core/timeutil.c time_from_epoch() converts with a double
 * multiplication and truncates, so epoch values whose product is not exactly representable lose a
 * microsecond: 1712345678901 (ms) becomes 2024-04-05T19:34:38.900999Z instead of .901000Z,
 * 1700000000001 (ms) becomes .000999Z, 1709294400.25 (s) becomes .249999Z, 1712345678901234 (us)
 * becomes .901233Z. Epoch milliseconds are the most common numeric timestamp; they must convert
 * exactly. */
static void test_epoch_precision(void **state)
{
    static const struct ts_case cases[] = {
        {"1712345678901", "2024-04-05T19:34:38.901000Z"},
        {"1700000000001", "2023-11-14T22:13:20.001000Z"},
        {"1709294400.25", "2024-03-01T12:00:00.250000Z"},
        {"1712345678901234", "2024-04-05T19:34:38.901234Z"},
        {"\"1712345678901\"", "2024-04-05T19:34:38.901000Z"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf out = {0};
        const char *v = cases[i].value;
        int is_str = v[0] == '"';
        size_t len = strlen(v) - (is_str ? 2 : 0);
        assert_int_equal(normalize_timestamp(v + is_str, len, is_str, &out), 0);
        char want[64];
        snprintf(want, sizeof(want), "\"%s\"", cases[i].want);
        if (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0) {
            print_error("epoch %s: got %.*s, want %s\n", v, (int)out.len, out.data, want);
            bad++;
        }
        buf_free(&out);
    }
    assert_int_equal(bad, 0);
}

/* Expects each timestamp value to be refused: receive time plus timestamp_raw. */
static void expect_unreadable(const char *const *values, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        char in[128];
        int len = snprintf(in, sizeof(in), "{\"timestamp\":%s}", values[i]);
        struct result r;
        run_norm(&r, in, (size_t)len, default_aliases(), "");
        assert_int_equal(r.rc, 0);
        const char *got = str_of(&r, "timestamp");
        if (!got || strcmp(got, RT_TEXT) != 0 || !json_object_get(r.obj, "timestamp_raw")) {
            print_error("timestamp %s accepted as %s\n", values[i], got ? got : "(none)");
            bad++;
        }
        result_free(&r);
    }
    assert_int_equal(bad, 0);
}

/* Regression (was a bug, fixed): core/timeutil.c time_parse_rfc3339() only checks 1 <= day <= 31,
 * so dates that do not exist are accepted and silently moved: "2023-02-29T00:00:00Z" (2023 is not a
 * leap year) becomes 2023-03-01, "2024-04-31T00:00:00Z" becomes 2024-05-01, "2024-02-30..."
 * 2024-03-01. An unreadable time must fall back to the receive time with timestamp_raw. */
static void test_impossible_dates(void **state)
{
    static const char *const values[] = {
        "\"2023-02-29T00:00:00Z\"",
        "\"2024-02-30T00:00:00Z\"",
        "\"2024-04-31T00:00:00Z\"",
        "\"1900-02-29T00:00:00Z\"",
    };
    expect_unreadable(values, sizeof(values) / sizeof(values[0]));
}

/* Regression (was a bug, fixed): collector/normalize.c normalize_timestamp() copies any string
 * shaped like the canonical form (digits and separators in the right places, checked by
 * time_is_canonical) without reading it, so "2024-13-45T25:61:61.000000Z" becomes the event's
 * timestamp as is, where an unreadable time must become the receive time with timestamp_raw. */
static void test_canonical_shape_not_checked(void **state)
{
    static const char *const values[] = {
        "\"2024-13-45T25:61:61.000000Z\"",
        "\"2024-02-30T00:00:00.000000Z\"",
        "\"0000-00-00T00:00:00.000000Z\"",
    };
    expect_unreadable(values, sizeof(values) / sizeof(values[0]));
}

static void test_normalize_timestamp_direct(void **state)
{
    struct buf out = {0};
    buf_puts(&out, "x");
    assert_int_equal(normalize_timestamp(L("2024-03-01T12:00:00-00:30"), 1, &out), 0);
    assert_int_equal(out.len, 1 + 2 + TIME_RFC3339_LEN);
    assert_memory_equal(out.data, "x\"2024-03-01T12:30:00.000000Z\"", out.len);
    /* Failures leave the buffer as it was. */
    assert_int_equal(normalize_timestamp(L("soon"), 1, &out), -EINVAL);
    assert_int_equal(normalize_timestamp(L("true"), 0, &out), -EINVAL);
    assert_int_equal(normalize_timestamp(L("-1"), 0, &out), -EINVAL);
    assert_int_equal(out.len, 1 + 2 + TIME_RFC3339_LEN);
    buf_free(&out);
}

/* ---- kind, source, received_at ---- */

static void test_kind_source_received_at(void **state)
{
    struct result r;
    run_norm(&r,
             L("{\"received_at\":\"1999-01-01T00:00:00Z\",\"source\":\"spoofed\",\"kind\":\"span\","
               "\"x\":1}"),
             default_aliases(), "");
    assert_int_equal(r.rc, 0);
    assert_string_equal(str_of(&r, "kind"), "span");
    assert_string_equal(str_of(&r, "source"), "app");
    assert_string_equal(str_of(&r, "received_at"), RT_TEXT);
    assert_int_equal(json_object_size(r.obj), 5);
    char keys[256];
    key_order(&r, keys, sizeof(keys));
    assert_string_equal(keys, "timestamp,kind,source,x,received_at");
    result_free(&r);

    /* A non-string kind is kept as it is. */
    run_norm(&r, L("{\"kind\":3}"), default_aliases(), "");
    assert_int_equal(json_integer_value(json_object_get(r.obj, "kind")), 3);
    result_free(&r);
}

/* Regression (was a bug, fixed): collector/normalize.c compares member names as raw (still escaped)
 * text when deciding which ones are canonical (canon_index in classify and normalize_tokens), so an
 * incoming "sour\u0063e" is not recognised as "source": the output carries two "source" members,
 * ours and the sender's, and a reader that keeps the last (jansson, Python) sees the spoofed
 * one. Same for "kin\u0064", "received_\u0061t" and "timestam\u0070". Input:
 * {"sour\u0063e":"spoofed","received_\u0061t":"x"} with source "app". */
static void test_escaped_canonical_names_replaced(void **state)
{
    struct normalizer n;
    normalizer_init(&n, "app", default_aliases(), "");
    struct recv_time rt = fixed_rt();
    struct buf out = {0};
    uint64_t h;
    int hh;
    const char *err;
    static const char in[] = "{\"sour\\u0063e\":\"spoofed\",\"received_\\u0061t\":\"x\"}";
    assert_int_equal(normalize_json(&n, in, strlen(in), &rt, &out, &h, &hh, &err), 0);
    json_t *strict = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
    json_t *lax = json_loadb(out.data, out.len, 0, NULL);
    assert_non_null(lax);
    int ok = strict != NULL && json_object_get(lax, "source") &&
             strcmp(json_string_value(json_object_get(lax, "source")), "app") == 0 &&
             strcmp(json_string_value(json_object_get(lax, "received_at")), RT_TEXT) == 0;
    if (!ok)
        print_error("output: %.*s\n", (int)out.len, out.data);
    json_decref(strict);
    json_decref(lax);
    buf_free(&out);
    normalizer_free(&n);
    assert_true(ok);
}

/* Members that need nothing are copied in runs: the output is byte for byte what member by
 * member writing gives, whatever breaks a run (a canonical field, an alias, a hex id, the
 * partition key, spaces, a multi-line value). */
static void test_member_runs_exact(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"{\"a\":1,\"b\":\"x\",\"c\":[1, 2],\"d\":{\"e\":null}}",
         "\"a\":1,\"b\":\"x\",\"c\":[1, 2],\"d\":{\"e\":null}"},
        {"{\"a\":1,\"kind\":\"k\",\"b\":2,\"source\":\"s\",\"c\":3}", "\"a\":1,\"b\":2,\"c\":3"},
        {"{\"a\" : 1 , \"b\":2,\"c\":\t3}", "\"a\":1,\"b\":2,\"c\":3"},
        {"{\"a\":1, \"b\":2 ,\"c\":3}", "\"a\":1,\"b\":2,\"c\":3"},
        {"{\"a\":1,\"msg\":\"m\",\"b\":2,\"span_id\":\"AB\",\"c\":3,\"k\":\"v\",\"d\":4}",
         "\"a\":1,\"message\":\"m\",\"b\":2,\"span_id\":\"ab\",\"c\":3,\"k\":\"v\",\"d\":4"},
        {"{\"a\":{\"x\":\n1},\"b\":2,\"c\":[\r\n3]}", "\"a\":{\"x\":1},\"b\":2,\"c\":[3]"},
        {"{\"k\\u0065y\":1,\"b\":2}", "\"k\\u0065y\":1,\"b\":2"},
    };
    struct normalizer n;
    struct recv_time rt = fixed_rt();
    struct buf out = {0}, want = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        normalizer_init(&n, "app", default_aliases(), "k");
        uint64_t h;
        int hh;
        const char *err;
        buf_reset(&out);
        assert_int_equal(
            normalize_json(&n, cases[i].in, strlen(cases[i].in), &rt, &out, &h, &hh, &err), 0);
        buf_reset(&want);
        buf_printf(&want,
                   "{\"timestamp\":\"%s\",\"kind\":\"%s\",\"source\":\"app\",%s,"
                   "\"received_at\":\"%s\"}",
                   rt.text, strstr(cases[i].in, "\"kind\"") ? "k" : "log", cases[i].want, rt.text);
        if (out.len != want.len || memcmp(out.data, want.data, out.len)) {
            print_error("case %zu:\n got  %.*s\n want %.*s\n", i, (int)out.len, out.data,
                        (int)want.len, want.data);
            fail();
        }
        normalizer_free(&n);
    }
    buf_free(&out);
    buf_free(&want);
}

/* ---- hex ids ---- */

static void test_hex_ids_lowercased(void **state)
{
    struct result r;
    run_norm(
        &r,
        L("{\"trace_id\":\"4BF92F3577B34DA6A3CE929D0E0E4736\",\"span_id\":\"00F067AA0BA902B7\","
          "\"parent_span_id\":\"ABCDEF\",\"user\":\"ABCDEF\",\"nested\":{\"trace_id\":\"AB\"}}"),
        default_aliases(), "");
    assert_int_equal(r.rc, 0);
    assert_string_equal(str_of(&r, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str_of(&r, "span_id"), "00f067aa0ba902b7");
    assert_string_equal(str_of(&r, "parent_span_id"), "abcdef");
    /* Only the id fields at the top level. */
    assert_string_equal(str_of(&r, "user"), "ABCDEF");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.obj, "nested"), "trace_id")), "AB");
    result_free(&r);

    /* Only A-F, eight bytes at a time or one by one, next to non-ASCII text: every letter and
     * the characters around A-F and a-f in ASCII, shifted through each of eight alignments. */
    const char *all = "@ABCDEFGHIJKLMNOPQRSTUVWXYZ[`abcdefg\u00e9\u00c4ABC";
    const char *want = "@abcdefGHIJKLMNOPQRSTUVWXYZ[`abcdefg\u00e9\u00c4abc";
    for (int shift = 0; shift < 8; shift++) {
        char in[128], out[128];
        snprintf(in, sizeof(in), "{\"span_id\":\"%.*s%s\"}", shift, "0000000", all);
        snprintf(out, sizeof(out), "%.*s%s", shift, "0000000", want);
        run_norm(&r, in, strlen(in), default_aliases(), "");
        assert_int_equal(r.rc, 0);
        assert_string_equal(str_of(&r, "span_id"), out);
        result_free(&r);
    }

    /* A numeric id is left alone. */
    run_norm(&r, L("{\"trace_id\":12345}"), default_aliases(), "");
    assert_int_equal(json_integer_value(json_object_get(r.obj, "trace_id")), 12345);
    result_free(&r);
}

/* ---- partition key ---- */

static void test_partition_hash(void **state)
{
    struct result a, b, c, d, e;
    run_norm(&a, L("{\"trace_id\":\"abc123\",\"x\":1}"), default_aliases(), "trace_id");
    run_norm(&b, L("{\"y\":[1,2],\"trace_id\":\"abc123\"}"), default_aliases(), "trace_id");
    run_norm(&c, L("{\"trace_id\":\"ABC123\"}"), default_aliases(), "trace_id");
    run_norm(&d, L("{\"trace_id\":\"abc124\"}"), default_aliases(), "trace_id");
    run_norm(&e, L("{\"span_id\":\"abc123\"}"), default_aliases(), "trace_id");
    assert_int_equal(a.has_hash, 1);
    assert_int_equal(b.has_hash, 1);
    assert_int_equal(c.has_hash, 1);
    assert_int_equal(d.has_hash, 1);
    assert_int_equal(e.has_hash, 0);
    assert_true(a.hash == b.hash);
    assert_true(a.hash == c.hash); /* ids are compared lowercased */
    assert_true(a.hash != d.hash);
    result_free(&a);
    result_free(&b);
    result_free(&c);
    result_free(&d);
    result_free(&e);

    /* Any field can be the key, with any kind of value; "" turns keys off. */
    run_norm(&a, L("{\"tenant\":{\"id\":7}}"), default_aliases(), "tenant");
    run_norm(&b, L("{\"z\":0,\"tenant\":{\"id\":7}}"), default_aliases(), "tenant");
    run_norm(&c, L("{\"tenant\":{\"id\":8}}"), default_aliases(), "tenant");
    run_norm(&d, L("{\"tenant\":\"x\"}"), default_aliases(), "");
    assert_int_equal(a.has_hash, 1);
    assert_true(a.hash == b.hash);
    assert_true(a.hash != c.hash);
    assert_int_equal(d.has_hash, 0);
    result_free(&a);
    result_free(&b);
    result_free(&c);
    result_free(&d);
}

/* ---- bad input ---- */

static void test_bad_input(void **state)
{
    static const struct {
        const char *js;
        size_t len;
        const char *reason; /* NULL: any reason */
    } cases[] = {
        {L("{\"a\":}"), NULL},
        {L("[1,2]"), "not a JSON object"},
        {L("\"just a string\""), "not a JSON object"},
        {L("42 "), "not a JSON object"},
        {L("{\"a\":1"), "truncated JSON"},
        {L("{\"a\":1} x"), NULL},
        {L("{\"a\":1}{\"b\":2}"), NULL},
        {L("{\"a\":1}\0"), "NUL byte in JSON text"},
        {L("{\"a\":\"b\0c\"}"), NULL},
        {L("{\"a\":\"\xff\xfe\"}"), "invalid UTF-8"},
        {L("{\"\xc0\x80\":1}"), "invalid UTF-8"},
        {L("{\"a\":\"\xed\xa0\x80\"}"), "invalid UTF-8"},
        {L("{\"a\":\"x\x01y\"}"), "control character in string"},
        {L("{\"a\":\"tab\there\"}"), "control character in string"},
        {L(""), "empty document"},
        {L("not json"), NULL},
        {L("{\"a\":1,}"), NULL},
        {L("{\"a\":01}"), NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct normalizer n;
        normalizer_init(&n, "app", default_aliases(), "trace_id");
        struct recv_time rt = fixed_rt();
        struct buf out = {0};
        buf_puts(&out, "previous");
        uint64_t h = 0;
        int hh = 0;
        const char *err = NULL;
        int rc = normalize_json(&n, cases[i].js, cases[i].len, &rt, &out, &h, &hh, &err);
        if (rc != -EINVAL || !err || (cases[i].reason && strcmp(err, cases[i].reason) != 0)) {
            print_error("case %zu `%.*s`: rc %d err %s, want -EINVAL %s\n", i, (int)cases[i].len,
                        cases[i].js, rc, err ? err : "(null)",
                        cases[i].reason ? cases[i].reason : "");
            fail();
        }
        /* The output buffer is left as it was. */
        assert_int_equal(out.len, 8);
        assert_memory_equal(out.data, "previous", 8);
        buf_free(&out);
        normalizer_free(&n);
    }
}

/* ---- wide events ---- */

/* Every field other than the canonical ones survives with its value, whatever its type. */
static void test_wide_event_keeps_everything(void **state)
{
    static const char in[] =
        "{\n"
        "  \"service\": \"checkout\",\n"
        "  \"http\": {\"method\": \"POST\", \"status\": 502, \"path\": \"/cart/\\u00e9\"},\n"
        "  \"duration_ms\": 1234.5,\n"
        "  \"retries\": 0,\n"
        "  \"big\": 123456789012345,\n"
        "  \"neg\": -1.5e-7,\n"
        "  \"ok\": false,\n"
        "  \"nothing\": null,\n"
        "  \"tags\": [\"a\", \"b\", {\"c\": [1, [2, [3]]]}],\n"
        "  \"we\\\"ird key\": \"line\\nbreak \\\"q\\\" \\\\ \\t\",\n"
        "  \"unicode\": \"h\xc3\xa9llo \xf0\x9f\x98\x80 \\ud83d\\ude00\",\n"
        "  \"empty\": {},\n"
        "  \"empty_list\": [],\n"
        "  \"\": \"empty name\",\n"
        "  \"nul\": \"a\\u0000b\",\n"
        "  \"spaces\": \"  keep   inner  spaces  \",\n"
        "  \"msg\": \"aliased\"\n"
        "}";
    struct result r;
    run_norm(&r, L(in), default_aliases(), "service");
    assert_int_equal(r.rc, 0);
    json_t *src = json_loadb(in, sizeof(in) - 1, JSON_ALLOW_NUL, NULL);
    assert_non_null(src);
    const char *key;
    json_t *val;
    int checked = 0;
    json_object_foreach(src, key, val)
    {
        const char *name = strcmp(key, "msg") == 0 ? "message" : key;
        json_t *got = json_object_get(r.obj, name);
        if (!got || !json_equal(got, val)) {
            print_error("field \"%s\" lost or changed: %.*s\n", key, (int)r.len, r.text);
            fail();
        }
        checked++;
    }
    assert_int_equal(checked, 17);
    /* 17 fields (msg renamed) plus timestamp, kind, source, received_at. */
    assert_int_equal(json_object_size(r.obj), 21);
    assert_int_equal(r.has_hash, 1);
    json_decref(src);
    result_free(&r);
}

/* Objects inside one document, normalized one by one from the same tokens. */
static void test_normalize_tokens(void **state)
{
    static const char doc[] = "[{\"msg\":\"one\"},{\"msg\":\"two\",\"trace_id\":\"AA\"}]";
    struct normalizer n;
    normalizer_init(&n, "batch", default_aliases(), "trace_id");
    struct recv_time rt = fixed_rt();
    assert_int_equal(jsontok_parse(&n.tok, doc, strlen(doc)), 0);
    int first = 1, second = n.tok.next[1];
    struct buf out = {0};
    uint64_t h = 0;
    int hh = -1;
    assert_int_equal(normalize_tokens(&n, first, &rt, &out, &h, &hh), 0);
    assert_int_equal(hh, 0);
    size_t cut = out.len;
    assert_int_equal(normalize_tokens(&n, second, &rt, &out, &h, &hh), 0);
    assert_int_equal(hh, 1);
    json_t *a = json_loadb(out.data, cut, JSON_REJECT_DUPLICATES, NULL);
    json_t *b = json_loadb(out.data + cut, out.len - cut, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(a, "message")), "one");
    assert_string_equal(json_string_value(json_object_get(a, "source")), "batch");
    assert_string_equal(json_string_value(json_object_get(b, "message")), "two");
    assert_string_equal(json_string_value(json_object_get(b, "trace_id")), "aa");
    json_decref(a);
    json_decref(b);
    buf_free(&out);
    normalizer_free(&n);
}

/* One normalizer, many events of growing size: token space and alias scratch are reused. */
static void test_reuse_normalizer(void **state)
{
    struct normalizer n;
    normalizer_init(&n, "app", default_aliases(), "k");
    struct recv_time rt = fixed_rt();
    struct buf in = {0}, out = {0};
    for (int size = 1; size <= 400; size += 37) {
        buf_reset(&in);
        buf_reset(&out);
        buf_putc(&in, '{');
        for (int i = 0; i < size; i++)
            buf_printf(&in, "%s\"f%d\":%d", i ? "," : "", i, i);
        buf_puts(&in, ",\"k\":\"v\",\"msg\":\"m\"}");
        uint64_t h;
        int hh;
        const char *err;
        assert_int_equal(normalize_json(&n, in.data, in.len, &rt, &out, &h, &hh, &err), 0);
        assert_int_equal(hh, 1);
        json_t *o = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
        assert_non_null(o);
        assert_int_equal(json_object_size(o), (size_t)size + 6);
        assert_int_equal(json_integer_value(json_object_get(o, "f0")), 0);
        assert_string_equal(json_string_value(json_object_get(o, "message")), "m");
        json_decref(o);
    }
    buf_free(&in);
    buf_free(&out);
    normalizer_free(&n);
}

/* ---- dead letters ---- */

static json_t *dead(const char *raw, size_t len, struct buf *out)
{
    struct recv_time rt = fixed_rt();
    buf_reset(out);
    assert_int_equal(normalize_dead_letter(out, "app", &rt, "invalid JSON", raw, len), 0);
    assert_null(memchr(out->data, '\n', out->len));
    json_error_t e;
    json_t *o = json_loadb(out->data, out->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    if (!o) {
        print_error("dead letter does not parse (%s): %.*s\n", e.text, (int)out->len, out->data);
        fail();
    }
    return o;
}

static void test_dead_letter(void **state)
{
    struct buf out = {0};
    json_t *o = dead(L("{\"a\": oops}"), &out);
    assert_string_equal(json_string_value(json_object_get(o, "error")), "invalid JSON");
    assert_string_equal(json_string_value(json_object_get(o, "raw")), "{\"a\": oops}");
    assert_string_equal(json_string_value(json_object_get(o, "source")), "app");
    assert_string_equal(json_string_value(json_object_get(o, "timestamp")), RT_TEXT);
    assert_string_equal(json_string_value(json_object_get(o, "received_at")), RT_TEXT);
    assert_null(json_object_get(o, "raw_base64"));
    assert_null(json_object_get(o, "raw_bytes"));
    json_decref(o);

    /* Control characters, quotes and a NUL byte are escaped, not lost. */
    o = dead(L("a\0b\x01\"\\\t"), &out);
    json_t *raw = json_object_get(o, "raw");
    assert_int_equal(json_string_length(raw), 7);
    assert_memory_equal(json_string_value(raw), "a\0b\x01\"\\\t", 7);
    assert_null(json_object_get(o, "raw_base64"));
    json_decref(o);

    /* Valid UTF-8 stays as it is. */
    o = dead(L("h\xc3\xa9llo \xf0\x9f\x98\x80"), &out);
    assert_string_equal(json_string_value(json_object_get(o, "raw")),
                        "h\xc3\xa9llo \xf0\x9f\x98\x80");
    assert_null(json_object_get(o, "raw_base64"));
    json_decref(o);
    buf_free(&out);
}

static void test_dead_letter_binary(void **state)
{
    static const struct {
        const char *raw;
        size_t len;
        const char *b64;
    } cases[] = {
        {L("\xff"), "/w=="},
        {L("\xff\xfe"), "//4="},
        {L("\xff\xfe\xfd"), "//79"},
        {L("\xff\xfe"
           "abc"),
         "//5hYmM="},
        {L("ok\xc0\x80"), "b2vAgA=="},
        {L("\xed\xa0\x80"), "7aCA"},
    };
    struct buf out = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *o = dead(cases[i].raw, cases[i].len, &out);
        const char *b64 = json_string_value(json_object_get(o, "raw_base64"));
        if (!b64 || strcmp(b64, cases[i].b64) != 0) {
            print_error("case %zu: raw_base64 %s, want %s\n", i, b64 ? b64 : "(none)",
                        cases[i].b64);
            fail();
        }
        /* raw is still there, as valid UTF-8 with replacement characters. */
        assert_non_null(json_string_value(json_object_get(o, "raw")));
        json_decref(o);
    }
    buf_free(&out);
}

static void test_dead_letter_long_raw(void **state)
{
    size_t n = 10000;
    char *raw = malloc(n);
    for (size_t i = 0; i < n; i++)
        raw[i] = (char)('a' + i % 26);
    struct buf out = {0};
    json_t *o = dead(raw, n, &out);
    json_t *r = json_object_get(o, "raw");
    assert_int_equal(json_string_length(r), 4096);
    assert_memory_equal(json_string_value(r), raw, 4096);
    assert_int_equal(json_integer_value(json_object_get(o, "raw_bytes")), 10000);
    json_decref(o);
    buf_free(&out);
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_order),
        cmocka_unit_test(test_minimal_event),
        cmocka_unit_test(test_default_aliases),
        cmocka_unit_test(test_alias_not_over_canonical),
        cmocka_unit_test(test_custom_aliases),
        cmocka_unit_test(test_two_aliases_same_target),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_epoch_precision),
        cmocka_unit_test(test_impossible_dates),
        cmocka_unit_test(test_canonical_shape_not_checked),
        cmocka_unit_test(test_normalize_timestamp_direct),
        cmocka_unit_test(test_kind_source_received_at),
        cmocka_unit_test(test_escaped_canonical_names_replaced),
        cmocka_unit_test(test_member_runs_exact),
        cmocka_unit_test(test_hex_ids_lowercased),
        cmocka_unit_test(test_partition_hash),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_wide_event_keeps_everything),
        cmocka_unit_test(test_normalize_tokens),
        cmocka_unit_test(test_reuse_normalizer),
        cmocka_unit_test(test_dead_letter),
        cmocka_unit_test(test_dead_letter_binary),
        cmocka_unit_test(test_dead_letter_long_raw),
    };
    return cmocka_run_group_tests_name("normalize", tests, NULL, NULL);
}
