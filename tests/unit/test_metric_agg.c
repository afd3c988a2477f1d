/* Unit tests of the logs-to-metrics aggregate (router/metric_agg.h). What must hold: additions to
 * one series add up whatever order its labels come in (a repeated label: its last value); counts,
 * observations (into their buckets) and gauges (the last value) are flushed as metric events of
 * the model, counters and histograms as deltas, and forgotten; max_series caps the series held,
 * the additions refused counted; a series too long is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "router/metric_agg.h"

static void collect(void *ud, const char *json, size_t len)
{
    struct buf *b = ud;
    buf_append(b, json, len);
    buf_putc(b, '\n');
}

#define LBL(k, v)                                                                                  \
    {                                                                                              \
        k, v, sizeof(k) - 1, sizeof(v) - 1                                                         \
    }

static void test_flush(void **state)
{
    static const double bounds[] = {1, 10};
    const struct metric_agg_opts o = {bounds, 2, 100};
    struct metric_agg *a = metric_agg_new(&o);
    const struct metric_label ab[] = {LBL("svc", "cart"), LBL("code", "200")};
    const struct metric_label ba[] = {LBL("code", "200"), LBL("svc", "cart")};
    const struct metric_label twice[] = {LBL("code", "500"), LBL("svc", "x"), LBL("code", "200"),
                                         LBL("svc", "cart")};
    assert_int_equal(metric_agg_add(a, METRIC_COUNT, "req", 3, ab, 2, 1), 0);
    assert_int_equal(metric_agg_add(a, METRIC_COUNT, "req", 3, ba, 2, 2), 0);
    assert_int_equal(metric_agg_add(a, METRIC_COUNT, "req", 3, twice, 4, 4), 0);
    assert_int_equal(metric_agg_add(a, METRIC_OBSERVE, "lat", 3, NULL, 0, 0.5), 0);
    assert_int_equal(metric_agg_add(a, METRIC_OBSERVE, "lat", 3, NULL, 0, 5), 0);
    assert_int_equal(metric_agg_add(a, METRIC_OBSERVE, "lat", 3, NULL, 0, 50), 0);
    assert_int_equal(metric_agg_add(a, METRIC_GAUGE, "g", 1, ab, 2, 3), 0);
    assert_int_equal(metric_agg_add(a, METRIC_GAUGE, "g", 1, ab, 2, -1.5), 0);
    assert_int_equal(metric_agg_series(a), 3);
    struct buf out = {0};
    int64_t t0 = 1767225600000000000LL, t1 = t0 + 10000000000LL;
    assert_int_equal(metric_agg_flush(a, "route:r", t0, t1, collect, &out), 3);
    buf_putc(&out, '\0');
    assert_string_equal(
        out.data,
        "{\"timestamp\":\"2026-01-01T00:00:10.000000Z\",\"kind\":\"metric\",\"source\":"
        "\"route:r\",\"name\":\"req\",\"metric_type\":\"counter\",\"value\":7,\"temporality\":"
        "\"delta\",\"start_time\":\"2026-01-01T00:00:00.000000Z\",\"labels\":{\"code\":\"200\","
        "\"svc\":\"cart\"},\"received_at\":\"2026-01-01T00:00:10.000000Z\"}\n"
        "{\"timestamp\":\"2026-01-01T00:00:10.000000Z\",\"kind\":\"metric\",\"source\":"
        "\"route:r\",\"name\":\"lat\",\"metric_type\":\"histogram\",\"temporality\":\"delta\","
        "\"start_time\":\"2026-01-01T00:00:00.000000Z\",\"count\":3,\"sum\":55.5,"
        "\"bucket_counts\":[1,1,1],\"explicit_bounds\":[1,10],\"labels\":{},\"received_at\":"
        "\"2026-01-01T00:00:10.000000Z\"}\n"
        "{\"timestamp\":\"2026-01-01T00:00:10.000000Z\",\"kind\":\"metric\",\"source\":"
        "\"route:r\",\"name\":\"g\",\"metric_type\":\"gauge\",\"value\":-1.5,\"labels\":{\"code\":"
        "\"200\",\"svc\":\"cart\"},\"received_at\":\"2026-01-01T00:00:10.000000Z\"}\n");
    /* Flushed: forgotten; the next interval starts from nothing. */
    assert_int_equal(metric_agg_series(a), 0);
    buf_reset(&out);
    assert_int_equal(metric_agg_flush(a, "route:r", t1, t1, collect, &out), 0);
    assert_int_equal(metric_agg_add(a, METRIC_COUNT, "req", 3, ab, 2, 1), 0);
    assert_int_equal(metric_agg_flush(a, "route:r", t1, t1, collect, &out), 1);
    assert_non_null(strstr(out.data, "\"value\":1,"));
    buf_free(&out);
    metric_agg_free(a);
}

static void test_limits(void **state)
{
    const struct metric_agg_opts o = {NULL, 0, 3};
    struct metric_agg *a = metric_agg_new(&o);
    char v[8];
    for (int i = 0; i < 5; i++) {
        snprintf(v, sizeof(v), "%d", i);
        const struct metric_label l[] = {{"user", v, 4, strlen(v)}};
        assert_int_equal(metric_agg_add(a, METRIC_COUNT, "c", 1, l, 1, 1), i < 3 ? 0 : -ENOSPC);
    }
    /* A series held takes more; a new one does not. */
    const struct metric_label l0[] = {{"user", "0", 4, 1}};
    assert_int_equal(metric_agg_add(a, METRIC_COUNT, "c", 1, l0, 1, 1), 0);
    assert_int_equal(metric_agg_take_overflow(a), 2);
    assert_int_equal(metric_agg_take_overflow(a), 0);
    char big[5000];
    memset(big, 'x', sizeof(big));
    const struct metric_label l1[] = {{"k", big, 1, sizeof(big)}};
    assert_int_equal(metric_agg_add(a, METRIC_COUNT, "c", 1, l1, 1, 1), -E2BIG);
    metric_agg_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests_name("metric_agg", tests, NULL, NULL);
}
