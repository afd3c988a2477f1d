/* Unit tests of the event view (core/eview.h): reads of top-level, nested and array fields,
 * edits (set/del, nested, creating intermediate objects) read back and serialized (checked
 * with jansson's json_equal), eview_keys with edits, clear_edits, and the byte-identical
 * output of an unedited event. */
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

#include "core/eview.h"

/* A path written with dots ("o.k.3") as eview wants it: NUL-separated segments. */
struct path {
    char s[128];
    size_t len;
};

static struct path P(const char *dotted) {
    struct path p;
    p.len = strlen(dotted);
    assert_true(p.len < sizeof(p.s));
    for (size_t i = 0; i <= p.len; i++)
        p.s[i] = dotted[i] == '.' ? '\0' : dotted[i];
    return p;
}

static struct ev_val
get(struct eview *v, const char *dotted)
{
    struct path p = P(dotted);
    struct ev_val out;
    memset(&out, 0xaa, sizeof(out));
    assert_int_equal(eview_get(v, p.s, p.len, &out), 0);
    return out;
}

static void set(struct eview *v, const char *dotted, const char *json)
{
    struct path p = P(dotted);
    assert_int_equal(eview_set(v, p.s, p.len, json, strlen(json)), 0);
}

static void del(struct eview *v, const char *dotted)
{
    struct path p = P(dotted);
    assert_int_equal(eview_del(v, p.s, p.len), 0);
}

static void expect_val(struct ev_val got, enum ev_kind kind, const char *text)
{
    if (got.kind != kind ||
        (text && (got.len != strlen(text) || !got.text || memcmp(got.text, text, got.len) != 0))) {
        print_error("got kind %d `%.*s`, want kind %d `%s`\n", got.kind,
                    got.text ? (int)got.len : 0, got.text ? got.text : "", kind, text ? text : "");
        fail();
    }
}

/* Serializes and compares with the expected object (order-insensitive); 1 when equal. */
static int serialized_equals(struct eview *v, const char *want)
{
    struct buf out = {0};
    buf_puts(&out, "#"); /* serialize appends */
    assert_int_equal(eview_serialize(v, &out), 0);
    assert_true(out.len > 1);
    assert_int_equal(out.data[0], '#');
    json_error_t e;
    json_t *got =
        json_loadb(out.data + 1, out.len - 1, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    json_t *exp = json_loads(want, JSON_ALLOW_NUL, NULL);
    assert_non_null(exp);
    int ok = got && json_equal(got, exp) && !memchr(out.data, '\n', out.len);
    if (!ok)
        print_error("serialized %.*s\nwant       %s\n%s\n", (int)out.len - 1, out.data + 1, want,
                    got ? "" : e.text);
    json_decref(got);
    json_decref(exp);
    buf_free(&out);
    return ok;
}

static void expect_serialized(struct eview *v, const char *want)
{
    assert_true(serialized_equals(v, want));
}

static const char doc[] = "{\"a\":1,\"s\":\"x\\\"y\",\"n\":null,\"b\":true,\"f\":false,"
                          "\"o\":{\"k\":[1,2,{\"z\":\"deep\"}]},\"arr\":[10,20,30],"
                          "\"k\\u0065y\":\"esc\",\"a.b\":\"dotted\",\"u\":\"\\u00e9\"}";

/* ---- reads ---- */

static void test_get_fields(void **state)
{
    struct eview v;
    eview_init(&v);
    eview_reset(&v, doc, strlen(doc));
    assert_int_equal(eview_parse(&v), 0);
    expect_val(get(&v, "a"), EVK_NUMBER, "1");
    struct ev_val s = get(&v, "s");
    expect_val(s, EVK_STRING, "x\\\"y");
    assert_int_equal(s.escaped, 1);
    struct ev_val u = get(&v, "u");
    expect_val(u, EVK_STRING, "\\u00e9");
    assert_int_equal(u.escaped, 1);
    expect_val(get(&v, "n"), EVK_NULL, "null");
    expect_val(get(&v, "b"), EVK_BOOL, "true");
    expect_val(get(&v, "f"), EVK_BOOL, "false");
    struct ev_val o = get(&v, "o");
    expect_val(o, EVK_OBJECT, "{\"k\":[1,2,{\"z\":\"deep\"}]}");
    assert_int_equal(o.size, 1);
    struct ev_val k = get(&v, "o.k");
    expect_val(k, EVK_ARRAY, "[1,2,{\"z\":\"deep\"}]");
    assert_int_equal(k.size, 3);
    expect_val(get(&v, "o.k.1"), EVK_NUMBER, "1");
    expect_val(get(&v, "o.k.2"), EVK_NUMBER, "2");
    struct ev_val z = get(&v, "o.k.3.z");
    expect_val(z, EVK_STRING, "deep");
    assert_int_equal(z.escaped, 0);
    expect_val(get(&v, "arr.1"), EVK_NUMBER, "10");
    expect_val(get(&v, "arr.3"), EVK_NUMBER, "30");
    /* Escaped keys are found by their decoded name; a dot is a plain character in a key. */
    expect_val(get(&v, "key"), EVK_STRING, "esc");
    struct ev_val dotted;
    assert_int_equal(eview_get(&v, "a.b", 3, &dotted), 0);
    expect_val(dotted, EVK_STRING, "dotted");
    /* The whole event. */
    struct ev_val all;
    assert_int_equal(eview_get(&v, "", 0, &all), 0);
    expect_val(all, EVK_OBJECT, doc);
    assert_int_equal(all.size, 10);
    eview_free(&v);
}

static void test_get_missing(void **state)
{
    static const char *const paths[] = {
        "missing", "o.missing", "arr.0",   "arr.4", "arr.x", "arr.-1",
        "a.b",     "s.x",       "o.k.3.q", "o.k.9", "n.x",   "o.k.3.z.q",
    };
    struct eview v;
    eview_init(&v);
    eview_reset(&v, doc, strlen(doc));
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct ev_val got = get(&v, paths[i]);
        if (got.kind != EVK_MISSING) {
            print_error("path %s: kind %d, want missing\n", paths[i], got.kind);
            fail();
        }
    }
    eview_free(&v);
}

