/* Unit tests of the time helpers (core/timeutil.h): canonical formatting, RFC 3339 parsing
 * with offsets and leap years, format/parse round trips, epoch magnitudes, the canonical-form
 * check, durations and the clocks. */
#include <errno.h>
#include <math.h>
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

#include "core/timeutil.h"

#define S 1000000000LL

static void test_format(void **state)
{
    static const struct {
        int64_t ns;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000000Z"},
        {1, "1970-01-01T00:00:00.000000Z"},
        {999, "1970-01-01T00:00:00.000000Z"},
        {1000, "1970-01-01T00:00:00.000001Z"},
        {1709294400123456789LL, "2024-03-01T12:00:00.123456Z"},
        {951782400LL * S, "2000-02-29T00:00:00.000000Z"},
        {1709210096LL * S + 500000000, "2024-02-29T12:34:56.500000Z"},
        {-2203891200LL * S, "1900-03-01T00:00:00.000000Z"},
        {4107542399LL * S, "2100-02-28T23:59:59.000000Z"},
        {4107542400LL * S, "2100-03-01T00:00:00.000000Z"}, /* 2100 is not a leap year */
        {2147483648LL * S, "2038-01-19T03:14:08.000000Z"},
        {-1, "1969-12-31T23:59:59.999999Z"},
        {-1000, "1969-12-31T23:59:59.999999Z"},
        {-1001, "1969-12-31T23:59:59.999998Z"},
        {-S, "1969-12-31T23:59:59.000000Z"},
        {INT64_MAX, "2262-04-11T23:47:16.854775Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[TIME_RFC3339_LEN + 8];
        memset(out, 'x', sizeof(out));
        time_format_rfc3339(cases[i].ns, out);
        assert_int_equal(out[TIME_RFC3339_LEN], '\0');
        if (strcmp(out, cases[i].want) != 0) {
            print_error("format(%lld) = %s, want %s\n", (long long)cases[i].ns, out, cases[i].want);
            fail();
        }
        assert_true(time_is_canonical(out, TIME_RFC3339_LEN));
    }
}

static void test_parse(void **state)
{
    static const struct {
        const char *s;
        int64_t want;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2024-03-01T12:00:00Z", 1709294400LL * S},
        {"2024-03-01t12:00:00z", 1709294400LL * S},
        {"2024-03-01 12:00:00Z", 1709294400LL * S},
        {"2024-03-01T12:00:00.123456789Z", 1709294400LL * S + 123456789},
        {"2024-03-01T12:00:00.1Z", 1709294400LL * S + 100000000},
        {"2024-03-01T12:00:00,5Z", 1709294400LL * S + 500000000},
        {"2024-03-01T12:00:00.1234567891234Z", 1709294400LL * S + 123456789},
        {"2024-03-01T14:00:00+02:00", 1709294400LL * S},
        {"2024-03-01T14:00:00+0200", 1709294400LL * S},
        {"2024-03-01T06:30:00-05:30", 1709294400LL * S},
        {"2024-03-01T12:00:00+00:00", 1709294400LL * S},
        {"2024-03-01T12:00:00-00:00", 1709294400LL * S},
        {"2024-03-01T00:30:00+12:30", 1709294400LL * S - 24 * 3600 * S},
        /* offsets crossing days, months, years and a leap day */
        {"2024-03-01T01:00:00+02:00", (1709294400LL - 13 * 3600) * S},
        {"2024-02-29T23:00:00-13:00", 1709294400LL * S},
        {"2023-12-31T23:00:00-01:00", 1704067200LL * S},
        {"2000-02-29T00:00:00Z", 951782400LL * S},
        {"2024-02-29T12:34:56.5Z", 1709210096LL * S + 500000000},
        {"1900-03-01T00:00:00Z", -2203891200LL * S},
        {"1969-12-31T23:59:59Z", -S},
        {"1969-12-31T23:59:59.999999Z", -1000},
        {"2038-01-19T03:14:08Z", 2147483648LL * S},
        /* a leap second is read as the next second */
        {"2016-12-31T23:59:60Z", 1483228800LL * S},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ns = 42;
        int rc = time_parse_rfc3339(cases[i].s, strlen(cases[i].s), &ns);
        if (rc != 0 || ns != cases[i].want) {
            print_error("parse(%s): rc %d, %lld, want %lld\n", cases[i].s, rc, (long long)ns,
                        (long long)cases[i].want);
            fail();
        }
    }
}

static void test_parse_rejects(void **state)
{
    static const char *const bad[] = {
        "",
        "2024",
        "2024-03-01",
        "2024-03-01T12:00:00", /* no zone */
        "2024-03-01T12:00Z",   /* no seconds */
        "2024-3-01T12:00:00Z", /* one-digit month */
        "2024-03-1T12:00:00Z",
        "2024/03/01T12:00:00Z",
        "2024-03-01X12:00:00Z",
        "2024-03-01T12-00-00Z",
        "2024-00-01T12:00:00Z",
        "2024-13-01T12:00:00Z",
        "2024-03-00T12:00:00Z",
        "2024-03-32T12:00:00Z",
        "2024-03-01T24:00:00Z",
        "2024-03-01T12:60:00Z",
        "2024-03-01T12:00:61Z",
        "2024-03-01T12:00:00.Z",
        "2024-03-01T12:00:00+24:00",
        "2024-03-01T12:00:00+02:60",
        "2024-03-01T12:00:00+02",
        "2024-03-01T12:00:00+2:00",
        "2024-03-01T12:00:00 Z",
        "2024-03-01T12:00:00Z ",
        " 2024-03-01T12:00:00Z",
        "2024-03-01T12:00:00ZZ",
        "2024-03-01T12:00:00+02:00:00",
        "abcd-03-01T12:00:00Z",
        "1709294400",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ns = 42;
        if (time_parse_rfc3339(bad[i], strlen(bad[i]), &ns) != -EINVAL) {
            print_error("parse(\"%s\") accepted as %lld\n", bad[i], (long long)ns);
            fail();
        }
    }
    /* Only len bytes are read: a valid prefix followed by more text is not a time. */
    int64_t ns;
    assert_int_equal(time_parse_rfc3339("2024-03-01T12:00:00Z", 19, &ns), -EINVAL);
    assert_int_equal(time_parse_rfc3339("2024-03-01T12:00:00Zjunk", 20, &ns), 0);
    assert_true(ns == 1709294400LL * S);
}

/* Regression (was a bug, fixed): core/timeutil.c time_parse_rfc3339() accepts days that do not
 * exist in their month (it only checks 1..31): "2023-02-29T00:00:00Z" returns 0 with the time of
 * 2023-03-01, "2024-04-31" gives 2024-05-01, "2100-02-29" (2100 is not a leap year) gives
 * 2100-03-01. Expected -EINVAL. */
static void test_parse_rejects_impossible_days(void **state)
{
    static const char *const bad[] = {
        "2023-02-29T00:00:00Z", "2024-02-30T00:00:00Z", "2100-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z", "2024-04-31T00:00:00Z", "2024-06-31T00:00:00Z",
        "2024-09-31T00:00:00Z", "2024-11-31T00:00:00Z",
    };
    int accepted = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ns = 0;
        if (time_parse_rfc3339(bad[i], strlen(bad[i]), &ns) != -EINVAL) {
            char back[TIME_RFC3339_LEN + 1];
            time_format_rfc3339(ns, back);
            print_error("parse(\"%s\") accepted as %s\n", bad[i], back);
            accepted++;
        }
    }
    /* The real leap days are fine. */
    int64_t ns;
    assert_int_equal(time_parse_rfc3339("2024-02-29T00:00:00Z", 20, &ns), 0);
    assert_int_equal(time_parse_rfc3339("2000-02-29T00:00:00Z", 20, &ns), 0);
    assert_int_equal(accepted, 0);
}

