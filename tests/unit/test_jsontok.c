/* Unit tests of the strict JSON tokenizer (core/jsontok.h): accept/reject decisions checked
 * against an expected verdict and against jansson over a table of inputs, the token tree
 * (sizes, next links, text spans), error reasons, key lookup with escaped keys, and unescaping
 * (surrogate pairs, \u0000, lone surrogates). */
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

#include "core/jsontok.h"

#define L(s) s, sizeof(s) - 1 /* a literal with its length, NUL bytes included */

struct verdict_case {
    const char *js;
    size_t len;
    int ok; /* 1: valid JSON (RFC 8259), 0: invalid */
};

static const struct verdict_case verdicts[] = {
    /* valid: containers, nesting, whitespace */
    {L("{}"), 1},
    {L("[]"), 1},
    {L("{\"a\":1}"), 1},
    {L(" \t\r\n{ \"a\" : [ 1 , 2 , { \"b\" : null } ] ,\n\"c\" : true }\r\n "), 1},
    {L("[[[[[[]]]]],{\"a\":{\"b\":{\"c\":{}}}}]"), 1},
    {L("[true,false,null]"), 1},
    {L("{\"a\":{},\"b\":[],\"c\":\"\",\"\":0}"), 1},
    /* valid: numbers in every RFC 8259 form */
    {L("[0,-0,1,-1,10,123456789,1.5,-1.5,0.25,1e5,1E5,1e+5,1e-5,-1.5e10,0e0,0.0e-0,9.99E+99]"), 1},
    /* valid: strings, escapes, unicode */
    {L("\"str\""), 1},
    {L("[\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t\"]"), 1},
    {L("[\"\\u00e9 \\u20AC \\ud83d\\ude00 \\uD83D\\uDE00\"]"), 1},
    {L("{\"k\\u00e9y\":\"v\"}"), 1},
    {L("[\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"]"), 1},
    {L("[\"\\u0000\"]"), 1},
    {L("[\"\x7f\"]"), 1},
    {L("{\"a\":1}\n"), 1},
    /* valid: a scalar at the top level */
    {L("\"top\" "), 1},
    {L("1 "), 1},
    /* invalid: separators */
    {L("{\"a\" 1}"), 0},
    {L("{\"a\" \"b\"}"), 0},
    {L("{\"a\"}"), 0},
    {L("{\"a\":}"), 0},
    {L("{\"a\"::1}"), 0},
    {L("{:1}"), 0},
    {L("{\"a\":1 \"b\":2}"), 0},
    {L("{\"a\":1:2}"), 0},
    {L("[1 2]"), 0},
    {L("[\"a\" \"b\"]"), 0},
    {L("[{} {}]"), 0},
    {L("[1,]"), 0},
    {L("{\"a\":1,}"), 0},
    {L("[,1]"), 0},
    {L("[1,,2]"), 0},
    {L("{,}"), 0},
    {L("[,]"), 0},
    {L("{\"a\":1,,\"b\":2}"), 0},
    /* invalid: numbers */
    {L("01"), 0},
    {L("1."), 0},
    {L(".5"), 0},
    {L("+1"), 0},
    {L("tru"), 0},
    {L("[01]"), 0},
    {L("[-01]"), 0},
    {L("[1.]"), 0},
    {L("[.5]"), 0},
    {L("[+1]"), 0},
    {L("[-]"), 0},
    {L("[1e]"), 0},
    {L("[1e+]"), 0},
    {L("[0x10]"), 0},
    {L("[1.5.5]"), 0},
    {L("[1-2]"), 0},
    /* invalid: literals and bare words */
    {L("[tru]"), 0},
    {L("[nul]"), 0},
    {L("[True]"), 0},
    {L("[NaN]"), 0},
    {L("[Infinity]"), 0},
    {L("{\"a\":truex}"), 0},
    {L("hello"), 0},
    {L("{a:1}"), 0},
    {L("{'a':1}"), 0},
    /* invalid: unterminated */
    {L("\"abc"), 0},
    {L("{\"a\":\"b"), 0},
    {L("[1,2"), 0},
    {L("{\"a\":1"), 0},
    {L("{"), 0},
    /* invalid: control characters and escapes in strings */
    {L("[\"a\tb\"]"), 0},
    {L("[\"a\nb\"]"), 0},
    {L("[\"\x01\"]"), 0},
    {L("{\"\x1f\":1}"), 0},
    {L("[\"\\x41\"]"), 0},
    {L("[\"\\u12\"]"), 0},
    {L("[\"\\u12G4\"]"), 0},
    {L("[\"\\'\"]"), 0},
    /* invalid: UTF-8 */
    {L("[\"\xff\"]"), 0},
    {L("[\"\x80\"]"), 0},
    {L("[\"\xc3\"]"), 0},
    {L("[\"\xc0\x80\"]"), 0},
    {L("[\"\xc1\xbf\"]"), 0},
    {L("[\"\xe0\x80\xaf\"]"), 0},
    {L("[\"\xf0\x80\x80\xaf\"]"), 0},
    {L("[\"\xed\xa0\x80\"]"), 0},
    {L("[\"\xed\xbf\xbf\"]"), 0},
    {L("[\"\xf4\x90\x80\x80\"]"), 0},
    {L("[\"\xf5\x80\x80\x80\"]"), 0},
    {L("{\"\xfe\":1}"), 0},
    {L("\xef\xbb\xbf{}"), 0},
    /* invalid: more than one value, trailing data, brackets */
    {L("{} {}"), 0},
    {L("[1] [2]"), 0},
    {L("\"a\" \"b\""), 0},
    {L("1 2"), 0},
    {L("{\"a\":1}x"), 0},
    {L("{\"a\":1}}"), 0},
    {L("[]]"), 0},
    {L("]"), 0},
    {L("{]"), 0},
    {L("[}"), 0},
    {L(""), 0},
    {L("   "), 0},
    {L("[1]\f"), 0},
    /* invalid: NUL bytes in the text */
    {L("[1]\0"), 0},
    {L("[\"a\0b\"]"), 0},
    {L("{\"a\":1,\0\"b\":2}"), 0},
};

/* Each input gets the expected verdict from jsontok, and jansson agrees. */
static void test_verdicts_match_jansson(void **state)
{
    struct jsontok t = {0};
    int bad = 0;
    for (size_t i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++) {
        const struct verdict_case *c = &verdicts[i];
        int rc = jsontok_parse(&t, c->js, c->len);
        json_error_t jerr;
        json_t *j = json_loadb(c->js, c->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        int jok = j != NULL;
        json_decref(j);
        if ((rc == 0) != c->ok || jok != c->ok) {
            print_error("case %zu `%.*s`: want %s; jsontok %s (%s), jansson %s (%s)\n", i,
                        (int)c->len, c->js, c->ok ? "valid" : "invalid",
                        rc == 0 ? "accepts" : "rejects", rc ? t.err : "-",
                        jok ? "accepts" : "rejects", jok ? "-" : jerr.text);
            bad++;
        }
        if (rc != 0) {
            assert_int_equal(rc, -EINVAL);
            assert_non_null(t.err);
            assert_true(t.err_off <= c->len);
        }
    }
    jsontok_free(&t);
    assert_int_equal(bad, 0);
}

/* The string scan steps 16 and 8 bytes at a time: a quote, backslash escape, control
 * character or UTF-8 sequence (valid or not) at every offset of a long string, in a document
 * whose end falls at every offset of a step, gets jansson's verdict, and a valid string ends
 * exactly at its closing quote. */
static void test_string_scan_at_every_offset(void **state)
{
    static const struct {
        const char *s;
        size_t n;
    } specials[] = {{L("\\\"")}, {L("\\n")},      {L("\\u00e9")},      {L("\x01")},
                    {L("\x1f")}, {L("\xc3\xa9")}, {L("\xe2\x82\xac")}, {L("\xc3")},
                    {L("\xff")}, {L("\x7f")},     {L("\\x")},          {L("\"")}};
    struct jsontok t = {0};
    char doc[128];
    for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++)
        for (size_t at = 0; at < 40; at++)
            for (size_t tail = 0; tail < 20; tail++) {
                size_t n = 0;
                doc[n++] = '[';
                doc[n++] = '"';
                memset(doc + n, 'a', at);
                n += at;
                memcpy(doc + n, specials[k].s, specials[k].n);
                n += specials[k].n;
                memset(doc + n, 'b', tail);
                n += tail;
                doc[n++] = '"';
                doc[n++] = ']';
                int rc = jsontok_parse(&t, doc, n);
                json_error_t jerr;
                json_t *j = json_loadb(doc, n, JSON_DECODE_ANY, &jerr);
                if ((rc == 0) != (j != NULL)) {
                    print_error("special %zu at %zu, tail %zu: jsontok %d, jansson %s\n", k, at,
                                tail, rc, j ? "accepts" : jerr.text);
                    fail();
                }
                json_decref(j);
                if (rc == 0)
                    assert_int_equal(t.tok[1].end, (int)n - 2);
            }
    jsontok_free(&t);
}

/* Regression (was a bug, fixed): core/jsontok.c jsontok_parse() rejects a number or literal that is
 * the whole document
 * ("1", "true", "-0.5e-3") as "truncated JSON": jsmn in JSMN_STRICT mode wants a delimiter
 * after a primitive and returns JSMN_ERROR_PART at the end of the input. These are valid
 * JSON texts (RFC 8259), and "1 " with a trailing space is accepted. */
static void test_top_level_scalar(void **state)
{
    static const char *const docs[] = {"1", "true", "false", "null", "-0.5e-3", "0"};
    struct jsontok t = {0};
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_t *j = json_loadb(docs[i], strlen(docs[i]), JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        json_decref(j);
        int rc = jsontok_parse(&t, docs[i], strlen(docs[i]));
        if (rc) {
            print_error("`%s` rejected: %s\n", docs[i], t.err);
            jsontok_free(&t);
            fail();
        }
        assert_int_equal(t.ntok, 1);
        assert_int_equal(t.tok[0].type, JSMN_PRIMITIVE);
    }
    jsontok_free(&t);
}

/* Regression (was a bug, fixed): core/jsontok.c check_token() accepts a key-value pair inside an
 * array: `["a":1]` and
 * `{"x":["a":1]}` parse with no error (jansson rejects both). jsmn makes 1 a child of the
 * string "a"; check_token only checks the ':' gap before it and records its end in aux[] of
 * the array, so the array's own separator checks then pass. */
static void test_member_inside_array(void **state)
{
    static const char *const docs[] = {"[\"a\":1]", "{\"x\":[\"a\":1]}", "[1,\"a\":\"b\"]"};
    struct jsontok t = {0};
    int bad = 0;
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        assert_null(json_loadb(docs[i], strlen(docs[i]), JSON_DECODE_ANY, NULL));
        if (jsontok_parse(&t, docs[i], strlen(docs[i])) != -EINVAL) {
            print_error("`%s` accepted\n", docs[i]);
            bad++;
        }
    }
    jsontok_free(&t);
    assert_int_equal(bad, 0);
}

