/* Unit tests of the metrics a route's config declares (router/metric_rules.h). What must hold:
 * each declaration adds to its series what the spillway.metric.* call would, from the event's
 * fields (nested ones by their dotted name, strings unescaped for labels, numbers from JSON
 * numbers and from strings holding one); an event without the value's field adds nothing, a
 * value that is no number (or a negative count) is counted; a label whose field is missing (or
 * null) is left out; declarations that cannot work are refused with the one at fault named. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/metric_rules.h"

static void collect(void *ud, const char *json, size_t len)
{
    struct buf *b = ud;
    buf_append(b, json, len);
    buf_putc(b, '\n');
}

/* Applies rules to each event, then flushes: the flushed events, each from "name" on. */
static char *run(const struct metric_rules *r, const char *const *events, int n, int64_t *invalid)
{
    static const double bounds[] = {1, 10};
    const struct metric_agg_opts o = {bounds, 2, 100};
    struct metric_agg *a = metric_agg_new(&o);
    struct eview ev;
    struct buf scratch = {0}, out = {0};
    eview_init(&ev);
    *invalid = 0;
    for (int i = 0; i < n; i++) {
        eview_reset(&ev, events[i], strlen(events[i]));
        int64_t k = metric_rules_apply(r, &ev, a, &scratch);
        assert_true(k >= 0);
        *invalid += k;
    }
    metric_agg_flush(a, "route:r", 0, 0, collect, &out);
    buf_putc(&out, '\0');
    /* Keep what the test is about: name onwards, without received_at. */
    struct buf short_out = {0};
    for (char *line = out.data; line && *line;) {
        char *nl = strchr(line, '\n');
        char *from = strstr(line, "\"name\"");
        char *to = strstr(line, ",\"received_at\"");
        buf_append(&short_out, from, (size_t)(to - from));
        buf_putc(&short_out, '\n');
        line = nl ? nl + 1 : NULL;
    }
    buf_putc(&short_out, '\0');
    buf_free(&out);
    buf_free(&scratch);
    eview_free(&ev);
    metric_agg_free(a);
    return short_out.data;
}

static void test_declared(void **state)
{
    char *lk[] = {"svc", "code"}, *lv[] = {"service", "http.status"};
    struct metric_rule_config decl[] = {
        {0, "req", "", 1, {lk, lv, 2}},
        {0, "bytes", "size", 1, {NULL, NULL, 0}},
        {1, "lat", "ms", 0.001, {lk, lv, 1}},
        {2, "seq", "seq", 1, {NULL, NULL, 0}},
    };
    struct route_metrics_config m = {.declare = {decl, NULL, 4}};
    struct metric_rules *r;
    char err[256];
    assert_int_equal(metric_rules_build(&m, "r", &r, err, sizeof(err)), 0);
    static const char *const events[] = {
        "{\"service\":\"cart\",\"http\":{\"status\":200},\"size\":10,\"ms\":500,\"seq\":1}",
        ("{\"service\":\"ca\\u0072t\",\"http\":{\"status\":200},\"size\":\"5\",\"ms\":\"2500\","
         "\"seq\":2}"),
        /* no status: no code label; size no number: counts 1; ms no number: counted */
        "{\"service\":\"cart\",\"size\":\"big\",\"ms\":\"slow\",\"seq\":3}",
        /* null service, negative size (refused), no ms, seq 2.5 */
        "{\"service\":null,\"http\":{\"status\":503},\"size\":-1,\"seq\":2.5}",
    };
    int64_t invalid;
    char *got = run(r, events, 4, &invalid);
    assert_int_equal(invalid, 2);
    assert_string_equal(
        got, "\"name\":\"req\",\"metric_type\":\"counter\",\"value\":2,\"temporality\":\"delta\","
             "\"start_time\":\"1970-01-01T00:00:00.000000Z\",\"labels\":{\"code\":\"200\","
             "\"svc\":\"cart\"}\n"
             "\"name\":\"bytes\",\"metric_type\":\"counter\",\"value\":16,\"temporality\":"
             "\"delta\",\"start_time\":\"1970-01-01T00:00:00.000000Z\",\"labels\":{}\n"
             "\"name\":\"lat\",\"metric_type\":\"histogram\",\"temporality\":\"delta\","
             "\"start_time\":\"1970-01-01T00:00:00.000000Z\",\"count\":2,\"sum\":3,"
             "\"bucket_counts\":[1,1,0],\"explicit_bounds\":[1,10],\"labels\":{\"svc\":\"cart\"}\n"
             "\"name\":\"seq\",\"metric_type\":\"gauge\",\"value\":2.5,\"labels\":{}\n"
             "\"name\":\"req\",\"metric_type\":\"counter\",\"value\":1,\"temporality\":\"delta\","
             "\"start_time\":\"1970-01-01T00:00:00.000000Z\",\"labels\":{\"svc\":\"cart\"}\n"
             "\"name\":\"req\",\"metric_type\":\"counter\",\"value\":1,\"temporality\":\"delta\","
             "\"start_time\":\"1970-01-01T00:00:00.000000Z\",\"labels\":{\"code\":\"503\"}\n");
    free(got);
    metric_rules_free(r);
}

static void test_refused(void **state)
{
    char *lk[] = {"svc"}, *empty[] = {""};
    char long_name[300];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    const struct {
        struct metric_rule_config c;
        const char *why;
    } bad[] = {
        {{1, "lat", "", 1, {NULL, NULL, 0}}, "metrics.declare[0] (observe lat).field: required"},
        {{2, "g", "", 1, {NULL, NULL, 0}}, "metrics.declare[0] (gauge g).field: required"},
        {{0, "", "", 1, {NULL, NULL, 0}}, "name: a metric name of 1 to 255 bytes"},
        {{0, "c", "", -1, {NULL, NULL, 0}}, "(count c).scale: a finite number, 0 or more"},
        {{0, "c", "", 1, {lk, empty, 1}}, "(count c).labels.svc: the field it takes"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct metric_rule_config c = bad[i].c;
        struct route_metrics_config m = {.declare = {&c, NULL, 1}};
        struct metric_rules *r = (struct metric_rules *)&m;
        char err[256] = "";
        assert_int_equal(metric_rules_build(&m, "r", &r, err, sizeof(err)), -EINVAL);
        assert_null(r);
        if (!strstr(err, bad[i].why))
            fail_msg("%s: not in \"%s\"", bad[i].why, err);
    }
    struct metric_rule_config c = {0, long_name, "", 1, {NULL, NULL, 0}};
    struct route_metrics_config m = {.declare = {&c, NULL, 1}};
    struct metric_rules *r;
    char err[600];
    assert_int_equal(metric_rules_build(&m, "r", &r, err, sizeof(err)), -EINVAL);
    /* None declared: nothing to apply. */
    struct route_metrics_config none = {0};
    assert_int_equal(metric_rules_build(&none, "r", &r, err, sizeof(err)), 0);
    assert_null(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_declared),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests_name("metric_rules", tests, NULL, NULL);
}