static void test_not_an_object(void **state)
{
    static const char *const docs[] = {"[1,2]", "\"str\"", "not json", "{\"a\":", ""};
    struct eview v;
    eview_init(&v);
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        eview_reset(&v, docs[i], strlen(docs[i]));
        assert_int_equal(eview_parse(&v), -EINVAL);
        struct ev_val out;
        assert_int_equal(eview_get(&v, "a", 1, &out), -EINVAL);
    }
    /* The view recovers with the next good event. */
    eview_reset(&v, "{\"a\":2}", 7);
    expect_val(get(&v, "a"), EVK_NUMBER, "2");
    eview_free(&v);
}

/* ---- edits, serialized ---- */

struct op {
    char kind; /* 's' set, 'd' del */
    const char *path;
    const char *json;
};

struct edit_case {
    const char *in;
    struct op ops[6];
    const char *want;
};

static const struct edit_case edit_cases[] = {
    {"{\"a\":1,\"b\":2}", {{'s', "a", "5"}}, "{\"a\":5,\"b\":2}"},
    {"{\"a\":1,\"b\":2}", {{'s', "c", "\"x\""}}, "{\"a\":1,\"b\":2,\"c\":\"x\"}"},
    {"{\"a\":1,\"b\":2}", {{'d', "a"}}, "{\"b\":2}"},
    {"{\"a\":1,\"b\":2}", {{'d', "zz"}}, "{\"a\":1,\"b\":2}"},
    {"{\"a\":1,\"b\":2}", {{'d', "a"}, {'d', "b"}}, "{}"},
    {"{\"a\":1,\"b\":2}", {{'s', "a", "5"}, {'d', "a"}}, "{\"b\":2}"},
    {"{\"a\":1,\"b\":2}", {{'d', "a"}, {'s', "a", "7"}}, "{\"a\":7,\"b\":2}"},
    {"{\"a\":1}", {{'s', "a", "2"}, {'s', "a", "3"}}, "{\"a\":3}"},
    {"{\"h\":{\"s\":200,\"m\":\"GET\"}}",
     {{'s', "h.s", "404"}},
     "{\"h\":{\"s\":404,\"m\":\"GET\"}}"},
    {"{\"h\":{\"s\":200,\"m\":\"GET\"}}", {{'d', "h.m"}}, "{\"h\":{\"s\":200}}"},
    {"{\"h\":{\"s\":200,\"m\":\"GET\"}}",
     {{'s', "h.t.u", "[1]"}},
     "{\"h\":{\"s\":200,\"m\":\"GET\",\"t\":{\"u\":[1]}}}"},
    {"{\"a\":1}", {{'s', "x.y.z", "true"}}, "{\"a\":1,\"x\":{\"y\":{\"z\":true}}}"},
    {"{\"a\":1}", {{'s', "a.b", "2"}}, "{\"a\":{\"b\":2}}"},
    {"{\"h\":{\"m\":1}}",
     {{'s', "h", "{\"q\":1}"}, {'s', "h.r", "2"}},
     "{\"h\":{\"q\":1,\"r\":2}}"},
    {"{\"h\":{\"m\":1}}", {{'s', "h.r", "2"}, {'s', "h", "{\"q\":1}"}}, "{\"h\":{\"q\":1}}"},
    {"{\"h\":{\"m\":1}}", {{'d', "h"}, {'s', "h.r", "2"}}, "{\"h\":{\"r\":2}}"},
    {"{\"arr\":[1,2,3]}", {{'s', "arr.2", "20"}}, "{\"arr\":[1,20,3]}"},
    {"{\"arr\":[1,2,3]}", {{'d', "arr.1"}}, "{\"arr\":[2,3]}"},
    {"{\"arr\":[1,2,3]}", {{'s', "arr.4", "4"}}, "{\"arr\":[1,2,3,4]}"},
    {"{\"o\":{\"k\":[{\"z\":1},{\"z\":5}]}}",
     {{'s', "o.k.2.z", "6"}, {'s', "o.k.1.w", "0"}},
     "{\"o\":{\"k\":[{\"z\":1,\"w\":0},{\"z\":6}]}}"},
    {"{\"k\\u0065y\":1,\"x\":2}", {{'s', "key", "3"}}, "{\"key\":3,\"x\":2}"},
    {"{\"k\\u0065y\":1,\"x\":2}", {{'d', "key"}}, "{\"x\":2}"},
    {"{\"a\":1}",
     {{'s', "s", "\"q \\\"x\\\" \\u00e9\""},
      {'s', "n", "null"},
      {'s', "l", "[1,{\"a\":2}]"},
      {'s', "f", "-1.5e3"},
      {'s', "o", "{}"}},
     "{\"a\":1,\"s\":\"q \\\"x\\\" \\u00e9\",\"n\":null,\"l\":[1,{\"a\":2}],\"f\":-1500.0,"
     "\"o\":{}}"},
    {"{\n  \"a\": 1,\n  \"b\": {\n    \"c\": 2\n  }\n}",
     {{'s', "z", "0"}},
     "{\"a\":1,\"b\":{\"c\":2},\"z\":0}"},
    {"{\"a\":{\"b\":{\"c\":1,\"d\":2},\"e\":3}}",
     {{'d', "a.b.c"}, {'s', "a.b.x", "9"}},
     "{\"a\":{\"b\":{\"d\":2,\"x\":9},\"e\":3}}"},
};