/* Regression (was a bug, fixed): core/jsontok.c check_token() writes t->aux[-1] for a key-value
 * pair at the top level
 * (`"a":"b"`): the value's parent is the key, whose parent is -1, and
 * `t->aux[pk->parent] = ...` stores below the aux allocation (into the malloc chunk header
 * with glibc) before the trailing-data check rejects the text. The parse runs in a child
 * process so that the heap corruption (abort in free, or an ASan report) fails this test
 * only. */
static void test_top_level_member_no_overflow(void **state)
{
    static const char *const docs[] = {"\"a\":\"b\"", "\"a\":1 ", "\"k\":{}"};
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct jsontok t = {0};
            int rc = jsontok_parse(&t, docs[i], strlen(docs[i]));
            /* Growing and freeing the arrays is where glibc notices a damaged chunk. */
            char deep[140];
            memset(deep, '[', 70);
            memset(deep + 70, ']', 70);
            jsontok_parse(&t, deep, sizeof(deep));
            jsontok_free(&t);
            _exit(rc == -EINVAL ? 0 : 3);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            print_error("`%s`: child %s %d\n", docs[i],
                        WIFEXITED(status) ? "exited with" : "killed by signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            fail();
        }
    }
}

/* Why some inputs fail, and where. */
static void test_error_reasons(void **state)
{
    static const struct {
        const char *js;
        size_t len;
        const char *err;
        size_t off;
    } cases[] = {
        {L("[1 2]"), "expected ','", 2},
        {L("[\"a\tb\"]"), "control character in string", 3},
        {L("[\"ab\xff\"]"), "invalid UTF-8", 4},
        {L("[1]\0"), "NUL byte in JSON text", 3},
        {L("{\"a\":1"), "truncated JSON", 5},
        {L(""), "empty document", 0},
        {L("[1,]"), "unexpected data before closing bracket", 2},
        {L("[01]"), "invalid literal or number", 1},
        {L("{} []"), "trailing data after the value", 3},
    };
    struct jsontok t = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(jsontok_parse(&t, cases[i].js, cases[i].len), -EINVAL);
        assert_non_null(t.err);
        if (strcmp(t.err, cases[i].err) != 0 || t.err_off != cases[i].off) {
            print_error("case %zu: got \"%s\" at %zu, want \"%s\" at %zu\n", i, t.err, t.err_off,
                        cases[i].err, cases[i].off);
            jsontok_free(&t);
            fail();
        }
    }
    jsontok_free(&t);
}