/* Regression (was a bug, fixed): core/timeutil.c time_parse_rfc3339() computes secs * 1000000000
 * without a range check, so a date outside what int64 nanoseconds can hold (before 1677-09-21 or
 * after 2262-04-11) overflows (undefined behaviour) and returns 0 with a wrong time:
 * "3000-01-01T00:00:00Z" comes back as 1830-11-23T00:50:52.580896Z (two's complement wrap),
 * "0001-01-01T00:00:00Z" as 1754-08-30T22:43:41.128654Z. Expected -EINVAL, so that the normalizer
 * keeps the raw value (timestamp_raw) instead of a wrong time. */
static void test_parse_out_of_range(void **state)
{
    static const char *const bad[] = {
        "3000-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "2263-01-01T00:00:00Z",
    };
    /* In a child process: under UBSan the overflow aborts, and must fail this test only. */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int accepted = 0;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            int64_t ns = 0;
            if (time_parse_rfc3339(bad[i], strlen(bad[i]), &ns) == 0) {
                char back[TIME_RFC3339_LEN + 1];
                time_format_rfc3339(ns, back);
                fprintf(stderr, "parse(\"%s\") = %s\n", bad[i], back);
                accepted++;
            }
        }
        _exit(accepted);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* format(parse(s)) == s for canonical strings, and parse(format(ns)) == ns cut to the
 * microsecond, across centuries, leap days and both sides of 1970. */