static void apply_ops(struct eview *v, const struct op *ops)
{
    for (int i = 0; i < 6 && ops[i].kind; i++) {
        if (ops[i].kind == 's')
            set(v, ops[i].path, ops[i].json);
        else
            del(v, ops[i].path);
    }
}

static void test_edits_serialized(void **state)
{
    int bad = 0;
    struct eview v;
    eview_init(&v);
    for (size_t i = 0; i < sizeof(edit_cases) / sizeof(edit_cases[0]); i++) {
        const struct edit_case *c = &edit_cases[i];
        eview_reset(&v, c->in, strlen(c->in));
        assert_false(eview_edited(&v));
        apply_ops(&v, c->ops);
        assert_true(eview_edited(&v));
        if (!serialized_equals(&v, c->want)) {
            print_error("(case %zu, input %s)\n", i, c->in);
            bad++;
        }
    }
    eview_free(&v);
    assert_int_equal(bad, 0);
}

/* Untouched members are copied as they are, edited ones replaced in place, new ones last. */
static void test_serialize_order(void **state)
{
    static const char in[] = "{\"a\":1,\"b\":2,\"c\":{\"x\":[1, 2]}}";
    struct eview v;
    eview_init(&v);
    eview_reset(&v, in, strlen(in));
    set(&v, "d", "4");
    set(&v, "b", "9");
    struct buf out = {0};
    assert_int_equal(eview_serialize(&v, &out), 0);
    assert_int_equal(out.len, strlen("{\"a\":1,\"b\":9,\"c\":{\"x\":[1, 2]},\"d\":4}"));
    assert_memory_equal(out.data, "{\"a\":1,\"b\":9,\"c\":{\"x\":[1, 2]},\"d\":4}", out.len);
    buf_free(&out);
    eview_free(&v);
}

