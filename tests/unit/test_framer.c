/* Unit tests of the newline framer (collector/framer.h): lines split across feeds come out the
 * same as from one feed, CRLF and empty lines, oversized lines cut once and resynchronized at
 * the next newline, end of stream, and bytes passed through untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/framer.h"

#define MAX_LINES 256

/* Every line the framer delivered, copied (the callback's pointer is valid only during it). */
struct got {
    int n;
    char *line[MAX_LINES];
    size_t len[MAX_LINES];
    int flags[MAX_LINES];
};

static void on_line(void *ud, const char *line, size_t len, int flags)
{
    struct got *g = ud;
    assert_true(g->n < MAX_LINES);
    g->line[g->n] = malloc(len + 1);
    assert_non_null(g->line[g->n]);
    memcpy(g->line[g->n], line, len);
    g->line[g->n][len] = '\0';
    g->len[g->n] = len;
    g->flags[g->n] = flags;
    g->n++;
}

static void got_free(struct got *g)
{
    for (int i = 0; i < g->n; i++)
        free(g->line[i]);
    memset(g, 0, sizeof(*g));
}

/* Feeds data in chunks of `chunk` bytes (0: all at once), then finishes the stream. */
static void run(struct got *g, size_t max, const char *data, size_t len, size_t chunk, int finish)
{
    struct framer f;
    framer_init(&f, FRAMING_LINE, max);
    memset(g, 0, sizeof(*g));
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        framer_feed(&f, data + off, n, on_line, g);
    }
    if (finish)
        framer_finish(&f, on_line, g);
    framer_free(&f);
}

struct want_line {
    const char *text;
    int flags;
};

struct frame_case {
    const char *name;
    size_t max;
    const char *in;
    size_t in_len; /* 0: strlen(in) */
    int finish;
    int nwant;
    struct want_line want[8];
};

#define T FRAME_TRUNCATED

static const struct frame_case cases[] = {
    {"three lines", 64, "a\nbb\nccc\n", 0, 0, 3, {{"a", 0}, {"bb", 0}, {"ccc", 0}}},
    {"crlf stripped", 64, "a\r\nbb\r\n", 0, 0, 2, {{"a", 0}, {"bb", 0}}},
    {"inner cr kept", 64, "a\rb\n", 0, 0, 1, {{"a\rb", 0}}},
    {"empty lines skipped", 64, "\n\n\r\nx\n\n\r\n\ny\n", 0, 0, 2, {{"x", 0}, {"y", 0}}},
    {"no newline, no finish", 64, "a\nrest", 0, 0, 1, {{"a", 0}}},
    {"no newline, finish", 64, "a\nrest", 0, 1, 2, {{"a", 0}, {"rest", 0}}},
    {"finish strips cr", 64, "a\nrest\r", 0, 1, 2, {{"a", 0}, {"rest", 0}}},
    {"finish on nothing", 64, "", 0, 1, 0, {{0}}},
    {"too long, cut once", 8, "0123456789AB\nok\n", 0, 0, 2, {{"01234567", T}, {"ok", 0}}},
    {"too long without newline, finish",
     8,
     "ok\n0123456789AB",
     0,
     1,
     2,
     {{"ok", 0}, {"01234567", T}}},
    {"too long by one", 8, "012345678\nok\n", 0, 0, 2, {{"01234567", T}, {"ok", 0}}},
    {"exactly max", 8, "01234567\nok\n", 0, 0, 2, {{"01234567", 0}, {"ok", 0}}},
    {"exactly max at finish", 8, "ok\n01234567", 0, 1, 2, {{"ok", 0}, {"01234567", 0}}},
    {"two long lines",
     4,
     "aaaaaa\nbbbbbbbbbbbb\nc\n",
     0,
     0,
     3,
     {{"aaaa", T}, {"bbbb", T}, {"c", 0}}},
    {"invalid utf-8 passed through",
     64,
     "\xff\xfe\xc0\x80\xed\xa0\x80\n\xe2\x82\n",
     0,
     0,
     2,
     {{"\xff\xfe\xc0\x80\xed\xa0\x80", 0}, {"\xe2\x82", 0}}},
    {"valid utf-8",
     64,
     "h\xc3\xa9llo \xf0\x9f\x98\x80\n",
     0,
     0,
     1,
     {{"h\xc3\xa9llo \xf0\x9f\x98\x80", 0}}},
};

static void check_got(const struct frame_case *c, const struct got *g, const char *how)
{
    int ok = g->n == c->nwant;
    for (int i = 0; ok && i < g->n; i++) {
        size_t wl = strlen(c->want[i].text);
        ok = g->len[i] == wl && memcmp(g->line[i], c->want[i].text, wl) == 0 &&
             g->flags[i] == c->want[i].flags;
    }
    if (!ok) {
        print_error("case \"%s\" (%s): got %d line(s), want %d\n", c->name, how, g->n, c->nwant);
        for (int i = 0; i < g->n; i++)
            print_error("  got [%zu] \"%s\" flags %d\n", g->len[i], g->line[i], g->flags[i]);
        fail();
    }
}

