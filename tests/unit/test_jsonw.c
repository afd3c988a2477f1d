/* Unit tests of the JSON writer (core/jsonw.h): integers at their limits, doubles written as the
 * shortest text that reads back (the fast path for short fractions must print exactly what the
 * printf path prints), and strings escaped the same whether the eight-byte scan or the byte
 * loop handles each byte. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/jsonw.h"

/* What jsonw_double printed before its fast path: the reference. */
static void reference_double(double v, char *out, size_t n)
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

static int same_double(double v)
{
    char want[64];
    struct buf b = {0};
    reference_double(v, want, sizeof(want));
    jsonw_double(&b, v);
    int ok = b.len == strlen(want) && memcmp(b.data, want, b.len) == 0;
    if (!ok)
        print_error("%.17g: got %.*s, want %s\n", v, (int)b.len, b.data, want);
    buf_free(&b);
    return ok;
}

static uint64_t next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void test_double_as_printf_prints_it(void **state)
{
    static const double fixed[] = {0.1,
                                   0.5,
                                   637.704,
                                   -2.5,
                                   1e-4,
                                   9.99e-5,
                                   0.0001,
                                   1e-5,
                                   123456.789,
                                   1e15,
                                   1e15 - 0.5,
                                   999999999999999.9,
                                   0.30000000000000004,
                                   1.0 / 3,
                                   -0.0,
                                   5e-324,
                                   1.7976931348623157e308,
                                   2.5e-3,
                                   100.25,
                                   -0.001,
                                   12345678901234.5};
    int bad = 0;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        bad += !same_double(fixed[i]);
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        /* Decimals with few digits (what telemetry holds), then arbitrary bit patterns. */
        double p = pow(10, (double)(next(&x) % 12));
        bad += !same_double((double)(int64_t)(next(&x) % 100000000000ULL - 50000000000LL) / p);
        uint64_t bits = next(&x);
        double v;
        memcpy(&v, &bits, sizeof(v));
        bad += !same_double(v);
        if (bad > 10)
            break;
    }
    assert_int_equal(bad, 0);
}

static void test_integers(void **state)
{
    struct buf b = {0};
    jsonw_int(&b, INT64_MIN);
    buf_putc(&b, ' ');
    jsonw_int(&b, INT64_MAX);
    buf_putc(&b, ' ');
    jsonw_uint(&b, UINT64_MAX);
    buf_putc(&b, ' ');
    jsonw_int(&b, 0);
    buf_putc(&b, ' ');
    jsonw_int(&b, -7);
    buf_putc(&b, ' ');
    jsonw_uint(&b, 10);
    buf_putc(&b, ' ');
    jsonw_uint(&b, 99);
    buf_putc(&b, ' ');
    jsonw_uint(&b, 100);
    buf_putc(&b, '\0');
    assert_string_equal(b.data, "-9223372036854775808 9223372036854775807 18446744073709551615 0 "
                                "-7 10 99 100");
    buf_free(&b);
}

/* The escape of one byte at a time, as jsonw_string wrote it before the eight-byte scan. */
static void reference_string(const unsigned char *s, size_t len, struct buf *out)
{
    buf_putc(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            buf_printf(out, "\\%c", c);
        } else if (c == '\n') {
            buf_puts(out, "\\n");
        } else if (c < 0x20) {
            buf_printf(out,
                       c == '\t'   ? "\\t"
                       : c == '\r' ? "\\r"
                       : c == '\b' ? "\\b"
                       : c == '\f' ? "\\f"
                                   : "\\u%04x",
                       c);
        } else if (c < 0x80) {
            buf_putc(out, (char)c);
        } else if (c == 0xc3 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] < 0xc0) {
            buf_append(out, s + i, 2); /* é and friends: the only non-ASCII the test makes */
            i++;
        } else {
            buf_puts(out, "\\ufffd");
        }
    }
    buf_putc(out, '"');
}

static void test_string_escapes_at_every_offset(void **state)
{
    static const unsigned char specials[] = {'"', '\\', '\n', 0x01, 0x1f, 0x7f, 0xff, 0xc3};
    unsigned char text[40];
    int bad = 0;
    for (size_t len = 0; len <= sizeof(text); len++) {
        for (size_t at = 0; at < len; at++) {
            for (size_t k = 0; k < sizeof(specials); k++) {
                memset(text, 'a' + (int)(len % 26), len);
                text[at] = specials[k];
                if (specials[k] == 0xc3 && at + 1 < len)
                    text[at + 1] = 0xa9;
                struct buf got = {0}, want = {0};
                jsonw_string(&got, (const char *)text, len);
                reference_string(text, len, &want);
                if (got.len != want.len || memcmp(got.data, want.data, got.len)) {
                    print_error("len %zu, byte %02x at %zu: got %.*s want %.*s\n", len, specials[k],
                                at, (int)got.len, got.data, (int)want.len, want.data);
                    bad++;
                }
                buf_free(&got);
                buf_free(&want);
            }
        }
    }
    assert_int_equal(bad, 0);
}

/* Many quotes and backslashes in one block, as JSON text carried in a message has them (a
 * quote every few bytes): every mix up to 80 bytes long, now and then with a byte that takes
 * the other escapes, against the reference. */
static void test_string_escapes_dense(void **state)
{
    static const unsigned char pick[] = {'a', 'b', '"', '\\', '"', ':', ','};
    unsigned x = 2463534242u;
    int bad = 0;
    for (size_t len = 0; len <= 80; len++) {
        for (int round = 0; round < 300; round++) {
            /* Exactly len bytes, so that a read past the text is the sanitizers' to see. */
            unsigned char *text = malloc(len ? len : 1);
            assert_non_null(text);
            for (size_t i = 0; i < len; i++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                text[i] = pick[x % sizeof(pick)];
                if (round % 10 == 9 && x % 23 == 0)
                    text[i] = x % 2 ? 0x01 : 0xff;
            }
            struct buf got = {0}, want = {0};
            jsonw_string(&got, (const char *)text, len);
            reference_string(text, len, &want);
            if (got.len != want.len || memcmp(got.data, want.data, got.len)) {
                print_error("len %zu round %d: got %.*s want %.*s\n", len, round, (int)got.len,
                            got.data, (int)want.len, want.data);
                bad++;
            }
            buf_free(&got);
            buf_free(&want);
            free(text);
        }
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_double_as_printf_prints_it),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_string_escapes_at_every_offset),
        cmocka_unit_test(test_string_escapes_dense),
    };
    return cmocka_run_group_tests_name("jsonw", tests, NULL, NULL);
}
