/* Unit tests of the Prometheus remote write encoder (router/sinks/prom_encode.h) and of its names
 * (router/sinks/prom_name.h). What must hold: metric names and label names become Prometheus names
 * as the OpenTelemetry specification's compatibility rules say (docs/metrics.md); every metric
 * type of the model becomes the series Prometheus stores (histograms as _bucket/_sum/_count with
 * le, summaries as quantile series); deltas become cumulative per series across requests; a
 * request holds its series sorted by labels and each series' samples in time order, one per
 * timestamp; an event with no Prometheus form is refused with a reason and leaves nothing behind;
 * the table of delta series holds at most max_series. Requests are decoded with protobuf-c. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/sinks/prom_encode.h"
#include "router/sinks/prom_name.h"

#include "prometheus/remote.pb-c.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define TS   "\"timestamp\":\"2026-01-01T00:00:01.000000Z\",\"kind\":\"metric\","
#define MS   1767225601000LL

/* cmocka 1.1 has no assert_double_equal: exact equality is what the values here must have. */
#define assert_double_equal(a, b, eps) assert_true((double)(a) == (double)(b))

typedef Prometheus__WriteRequest WriteRequest;
typedef Prometheus__TimeSeries TimeSeries;

static void test_metric_names(void **state)
{
    static const struct {
        const char *name, *unit;
        enum prom_name_kind kind;
        const char *want;
    } cases[] = {
        {"http.server.duration", "ms", PROM_NAME_OTHER, "http_server_duration_milliseconds"},
        {"http.server.request.count", "1", PROM_NAME_COUNTER, "http_server_request_count_total"},
        {"requests", "{request}", PROM_NAME_COUNTER, "requests_total"},
        {"x_total", "s", PROM_NAME_COUNTER, "x_seconds_total"},
        {"x_seconds_total", "s", PROM_NAME_COUNTER, "x_seconds_total"},
        {"x_seconds", "s", PROM_NAME_GAUGE, "x_seconds"},
        {"memory.utilization", "1", PROM_NAME_GAUGE, "memory_utilization_ratio"},
        {"sent", "By", PROM_NAME_COUNTER, "sent_bytes_total"},
        {"speed", "m/s", PROM_NAME_GAUGE, "speed_meters_per_second"},
        {"reqs", "{request}/s", PROM_NAME_GAUGE, "reqs_per_second"},
        {"temp", "Cel", PROM_NAME_GAUGE, "temp_celsius"},
        {"odd", "furlongs/fortnight", PROM_NAME_GAUGE, "odd_furlongs_per_fortnight"},
        {"9lives", "", PROM_NAME_GAUGE, "_9lives"},
        {"a..b--c", "", PROM_NAME_GAUGE, "a_b_c"},
        {"ns:rule_a", "", PROM_NAME_GAUGE, "ns:rule_a"},
        {"api.requests", "", PROM_NAME_COUNTER, "api_requests_total"},
        {"node_cpu_seconds_total", "", PROM_NAME_COUNTER, "node_cpu_seconds_total"},
        {"café", "", PROM_NAME_GAUGE, "caf_"},
    };
    int bad = 0;
    for (size_t i = 0; i < N(cases); i++) {
        struct buf b = {0};
        assert_int_equal(prom_metric_name(&b, cases[i].name, strlen(cases[i].name), cases[i].unit,
                                          strlen(cases[i].unit), cases[i].kind),
                         0);
        if (b.len != strlen(cases[i].want) || memcmp(b.data, cases[i].want, b.len)) {
            print_error("%s [%s]: %.*s, want %s\n", cases[i].name, cases[i].unit, (int)b.len,
                        b.data, cases[i].want);
            bad++;
        }
        buf_free(&b);
    }
    assert_int_equal(bad, 0);
    assert_true(prom_valid_metric_name("a_b:c", 5));
    assert_false(prom_valid_metric_name("1a", 2));
    assert_false(prom_valid_metric_name("a.b", 3));
}