/* Every case gives the same lines fed at once, byte by byte, in every chunk size, and split
 * in two at every position. */
static void test_cases_all_splits(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct frame_case *c = &cases[i];
        size_t len = c->in_len ? c->in_len : strlen(c->in);
        struct got g;
        char how[64];
        for (size_t chunk = 0; chunk <= len; chunk++) {
            run(&g, c->max, c->in, len, chunk, c->finish);
            snprintf(how, sizeof(how), "chunks of %zu", chunk);
            check_got(c, &g, how);
            got_free(&g);
        }
        for (size_t cut = 0; cut <= len; cut++) {
            struct framer f;
            framer_init(&f, FRAMING_LINE, c->max);
            memset(&g, 0, sizeof(g));
            framer_feed(&f, c->in, cut, on_line, &g);
            framer_feed(&f, c->in + cut, len - cut, on_line, &g);
            if (c->finish)
                framer_finish(&f, on_line, &g);
            framer_free(&f);
            snprintf(how, sizeof(how), "split at %zu", cut);
            check_got(c, &g, how);
            got_free(&g);
        }
    }
}

/* A long multi-line stream (with CRLF, empty and oversized lines) fed one byte at a time
 * gives exactly the lines of a single feed. */
static void test_byte_by_byte_equals_one_feed(void **state)
{
    struct buf in = {0};
    for (int i = 0; i < 200; i++) {
        switch (i % 5) {
        case 0:
            buf_printf(&in, "{\"seq\":%d,\"msg\":\"hello\"}\n", i);
            break;
        case 1:
            buf_printf(&in, "{\"seq\":%d}\r\n", i);
            break;
        case 2:
            buf_puts(&in, "\n\r\n");
            break;
        case 3:
            for (int k = 0; k < 50 + i; k++)
                buf_putc(&in, (char)('a' + k % 26));
            buf_putc(&in, '\n');
            break;
        default:
            buf_printf(&in, "%d\n", i);
        }
    }
    buf_puts(&in, "tail-without-newline");
    struct got one, bytes;
    run(&one, 48, in.data, in.len, 0, 1);
    run(&bytes, 48, in.data, in.len, 1, 1);
    /* 40 seq lines + 40 crlf lines + 40 long lines + 40 numbers + the tail */
    assert_int_equal(one.n, 161);
    assert_int_equal(bytes.n, one.n);
    int truncated = 0;
    for (int i = 0; i < one.n; i++) {
        assert_int_equal(bytes.len[i], one.len[i]);
        assert_memory_equal(bytes.line[i], one.line[i], one.len[i]);
        assert_int_equal(bytes.flags[i], one.flags[i]);
        assert_true(one.len[i] <= 48);
        assert_null(memchr(one.line[i], '\n', one.len[i]));
        assert_false(one.len[i] && one.line[i][one.len[i] - 1] == '\r');
        truncated += one.flags[i] == FRAME_TRUNCATED;
    }
    assert_int_equal(truncated, 40); /* every letters line is 53+ bytes */
    assert_string_equal(one.line[0], "{\"seq\":0,\"msg\":\"hello\"}");
    assert_string_equal(one.line[1], "{\"seq\":1}");
    assert_string_equal(one.line[2], "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv");
    assert_int_equal(one.flags[2], FRAME_TRUNCATED);
    assert_string_equal(one.line[3], "4");
    assert_string_equal(one.line[one.n - 1], "tail-without-newline");
    got_free(&one);
    got_free(&bytes);
    buf_free(&in);
}

/* An oversized line spanning several feeds is reported once, cut at max, and nothing of its
 * remainder leaks into the next line. */
static void test_oversized_across_feeds(void **state)
{
    struct framer f;
    struct got g = {0};
    framer_init(&f, FRAMING_LINE, 8);
    framer_feed(&f, "ok\n0123", 7, on_line, &g);
    framer_feed(&f, "456789", 6, on_line, &g);
    framer_feed(&f, "ABCDEFGHIJ", 10, on_line, &g);
    framer_feed(&f, "KLMNOP", 6, on_line, &g);
    framer_feed(&f, "QR\nnext\n", 8, on_line, &g);
    framer_finish(&f, on_line, &g);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.line[0], "ok");
    assert_string_equal(g.line[1], "01234567");
    assert_int_equal(g.flags[1], FRAME_TRUNCATED);
    assert_string_equal(g.line[2], "next");
    assert_int_equal(g.flags[2], 0);
    got_free(&g);

    /* A first feed already longer than max, without a newline. */
    memset(&g, 0, sizeof(g));
    framer_feed(&f, "0123456789abcdef", 16, on_line, &g);
    assert_int_equal(g.n, 1);
    framer_feed(&f, "xyz", 3, on_line, &g);
    framer_feed(&f, "\nafter\n", 7, on_line, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.line[0], "01234567");
    assert_int_equal(g.flags[0], FRAME_TRUNCATED);
    assert_string_equal(g.line[1], "after");
    got_free(&g);

    /* The stream ends inside an oversized line: nothing more is delivered, and the framer
     * starts clean afterwards. */
    memset(&g, 0, sizeof(g));
    framer_feed(&f, "0123456789", 10, on_line, &g);
    framer_finish(&f, on_line, &g);
    assert_int_equal(g.n, 1);
    framer_feed(&f, "fresh\n", 6, on_line, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.line[1], "fresh");
    assert_int_equal(g.flags[1], 0);
    got_free(&g);
    framer_free(&f);
}

