/* Unit tests of the framer in syslog mode (collector/framer.h, FRAMING_SYSLOG): RFC 6587
 * octet counting ("LEN SP MSG") next to newline framing in one stream. Frames come out the
 * same whatever the reads look like (split at every byte, byte by byte, in two at every
 * position); MSG keeps its newlines; a frame over max is delivered once, cut, and the stream
 * goes on with the next frame; digits not followed by a space are an ordinary line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/framer.h"

#define MAX_FRAMES 64
#define N(a)       (sizeof(a) / sizeof((a)[0]))
#define T          FRAME_TRUNCATED

/* Every frame the framer delivered, copied (the callback's pointer is valid only during it). */
struct got {
    int n;
    char *frame[MAX_FRAMES];
    size_t len[MAX_FRAMES];
    int flags[MAX_FRAMES];
};

static void on_frame(void *ud, const char *frame, size_t len, int flags)
{
    struct got *g = ud;
    assert_true(g->n < MAX_FRAMES);
    g->frame[g->n] = malloc(len + 1);
    assert_non_null(g->frame[g->n]);
    memcpy(g->frame[g->n], frame, len);
    g->frame[g->n][len] = '\0';
    g->len[g->n] = len;
    g->flags[g->n] = flags;
    g->n++;
}

static void got_free(struct got *g)
{
    for (int i = 0; i < g->n; i++)
        free(g->frame[i]);
    memset(g, 0, sizeof(*g));
}

/* Feeds data cut at the given positions (ascending, at most 3), then finishes when asked. */
static void run_cuts(struct got *g, size_t max, const char *data, size_t len, const size_t *cuts,
                     int ncuts, int finish)
{
    struct framer f;
    framer_init(&f, FRAMING_SYSLOG, max);
    memset(g, 0, sizeof(*g));
    size_t at = 0;
    for (int i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        framer_feed(&f, data + at, end - at, on_frame, g);
        at = end;
    }
    if (finish)
        framer_finish(&f, on_frame, g);
    framer_free(&f);
}

struct want {
    const char *text;
    size_t len; /* 0: strlen(text) */
    int flags;
};

struct frame_case {
    const char *name;
    size_t max;
    const char *in;
    size_t in_len; /* 0: strlen(in) */
    int finish;
    int nwant;
    struct want want[8];
};

static const struct frame_case cases[] = {
    {"one octet-counted frame", 64, "11 hello world", 0, 0, 1, {{"hello world", 0, 0}}},
    {"RFC 5424 message in a frame",
     128,
     "66 <34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - x",
     0,
     0,
     1,
     {{"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - x", 0, 0}}},
    {"frames back to back",
     64,
     "5 hello5 world1 x",
     0,
     0,
     3,
     {{"hello", 0, 0}, {"world", 0, 0}, {"x", 0, 0}}},
    {"frames separated by LF and CRLF",
     64,
     "5 hello\n5 world\r\n3 abc\n",
     0,
     0,
     3,
     {{"hello", 0, 0}, {"world", 0, 0}, {"abc", 0, 0}}},
    {"newlines kept inside a frame",
     64,
     "12 line1\nline2\n5 a\r\n\nb",
     0,
     0,
     2,
     {{"line1\nline2\n", 0, 0}, {"a\r\n\nb", 0, 0}}},
    {"frame content starting with digits and spaces",
     64,
     "7 123 abc8 42 17 99",
     0,
     0,
     2,
     {{"123 abc", 0, 0}, {"42 17 99", 0, 0}}},
    {"frame holding NUL and high bytes",
     64,
     "5 a\0\xff\n"
     "b",
     7,
     0,
     1,
     {{"a\0\xff\nb", 5, 0}}},
    {"line, frame, line",
     64,
     "<13>plain line\n11 hello world<13>another\n",
     0,
     0,
     3,
     {{"<13>plain line", 0, 0}, {"hello world", 0, 0}, {"<13>another", 0, 0}}},
    {"frame, CRLF line, frame",
     64,
     "3 one<13>two\r\n5 three",
     0,
     0,
     3,
     {{"one", 0, 0}, {"<13>two", 0, 0}, {"three", 0, 0}}},
    {"empty lines between frames and lines",
     64,
     "\n\r\n4 abcd\n\n<1>x\n\n",
     0,
     0,
     2,
     {{"abcd", 0, 0}, {"<1>x", 0, 0}}},
    {"digits then not a space: a line",
     64,
     "2024-01-01 started\n123\n42abc\n5 hello",
     0,
     0,
     4,
     {{"2024-01-01 started", 0, 0}, {"123", 0, 0}, {"42abc", 0, 0}, {"hello", 0, 0}}},
    {"digits then tab: a line", 64, "12\tx\n", 0, 0, 1, {{"12\tx", 0, 0}}},
    {"digit line over max: cut once", 4, "123456\nab\n", 0, 0, 2, {{"1234", 0, T}, {"ab", 0, 0}}},
    {"leading zero: a line", 64, "05 hello\n0 x\n", 0, 0, 2, {{"05 hello", 0, 0}, {"0 x", 0, 0}}},
    {"exactly max", 8, "8 abcdefgh3 end", 0, 0, 2, {{"abcdefgh", 0, 0}, {"end", 0, 0}}},
    {"max + 1: cut once, next frame intact",
     8,
     "9 abcdefghi4 next",
     0,
     0,
     2,
     {{"abcdefgh", 0, T}, {"next", 0, 0}}},
    {"far over max: cut once, then a frame, then a line",
     4,
     "20 0123456789\n1234567893 abc<1>x\n",
     0,
     0,
     3,
     {{"0123", 0, T}, {"abc", 0, 0}, {"<1>x", 0, 0}}},
    {"oversized line, then a frame",
     8,
     "<13>abcdefghijkl\n5 hello",
     0,
     0,
     2,
     {{"<13>abcd", 0, T}, {"hello", 0, 0}}},
    {"two oversized frames in a row",
     4,
     "6 aaaaaa6 bbbbbb2 ok",
     0,
     0,
     3,
     {{"aaaa", 0, T}, {"bbbb", 0, T}, {"ok", 0, 0}}},
    {"frame cut short by the end of the stream",
     64,
     "3 abc11 hello",
     0,
     1,
     2,
     {{"abc", 0, 0}, {"hello", 0, 0}}},
    {"frame not finished without finish", 64, "3 abc11 hello", 0, 0, 1, {{"abc", 0, 0}}},
    {"last line without newline at finish",
     64,
     "3 abc<13>tail",
     0,
     1,
     2,
     {{"abc", 0, 0}, {"<13>tail", 0, 0}}},
};