/* Reads tokenize only as far as the member read; whatever the order of reads (later members,
 * earlier ones, nested ones, absent ones), values and the serialized edit come out as after a
 * whole parse. */
static void test_reads_in_any_order(void **state)
{
    static const char *const orders[][4] = {{"o.k.3.z", "a", "zz", NULL},
                                            {"zz", "a", NULL, NULL},
                                            {"u", "s", "key", "arr.2"},
                                            {"key", "n", NULL, NULL},
                                            {NULL}};
    struct eview v;
    eview_init(&v);
    for (size_t o = 0; o < sizeof(orders) / sizeof(orders[0]); o++) {
        eview_reset(&v, doc, strlen(doc));
        for (int r = 0; r < 4 && orders[o][r]; r++) {
            struct eview v2;
            eview_init(&v2);
            eview_reset(&v2, doc, strlen(doc));
            assert_int_equal(eview_parse(&v2), 0); /* the whole parse, for reference */
            char path[32];
            size_t n = strlen(orders[o][r]);
            memcpy(path, orders[o][r], n + 1);
            for (size_t i = 0; i < n; i++)
                if (path[i] == '.')
                    path[i] = '\0';
            struct ev_val got, want;
            assert_int_equal(eview_get(&v, path, n, &got), 0);
            assert_int_equal(eview_get(&v2, path, n, &want), 0);
            assert_int_equal(got.kind, want.kind);
            assert_int_equal(got.len, want.len);
            if (want.len)
                assert_memory_equal(got.text, want.text, want.len);
            eview_free(&v2);
        }
        set(&v, "z", "1");
        struct buf out = {0};
        assert_int_equal(eview_serialize(&v, &out), 0);
        const char *tail = ",\"z\":1}";
        assert_int_equal(out.len, strlen(doc) - 1 + strlen(tail));
        assert_memory_equal(out.data, doc, strlen(doc) - 1);
        assert_memory_equal(out.data + strlen(doc) - 1, tail, strlen(tail));
        buf_free(&out);
    }
    eview_free(&v);
}

static void test_unedited_is_byte_identical(void **state)
{
    static const char *const docs[] = {
        "{ \"a\" : 1 ,\t\"b\":[ 1, 2 ] }",
        "{\"k\\u0065y\":\"\\u00e9\",\"n\":1.50}",
        doc,
    };
    struct eview v;
    eview_init(&v);
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        eview_reset(&v, docs[i], strlen(docs[i]));
        struct ev_val val;
        assert_int_equal(eview_get(&v, "a", 1, &val), 0); /* reads do not count as edits */
        struct buf out = {0};
        assert_int_equal(eview_serialize(&v, &out), 0);
        assert_int_equal(out.len, strlen(docs[i]));
        assert_memory_equal(out.data, docs[i], out.len);
        buf_free(&out);
    }
    eview_free(&v);
}

/* ---- edits, read back ---- */