/* The token tree: types, sizes, parents, next links and text spans. */
static void test_token_tree(void **state)
{
    static const char js[] = "{\"a\":[1,2],\"b\":\"c\",\"d\":{\"e\":null}}";
    struct jsontok t = {0};
    assert_int_equal(jsontok_parse(&t, js, strlen(js)), 0);
    /* obj "a" [ 1 2 ] "b" "c" "d" { "e" null } */
    assert_int_equal(t.ntok, 11);
    assert_int_equal(t.tok[0].type, JSMN_OBJECT);
    assert_int_equal(t.tok[0].size, 3);
    assert_int_equal(t.tok[2].type, JSMN_ARRAY);
    assert_int_equal(t.tok[2].size, 2);
    assert_int_equal(t.next[1], 5); /* after "a" and its value comes "b" */
    assert_int_equal(t.next[2], 5);
    assert_int_equal(t.next[3], 4);
    assert_int_equal(t.next[5], 7);
    assert_int_equal(t.next[7], 11);
    assert_int_equal(t.next[0], 11);
    /* Text spans: strings include their quotes. */
    assert_int_equal(jsontok_text_start(&t, 1), 1);
    assert_int_equal(jsontok_text_end(&t, 1), 4);
    assert_memory_equal(js + jsontok_text_start(&t, 6), "\"c\"", 3);
    assert_memory_equal(js + jsontok_text_start(&t, 2), "[1,2]",
                        jsontok_text_end(&t, 2) - jsontok_text_start(&t, 2));
    jsontok_free(&t);
}