static int check_got(const struct frame_case *c, const struct got *g, const char *how)
{
    int ok = g->n == c->nwant;
    for (int i = 0; ok && i < g->n; i++) {
        size_t wl = c->want[i].len ? c->want[i].len : strlen(c->want[i].text);
        ok = g->len[i] == wl && memcmp(g->frame[i], c->want[i].text, wl) == 0 &&
             g->flags[i] == c->want[i].flags;
    }
    if (!ok) {
        print_error("case \"%s\" (%s): got %d frame(s), want %d\n", c->name, how, g->n, c->nwant);
        for (int i = 0; i < g->n; i++)
            print_error("  got [%zu] \"%s\" flags %d\n", g->len[i], g->frame[i], g->flags[i]);
    }
    return ok ? 0 : -1;
}

/* One case fed at once, byte by byte, in two at every position and in three at every pair of
 * positions: the frames must be the same. Returns the number of ways that failed. */
static int check_all_splits(const struct frame_case *c)
{
    size_t len = c->in_len ? c->in_len : strlen(c->in);
    struct got g;
    char how[64];
    int bad = 0;
    run_cuts(&g, c->max, c->in, len, NULL, 0, c->finish);
    bad += check_got(c, &g, "one feed") != 0;
    got_free(&g);
    /* byte by byte */
    struct framer f;
    framer_init(&f, FRAMING_SYSLOG, c->max);
    memset(&g, 0, sizeof(g));
    for (size_t i = 0; i < len; i++)
        framer_feed(&f, c->in + i, 1, on_frame, &g);
    if (c->finish)
        framer_finish(&f, on_frame, &g);
    framer_free(&f);
    bad += check_got(c, &g, "byte by byte") != 0;
    got_free(&g);
    for (size_t a = 0; a <= len && bad == 0; a++) {
        for (size_t b = a; b <= len && bad == 0; b++) {
            size_t cuts[2] = {a, b};
            run_cuts(&g, c->max, c->in, len, cuts, 2, c->finish);
            snprintf(how, sizeof(how), "cut at %zu and %zu", a, b);
            bad += check_got(c, &g, how) != 0;
            got_free(&g);
        }
    }
    return bad;
}

static void test_cases_all_splits(void **state)
{
    int bad = 0;
    for (size_t i = 0; i < N(cases); i++)
        bad += check_all_splits(&cases[i]) != 0;
    assert_int_equal(bad, 0);
}

/* The octet count is the exact byte length of MSG, whatever MSG holds: frames built here
 * from messages with spaces, newlines, multi-byte UTF-8 and digits at the start, written one
 * after the other, come back one by one and byte for byte. */
