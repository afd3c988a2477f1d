/* Unit tests of UTF-8 validation (core/utf8.h): utf8_check against RFC 3629's cases, and
 * utf8_check_text (valid UTF-8 without NUL, in one pass) against utf8_check and memchr on every
 * placement of a NUL, a multi-byte sequence and an invalid byte around the 16- and 8-byte steps,
 * and on random bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/utf8.h"

#define L(s) s, sizeof(s) - 1

static void test_check(void **state)
{
    (void)state;
    assert_int_equal(utf8_check(L("")), 0);
    assert_int_equal(utf8_check(L("plain ascii")), 11);
    assert_int_equal(utf8_check(L("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")), 14);
    assert_int_equal(utf8_check(L("a\x00z")), 3); /* NUL is valid UTF-8 */
    assert_int_equal(utf8_check(L("ab\xff")), 2);
    assert_int_equal(utf8_check(L("ab\xc0\xaf")), 2);         /* overlong */
    assert_int_equal(utf8_check(L("ab\xed\xa0\x80")), 2);     /* surrogate */
    assert_int_equal(utf8_check(L("ab\xf4\x90\x80\x80")), 2); /* above U+10FFFF */
    assert_int_equal(utf8_check(L("ab\xe2\x82")), 2);         /* truncated */
    /* Past the sixteen- and eight-byte steps. */
    assert_int_equal(utf8_check(L("0123456789abcdef0123456789abcdef\xc3\xa9xyz")), 37);
    assert_int_equal(utf8_check(L("0123456789abcdef0123456789abcdef01234\xffxyz")), 37);
    assert_int_equal(utf8_check(L("0123456789abcdef01234567\xe2\x82\xac"
                                  "abcdefgh\xc3")),
                     35);
    assert_int_equal(utf8_check_text(L("0123456789abcdef0123456789abcdef\xc3\xa9xyz")), 37);
    assert_int_equal(utf8_check_text(L("0123456789abcdef0123456789abcdef01234\0xyz")), 37);
    assert_int_equal(utf8_check_text(L("0123456789abcdef0123\xc3\xa9\0")), 22);
}

/* What utf8_check_text must return: the first invalid byte or NUL. */
static size_t reference(const char *s, size_t n)
{
    size_t bad = utf8_check(s, n);
    const char *nul = memchr(s, '\0', n);
    return nul && (size_t)(nul - s) < bad ? (size_t)(nul - s) : bad;
}

static void test_text_every_placement(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
    } marks[] = {{"\0", 1}, {"\xc3\xa9", 2}, {"\xe2\x82\xac", 3}, {"\xff", 1}, {"\xc3", 1}};
    char buf[80];
    for (size_t len = 0; len <= 70; len++) {
        for (size_t a = 0; a < sizeof(marks) / sizeof(marks[0]); a++) {
            for (size_t b = 0; b < sizeof(marks) / sizeof(marks[0]); b++) {
                for (size_t p = 0; p + marks[a].len <= len; p++) {
                    /* Mark a at p, mark b (when it fits) a few bytes on. */
                    memset(buf, 'x', len);
                    memcpy(buf + p, marks[a].bytes, marks[a].len);
                    size_t q = p + marks[a].len + p % 11;
                    if (q + marks[b].len <= len)
                        memcpy(buf + q, marks[b].bytes, marks[b].len);
                    size_t want = reference(buf, len), got = utf8_check_text(buf, len);
                    if (got != want)
                        fail_msg("len %zu, mark %zu at %zu, mark %zu at %zu: %zu, want %zu", len, a,
                                 p, b, q, got, want);
                }
            }
        }
    }
}

static void test_text_random(void **state)
{
    (void)state;
    unsigned x = 2026;
    char buf[64];
    for (int round = 0; round < 200000; round++) {
        size_t len = (size_t)(round % 64);
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245 + 12345;
            /* Mostly ASCII, some NULs and high bytes. */
            unsigned r = (x >> 16) % 64;
            buf[i] = (char)(r == 0 ? 0 : r == 1 ? 0x80 | (x >> 8) : 'a' + r % 26);
        }
        assert_int_equal(utf8_check_text(buf, len), reference(buf, len));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_text_every_placement),
        cmocka_unit_test(test_text_random),
    };
    return cmocka_run_group_tests_name("utf8", tests, NULL, NULL);
}