/* One struct is reused across documents of any size. */
static void test_reuse_and_growth(void **state)
{
    struct jsontok t = {0};
    struct buf b = {0};
    buf_putc(&b, '[');
    for (int i = 0; i < 10000; i++)
        buf_printf(&b, "%s%d", i ? "," : "", i);
    buf_putc(&b, ']');
    assert_int_equal(jsontok_parse(&t, b.data, b.len), 0);
    assert_int_equal(t.ntok, 10001);
    assert_int_equal(t.tok[0].size, 10000);
    assert_int_equal(t.next[0], 10001);
    assert_memory_equal(b.data + t.tok[10000].start, "9999", 4);
    /* A smaller document after a big one, then a bad one, then a good one again. */
    assert_int_equal(jsontok_parse(&t, "{\"x\":1}", 7), 0);
    assert_int_equal(t.ntok, 3);
    assert_int_equal(jsontok_parse(&t, "{\"x\":}", 6), -EINVAL);
    assert_int_equal(jsontok_parse(&t, "[true]", 6), 0);
    assert_int_equal(t.ntok, 2);
    assert_null(t.err);
    jsontok_free(&t);
    jsontok_free(&t); /* harmless twice */
    buf_free(&b);
}

/* ---- lookup ---- */

static void test_find_and_str_eq(void **state)
{
    static const char js[] = "{\"x\":{\"a\":0},\"a\\u0062c\":1,\"d\\\"q\":2,\"\\u00e9t\\u00e9\":3,"
                             "\"a\":4,\"\":5}";
    struct jsontok t = {0};
    assert_int_equal(jsontok_parse(&t, js, strlen(js)), 0);
    static const struct {
        const char *key;
        const char *val;
    } cases[] = {
        {"abc", "1"}, {"d\"q", "2"}, {"\xc3\xa9t\xc3\xa9", "3"},
        {"a", "4"}, /* the top-level member, not the one nested in x */
        {"", "5"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int v = jsontok_find(&t, 0, cases[i].key, strlen(cases[i].key));
        if (v < 0) {
            print_error("key \"%s\" not found\n", cases[i].key);
            fail();
        }
        assert_int_equal(t.tok[v].end - t.tok[v].start, 1);
        assert_memory_equal(js + t.tok[v].start, cases[i].val, 1);
    }
    int x = jsontok_find(&t, 0, "x", 1);
    assert_int_equal(t.tok[x].type, JSMN_OBJECT);
    assert_true(jsontok_find(&t, x, "a", 1) > x);
    assert_int_equal(jsontok_find(&t, 0, "ab", 2), -1);
    assert_int_equal(jsontok_find(&t, 0, "abcd", 4), -1);
    assert_int_equal(jsontok_find(&t, 0, "missing", 7), -1);
    assert_int_equal(jsontok_find(&t, 0, "A", 1), -1);
    /* Not an object, or out of range: -1. */
    assert_int_equal(jsontok_find(&t, 1, "a", 1), -1);
    assert_int_equal(jsontok_find(&t, -1, "a", 1), -1);
    assert_int_equal(jsontok_find(&t, t.ntok, "a", 1), -1);

    /* str_eq on the escaped key token itself. */
    int k = jsontok_find(&t, 0, "abc", 3) - 1;
    assert_true(jsontok_str_eq(&t, k, "abc", 3));
    assert_false(jsontok_str_eq(&t, k, "ab", 2));
    assert_false(jsontok_str_eq(&t, k, "abd", 3));
    assert_true(jsontok_str_eq(&t, k + 2, "d\"q", 3));

    /* A text without escapes: names compared as bytes. */
    static const char plain[] = "{\"x\":{\"a\":0},\"abc\":1,\"abd\":2,\"a\":4,\"\":5}";
    assert_int_equal(jsontok_parse(&t, plain, strlen(plain)), 0);
    assert_int_equal(t.escapes, 0);
    static const struct {
        const char *key;
        char val; /* 0: absent */
    } plain_cases[] = {{"abc", '1'}, {"abd", '2'}, {"a", '4'}, {"", '5'},  {"ab", 0},
                       {"abcd", 0},  {"A", 0},     {"b", 0},   {"a\\b", 0}};
    for (size_t i = 0; i < sizeof(plain_cases) / sizeof(plain_cases[0]); i++) {
        int v = jsontok_find(&t, 0, plain_cases[i].key, strlen(plain_cases[i].key));
        if (plain_cases[i].val) {
            assert_true(v > 0);
            assert_int_equal(plain[t.tok[v].start], plain_cases[i].val);
        } else {
            assert_int_equal(v, -1);
        }
    }
    jsontok_free(&t);
}

/* Tokenizing in steps (jsontok_begin_trusted, jsontok_resume) pauses right after the member
 * asked for (its value token in st.found), with a prefix of the tokens that finding it needs,
 * and ends with exactly the tokens of one strict pass (the trusted passes take the root's
 * members of scalar values in one step, the strict one never does). */
static void test_resume_matches_one_pass(void **state)
{
    static const char *const docs[] = {
        "{\"a\":1,\"b\":\"x\",\"c\":{\"d\":[1,{\"e\":2}],\"f\":null},\"g\":[],\"h\":true}",
        "{\"k\\u0065y\":1,\"key\":2,\"n\":{\"key\":3}}",
        "{ \"a\" : [ 1 , 2 ] , \"b\" : { } }",
        "{}",
        "[{\"a\":1}]",
        "{\"a\":-1.5e3,\"b\":\"x\\\"y\",\"c\":false,\"g\":\"\",\"h\":{},\"key\":null,\"n\":[]}",
        "{\"b\":\"\\u00e9\",\"a\" :2,\"c\": 3,\"g\":[{\"a\":1}],\"h\":0}",
    };
    static const char *const keys[] = {"a", "b", "c", "g", "h", "key", "n", "e", "d", "zz"};
    struct jsontok one = {0}, t = {0};
    for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
        size_t len = strlen(docs[d]);
        assert_int_equal(jsontok_parse(&one, docs[d], len), 0);
        struct jsontok trusted = {0};
        assert_int_equal(jsontok_parse_trusted(&trusted, docs[d], len), 0);
        assert_int_equal(trusted.ntok, one.ntok);
        for (int i = 0; i < one.ntok; i++) {
            assert_memory_equal(&trusted.tok[i], &one.tok[i], sizeof(one.tok[i]));
            assert_int_equal(trusted.next[i], one.next[i]);
        }
        jsontok_free(&trusted);
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            const char *key = keys[k];
            int want =
                one.tok[0].type == JSMN_OBJECT ? jsontok_find(&one, 0, key, strlen(key)) : -1;
            assert_int_equal(jsontok_begin_trusted(&t, docs[d], len), 0);
            int rc = jsontok_resume(&t, key, strlen(key));
            assert_int_equal(rc, want >= 0 ? 1 : 0);
            if (want >= 0) {
                int got = jsontok_find(&t, 0, key, strlen(key));
                assert_int_equal(got, want); /* the same token index: a prefix of one pass */
                assert_int_equal(t.st.found, want);
                assert_true(t.ntok <= one.ntok);
                for (int i = 0; i < t.ntok; i++) {
                    assert_int_equal(t.tok[i].start, one.tok[i].start);
                    assert_int_equal(t.tok[i].type, one.tok[i].type);
                }
                assert_int_equal(jsontok_resume(&t, "zz", 2), 0); /* absent: to the end */
            }
            assert_int_equal(jsontok_resume(&t, NULL, 0), 0); /* done: stays done */
            assert_int_equal(t.ntok, one.ntok);
            for (int i = 0; i < one.ntok; i++) {
                assert_memory_equal(&t.tok[i], &one.tok[i], sizeof(one.tok[i]));
                assert_int_equal(t.next[i], one.next[i]);
            }
        }
    }
    jsontok_free(&one);
    jsontok_free(&t);
}

