/* Unit tests of the JSON writer's numbers (core/jsonw.h): integers at their limits, and doubles
 * written by the fast path for short decimals exactly as the general one (the shortest of %.15g,
 * %.16g, %.17g that reads back) writes them, over a million values of every shape; strings
 * escaped eight bytes at a time exactly as a byte at a time. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/hash.h"
#include "core/jsonw.h"
#include "core/utf8.h"

static const char *text(struct buf *b)
{
    buf_putc(b, '\0');
    b->len--;
    return b->data;
}

static void test_integers(void **state)
{
    struct buf b = {0};
    jsonw_int(&b, 0);
    buf_putc(&b, ' ');
    jsonw_int(&b, -1);
    buf_putc(&b, ' ');
    jsonw_int(&b, INT64_MIN);
    buf_putc(&b, ' ');
    jsonw_int(&b, INT64_MAX);
    buf_putc(&b, ' ');
    jsonw_uint(&b, UINT64_MAX);
    assert_string_equal(text(&b), "0 -1 -9223372036854775808 9223372036854775807 "
                                  "18446744073709551615");
    buf_free(&b);
}

/* What jsonw_double wrote before the fast path, for every value. */
static void reference(double v, char *out, size_t n)
{
    if (!isfinite(v)) {
        snprintf(out, n, "null");
        return;
    }
    if (fabs(v) < 1e15 && v == (double)(int64_t)v) {
        snprintf(out, n, "%lld", (long long)v);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            break;
    }
}

static void check(double v)
{
    struct buf b = {0};
    char want[64];
    reference(v, want, sizeof(want));
    assert_int_equal(jsonw_double(&b, v), 0);
    if (strcmp(text(&b), want) != 0)
        fail_msg("%.17g: wrote %s, want %s", v, text(&b), want);
    buf_free(&b);
}

static void test_doubles(void **state)
{
    static const double fixed[] = {190.4,
                                   0.1,
                                   0.25,
                                   -3.5,
                                   1e-3,
                                   0.000999,
                                   999999999.5,
                                   1e9,
                                   1.5e9,
                                   123.456789,
                                   0.30000000000000004,
                                   -0.001,
                                   1e300,
                                   -1e-300,
                                   NAN,
                                   INFINITY,
                                   2.5e15,
                                   0.1 + 0.2};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        check(fixed[i]);
    uint64_t r = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 1000000; i++) {
        uint64_t x = rand64(&r);
        int k = (int)(x % 8);
        double scale = pow(10, k), mag = pow(10, (double)(x >> 8 & 15) - 4);
        double v = (double)(int64_t)((x >> 12) % 100000000) / scale; /* a short decimal */
        if (x & 1 << 3)
            v = -v;
        if (x & 1 << 4)
            v *= mag; /* now and then not one */
        if ((x & 0xff00) == 0) {
            uint64_t bits = rand64(&r);
            memcpy(&v, &bits, sizeof(v)); /* any double at all */
        }
        check(v);
    }
}

/* jsonw_string as it was, a byte at a time: the reference for the eight-byte fast path. */
static void reference_string(struct buf *b, const unsigned char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    buf_putc(b, '"');
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            buf_putc(b, (char)c);
            i++;
        } else if (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
            buf_putc(b, '\\');
            buf_putc(b, c == '\b'   ? 'b'
                        : c == '\f' ? 'f'
                        : c == '\n' ? 'n'
                        : c == '\r' ? 'r'
                                    : 't');
            i++;
        } else if (c < 0x20) {
            buf_printf(b, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
            i++;
        } else if (c == '"' || c == '\\') {
            buf_putc(b, '\\');
            buf_putc(b, (char)c);
            i++;
        } else {
            size_t n = utf8_seq_len(s + i, len - i);
            if (n) {
                buf_append(b, s + i, n);
                i += n;
            } else {
                buf_puts(b, "\\ufffd");
                i++;
            }
        }
    }
    buf_putc(b, '"');
}

static void test_strings(void **state)
{
    uint64_t r = 12345;
    /* Mostly plain text with now and then a byte that needs a look, at every alignment. */
    static const unsigned char odd[] = {'"',  '\\', '\n', 0x01, 0x1f, 0x7f, 0x80, 0xc3,
                                        0xa9, 0xe2, 0x82, 0xac, 0xff, 0x20, 'A'};
    for (int t = 0; t < 200000; t++) {
        unsigned char s[64];
        size_t len = rand64(&r) % sizeof(s);
        for (size_t i = 0; i < len; i++) {
            uint64_t x = rand64(&r);
            s[i] = x % 7 == 0 ? odd[(x >> 8) % sizeof(odd)] : (unsigned char)(' ' + (x >> 16) % 95);
        }
        struct buf got = {0}, want = {0};
        assert_int_equal(jsonw_string(&got, (const char *)s, len), 0);
        reference_string(&want, s, len);
        assert_int_equal(got.len, want.len);
        assert_memory_equal(got.data, want.data, got.len);
        buf_free(&got);
        buf_free(&want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_doubles),
        cmocka_unit_test(test_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