static void test_edits_read_back(void **state)
{
    static const char in[] = "{\"a\":1,\"h\":{\"s\":200,\"m\":\"GET\"},\"arr\":[1,2]}";
    struct eview v;
    eview_init(&v);
    eview_reset(&v, in, strlen(in));
    set(&v, "h.s", "\"404\"");
    expect_val(get(&v, "h.s"), EVK_STRING, "404");
    expect_val(get(&v, "h.m"), EVK_STRING, "GET");
    struct ev_val h = get(&v, "h");
    assert_int_equal(h.kind, EVK_OBJECT);
    assert_int_equal(h.size, -1); /* edited below: size unknown */
    struct ev_val all;
    assert_int_equal(eview_get(&v, "", 0, &all), 0);
    assert_int_equal(all.kind, EVK_OBJECT);

    set(&v, "x.y.z", "[true]");
    struct ev_val z = get(&v, "x.y.z");
    expect_val(z, EVK_ARRAY, "[true]");
    assert_int_equal(z.size, 1);
    assert_int_equal(get(&v, "x.y").kind, EVK_OBJECT);
    assert_int_equal(get(&v, "x").kind, EVK_OBJECT);
    assert_int_equal(get(&v, "x.q").kind, EVK_MISSING);

    set(&v, "o", "{\"p\":{\"q\":\"r\"},\"l\":[5,6]}");
    expect_val(get(&v, "o.p.q"), EVK_STRING, "r");
    expect_val(get(&v, "o.l.2"), EVK_NUMBER, "6");
    struct ev_val o = get(&v, "o");
    expect_val(o, EVK_OBJECT, "{\"p\":{\"q\":\"r\"},\"l\":[5,6]}");
    assert_int_equal(o.size, 2);
    assert_int_equal(get(&v, "o.missing").kind, EVK_MISSING);

    del(&v, "h.m");
    assert_int_equal(get(&v, "h.m").kind, EVK_MISSING);
    expect_val(get(&v, "h.s"), EVK_STRING, "404");
    del(&v, "a");
    assert_int_equal(get(&v, "a").kind, EVK_MISSING);
    assert_int_equal(get(&v, "a.b").kind, EVK_MISSING);
    set(&v, "a", "\"back\"");
    expect_val(get(&v, "a"), EVK_STRING, "back");
    set(&v, "arr", "\"now a string\"");
    assert_int_equal(get(&v, "arr.1").kind, EVK_MISSING);
    expect_val(get(&v, "arr"), EVK_STRING, "now a string");

    expect_serialized(&v, "{\"a\":\"back\",\"h\":{\"s\":\"404\"},\"arr\":\"now a string\","
                          "\"x\":{\"y\":{\"z\":[true]}},\"o\":{\"p\":{\"q\":\"r\"},\"l\":[5,6]}}");
    eview_free(&v);
}

/* ---- keys ---- */

struct keylist {
    char text[512];
    size_t len;
    int n;
};

static void collect_key(void *ud, const char *key, size_t klen)
{
    struct keylist *kl = ud;
    assert_true(kl->len + klen + 2 < sizeof(kl->text));
    if (kl->n++)
        kl->text[kl->len++] = ',';
    memcpy(kl->text + kl->len, key, klen);
    kl->len += klen;
    kl->text[kl->len] = '\0';
}

static void expect_keys(struct eview *v, const char *dotted, const char *want)
{
    struct keylist kl;
    memset(&kl, 0, sizeof(kl));
    struct path p = P(dotted);
    assert_int_equal(eview_keys(v, p.s, p.len, collect_key, &kl), 0);
    if (strcmp(kl.text, want) != 0) {
        print_error("keys of \"%s\": got [%s], want [%s]\n", dotted, kl.text, want);
        fail();
    }
}

static void test_keys(void **state)
{
    static const char in[] = "{\"a\":1,\"b\":{\"c\":2},\"d\":3,\"k\\u0065y\":4}";
    struct eview v;
    eview_init(&v);
    eview_reset(&v, in, strlen(in));
    expect_keys(&v, "", "a,b,d,key");
    expect_keys(&v, "b", "c");
    expect_keys(&v, "a", "");
    expect_keys(&v, "nope", "");

    del(&v, "a");
    set(&v, "e", "\"5\"");
    set(&v, "d", "[33]"); /* an edited key is still listed once */
    set(&v, "b.f", "{}");
    expect_keys(&v, "", "b,d,key,e");
    expect_keys(&v, "b", "c,f");
    del(&v, "b.c");
    expect_keys(&v, "b", "f");

    /* A replaced object lists the new keys only. */
    set(&v, "b", "{\"x\":1,\"y\":{\"z\":0}}");
    expect_keys(&v, "b", "x,y");
    expect_keys(&v, "b.y", "z");
    set(&v, "b.w", "\"7\"");
    expect_keys(&v, "b", "x,y,w");

    /* An object made by nested sets. */
    set(&v, "n.p", "\"1\"");
    set(&v, "n.q", "[2]");
    expect_keys(&v, "n", "p,q");
    expect_keys(&v, "", "b,d,key,e,n");

    del(&v, "key");
    set(&v, "a", "\"0\"");
    /* A deleted original key set again keeps its original place, as when serialized. */
    expect_keys(&v, "", "a,b,d,e,n");
    eview_free(&v);
}

/* ---- clear ---- */