/* ---- unescape ---- */

static void test_unescape(void **state)
{
    static const struct {
        const char *in;
        const char *out;
        size_t outlen;
    } cases[] = {
        {"plain", L("plain")},
        {"", L("")},
        {"a\\\"b\\\\c\\/d", L("a\"b\\c/d")},
        {"\\b\\f\\n\\r\\t", L("\b\f\n\r\t")},
        {"\\u0041\\u00e9", L("A\xc3\xa9")},
        {"\\u20AC\\u20ac", L("\xe2\x82\xac\xe2\x82\xac")},
        {"\\u07ff\\u0800\\uffff", L("\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf")},
        {"\\ud83d\\ude00", L("\xf0\x9f\x98\x80")},
        {"\\uD83D\\uDE00!", L("\xf0\x9f\x98\x80!")},
        {"\\udbff\\udfff", L("\xf4\x8f\xbf\xbf")},
        {"\\u0000", L("\0")},
        {"x\\u0000y", L("x\0y")},
        /* A lone surrogate has no UTF-8 form: U+FFFD. */
        {"\\ud800", L("\xef\xbf\xbd")},
        {"\\udc00x", L("\xef\xbf\xbdx")},
        {"\\ud800\\u0041", L("\xef\xbf\xbd"
                             "A")},
        {"\\ude00\\ud83d", L("\xef\xbf\xbd\xef\xbf\xbd")},
        {"h\xc3\xa9llo", L("h\xc3\xa9llo")},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b = {0};
        buf_puts(&b, ">"); /* appends: what was there stays */
        assert_int_equal(jsontok_unescape(cases[i].in, strlen(cases[i].in), &b), 0);
        if (b.len != cases[i].outlen + 1 || b.data[0] != '>' ||
            memcmp(b.data + 1, cases[i].out, cases[i].outlen) != 0) {
            print_error("case %zu \"%s\": got %zu bytes\n", i, cases[i].in, b.len - 1);
            buf_free(&b);
            fail();
        }
        buf_free(&b);
    }
}