static void test_label_names(void **state)
{
    static const char *const cases[][2] = {
        {"http.route", "http_route"},
        {"2xx", "key_2xx"},
        {"a-b c", "a_b_c"},
        {"ok_1", "ok_1"},
        {"_x", "_x"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct buf b = {0};
        assert_int_equal(prom_label_name(&b, cases[i][0], strlen(cases[i][0])), 0);
        assert_int_equal(b.len, strlen(cases[i][1]));
        assert_memory_equal(b.data, cases[i][1], b.len);
        buf_free(&b);
    }
}

/* ---- requests ---- */

static const double buckets[] = {1, 10};
static struct cfg_strmap external;
static const struct prom_encode_opts opts = {&external, buckets, 2, 100};

static void add_ok(struct prom_encoder *e, const char *ev)
{
    const char *why = NULL;
    int rc = prom_encoder_add(e, ev, strlen(ev), &why);
    if (rc)
        print_error("refused (%s): %s\n", why ? why : "?", ev);
    assert_int_equal(rc, 0);
}

static WriteRequest *request(struct prom_encoder *e)
{
    struct buf out = {0};
    assert_int_equal(prom_encoder_write(e, &out), 0);
    WriteRequest *r = prometheus__write_request__unpack(NULL, out.len, (const uint8_t *)out.data);
    assert_non_null(r);
    buf_free(&out);
    prom_encoder_reset(e);
    return r;
}

/* The series' labels as "a=b,c=d". */
static const char *labels_of(const TimeSeries *ts)
{
    static char text[1024];
    size_t n = 0;
    text[0] = '\0';
    for (size_t i = 0; i < ts->n_labels; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s=%s", i ? "," : "",
                              ts->labels[i]->name, ts->labels[i]->value);
    return text;
}

static const TimeSeries *series(const WriteRequest *r, const char *labels)
{
    for (size_t i = 0; i < r->n_timeseries; i++) {
        if (!strcmp(labels_of(r->timeseries[i]), labels))
            return r->timeseries[i];
    }
    for (size_t i = 0; i < r->n_timeseries; i++)
        print_error("  have %s\n", labels_of(r->timeseries[i]));
    print_error("no series %s\n", labels);
    fail();
    return NULL;
}

static double value(const WriteRequest *r, const char *labels)
{
    const TimeSeries *ts = series(r, labels);
    assert_int_equal(ts->n_samples, 1);
    return ts->samples[0]->value;
}

/* Every metric type, with labels translated and job from the resource. */
static void test_every_type(void **state)
{
    struct prom_encoder *e = prom_encoder_new(&opts);
    add_ok(e, "{" TS "\"name\":\"temp\",\"unit\":\"Cel\",\"metric_type\":\"gauge\",\"value\":21.5,"
              "\"labels\":{\"room\":\"a\",\"floor\":2,\"ok\":true}}");
    add_ok(e, "{" TS "\"name\":\"orders\",\"metric_type\":\"counter\",\"temporality\":"
              "\"cumulative\",\"value\":42,\"labels\":{},\"service\":\"shop\","
              "\"resource.service.namespace\":\"prod\",\"resource.service.instance.id\":\"i-1\"}");
    add_ok(e, "{" TS "\"name\":\"up\",\"metric_type\":\"unknown\",\"value\":1,\"labels\":"
              "{\"job\":\"own\",\"instance\":\"h:1\"},\"service\":\"ignored\"}");
    add_ok(e,
           "{" TS "\"name\":\"lat\",\"unit\":\"s\",\"metric_type\":\"histogram\",\"temporality\":"
           "\"cumulative\",\"count\":4,\"sum\":10.5,\"bucket_counts\":[1,0,3],"
           "\"explicit_bounds\":[0.5,2.5],\"labels\":{\"le\":\"mine\"}}");
    add_ok(e, "{" TS "\"name\":\"q\",\"metric_type\":\"summary\",\"count\":2,\"sum\":3,"
              "\"quantiles\":{\"0.5\":1,\"0.99\":2.5},\"labels\":{}}");
    add_ok(e, "{" TS "\"name\":\"x\",\"metric_type\":\"exponential_histogram\",\"temporality\":"
              "\"cumulative\",\"count\":6,\"sum\":12,\"scale\":0,\"zero_count\":1,\"positive\":"
              "{\"offset\":0,\"bucket_counts\":[2,3]},\"negative\":{\"offset\":0,"
              "\"bucket_counts\":[0]},\"labels\":{}}");
    WriteRequest *r = request(e);
    assert_double_equal(value(r, "__name__=temp_celsius,floor=2,ok=true,room=a"), 21.5, 0);
    assert_double_equal(value(r, "__name__=orders_total,instance=i-1,job=prod/shop"), 42, 0);
    assert_double_equal(value(r, "__name__=up,instance=h:1,job=own"), 1, 0);
    assert_double_equal(value(r, "__name__=lat_seconds_bucket,le=0.5"), 1, 0);
    assert_double_equal(value(r, "__name__=lat_seconds_bucket,le=2.5"), 1, 0);
    assert_double_equal(value(r, "__name__=lat_seconds_bucket,le=+Inf"), 4, 0);
    assert_double_equal(value(r, "__name__=lat_seconds_sum"), 10.5, 0);
    assert_double_equal(value(r, "__name__=lat_seconds_count"), 4, 0);
    assert_double_equal(value(r, "__name__=q,quantile=0.5"), 1, 0);
    assert_double_equal(value(r, "__name__=q,quantile=0.99"), 2.5, 0);
    assert_double_equal(value(r, "__name__=q_sum"), 3, 0);
    assert_double_equal(value(r, "__name__=q_count"), 2, 0);
    /* Scale 0: buckets (1, 2] and (2, 4] above the zero bucket (le 0). */
    assert_double_equal(value(r, "__name__=x_bucket,le=0"), 1, 0);
    assert_double_equal(value(r, "__name__=x_bucket,le=2"), 3, 0);
    assert_double_equal(value(r, "__name__=x_bucket,le=4"), 6, 0);
    assert_double_equal(value(r, "__name__=x_bucket,le=+Inf"), 6, 0);
    assert_int_equal(
        series(r, "__name__=temp_celsius,floor=2,ok=true,room=a")->samples[0]->timestamp, MS);
    /* Series sorted by their labels. */
    for (size_t i = 1; i < r->n_timeseries; i++) {
        char a[1024];
        snprintf(a, sizeof(a), "%s", labels_of(r->timeseries[i - 1]));
        assert_true(strcmp(a, labels_of(r->timeseries[i])) < 0);
    }
    prometheus__write_request__free_unpacked(r, NULL);
    prom_encoder_free(e);
}

/* Deltas (statsd counters and observations, up-down gauges, delta histograms) add up per
 * series, from request to request; a late delta never moves a series back in time. */
static void test_deltas_become_cumulative(void **state)
{
    struct prom_encoder *e = prom_encoder_new(&opts);
    add_ok(e, "{" TS "\"name\":\"hits\",\"metric_type\":\"counter\",\"value\":2,"
              "\"temporality\":\"delta\",\"labels\":{\"env\":\"prod\"}}");
    add_ok(e,
           "{" TS "\"name\":\"hits\",\"metric_type\":\"counter\",\"value\":1,"
           "\"temporality\":\"delta\",\"statsd_sample_rate\":0.5,\"labels\":{\"env\":\"prod\"}}");
    add_ok(e, "{" TS "\"name\":\"q\",\"metric_type\":\"gauge\",\"value\":5,"
              "\"temporality\":\"delta\",\"labels\":{}}");
    add_ok(e, "{" TS "\"name\":\"rt\",\"metric_type\":\"histogram\",\"value\":3,"
              "\"temporality\":\"delta\",\"unit\":\"ms\",\"labels\":{}}");
    add_ok(e, "{" TS "\"name\":\"d\",\"metric_type\":\"histogram\",\"temporality\":\"delta\","
              "\"count\":3,\"sum\":6,\"bucket_counts\":[1,2],\"explicit_bounds\":[2],"
              "\"labels\":{}}");
    WriteRequest *r = request(e);
    /* Two samples at the same time: the last one (2 + 1/0.5 = 4) is the one sent. */
    assert_double_equal(value(r, "__name__=hits_total,env=prod"), 4, 0);
    assert_double_equal(value(r, "__name__=q"), 5, 0);
    assert_double_equal(value(r, "__name__=rt_milliseconds_bucket,le=1"), 0, 0);
    assert_double_equal(value(r, "__name__=rt_milliseconds_bucket,le=10"), 1, 0);
    assert_double_equal(value(r, "__name__=rt_milliseconds_count"), 1, 0);
    assert_double_equal(value(r, "__name__=d_bucket,le=2"), 1, 0);
    prometheus__write_request__free_unpacked(r, NULL);
    add_ok(e, "{\"timestamp\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"metric\","
              "\"name\":\"hits\",\"metric_type\":\"counter\",\"value\":3,"
              "\"temporality\":\"delta\",\"labels\":{\"env\":\"prod\"}}");
    add_ok(e, "{" TS "\"name\":\"q\",\"metric_type\":\"gauge\",\"value\":-7,"
              "\"temporality\":\"delta\",\"labels\":{}}");
    add_ok(e, "{" TS "\"name\":\"rt\",\"metric_type\":\"histogram\",\"value\":30,"
              "\"temporality\":\"delta\",\"unit\":\"ms\",\"labels\":{}}");
    add_ok(e, "{" TS "\"name\":\"d\",\"metric_type\":\"histogram\",\"temporality\":\"delta\","
              "\"count\":1,\"sum\":1,\"bucket_counts\":[1,0],\"explicit_bounds\":[2],"
              "\"labels\":{}}");
    r = request(e);
    const TimeSeries *h = series(r, "__name__=hits_total,env=prod");
    assert_double_equal(h->samples[0]->value, 7, 0);
    assert_int_equal(h->samples[0]->timestamp, MS); /* not a second earlier */
    assert_double_equal(value(r, "__name__=q"), -2, 0);
    assert_double_equal(value(r, "__name__=rt_milliseconds_bucket,le=10"), 1, 0);
    assert_double_equal(value(r, "__name__=rt_milliseconds_bucket,le=+Inf"), 2, 0);
    assert_double_equal(value(r, "__name__=rt_milliseconds_sum"), 33, 0);
    assert_double_equal(value(r, "__name__=d_bucket,le=2"), 2, 0);
    assert_double_equal(value(r, "__name__=d_count"), 4, 0);
    assert_int_equal(prom_encoder_state_series(e), 4);
    prometheus__write_request__free_unpacked(r, NULL);
    prom_encoder_free(e);
}

/* Samples of a series in time order, one per time; non-finite values as the model writes them. */
static void test_time_order_and_special_values(void **state)
{
    struct prom_encoder *e = prom_encoder_new(&opts);
    const char *const ev[] = {
        "{\"timestamp\":\"2026-01-01T00:00:03.000000Z\",\"kind\":\"metric\",\"name\":\"g\","
        "\"metric_type\":\"gauge\",\"value\":3,\"labels\":{}}",
        "{\"timestamp\":\"2026-01-01T00:00:01.000000Z\",\"kind\":\"metric\",\"name\":\"g\","
        "\"metric_type\":\"gauge\",\"value\":1,\"labels\":{}}",
        "{\"timestamp\":\"2026-01-01T00:00:02.000000Z\",\"kind\":\"metric\",\"name\":\"g\","
        "\"metric_type\":\"gauge\",\"value\":\"+Inf\",\"labels\":{}}",
        "{\"timestamp\":\"2026-01-01T00:00:01.000000Z\",\"kind\":\"metric\",\"name\":\"g\","
        "\"metric_type\":\"gauge\",\"value\":\"NaN\",\"labels\":{}}",
        "{\"timestamp\":\"2026-01-01T00:00:04.000000Z\",\"kind\":\"metric\",\"name\":\"g\","
        "\"metric_type\":\"gauge\",\"value\":\"StaleNaN\",\"labels\":{}}",
    };
    for (size_t i = 0; i < N(ev); i++)
        add_ok(e, ev[i]);
    WriteRequest *r = request(e);
    const TimeSeries *g = series(r, "__name__=g");
    assert_int_equal(g->n_samples, 4);
    assert_int_equal(g->samples[0]->timestamp, MS);
    assert_true(isnan(g->samples[0]->value)); /* the later of the two at 00:00:01 */
    assert_true(isinf(g->samples[1]->value));
    assert_double_equal(g->samples[2]->value, 3, 0);
    uint64_t bits;
    memcpy(&bits, &g->samples[3]->value, 8);
    assert_true(bits == 0x7ff0000000000002ULL);
    prometheus__write_request__free_unpacked(r, NULL);
    prom_encoder_free(e);
}

/* Labels whose names sanitize alike are one label whose values are joined with ";"; empty values
 * and __name__ are no labels; external labels come last, where the series lacks them. */
static void test_labels(void **state)
{
    char *keys[] = {"region", "room"}, *vals[] = {"eu", "ignored"};
    struct cfg_strmap ext = {keys, vals, 2};
    const struct prom_encode_opts o = {&ext, buckets, 2, 100};
    struct prom_encoder *e = prom_encoder_new(&o);
    add_ok(e,
           "{" TS "\"name\":\"m\",\"metric_type\":\"gauge\",\"value\":1,\"labels\":"
           "{\"a.b\":\"1\",\"a-b\":\"2\",\"empty\":\"\",\"__name__\":\"x\",\"room\":\"r\\u0000\","
           "\"n\":null,\"arr\":[1,\"x\"]}}");
    WriteRequest *r = request(e);
    assert_int_equal(r->n_timeseries, 1);
    assert_string_equal(labels_of(r->timeseries[0]),
                        "__name__=m,a_b=1;2,arr=[1,\"x\"],region=eu,room=r\xef\xbf\xbd");
    prometheus__write_request__free_unpacked(r, NULL);
    prom_encoder_free(e);
}

/* What has no Prometheus form is refused with a reason, and nothing of it stays in the request. */
static void test_refused(void **state)
{
    static const struct {
        const char *ev, *why;
    } cases[] = {
        {"[1]", "not a JSON object"},
        {"{" TS "\"name\":\"m\"}", "without a numeric value"},
        {"{\"timestamp\":\"2026-01-01T00:00:01.000000Z\",\"kind\":\"log\",\"name\":\"m\"}",
         "not a metric event"},
        {"{\"kind\":\"metric\",\"name\":\"m\",\"value\":1}", "timestamp"},
        {"{" TS "\"metric_type\":\"gauge\",\"value\":1}", "without a name"},
        {"{" TS "\"name\":\"u\",\"metric_type\":\"set\",\"value\":\"bob\"}", "statsd set"},
        {"{" TS "\"name\":\"m\",\"metric_type\":\"bogus\",\"value\":1}", "bogus"},
        {"{" TS "\"name\":\"m\",\"metric_type\":\"gauge\",\"value\":\"high\"}", "numeric value"},
        {"{" TS "\"name\":\"m\",\"metric_type\":\"counter\",\"value\":1,\"temporality\":\"x\"}",
         "temporality"},
        {"{" TS "\"name\":\"m\",\"metric_type\":\"counter\",\"value\":\"NaN\",\"temporality\":"
         "\"delta\"}",
         "a delta of NaN"},
        {"{" TS "\"name\":\"m\",\"metric_type\":\"histogram\",\"count\":1,\"bucket_counts\":[1],"
         "\"explicit_bounds\":[1]}",
         "one more count"},
        {"{" TS
         "\"name\":\"m\",\"metric_type\":\"histogram\",\"count\":2,\"bucket_counts\":[1,0,1],"
         "\"explicit_bounds\":[2,1]}",
         "ascending"},
        {"{" TS "\"name\":\"m\",\"metric_type\":\"exponential_histogram\",\"count\":1,"
         "\"negative\":{\"offset\":0,\"bucket_counts\":[1]}}",
         "negative observations"},
        {"{" TS "\"name\":\"m\",\"metric_type\":\"summary\",\"count\":1,\"quantiles\":{\"x\":1}}",
         "quantile x"},
        {"{" TS "\"name\":\"m\",\"metric_type\":\"summary\",\"count\":1,\"temporality\":\"delta\"}",
         "delta summary"},
        {"{" TS "\"name\":\"m\",\"metric_type\":\"gauge\",\"value\":1,\"labels\":[1]}",
         "labels: not an object"},
    };
    struct prom_encoder *e = prom_encoder_new(&opts);
    int bad = 0;
    for (size_t i = 0; i < N(cases); i++) {
        const char *why = NULL;
        int rc = prom_encoder_add(e, cases[i].ev, strlen(cases[i].ev), &why);
        if (rc != -EINVAL || !why || !strstr(why, cases[i].why)) {
            print_error("%s: rc %d, why %s, want %s\n", cases[i].ev, rc, why ? why : "(none)",
                        cases[i].why);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
    assert_int_equal(prom_encoder_samples(e), 0);
    assert_int_equal(prom_encoder_state_series(e), 0);
    prom_encoder_free(e);
}

/* The table of delta series holds max_series: one more is refused, the others go on. */
static void test_max_series(void **state)
{
    const struct prom_encode_opts o = {NULL, buckets, 2, 3};
    struct prom_encoder *e = prom_encoder_new(&o);
    char ev[256];
    for (int i = 0; i < 4; i++) {
        snprintf(ev, sizeof(ev),
                 "{" TS "\"name\":\"c\",\"metric_type\":\"counter\",\"value\":1,\"temporality\":"
                 "\"delta\",\"labels\":{\"i\":\"%d\"}}",
                 i);
        const char *why = NULL;
        int rc = prom_encoder_add(e, ev, strlen(ev), &why);
        assert_int_equal(rc, i < 3 ? 0 : -EINVAL);
        if (i == 3)
            assert_non_null(strstr(why, "max_series (3)"));
    }
    /* A known series still counts; a cumulative one needs no room in the table. */
    add_ok(e, "{" TS "\"name\":\"c\",\"metric_type\":\"counter\",\"value\":1,\"temporality\":"
              "\"delta\",\"labels\":{\"i\":\"0\"}}");
    add_ok(e, "{" TS "\"name\":\"g\",\"metric_type\":\"gauge\",\"value\":1,\"labels\":{}}");
    assert_int_equal(prom_encoder_state_series(e), 3);
    prom_encoder_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metric_names),
        cmocka_unit_test(test_label_names),
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_deltas_become_cumulative),
        cmocka_unit_test(test_time_order_and_special_values),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_max_series),
    };
    return cmocka_run_group_tests_name("prom_encode", tests, NULL, NULL);
}