static void test_clear_edits(void **state)
{
    static const char in[] = "{\"a\":1,\"h\":{\"s\":200}}";
    struct eview v;
    eview_init(&v);
    eview_reset(&v, in, strlen(in));
    set(&v, "a", "\"2\"");
    del(&v, "h.s");
    set(&v, "new", "{\"t\":true}");
    assert_true(eview_edited(&v));
    eview_clear_edits(&v);
    assert_false(eview_edited(&v));
    expect_val(get(&v, "a"), EVK_NUMBER, "1");
    expect_val(get(&v, "h.s"), EVK_NUMBER, "200");
    assert_int_equal(get(&v, "new").kind, EVK_MISSING);
    expect_keys(&v, "h", "s");
    struct buf out = {0};
    assert_int_equal(eview_serialize(&v, &out), 0);
    assert_int_equal(out.len, strlen(in));
    assert_memory_equal(out.data, in, out.len);
    buf_free(&out);

    /* Edits after a clear work as on a fresh event; many edits grow the edit table. */
    for (int i = 0; i < 100; i++) {
        char key[16], val[16];
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "[%d]", i);
        set(&v, key, val);
    }
    expect_val(get(&v, "k0"), EVK_ARRAY, "[0]");
    expect_val(get(&v, "k99"), EVK_ARRAY, "[99]");
    struct buf big = {0};
    assert_int_equal(eview_serialize(&v, &big), 0);
    json_t *o = json_loadb(big.data, big.len, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(o);
    assert_int_equal(json_object_size(o), 102);
    json_decref(o);
    buf_free(&big);
    eview_free(&v);
}

/* Regression (was a bug, fixed): core/eview.c get_in_edit() tokenizes an edit's value with
 * jsontok_parse(), which rejects a number or literal that is the whole text (see the jsontok bug:
 * jsmn strict mode returns JSMN_ERROR_PART), so after eview_set(v, "a", "5") eview_get(v, "a")
 * returns -EINVAL instead of EVK_NUMBER "5"; the same for true/false/null and for nested paths (x.y
 * = 1). eview_keys() then also leaves such keys out, because keyset_emit() asks eview_get(). */
static void test_read_back_scalar_edits(void **state)
{
    static const char in[] = "{\"a\":1,\"b\":2}";
    static const struct {
        const char *path, *json;
        enum ev_kind kind;
    } cases[] = {
        {"a", "5", EVK_NUMBER},     {"c", "true", EVK_BOOL},  {"d", "null", EVK_NULL},
        {"x.y", "1.5", EVK_NUMBER}, {"e", "false", EVK_BOOL},
    };
    struct eview v;
    eview_init(&v);
    int bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        eview_reset(&v, in, strlen(in));
        struct path p = P(cases[i].path);
        assert_int_equal(eview_set(&v, p.s, p.len, cases[i].json, strlen(cases[i].json)), 0);
        struct ev_val out;
        memset(&out, 0, sizeof(out));
        int rc = eview_get(&v, p.s, p.len, &out);
        if (rc != 0 || out.kind != cases[i].kind || out.len != strlen(cases[i].json) ||
            memcmp(out.text, cases[i].json, out.len) != 0) {
            print_error("set %s = %s, read back: rc %d kind %d\n", cases[i].path, cases[i].json, rc,
                        out.kind);
            bad++;
        }
    }
    static const char nested[] = "{\"o\":{\"a\":1,\"b\":2}}";
    eview_reset(&v, nested, strlen(nested));
    set(&v, "o.c", "3");
    set(&v, "o.a", "4");
    struct keylist kl;
    memset(&kl, 0, sizeof(kl));
    assert_int_equal(eview_keys(&v, "o", 1, collect_key, &kl), 0);
    if (strcmp(kl.text, "a,b,c") != 0) {
        print_error("keys: got [%s], want [a,b,c]\n", kl.text);
        bad++;
    }
    eview_free(&v);
    assert_int_equal(bad, 0);
}

/* Regression (was a bug, fixed): core/eview.c apply_edit() turns whatever is at an intermediate
 * path segment into an object even for a delete, so deleting a path below a scalar or below a
 * missing member changes the event instead of doing nothing: on {"a":1}, del "a.b" serializes as
 * {"a":{}} and del "zz.q" adds "zz":{}. Expected: {"a":1} both times. */