static void test_built_frames_round_trip(void **state)
{
    static const char *const msgs[] = {
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' "
        "failed for lonvick on /dev/pts/8",
        "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to "
        "make the do-nuts.",
        "<13>1 - h app - - - multi\nline\r\nmessage\n",
        "<14>1 - h app - - [x@1 k=\"v \\] w\"] h\xc3\xa9llo \xf0\x9f\x98\x80",
        "1234 starts with digits and a space",
        "x",
    };
    struct buf in = {0};
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < N(msgs); i++)
            buf_printf(&in, "%zu %s", strlen(msgs[i]), msgs[i]);
        buf_puts(&in, "<13>Oct 11 22:14:15 host app: a plain line\n");
    }
    for (size_t chunk = 1; chunk <= in.len; chunk = chunk < 16 ? chunk + 1 : chunk * 2) {
        struct framer f;
        framer_init(&f, FRAMING_SYSLOG, 4096);
        struct got g = {0};
        for (size_t off = 0; off < in.len; off += chunk) {
            size_t n = in.len - off < chunk ? in.len - off : chunk;
            framer_feed(&f, in.data + off, n, on_frame, &g);
        }
        framer_finish(&f, on_frame, &g);
        framer_free(&f);
        assert_int_equal(g.n, 3 * ((int)N(msgs) + 1));
        for (int k = 0; k < g.n; k++) {
            size_t i = (size_t)k % (N(msgs) + 1);
            const char *want = i < N(msgs) ? msgs[i] : "<13>Oct 11 22:14:15 host app: a plain line";
            if (g.len[k] != strlen(want) || memcmp(g.frame[k], want, g.len[k]) != 0 ||
                g.flags[k] != 0) {
                print_error("chunks of %zu, frame %d: got \"%s\", want \"%s\"\n", chunk, k,
                            g.frame[k], want);
                fail();
            }
        }
        got_free(&g);
    }
    buf_free(&in);
}

/* Without syslog mode, a digit prefix is just text. */
static void test_plain_mode_has_no_octet_counting(void **state)
{
    struct framer f;
    framer_init(&f, FRAMING_LINE, 64);
    struct got g = {0};
    static const char in[] = "5 hello\n11 hello world\n";
    framer_feed(&f, in, sizeof(in) - 1, on_frame, &g);
    framer_free(&f);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.frame[0], "5 hello");
    assert_string_equal(g.frame[1], "11 hello world");
    got_free(&g);
}

/* A framer is reusable after finish: the next stream starts clean, even when the previous one
 * ended inside a frame. */
static void test_finish_resets(void **state)
{
    struct framer f;
    framer_init(&f, FRAMING_SYSLOG, 16);
    struct got g = {0};
    framer_feed(&f, "10 abc", 6, on_frame, &g);
    framer_finish(&f, on_frame, &g);
    framer_feed(&f, "3 xyz<1>q\n", 10, on_frame, &g);
    framer_finish(&f, on_frame, &g);
    framer_free(&f);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.frame[0], "abc");
    assert_string_equal(g.frame[1], "xyz");
    assert_string_equal(g.frame[2], "<1>q");
    got_free(&g);
}

/* Regression (was a bug, fixed): collector/framer.c octet_frame() keeps the digits of a possible
 * octet count only as a number (len_acc, clamped at 2^40), and when they turn out not to be
 * followed by a space it re-creates them with snprintf("%llu"). A line starting with a digit run
 * above 2^40 loses its digits: "1700000000000,login ok\n" (epoch milliseconds, CSV) is delivered as
 * "1099511627776,login ok". The digits must be passed on as they were. */
static void test_long_digit_prefix_kept(void **state)
{
    static const struct frame_case c[] = {
        {"epoch ms then comma",
         64,
         "1700000000000,login ok\n",
         0,
         0,
         1,
         {{"1700000000000,login ok", 0, 0}}},
        {"20 digits then newline",
         64,
         "12345678901234567890\n",
         0,
         0,
         1,
         {{"12345678901234567890", 0, 0}}},
    };
    int bad = 0;
    for (size_t i = 0; i < N(c); i++)
        bad += check_all_splits(&c[i]) != 0;
    assert_int_equal(bad, 0);
}

/* Regression (was a bug, fixed): collector/framer.c framer_finish() drops a stream's last line when
 * it is only digits without a newline ("hello\n42" then end of stream gives "hello" alone): the
 * digits are held in len_acc, not in the partial buffer, and finish clears len_acc. framer.h
 * promises "a last line without a newline is still a line", as it is for "hello\n4x" or "42\n". */
static void test_digits_at_end_of_stream(void **state)
{
    static const struct frame_case c = {"digits at end of stream",      64, "hello\n42", 0, 1, 2,
                                        {{"hello", 0, 0}, {"42", 0, 0}}};
    assert_int_equal(check_all_splits(&c), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_all_splits),
        cmocka_unit_test(test_built_frames_round_trip),
        cmocka_unit_test(test_plain_mode_has_no_octet_counting),
        cmocka_unit_test(test_finish_resets),
        cmocka_unit_test(test_long_digit_prefix_kept),
        cmocka_unit_test(test_digits_at_end_of_stream),
    };
    return cmocka_run_group_tests_name("framer_syslog", tests, NULL, NULL);
}