static void test_round_trips(void **state)
{
    static const char *const canon[] = {
        "1970-01-01T00:00:00.000000Z", "2000-02-29T23:59:59.999999Z", "2024-02-29T00:00:00.000001Z",
        "1999-12-31T23:59:59.500000Z", "2100-03-01T00:00:00.000000Z", "1900-01-01T00:00:00.000000Z",
        "2262-04-11T23:47:16.854775Z", "1677-09-21T00:12:44.000000Z", "1969-07-20T20:17:40.000000Z",
        "2026-11-27T10:00:00.123456Z",
    };
    for (size_t i = 0; i < sizeof(canon) / sizeof(canon[0]); i++) {
        int64_t ns;
        assert_int_equal(time_parse_rfc3339(canon[i], TIME_RFC3339_LEN, &ns), 0);
        char out[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(ns, out);
        assert_string_equal(out, canon[i]);
    }
    /* A walk through 1950..2200 in uneven steps that land on every month, day and hour. */
    int64_t step = 86400LL * S * 37 + 3723LL * S + 123457000;
    int n = 0;
    for (int64_t ns = -631152000LL * S; ns < 7258118400LL * S; ns += step, n++) {
        char out[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(ns, out);
        int64_t back;
        assert_int_equal(time_parse_rfc3339(out, TIME_RFC3339_LEN, &back), 0);
        int64_t us = ns / 1000 * 1000;
        if (ns < 0 && ns % 1000)
            us -= 1000; /* floor, as the format does */
        if (back != us) {
            print_error("%lld -> %s -> %lld\n", (long long)ns, out, (long long)back);
            fail();
        }
    }
    assert_true(n > 2000);
}

/* The same instant written with different offsets parses to the same time. */
static void test_offsets_agree(void **state)
{
    static const char *const same[] = {
        "2024-01-01T00:00:00Z",      "2024-01-01T05:30:00+05:30", "2023-12-31T19:00:00-05:00",
        "2024-01-01T14:00:00+14:00", "2023-12-31T12:00:00-12:00", "2024-01-01T00:45:00+0045",
    };
    int64_t first = 0;
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        int64_t ns;
        assert_int_equal(time_parse_rfc3339(same[i], strlen(same[i]), &ns), 0);
        if (i == 0)
            first = ns;
        else if (ns != first) {
            print_error("%s differs\n", same[i]);
            fail();
        }
    }
    assert_true(first == 1704067200LL * S);
}

static void test_from_epoch(void **state)
{
    static const struct {
        double v;
        int64_t want;
    } cases[] = {
        {0, 0},
        {1, S},
        {1709294400, 1709294400LL * S},
        {1709294400.5, 1709294400LL * S + 500000000},
        {9e9, 9000000000LL * S}, /* seconds, near the int64 limit */
        {1e11, 100000000LL * S}, /* smallest milliseconds */
        {1709294400000.0, 1709294400LL * S},
        {9e12, 9000000000LL * S},
        {1e14, 100000000LL * S}, /* smallest microseconds */
        {1709294400000000.0, 1709294400LL * S},
        {1e17, 100000000LL * S}, /* smallest nanoseconds */
        {1709294400000000000.0, 1709294400LL * S},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ns = -7;
        int rc = time_from_epoch(cases[i].v, &ns);
        if (rc != 0 || ns != cases[i].want) {
            print_error("from_epoch(%.17g): rc %d %lld, want %lld\n", cases[i].v, rc, (long long)ns,
                        (long long)cases[i].want);
            fail();
        }
    }
    static const double bad[] = {-1, -0.5, 1e19, 1e300, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ns = -7;
        assert_int_equal(time_from_epoch(bad[i], &ns), -EINVAL);
        assert_int_equal(ns, -7);
    }
}

static void test_is_canonical(void **state)
{
    assert_true(time_is_canonical("2024-03-01T12:00:00.000000Z", 27));
    assert_true(time_is_canonical("1970-01-01T00:00:00.123456Z", 27));
    static const char *const no[] = {
        "2024-03-01T12:00:00Z",         "2024-03-01T12:00:00.00000Z",
        "2024-03-01T12:00:00.0000000Z", "2024-03-01T12:00:00.000000z",
        "2024-03-01 12:00:00.000000Z",  "2024-03-01T12:00:00.000000+",
        "2024-03-01T12:00:00,000000Z",  "2024-03-01T12:0a:00.000000Z",
        "2024-03-01T12:00:00.000000Z ", "",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (time_is_canonical(no[i], strlen(no[i]))) {
            print_error("\"%s\" taken as canonical\n", no[i]);
            fail();
        }
    }
}

/* The fast check agrees with the shape plus the general parser, on every calendar edge. */
static void test_is_canonical_matches_the_parser(void **state)
{
    static const char *const years[] = {"0000", "1677", "1678", "1900", "1970", "2000", "2023",
                                        "2024", "2100", "2261", "2262", "2263", "9999"};
    static const char *const times[] = {"00:00:00.000000", "23:59:59.999999", "23:59:60.000000",
                                        "24:00:00.000000", "12:60:00.000000", "12:00:61.000000",
                                        "00:12:43.145224", "00:12:43.145225", "23:47:16.854775",
                                        "23:47:17.000000", "12:00:00.5x0000"};
    char s[64];
    int n = 0;
    for (size_t y = 0; y < sizeof(years) / sizeof(years[0]); y++)
        for (int mo = 0; mo <= 13; mo++)
            for (int d = 0; d <= 32; d++)
                for (size_t t = 0; t < sizeof(times) / sizeof(times[0]); t++) {
                    snprintf(s, sizeof(s), "%s-%02d-%02dT%sZ", years[y], mo, d, times[t]);
                    int64_t ns;
                    int want = strlen(s) == TIME_RFC3339_LEN && s[25] != 'x' &&
                               time_parse_rfc3339(s, strlen(s), &ns) == 0;
                    if (time_is_canonical(s, strlen(s)) != want) {
                        print_error("\"%s\": fast check %d, parser %d\n", s, !want, want);
                        fail();
                    }
                    n += want;
                }
    assert_true(n > 1000); /* the valid ones were reached too */
}

static void test_durations(void **state)
{
    static const struct {
        const char *s;
        int64_t want;
    } good[] = {
        {"0", 0},
        {"0s", 0},
        {"30", 30 * S},
        {"10s", 10 * S},
        {"1.5s", 1500000000},
        {"500ms", 500000000},
        {"250us", 250000},
        {"15m", 900 * S},
        {"1h", 3600 * S},
        {"2d", 172800 * S},
        {"0.5h", 1800 * S},
        {"1e3ms", S},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ns = -7;
        int rc = time_parse_duration(good[i].s, &ns);
        if (rc != 0 || ns != good[i].want) {
            print_error("duration(\"%s\"): rc %d %lld, want %lld\n", good[i].s, rc, (long long)ns,
                        (long long)good[i].want);
            fail();
        }
    }
    static const char *const bad[] = {
        "",   "s",   "ms",  "soon",   "10x",   "10S",   "10 s",    "-1s",
        "-1", "inf", "nan", "1e300h", "1h30m", "10sec", "300000d",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ns = -7;
        if (time_parse_duration(bad[i], &ns) != -EINVAL || ns != -7) {
            print_error("duration(\"%s\") accepted as %lld\n", bad[i], (long long)ns);
            fail();
        }
    }
}

static void test_clocks(void **state)
{
    int64_t now = time_now_ns();
    assert_true(now > 1704067200LL * S); /* after 2024-01-01 */
    assert_true(now < 4102444800LL * S); /* before 2100 */
    int64_t a = time_mono_ns();
    int64_t b = time_mono_ns();
    assert_true(a > 0);
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_rejects_impossible_days),
        cmocka_unit_test(test_parse_out_of_range),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_offsets_agree),
        cmocka_unit_test(test_from_epoch),
        cmocka_unit_test(test_is_canonical),
        cmocka_unit_test(test_is_canonical_matches_the_parser),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests_name("timeutil", tests, NULL, NULL);
}