/* Unescaping agrees with jansson's decoding for every valid escaped string in a sample. */
static void test_unescape_matches_jansson(void **state)
{
    static const char *const bodies[] = {
        "\\u00e9t\\u00e9 \\\"quoted\\\" \\\\ \\/",
        "tab\\there\\nnewline\\r\\f\\b",
        "\\ud83d\\ude00\\ud83d\\ude01 \\u4e2d\\u6587",
        "nul\\u0000inside",
        "\\u0001\\u001f\\u007f",
    };
    struct jsontok t = {0};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char doc[256];
        int n = snprintf(doc, sizeof(doc), "\"%s\"", bodies[i]);
        assert_int_equal(jsontok_parse(&t, doc, (size_t)n), 0);
        json_t *j = json_loadb(doc, (size_t)n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert_non_null(j);
        struct buf b = {0};
        assert_int_equal(
            jsontok_unescape(doc + t.tok[0].start, (size_t)(t.tok[0].end - t.tok[0].start), &b), 0);
        assert_int_equal(b.len, json_string_length(j));
        assert_memory_equal(b.data, json_string_value(j), b.len);
        buf_free(&b);
        json_decref(j);
    }
    jsontok_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts_match_jansson),
        cmocka_unit_test(test_string_scan_at_every_offset),
        cmocka_unit_test(test_top_level_scalar),
        cmocka_unit_test(test_member_inside_array),
        cmocka_unit_test(test_top_level_member_no_overflow),
        cmocka_unit_test(test_error_reasons),
        cmocka_unit_test(test_token_tree),
        cmocka_unit_test(test_reuse_and_growth),
        cmocka_unit_test(test_find_and_str_eq),
        cmocka_unit_test(test_resume_matches_one_pass),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_unescape_matches_jansson),
    };
    return cmocka_run_group_tests_name("jsontok", tests, NULL, NULL);
}