/* A partial line carried across feeds, then exactly filled to max. */
static void test_exact_max_across_feeds(void **state)
{
    struct framer f;
    struct got g = {0};
    framer_init(&f, FRAMING_LINE, 8);
    framer_feed(&f, "0123", 4, on_line, &g);
    framer_feed(&f, "4567", 4, on_line, &g);
    assert_int_equal(g.n, 0);
    framer_feed(&f, "\n", 1, on_line, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.line[0], "01234567");
    assert_int_equal(g.flags[0], 0);
    /* One byte more, arriving in the feed with the newline. */
    framer_feed(&f, "0123", 4, on_line, &g);
    framer_feed(&f, "45678\nz\n", 8, on_line, &g);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.line[1], "01234567");
    assert_int_equal(g.flags[1], FRAME_TRUNCATED);
    assert_string_equal(g.line[2], "z");
    got_free(&g);
    framer_free(&f);
}

/* Bytes are delivered as they are, NUL included: validating is the parser's job. */
static void test_binary_passthrough(void **state)
{
    static const char in[] = "a\0b\xff\n\x01\x7f\x80\n";
    struct got g;
    for (size_t chunk = 0; chunk < 4; chunk++) {
        run(&g, 64, in, sizeof(in) - 1, chunk, 0);
        assert_int_equal(g.n, 2);
        assert_int_equal(g.len[0], 4);
        assert_memory_equal(g.line[0], "a\0b\xff", 4);
        assert_int_equal(g.len[1], 3);
        assert_memory_equal(g.line[1], "\x01\x7f\x80", 3);
        got_free(&g);
    }
}

/* A line far longer than the carry buffer's usual size still comes out whole when under max. */
static void test_large_line_under_max(void **state)
{
    size_t n = 300000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('A' + i % 23);
    big[n] = '\n';
    struct got g;
    run(&g, 1 << 20, big, n + 1, 4096, 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.len[0], n);
    assert_memory_equal(g.line[0], big, n);
    assert_int_equal(g.flags[0], 0);
    got_free(&g);
    free(big);
}

/* Regression (was a bug, fixed): collector/framer.c framer_feed() compares the line length
 * including its '\r' with max, so a CRLF line whose content is exactly max bytes ("01234567\r\n",
 * max 8) is delivered as truncated (FRAME_TRUNCATED, dead-lettered as too large) although the same
 * line ending in a bare LF is delivered whole. CRLF is documented as accepted; the CR is not
 * content. */
static void test_exact_max_with_crlf(void **state)
{
    struct got g;
    run(&g, 8, "01234567\r\nok\r\n", 14, 0, 0);
    int ok = g.n == 2 && strcmp(g.line[0], "01234567") == 0 && g.flags[0] == 0 &&
             strcmp(g.line[1], "ok") == 0;
    if (!ok && g.n > 0)
        print_error("first line \"%s\" flags %d\n", g.line[0], g.flags[0]);
    got_free(&g);
    assert_true(ok);
}

/* NUL framing (GELF over TCP): a NUL ends a message, whatever the split of the reads; a newline
 * or a CR inside is part of it; empty messages are skipped; an oversized one is cut once. */
static void test_nul_framing(void **state)
{
    static const char data[] = "{\"a\":1}\0line one\nline two\r\0\0" /* empty skipped */
                               "0123456789ABCDEFGHIJ\0tail";
    size_t len = sizeof(data) - 1;
    for (size_t chunk = 1; chunk <= len; chunk++) {
        struct framer f;
        struct got g = {0};
        framer_init(&f, FRAMING_NUL, 18);
        for (size_t off = 0; off < len; off += chunk)
            framer_feed(&f, data + off, len - off < chunk ? len - off : chunk, on_line, &g);
        framer_finish(&f, on_line, &g);
        framer_free(&f);
        assert_int_equal(g.n, 4);
        assert_string_equal(g.line[0], "{\"a\":1}");
        assert_string_equal(g.line[1], "line one\nline two\r");
        assert_string_equal(g.line[2], "0123456789ABCDEFGH");
        assert_int_equal(g.flags[2], FRAME_TRUNCATED);
        assert_string_equal(g.line[3], "tail");
        assert_int_equal(g.flags[3], 0);
        got_free(&g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_all_splits),
        cmocka_unit_test(test_nul_framing),
        cmocka_unit_test(test_byte_by_byte_equals_one_feed),
        cmocka_unit_test(test_oversized_across_feeds),
        cmocka_unit_test(test_exact_max_across_feeds),
        cmocka_unit_test(test_binary_passthrough),
        cmocka_unit_test(test_large_line_under_max),
        cmocka_unit_test(test_exact_max_with_crlf),
    };
    return cmocka_run_group_tests_name("framer", tests, NULL, NULL);
}
