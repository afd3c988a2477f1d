/* Unit tests of base64 and hex (core/base64.h, core/hex.h): RFC 4648's test vectors both ways,
 * the URL-safe alphabet and missing padding read, what is not an encoding refused, and random
 * bytes round-tripped at every length around the block sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/base64.h"
#include "core/hex.h"

static void test_base64_vectors(void **state)
{
    static const char *const vec[][2] = {{"", ""},
                                         {"f", "Zg=="},
                                         {"fo", "Zm8="},
                                         {"foo", "Zm9v"},
                                         {"foob", "Zm9vYg=="},
                                         {"fooba", "Zm9vYmE="},
                                         {"foobar", "Zm9vYmFy"}};
    struct buf b = {0};
    unsigned char d[16];
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        buf_reset(&b);
        assert_int_equal(base64_append(&b, vec[i][0], strlen(vec[i][0])), 0);
        assert_int_equal(b.len, strlen(vec[i][1]));
        assert_memory_equal(b.data, vec[i][1], b.len);
        ssize_t n = base64_decode(vec[i][1], strlen(vec[i][1]), d);
        assert_int_equal(n, strlen(vec[i][0]));
        assert_memory_equal(d, vec[i][0], (size_t)n);
    }
    buf_free(&b);
    (void)state;
}

static void test_base64_forms_and_errors(void **state)
{
    unsigned char d[16];
    assert_int_equal(base64_decode("Zm9vYg", 6, d), 4); /* padding left out */
    assert_memory_equal(d, "foob", 4);
    assert_int_equal(base64_decode("-_-_", 4, d), 3); /* URL-safe */
    assert_int_equal(base64_decode("+/+/", 4, d), 3);
    assert_memory_equal(d, "\xfb\xff\xbf", 3);
    assert_int_equal(base64_decode("Zm9v!", 5, d), -1); /* not the alphabet */
    assert_int_equal(base64_decode("Zm9vY", 5, d), -1); /* a length no encoding has */
    assert_int_equal(base64_decode("Zm 9v", 5, d), -1); /* no blanks */
    assert_int_equal(base64_decode("====", 4, d), 0);   /* padding only: nothing */
    (void)state;
}

static void test_hex(void **state)
{
    unsigned char d[8];
    char t[16];
    hex_encode(t, "\x01\xab\xff\x00", 4);
    assert_memory_equal(t, "01abff00", 8);
    assert_int_equal(hex_decode("01ABff00", 8, d), 0);
    assert_memory_equal(d, "\x01\xab\xff\x00", 4);
    assert_int_equal(hex_decode("abc", 3, d), -1);
    assert_int_equal(hex_decode("0g", 2, d), -1);
    assert_int_equal(hex_digit('F'), 15);
    assert_int_equal(hex_digit('/'), -1);
    assert_int_equal(hex_digit(':'), -1);
    assert_int_equal(hex_digit('G'), -1);
    (void)state;
}

static void test_round_trips(void **state)
{
    unsigned char src[70], back[80];
    struct buf b = {0};
    srand(7);
    for (size_t len = 0; len < sizeof(src); len++) {
        for (size_t i = 0; i < len; i++)
            src[i] = (unsigned char)rand();
        buf_reset(&b);
        assert_int_equal(base64_append(&b, src, len), 0);
        assert_int_equal(b.len, base64_encoded_len(len));
        assert_true(base64_decoded_max(b.len) >= len);
        assert_int_equal(base64_decode(b.data, b.len, back), len);
        assert_memory_equal(back, src, len);
        buf_reset(&b);
        assert_int_equal(hex_append(&b, src, len), 0);
        assert_int_equal(hex_decode(b.data, b.len, back), 0);
        assert_memory_equal(back, src, len);
    }
    buf_free(&b);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_forms_and_errors),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