static void test_del_below_scalar_or_missing(void **state)
{
    struct eview v;
    eview_init(&v);
    int bad = 0;
    eview_reset(&v, "{\"a\":1}", 7);
    del(&v, "a.b");
    bad += !serialized_equals(&v, "{\"a\":1}");
    eview_reset(&v, "{\"a\":1}", 7);
    del(&v, "zz.q");
    bad += !serialized_equals(&v, "{\"a\":1}");
    eview_free(&v);
    assert_int_equal(bad, 0);
}

/* Regression (was a bug, fixed): core/eview.c emit_member() rebuilds a member edited below its top
 * level with json_loadb(..., JSON_DECODE_ANY) without JSON_ALLOW_NUL, and apply_edit() loads nested
 * values the same way. jsontok accepts "\u0000" in strings, so: on
 * {"a":{"x":"p\u0000q","y":1}}, set "a.z" = 2 loses the original member (the load fails, the
 * member is rebuilt from nothing) and serializes {"a":{"z":2}}; and set "a.b" to the string
 * "x\u0000y" silently drops the value (json_object_set_new with NULL). The same loss happens
 * for an original holding an integer jansson cannot hold (18446744073709551616). */
static void test_nested_edit_keeps_original(void **state)
{
    struct eview v;
    eview_init(&v);
    int bad = 0;
    static const char in1[] = "{\"a\":{\"x\":\"p\\u0000q\",\"y\":1}}";
    eview_reset(&v, in1, strlen(in1));
    set(&v, "a.z", "2");
    bad += !serialized_equals(&v, "{\"a\":{\"x\":\"p\\u0000q\",\"y\":1,\"z\":2}}");

    static const char in2[] = "{\"a\":{\"y\":1}}";
    eview_reset(&v, in2, strlen(in2));
    set(&v, "a.b", "\"x\\u0000y\"");
    bad += !serialized_equals(&v, "{\"a\":{\"y\":1,\"b\":\"x\\u0000y\"}}");

    static const char in3[] = "{\"a\":{\"n\":18446744073709551616,\"y\":1}}";
    eview_reset(&v, in3, strlen(in3));
    set(&v, "a.z", "2");
    struct buf out = {0};
    assert_int_equal(eview_serialize(&v, &out), 0);
    buf_putc(&out, '\0');
    if (!strstr(out.data, "18446744073709551616") || !strstr(out.data, "\"y\":1")) {
        print_error("original member lost: %s\n", out.data);
        bad++;
    }
    buf_free(&out);
    eview_free(&v);
    assert_int_equal(bad, 0);
}

/* Regression (was a bug, fixed): core/eview.c keyset_emit() starts its path buffer with
 * buf_append(&full, path, 0) for the top-level object (plen 0), and core/buf.h buf_append() then
 * calls memcpy(NULL + 0, path, 0) on the still-empty buffer: undefined behaviour, which aborts the
 * process in the sanitizer build (SPILLWAY_SANITIZE=address,undefined uses
 * -fno-sanitize-recover=all). Any eview_keys(v, "", 0, ...) on an object with a key triggers it.
 * Runs in a child process so that the abort fails this test only; test_keys, which needs top-level
 * keys, runs last. */
static void test_keys_top_level_defined_behaviour(void **state)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct eview v;
        eview_init(&v);
        eview_reset(&v, "{\"a\":1}", 7);
        struct keylist kl;
        memset(&kl, 0, sizeof(kl));
        int rc = eview_keys(&v, "", 0, collect_key, &kl);
        eview_free(&v);
        _exit(rc == 0 && strcmp(kl.text, "a") == 0 ? 0 : 3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        print_error("child %s %d\n", WIFEXITED(status) ? "exited with" : "killed by signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        fail();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_fields),
        cmocka_unit_test(test_get_missing),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_edits_serialized),
        cmocka_unit_test(test_serialize_order),
        cmocka_unit_test(test_reads_in_any_order),
        cmocka_unit_test(test_unedited_is_byte_identical),
        cmocka_unit_test(test_edits_read_back),
        cmocka_unit_test(test_clear_edits),
        cmocka_unit_test(test_read_back_scalar_edits),
        cmocka_unit_test(test_del_below_scalar_or_missing),
        cmocka_unit_test(test_nested_edit_keeps_original),
        cmocka_unit_test(test_keys_top_level_defined_behaviour),
        /* Last: top-level keys hit the undefined behaviour above in a UBSan build. */
        cmocka_unit_test(test_keys),
    };
    return cmocka_run_group_tests_name("eview", tests, NULL, NULL);
}
