/* Unit tests of the syslog parser (collector/format_syslog.h): the RFC 5424 examples of its section
 * 6.5 and the RFC 3164 examples of its section 5.4, field by field; NILVALUEs, PRI bounds and
 * leading zeros, structured data escapes and malformed structured data, field length limits,
 * trailing newlines, and what is refused (invalid UTF-8, NUL bytes) with the output left as it
 * was. RFC 3164 timestamps carry no year and no zone: they are checked under TZ=UTC against a
 * year computed here from the receive time passed in. Every output is parsed with jansson
 * (duplicate keys rejected) and compared as a whole with the expected object. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "collector/format_syslog.h"
#include "core/strlist.h"

#define L(s) s, sizeof(s) - 1

#define SRC     "syslog_in"
#define RT_NS   1767225600123456000LL /* 2026-01-01T00:00:00.123456Z */
#define RT_TEXT "2026-01-01T00:00:00.123456Z"
#define BOM     "\xEF\xBB\xBF"

static struct recv_time make_rt(int64_t ns)
{
    struct recv_time rt;
    rt.ns = ns;
    time_format_rfc3339(rt.ns, rt.text);
    return rt;
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

struct result {
    enum syslog_result rc;
    const char *err;
    json_t *obj; /* the output parsed, duplicate keys rejected; NULL when it does not parse */
    char text[16384];
    size_t len;
};

/* Parses msg into a buffer that already holds "previous" (it must be appended to, or left
 * alone on REJECT). When an event was built, it must be one JSON object on one line. */
static void run_at(struct result *r, const char *msg, size_t len, const struct recv_time *rt)
{
    struct buf out = {0};
    buf_puts(&out, "previous");
    memset(r, 0, sizeof(*r));
    r->rc = syslog_to_event(msg, len, SRC, rt, &out, &r->err);
    assert_true(out.len >= 8);
    assert_memory_equal(out.data, "previous", 8);
    r->len = out.len - 8;
    assert_true(r->len < sizeof(r->text));
    memcpy(r->text, out.data + 8, r->len);
    buf_free(&out);
    if (r->rc == SYSLOG_REJECT)
        return;
    assert_null(memchr(r->text, '\n', r->len));
    json_error_t e;
    r->obj = json_loadb(r->text, r->len, JSON_REJECT_DUPLICATES, &e);
    if (!r->obj)
        print_error("output does not parse (%s): %.*s\n", e.text, (int)r->len, r->text);
    /* The collector looks for the partition key only among syslog_members. */
    const char *key;
    json_t *v;
    json_object_foreach(r->obj, key, v)
    {
        int known = str_among(key, syslog_members);
        if (!known)
            print_error("member %s is not in syslog_members\n", key);
        assert_true(known);
    }
}

static void run(struct result *r, const char *msg, size_t len)
{
    struct recv_time rt = make_rt(RT_NS);
    run_at(r, msg, len, &rt);
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

/* The canonical shape: timestamp, kind, source first, received_at last, the timestamp in the
 * canonical form. Returns 0 when it holds. */
static int check_shape(const struct result *r, const char *rt_text)
{
    static const char *const first[] = {"timestamp", "kind", "source"};
    if (!r->obj || !json_is_object(r->obj))
        return -1;
    void *it = json_object_iter(r->obj);
    for (int i = 0; i < 3; i++, it = json_object_iter_next(r->obj, it)) {
        if (!it || strcmp(json_object_iter_key(it), first[i]) != 0)
            return -1;
    }
    const char *last = NULL;
    for (; it; it = json_object_iter_next(r->obj, it))
        last = json_object_iter_key(it);
    if (!last || strcmp(last, "received_at") != 0)
        return -1;
    if (!canonical_time(str_of(r, "timestamp")) || strcmp(str_of(r, "kind"), "log") != 0 ||
        strcmp(str_of(r, "source"), SRC) != 0 || strcmp(str_of(r, "received_at"), rt_text) != 0)
        return -1;
    return 0;
}

/* The whole expected event: the canonical fields plus want_json's members. */
static json_t *expected(const char *ts, const char *want_json, const char *rt_text)
{
    json_error_t e;
    json_t *w = json_loads(want_json, 0, &e);
    if (!w) {
        print_error("bad expectation in the test (%s): %s\n", e.text, want_json);
        fail();
    }
    json_object_set_new(w, "timestamp", json_string(ts ? ts : rt_text));
    json_object_set_new(w, "kind", json_string("log"));
    json_object_set_new(w, "source", json_string(SRC));
    json_object_set_new(w, "received_at", json_string(rt_text));
    return w;
}

/* Compares the output with the expected event; prints both and returns -1 when they differ. */
static int check_event(const char *name, const struct result *r, enum syslog_result want_rc,
                       const char *ts, const char *want_json, const char *rt_text)
{
    if (r->rc != want_rc) {
        print_error("case \"%s\": result %d, want %d (err %s): %.*s\n", name, r->rc, want_rc,
                    r->err ? r->err : "(none)", (int)r->len, r->text);
        return -1;
    }
    if (check_shape(r, rt_text)) {
        print_error("case \"%s\": not a canonical event: %.*s\n", name, (int)r->len, r->text);
        return -1;
    }
    json_t *w = expected(ts, want_json, rt_text);
    int ok = json_equal(r->obj, w);
    if (!ok) {
        char *ws = json_dumps(w, JSON_COMPACT);
        print_error("case \"%s\":\n  got  %.*s\n  want %s\n", name, (int)r->len, r->text, ws);
        free(ws);
    }
    json_decref(w);
    return ok ? 0 : -1;
}

struct case_ {
    const char *name;
    const char *in;
    size_t in_len;
    enum syslog_result rc;
    const char *ts;   /* expected timestamp; NULL: the receive time */
    const char *want; /* the members other than timestamp, kind, source, received_at */
};

static int run_cases(const struct case_ *cases, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        struct result r;
        run(&r, cases[i].in, cases[i].in_len);
        if (check_event(cases[i].name, &r, cases[i].rc, cases[i].ts, cases[i].want, RT_TEXT))
            bad++;
        result_free(&r);
    }
    return bad;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- RFC 5424 section 6.5 ---- */

static const struct case_ rfc5424_examples[] = {
    {"6.5 example 1",
     L("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - " BOM
       "'su root' failed for lonvick on /dev/pts/8"),
     SYSLOG_OK, "2003-10-11T22:14:15.003000Z",
     "{\"host\":\"mymachine.example.com\",\"service\":\"su\",\"level\":\"CRITICAL\","
     "\"facility\":\"auth\",\"severity\":2,\"msgid\":\"ID47\","
     "\"message\":\"'su root' failed for lonvick on /dev/pts/8\"}"},
    {"6.5 example 2",
     L("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make "
       "the do-nuts."),
     SYSLOG_OK, "2003-08-24T12:14:15.000003Z",
     "{\"host\":\"192.0.2.1\",\"service\":\"myproc\",\"level\":\"NOTICE\",\"facility\":\"local4\","
     "\"severity\":5,\"procid\":\"8710\",\"message\":\"%% It's time to make the do-nuts.\"}"},
    {"6.5 example 3",
     L("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 "
       "iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] " BOM
       "An application event log entry..."),
     SYSLOG_OK, "2003-10-11T22:14:15.003000Z",
     "{\"host\":\"mymachine.example.com\",\"service\":\"evntslog\",\"level\":\"NOTICE\","
     "\"facility\":\"local4\",\"severity\":5,\"msgid\":\"ID47\","
     "\"structured_data\":{\"exampleSDID@32473\":{\"iut\":\"3\",\"eventSource\":\"Application\","
     "\"eventID\":\"1011\"}},\"message\":\"An application event log entry...\"}"},
    {"6.5 example 4",
     L("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 "
       "iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 "
       "class=\"high\"]"),
     SYSLOG_OK, "2003-10-11T22:14:15.003000Z",
     "{\"host\":\"mymachine.example.com\",\"service\":\"evntslog\",\"level\":\"NOTICE\","
     "\"facility\":\"local4\",\"severity\":5,\"msgid\":\"ID47\","
     "\"structured_data\":{\"exampleSDID@32473\":{\"iut\":\"3\",\"eventSource\":\"Application\","
     "\"eventID\":\"1011\"},\"examplePriority@32473\":{\"class\":\"high\"}}}"},
};

static void test_rfc5424_examples(void **state)
{
    assert_int_equal(run_cases(rfc5424_examples, N(rfc5424_examples)), 0);
}

/* The fields come in a fixed order: host, service, level, facility, severity, procid, msgid,
 * structured_data, message. */
static void test_rfc5424_field_order(void **state)
{
    struct result r;
    run(&r, L("<165>1 2003-10-11T22:14:15.003Z h app 12 ID [a@1 x=\"y\"] m"));
    assert_int_equal(r.rc, SYSLOG_OK);
    assert_non_null(r.obj);
    static const char *const want[] = {"timestamp",  "kind",  "source",          "host",
                                       "service",    "level", "facility",        "severity",
                                       "procid",     "msgid", "structured_data", "message",
                                       "received_at"};
    size_t i = 0;
    for (void *it = json_object_iter(r.obj); it; it = json_object_iter_next(r.obj, it), i++) {
        assert_true(i < N(want));
        assert_string_equal(json_object_iter_key(it), want[i]);
    }
    assert_int_equal(i, N(want));
    result_free(&r);
}

/* ---- RFC 5424 edge cases ---- */

static const struct case_ rfc5424_edges[] = {
    {"all NILVALUE", L("<0>1 - - - - - -"), SYSLOG_OK, NULL,
     "{\"level\":\"EMERGENCY\",\"facility\":\"kern\",\"severity\":0}"},
    {"highest PRI", L("<191>1 - - - - - -"), SYSLOG_OK, NULL,
     "{\"level\":\"DEBUG\",\"facility\":\"local7\",\"severity\":7}"},
    {"every severity name", L("<12>1 - - - - - -"), SYSLOG_OK, NULL,
     "{\"level\":\"WARN\",\"facility\":\"user\",\"severity\":4}"},
    {"PRI 0 then message", L("<0>1 - - - - - - boot"), SYSLOG_OK, NULL,
     "{\"level\":\"EMERGENCY\",\"facility\":\"kern\",\"severity\":0,\"message\":\"boot\"}"},
    {"two-digit version", L("<14>12 - h a - - - m"), SYSLOG_OK, NULL,
     "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\",\"severity\":6,"
     "\"message\":\"m\"}"},
    {"trailing newline trimmed", L("<14>1 - h a - - - hello\n"), SYSLOG_OK, NULL,
     "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\",\"severity\":6,"
     "\"message\":\"hello\"}"},
    {"trailing CRLF trimmed", L("<14>1 - h a - - - hello\r\n\n"), SYSLOG_OK, NULL,
     "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\",\"severity\":6,"
     "\"message\":\"hello\"}"},
    {"inner newlines kept", L("<14>1 - h a - - - one\ntwo\r\nthree"), SYSLOG_OK, NULL,
     "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\",\"severity\":6,"
     "\"message\":\"one\\ntwo\\r\\nthree\"}"},
    {"BOM only dropped at the start", L("<14>1 - h a - - - x" BOM "y"), SYSLOG_OK, NULL,
     "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\",\"severity\":6,"
     "\"message\":\"x\\ufeffy\"}"},
    {"UTF-8 message", L("<14>1 - h a - - - " BOM "h\xc3\xa9llo \xf0\x9f\x98\x80"), SYSLOG_OK, NULL,
     "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\",\"severity\":6,"
     "\"message\":\"h\\u00e9llo \\ud83d\\ude00\"}"},
    {"message of one space", L("<14>1 - h a - - -  "), SYSLOG_OK, NULL,
     "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\",\"severity\":6,"
     "\"message\":\" \"}"},
    {"time with offset", L("<14>1 2024-02-29T23:30:00.5+01:00 h a - - -"), SYSLOG_OK,
     "2024-02-29T22:30:00.500000Z",
     "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\",\"severity\":6}"},
    {"time crossing midnight", L("<14>1 2023-12-31T23:30:00-01:00 h a - - -"), SYSLOG_OK,
     "2024-01-01T00:30:00.000000Z",
     "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\",\"severity\":6}"},
    {"escapes in SD values",
     L("<14>1 - h a - - [x@1 q=\"say \\\"hi\\\"\" b=\"c:\\\\dir\" r=\"a\\]b\" "
       "o=\"keep\\n\\x\" e=\"\"] m"),
     SYSLOG_OK, NULL,
     "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\",\"severity\":6,"
     "\"structured_data\":{\"x@1\":{\"q\":\"say \\\"hi\\\"\",\"b\":\"c:\\\\dir\",\"r\":\"a]b\","
     "\"o\":\"keep\\\\n\\\\x\",\"e\":\"\"}},\"message\":\"m\"}"},
    {"SD value holding spaces and UTF-8", L("<14>1 - h a - - [x@1 v=\"a b  c \xc3\xa9\"]"),
     SYSLOG_OK, NULL,
     "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\",\"severity\":6,"
     "\"structured_data\":{\"x@1\":{\"v\":\"a b  c \\u00e9\"}}}"},
    {"SD element without params", L("<14>1 - h a - - [timeQuality] m"), SYSLOG_OK, NULL,
     "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\",\"severity\":6,"
     "\"structured_data\":{\"timeQuality\":{}},\"message\":\"m\"}"},
};

static void test_rfc5424_edges(void **state)
{
    assert_int_equal(run_cases(rfc5424_edges, N(rfc5424_edges)), 0);
}

/* What is not strict syslog is still a log: the text after the PRI (or all of it without
 * one) as its message, the receive time, and syslog_error saying why. */
#define NOPRI "\"syslog_error\":\"no <PRI> header\""
#define NOHDR "\"syslog_error\":\"header is neither RFC 5424 nor RFC 3164\""
#define USER  "\"level\":\"NOTICE\",\"facility\":\"user\",\"severity\":5"
#define AUTH  "\"level\":\"CRITICAL\",\"facility\":\"auth\",\"severity\":2"

static const struct case_ loose_cases[] = {
    {"PRI out of range", L("<192>1 - - - - - -"), SYSLOG_LOOSE, NULL,
     "{" USER ",\"message\":\"<192>1 - - - - - -\"," NOPRI "}"},
    {"PRI of four digits", L("<0034>1 - - - - - -"), SYSLOG_LOOSE, NULL,
     "{" USER ",\"message\":\"<0034>1 - - - - - -\"," NOPRI "}"},
    {"PRI with a leading zero", L("<01>1 - - - - - -"), SYSLOG_LOOSE, NULL,
     "{" USER ",\"message\":\"<01>1 - - - - - -\"," NOPRI "}"},
    {"PRI 00", L("<00>1 - - - - - -"), SYSLOG_LOOSE, NULL,
     "{" USER ",\"message\":\"<00>1 - - - - - -\"," NOPRI "}"},
    {"empty PRI", L("<>1 - - - - - -"), SYSLOG_LOOSE, NULL,
     "{" USER ",\"message\":\"<>1 - - - - - -\"," NOPRI "}"},
    {"unclosed PRI", L("<34 hello"), SYSLOG_LOOSE, NULL,
     "{" USER ",\"message\":\"<34 hello\"," NOPRI "}"},
    {"negative PRI", L("<-1>1 - - - - - -"), SYSLOG_LOOSE, NULL,
     "{" USER ",\"message\":\"<-1>1 - - - - - -\"," NOPRI "}"},
    {"SD value without quotes", L("<34>1 - h a - - [x@1 a=1] m"), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"1 - h a - - [x@1 a=1] m\"," NOHDR "}"},
    {"SD value missing its closing quote", L("<34>1 - h a - - [x@1 a=\"1] m"), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"1 - h a - - [x@1 a=\\\"1] m\"," NOHDR "}"},
    {"SD element unterminated", L("<34>1 - h a - - [x@1 a=\"1\""), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"1 - h a - - [x@1 a=\\\"1\\\"\"," NOHDR "}"},
    {"SD param without =", L("<34>1 - h a - - [x@1 a] m"), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"1 - h a - - [x@1 a] m\"," NOHDR "}"},
    {"SD element with no id", L("<34>1 - h a - - [] m"), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"1 - h a - - [] m\"," NOHDR "}"},
    {"SD not followed by a space", L("<34>1 - h a - - [x@1]m"), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"1 - h a - - [x@1]m\"," NOHDR "}"},
    {"SD neither - nor [", L("<34>1 - h a - - x m"), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"1 - h a - - x m\"," NOHDR "}"},
    {"header cut short", L("<34>1 - h a -"), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"1 - h a -\"," NOHDR "}"},
    {"two spaces between fields", L("<34>1 -  h a - - - m"), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"1 -  h a - - - m\"," NOHDR "}"},
    {"version 0", L("<34>0 - h a - - - m"), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"0 - h a - - - m\"," NOHDR "}"},
    {"invalid date", L("<34>1 2003-13-11T22:14:15Z h a - - - m"), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"1 2003-13-11T22:14:15Z h a - - - m\"," NOHDR "}"},
    {"date without zone", L("<34>1 2003-10-11T22:14:15 h a - - - m"), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"1 2003-10-11T22:14:15 h a - - - m\"," NOHDR "}"},
    {"PRI and nothing else", L("<34>"), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"\"," NOHDR "}"},
    {"PRI then text, trailing newline trimmed", L("<34>garbage here\n"), SYSLOG_LOOSE, NULL,
     "{" AUTH ",\"message\":\"garbage here\"," NOHDR "}"},
    {"no PRI, BOM dropped", L(BOM "just text"), SYSLOG_LOOSE, NULL,
     "{" USER ",\"message\":\"just text\"," NOPRI "}"},
};

static void test_loose(void **state)
{
    assert_int_equal(run_cases(loose_cases, N(loose_cases)), 0);
}

/* RFC 5424 field limits: HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID 32 printable ASCII
 * characters. At the limit the message is strict; one more and it is not. */
static void test_field_lengths(void **state)
{
    static const struct {
        const char *field;
        int max;
    } lim[] = {{"host", 255}, {"service", 48}, {"procid", 128}, {"msgid", 32}};
    int bad = 0;
    for (size_t i = 0; i < N(lim); i++) {
        for (int extra = 0; extra <= 1; extra++) {
            char tok[300];
            int n = lim[i].max + extra;
            for (int k = 0; k < n; k++)
                tok[k] = (char)('a' + k % 26);
            tok[n] = '\0';
            const char *f[4] = {"h", "app", "-", "-"};
            f[i] = tok;
            char msg[800];
            int ml =
                snprintf(msg, sizeof(msg), "<14>1 - %s %s %s %s - text", f[0], f[1], f[2], f[3]);
            struct result r;
            run(&r, msg, (size_t)ml);
            int ok;
            if (!extra)
                ok = r.rc == SYSLOG_OK && r.obj && str_of(&r, lim[i].field) &&
                     strcmp(str_of(&r, lim[i].field), tok) == 0 &&
                     strcmp(str_of(&r, "message"), "text") == 0;
            else
                ok = r.rc == SYSLOG_LOOSE && r.obj && str_of(&r, "syslog_error") &&
                     strcmp(str_of(&r, "message"), msg + 4) == 0 && check_shape(&r, RT_TEXT) == 0;
            if (!ok) {
                print_error("%s of %d chars: result %d: %.*s\n", lim[i].field, n, r.rc, (int)r.len,
                            r.text);
                bad++;
            }
            result_free(&r);
        }
    }
    assert_int_equal(bad, 0);
}

/* Not a message at all: refused with a reason, the output buffer untouched. */
static void test_reject(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *reason;
    } cases[] = {
        {L("<14>1 - h a - - - caf\xe9"), "invalid UTF-8 in syslog message"},
        {L("<14>1 - h a - - - \xff\xfe"), "invalid UTF-8 in syslog message"},
        {L("<14>1 - h a - - - \xc0\x80"), "invalid UTF-8 in syslog message"},
        {L("<14>1 - h a - - - \xed\xa0\x80"), "invalid UTF-8 in syslog message"},
        {L("<14>1 - h a - - - \xe2\x82"), "invalid UTF-8 in syslog message"},
        {L("<14>1 - h a - - [x@1 v=\"\xff\"] m"), "invalid UTF-8 in syslog message"},
        {L("\xff no PRI"), "invalid UTF-8 in syslog message"},
        {L("<14>1 - h a - - - a\0b"), "NUL byte in syslog message"},
        {L("\0"), "NUL byte in syslog message"},
        {L("<34>Oct 11 22:14:15 host app: x\0"), "NUL byte in syslog message"},
    };
    int bad = 0;
    for (size_t i = 0; i < N(cases); i++) {
        struct result r;
        run(&r, cases[i].in, cases[i].len);
        if (r.rc != SYSLOG_REJECT || r.len != 0 || !r.err || strcmp(r.err, cases[i].reason) != 0) {
            print_error("case %zu: result %d err %s, want REJECT \"%s\"; output %.*s\n", i, r.rc,
                        r.err ? r.err : "(null)", cases[i].reason, (int)r.len, r.text);
            bad++;
        }
        result_free(&r);
    }
    assert_int_equal(bad, 0);
}

/* Regression (was a bug, fixed): collector/syslog.c parse_sd() writes every SD-PARAM as an object
 * member, so a PARAM-NAME given twice becomes a duplicate JSON key and (for every reader that keeps
 * the last) the first value is lost. RFC 5424 allows repeating a PARAM-NAME: its section 7.2.5
 * example is [origin ip="192.0.2.1" ip="192.0.2.129"]. Both values must survive, as an array
 * in their order. */
static void test_repeated_param_name(void **state)
{
    struct result r;
    run(&r, L("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
              "[origin ip=\"192.0.2.1\" ip=\"192.0.2.129\"] m"));
    assert_int_equal(r.rc, SYSLOG_OK);
    json_t *want = json_loads("[\"192.0.2.1\",\"192.0.2.129\"]", 0, NULL);
    json_t *ip =
        json_object_get(json_object_get(json_object_get(r.obj, "structured_data"), "origin"), "ip");
    int ok = r.obj != NULL && json_equal(ip, want);
    if (!ok)
        print_error("output: %.*s\n", (int)r.len, r.text);
    json_decref(want);
    result_free(&r);
    assert_true(ok);
}

/* Regression (was a bug, fixed): collector/syslog.c parse_sd() also writes an SD-ID seen twice as a
 * duplicate member of structured_data. RFC 5424 says an SD-ID MUST NOT appear twice, so such a
 * message may be kept loose (raw text) or have its elements merged, but the output must stay free
 * of duplicate keys and lose no parameter. */
static void test_repeated_sd_id(void **state)
{
    static const char in[] = "<14>1 - h a - - [x@1 a=\"1\"][x@1 b=\"2\"] m";
    struct result r;
    run(&r, in, sizeof(in) - 1);
    json_t *x = json_object_get(json_object_get(r.obj, "structured_data"), "x@1");
    int ok = r.obj != NULL &&
             ((r.rc == SYSLOG_LOOSE && str_of(&r, "message") &&
               strcmp(str_of(&r, "message"), in + 4) == 0) ||
              (r.rc == SYSLOG_OK && json_object_get(x, "a") && json_object_get(x, "b")));
    if (!ok)
        print_error("result %d, output: %.*s\n", r.rc, (int)r.len, r.text);
    result_free(&r);
    assert_true(ok);
}

/* The text of structured_data exactly: SD-IDs in the order they first appear (one seen again
 * merged into the first), PARAM-NAMEs within one in the order they first appear, a repeated
 * name's values as an array in their order, an element without params as {}, escapes read. */
static void test_sd_grouping_text(void **state)
{
    struct result r;
    run(&r, L("<14>1 - h a - - [b@1 x=\"1\" y=\"2\" x=\"3\"][c][a@1 q=\"\\]\"][b@1 z=\"4\" y=\"5\" "
              "x=\"6\"] m"));
    assert_int_equal(r.rc, SYSLOG_OK);
    static const char want[] =
        "\"structured_data\":{\"b@1\":{\"x\":[\"1\",\"3\",\"6\"],\"y\":[\"2\","
        "\"5\"],\"z\":\"4\"},\"c\":{},\"a@1\":{\"q\":\"]\"}},";
    if (!memmem(r.text, r.len, want, sizeof(want) - 1))
        print_error("output: %.*s\n", (int)r.len, r.text);
    assert_non_null(memmem(r.text, r.len, want, sizeof(want) - 1));
    result_free(&r);
}

/* Thousands of params (past what is grouped without a malloc), most names repeated: every
 * value kept under its name, in order. */
static void test_sd_many_params(void **state)
{
    struct buf msg = {0}, out = {0};
    buf_puts(&msg, "<14>1 - h a - - [big@1");
    for (int i = 0; i < 3000; i++)
        buf_printf(&msg, " p%d=\"%d\"", i % 7, i);
    buf_puts(&msg, "][small k=\"v\"] m");
    const char *err = NULL;
    struct recv_time rt = make_rt(RT_NS);
    assert_int_equal(syslog_to_event(msg.data, msg.len, SRC, &rt, &out, &err), SYSLOG_OK);
    json_t *o = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(o);
    json_t *big = json_object_get(json_object_get(o, "structured_data"), "big@1");
    assert_int_equal(json_object_size(big), 7);
    for (int k = 0; k < 7; k++) {
        char name[8];
        snprintf(name, sizeof(name), "p%d", k);
        json_t *vals = json_object_get(big, name);
        assert_int_equal(json_array_size(vals), (3000 - k + 6) / 7);
        for (size_t j = 0; j < json_array_size(vals); j++)
            assert_int_equal(atoi(json_string_value(json_array_get(vals, j))), (int)(j * 7) + k);
    }
    json_decref(o);
    buf_free(&msg);
    buf_free(&out);
    (void)state;
}

/* Regression (was a bug, fixed): collector/syslog.c parse_5424() accepts a trailing newline after a
 * MSG (message() trims it) but not after the header: "<14>1 - h a - - -\n" or a message ending in
 * its structured data plus "\n" falls to SYSLOG_LOOSE ("header is neither RFC 5424 nor RFC 3164")
 * and loses every header field. Octet-counted frames reach the parser with their trailing
 * newline (the stream framer keeps it), so this is what a sender terminating each frame with
 * LF gets for every message without MSG. The newline must be ignored as it is after a MSG. */
static void test_trailing_newline_after_header(void **state)
{
    static const struct case_ cases[] = {
        {"NILVALUE SD then newline", L("<14>1 - h a - - -\n"), SYSLOG_OK, NULL,
         "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\","
         "\"severity\":6}"},
        {"SD element then CRLF", L("<14>1 - h a - - [x@1 k=\"v\"]\r\n"), SYSLOG_OK, NULL,
         "{\"host\":\"h\",\"service\":\"a\",\"level\":\"INFO\",\"facility\":\"user\","
         "\"severity\":6,\"structured_data\":{\"x@1\":{\"k\":\"v\"}}}"},
    };
    assert_int_equal(run_cases(cases, N(cases)), 0);
}

/* ---- RFC 3164 ---- */

static int tz_utc(void **state)
{
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

/* The instant an RFC 3164 "Mmm dd hh:mm:ss" stands for when received at rt_ns, under TZ=UTC:
 * the year of the receive time, or the one before when that would put the message more than
 * a day in the future. */
static int64_t bsd_time(int64_t rt_ns, int mon, int day, int h, int m, int s)
{
    time_t now = (time_t)(rt_ns / 1000000000);
    struct tm tm;
    gmtime_r(&now, &tm);
    struct tm t = {.tm_year = tm.tm_year,
                   .tm_mon = mon,
                   .tm_mday = day,
                   .tm_hour = h,
                   .tm_min = m,
                   .tm_sec = s};
    time_t when = timegm(&t);
    if (when > now + 86400) {
        t = (struct tm){.tm_year = tm.tm_year - 1,
                        .tm_mon = mon,
                        .tm_mday = day,
                        .tm_hour = h,
                        .tm_min = m,
                        .tm_sec = s};
        when = timegm(&t);
    }
    return (int64_t)when * 1000000000;
}

struct bsd_case {
    const char *name;
    const char *in;
    size_t in_len;
    int mon, day, h, m, s; /* the header time (mon 0-11) */
    const char *want;
};

#define EX3_MSG                                                                                    \
    "%% It's time to make the do-nuts.  %%  Ingredients: Mix=OK, Jelly=OK # Devices: Mixer=OK, "   \
    "Jelly_Injector=OK, Frier=OK # Transport: Conveyer1=OK, Conveyer2=OK # %%"

static const struct bsd_case bsd_cases[] = {
    {"5.4 example 1",
     L("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on "
       "/dev/pts/8"),
     9, 11, 22, 14, 15,
     "{\"host\":\"mymachine\",\"service\":\"su\"," AUTH
     ",\"message\":\"'su root' failed for lonvick on /dev/pts/8\"}"},
    {"5.4 example 2", L("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!"), 1, 5, 17, 32, 18,
     "{\"host\":\"10.0.0.99\"," USER ",\"message\":\"Use the BFG!\"}"},
    /* Read by the RFC 3164 grammar, the HOSTNAME is "CST" and the rest ("1987 ...") is the MSG
     * without a TAG: the sender put a zone and a year after the timestamp. */
    {"5.4 example 3", L("<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: " EX3_MSG), 7, 24, 5,
     34, 0,
     "{\"host\":\"CST\",\"level\":\"NOTICE\",\"facility\":\"local4\",\"severity\":5,"
     "\"message\":\"1987 mymachine myproc[10]: " EX3_MSG "\"}"},
    {"tag with pid", L("<30>Jan  2 03:04:05 web01 nginx[1234]: started"), 0, 2, 3, 4, 5,
     "{\"host\":\"web01\",\"level\":\"INFO\",\"facility\":\"daemon\",\"severity\":6,"
     "\"service\":\"nginx\",\"procid\":\"1234\",\"message\":\"started\"}"},
    {"tag without hostname", L("<30>Jan  2 03:04:05 cron[77]: job done"), 0, 2, 3, 4, 5,
     "{\"level\":\"INFO\",\"facility\":\"daemon\",\"severity\":6,\"service\":\"cron\","
     "\"procid\":\"77\",\"message\":\"job done\"}"},
    {"two-digit day, trailing newline", L("<30>Dec 31 23:59:59 h app: bye\n"), 11, 31, 23, 59, 59,
     "{\"host\":\"h\",\"level\":\"INFO\",\"facility\":\"daemon\",\"severity\":6,"
     "\"service\":\"app\",\"message\":\"bye\"}"},
};

static int run_bsd_cases(int64_t rt_ns)
{
    struct recv_time rt = make_rt(rt_ns);
    int bad = 0;
    for (size_t i = 0; i < N(bsd_cases); i++) {
        const struct bsd_case *c = &bsd_cases[i];
        char ts[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(bsd_time(rt_ns, c->mon, c->day, c->h, c->m, c->s), ts);
        struct result r;
        run_at(&r, c->in, c->in_len, &rt);
        if (check_event(c->name, &r, SYSLOG_OK, ts, c->want, rt.text)) {
            print_error("  (received at %s)\n", rt.text);
            bad++;
        }
        result_free(&r);
    }
    return bad;
}

static void test_rfc3164_examples(void **state)
{
    /* New Year's Day: every one of these dates would be in the future, so last year. */
    assert_int_equal(run_bsd_cases(RT_NS), 0);
    /* September: October is last year's, February and August this year's. */
    assert_int_equal(run_bsd_cases(1788220800000000000LL), 0); /* 2026-09-01T00:00:00Z */
    /* The example 2 date itself and the day before it. */
    assert_int_equal(run_bsd_cases(1770312738000000000LL), 0); /* 2026-02-05T17:32:18Z */
    assert_int_equal(run_bsd_cases(1770226338000000000LL), 0); /* 2026-02-04T17:32:18Z */
}

/* Year choice at the one-day boundary, checked against literal dates. */
static void test_rfc3164_year_boundary(void **state)
{
    static const struct {
        int64_t rt_ns;
        const char *want;
    } cases[] = {
        /* 2026-10-10T22:14:16Z: Oct 11 22:14:15 is 86399 s ahead, this year. */
        {1791670456000000000LL, "2026-10-11T22:14:15.000000Z"},
        /* 2026-10-10T22:14:15Z: exactly one day ahead, still this year. */
        {1791670455000000000LL, "2026-10-11T22:14:15.000000Z"},
        /* 2026-10-10T22:14:14Z: one second more than a day ahead, last year. */
        {1791670454000000000LL, "2025-10-11T22:14:15.000000Z"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct recv_time rt = make_rt(cases[i].rt_ns);
        struct result r;
        run_at(&r, L("<34>Oct 11 22:14:15 mymachine su: x"), &rt);
        assert_int_equal(r.rc, SYSLOG_OK);
        assert_int_equal(check_shape(&r, rt.text), 0);
        if (strcmp(str_of(&r, "timestamp"), cases[i].want) != 0) {
            print_error("received %s: timestamp %s, want %s\n", rt.text, str_of(&r, "timestamp"),
                        cases[i].want);
            fail();
        }
        result_free(&r);
    }
}

/* The header time is local time: under a zone five hours west of UTC it is five hours later
 * in UTC. */
static void test_rfc3164_local_time(void **state)
{
    setenv("TZ", "EST5", 1);
    tzset();
    struct recv_time rt = make_rt(1788220800000000000LL); /* 2026-09-01T00:00:00Z */
    struct result r;
    run_at(&r, L("<34>Aug 24 05:34:00 mymachine su: x"), &rt);
    tz_utc(NULL);
    assert_int_equal(r.rc, SYSLOG_OK);
    assert_string_equal(str_of(&r, "timestamp"), "2026-08-24T10:34:00.000000Z");
    result_free(&r);
}

/* RFC 3164 example 4 of section 5.4 style: no PRI at all. */
static void test_rfc3164_no_pri(void **state)
{
    struct result r;
    run(&r, L("Use the BFG!"));
    assert_int_equal(check_event("no PRI", &r, SYSLOG_LOOSE, NULL,
                                 "{" USER ",\"message\":\"Use the BFG!\"," NOPRI "}", RT_TEXT),
                     0);
    result_free(&r);
}

/* Headers that are neither: kept loose. */
static void test_rfc3164_loose(void **state)
{
    static const struct case_ cases[] = {
        {"unknown month", L("<34>Okt 11 22:14:15 h app: x"), SYSLOG_LOOSE, NULL,
         "{" AUTH ",\"message\":\"Okt 11 22:14:15 h app: x\"," NOHDR "}"},
        {"day 0", L("<34>Oct  0 22:14:15 h app: x"), SYSLOG_LOOSE, NULL,
         "{" AUTH ",\"message\":\"Oct  0 22:14:15 h app: x\"," NOHDR "}"},
        {"day 32", L("<34>Oct 32 22:14:15 h app: x"), SYSLOG_LOOSE, NULL,
         "{" AUTH ",\"message\":\"Oct 32 22:14:15 h app: x\"," NOHDR "}"},
        {"time cut short", L("<34>Oct 11 22:14"), SYSLOG_LOOSE, NULL,
         "{" AUTH ",\"message\":\"Oct 11 22:14\"," NOHDR "}"},
        {"letters in the time", L("<34>Oct 11 2x:14:15 h app: x"), SYSLOG_LOOSE, NULL,
         "{" AUTH ",\"message\":\"Oct 11 2x:14:15 h app: x\"," NOHDR "}"},
    };
    assert_int_equal(run_cases(cases, N(cases)), 0);
}

/* Regression (was a bug, fixed): collector/syslog.c parse_3164_time() checks only that the time
 * fields are digits and the day is 1..31, then lets mktime() normalize: "Oct 11 25:14:15" is
 * accepted as strict RFC 3164 and stamped Oct 12 01:14:15, "Feb 30" becomes March 2, "Oct 11
 * 22:61:99" moves to 23:02:39. An impossible time must not become a different real one: such a
 * header is not RFC 3164 and the message must be kept loose (receive time, syslog_error). */
static void test_rfc3164_impossible_times(void **state)
{
    static const struct case_ cases[] = {
        {"hour 25", L("<34>Oct 11 25:14:15 h app: x"), SYSLOG_LOOSE, NULL,
         "{" AUTH ",\"message\":\"Oct 11 25:14:15 h app: x\"," NOHDR "}"},
        {"minute 61", L("<34>Oct 11 22:61:15 h app: x"), SYSLOG_LOOSE, NULL,
         "{" AUTH ",\"message\":\"Oct 11 22:61:15 h app: x\"," NOHDR "}"},
        {"second 99", L("<34>Oct 11 22:14:99 h app: x"), SYSLOG_LOOSE, NULL,
         "{" AUTH ",\"message\":\"Oct 11 22:14:99 h app: x\"," NOHDR "}"},
        {"February 30", L("<34>Feb 30 10:00:00 h app: x"), SYSLOG_LOOSE, NULL,
         "{" AUTH ",\"message\":\"Feb 30 10:00:00 h app: x\"," NOHDR "}"},
        {"April 31", L("<34>Apr 31 10:00:00 h app: x"), SYSLOG_LOOSE, NULL,
         "{" AUTH ",\"message\":\"Apr 31 10:00:00 h app: x\"," NOHDR "}"},
    };
    assert_int_equal(run_cases(cases, N(cases)), 0);
}

/* The hostname after an RFC 3164 timestamp is a token of at most 255 characters. */
static void test_rfc3164_long_hostname(void **state)
{
    char msg[600];
    int n = snprintf(msg, sizeof(msg), "<34>Oct 11 22:14:15 ");
    for (int k = 0; k < 300; k++)
        msg[n++] = (char)('a' + k % 26);
    n += snprintf(msg + n, sizeof(msg) - (size_t)n, " app: x");
    struct result r;
    run(&r, msg, (size_t)n);
    assert_int_equal(r.rc, SYSLOG_OK);
    assert_int_equal(check_shape(&r, RT_TEXT), 0);
    /* Not taken as a hostname: the text after the timestamp stays in the message. */
    assert_null(json_object_get(r.obj, "host"));
    assert_string_equal(str_of(&r, "message"), msg + 20);
    result_free(&r);
}

/* One output buffer, many events: each is appended after the previous one. */
static void test_appends(void **state)
{
    struct recv_time rt = make_rt(RT_NS);
    struct buf out = {0};
    const char *err = NULL;
    static const char a[] = "<14>1 - h a - - - one";
    static const char b[] = "not syslog";
    assert_int_equal(syslog_to_event(a, strlen(a), SRC, &rt, &out, &err), SYSLOG_OK);
    size_t cut = out.len;
    assert_int_equal(syslog_to_event(b, strlen(b), SRC, &rt, &out, &err), SYSLOG_LOOSE);
    assert_int_equal(syslog_to_event("\xff", 1, SRC, &rt, &out, &err), SYSLOG_REJECT);
    json_t *x = json_loadb(out.data, cut, JSON_REJECT_DUPLICATES, NULL);
    json_t *y = json_loadb(out.data + cut, out.len - cut, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(x);
    assert_non_null(y);
    assert_string_equal(json_string_value(json_object_get(x, "message")), "one");
    assert_string_equal(json_string_value(json_object_get(y, "message")), "not syslog");
    json_decref(x);
    json_decref(y);
    buf_free(&out);
}

static void test_level_names(void **state)
{
    static const char *const want[8] = {"EMERGENCY", "ALERT",  "CRITICAL", "ERROR",
                                        "WARN",      "NOTICE", "INFO",     "DEBUG"};
    for (int sev = 0; sev < 8; sev++) {
        assert_string_equal(syslog_levels[sev], want[sev]);
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "<%d>1 - - - - - -", 16 * 8 + sev);
        struct result r;
        run(&r, msg, (size_t)n);
        assert_int_equal(r.rc, SYSLOG_OK);
        assert_string_equal(str_of(&r, "level"), want[sev]);
        assert_string_equal(str_of(&r, "facility"), "local0");
        assert_int_equal(json_integer_value(json_object_get(r.obj, "severity")), sev);
        result_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5424_examples),
        cmocka_unit_test(test_rfc5424_field_order),
        cmocka_unit_test(test_rfc5424_edges),
        cmocka_unit_test(test_loose),
        cmocka_unit_test(test_field_lengths),
        cmocka_unit_test(test_reject),
        cmocka_unit_test(test_repeated_param_name),
        cmocka_unit_test(test_repeated_sd_id),
        cmocka_unit_test(test_trailing_newline_after_header),
        cmocka_unit_test(test_rfc3164_examples),
        cmocka_unit_test(test_rfc3164_year_boundary),
        cmocka_unit_test(test_rfc3164_local_time),
        cmocka_unit_test(test_rfc3164_no_pri),
        cmocka_unit_test(test_rfc3164_loose),
        cmocka_unit_test(test_rfc3164_impossible_times),
        cmocka_unit_test(test_rfc3164_long_hostname),
        cmocka_unit_test(test_sd_grouping_text),
        cmocka_unit_test(test_sd_many_params),
        cmocka_unit_test(test_appends),
        cmocka_unit_test(test_level_names),
    };
    return cmocka_run_group_tests_name("syslog", tests, tz_utc, NULL);
}
