/* Unit tests of the remote write decoder (collector/remote_write.h). What must hold: each sample
 * of a WriteRequest becomes one metric event of the model (name, type from the metadata the
 * decoder has seen, value with NaN, the infinities and the staleness marker as the model's
 * strings, the sample's time, the labels but __name__, empty ones left out); samples that cannot
 * be events are handed over as invalid with the reason; a body that is not snappy, not a
 * WriteRequest, or that decompresses past the limit is refused with a reason and nothing handed
 * over. Requests are built with protobuf-c and compressed with core/snap.h. */
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

#include "collector/remote_write.h"
#include "core/snap.h"

#include "prometheus/remote.pb-c.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct got {
    struct buf events, invalid;
    int n;
};

static void on_event(void *ud, const char *json, size_t len)
{
    struct got *g = ud;
    buf_append(&g->events, json, len);
    buf_putc(&g->events, '\n');
    g->n++;
}

static void on_invalid(void *ud, const char *why, const char *raw, size_t len)
{
    struct got *g = ud;
    buf_printf(&g->invalid, "%s: %.*s\n", why, (int)len, raw);
    g->n++;
}

static struct recv_time rt(void)
{
    struct recv_time r;
    r.ns = 1767225600123456000LL;
    time_format_rfc3339(r.ns, r.text);
    return r;
}

/* Decodes the request r (packed and compressed here); returns what rw_decode returned. */
static int decode(struct rw_decoder *d, const Prometheus__WriteRequest *r, size_t max,
                  struct got *g, const char **err)
{
    struct buf pb = {0}, z = {0};
    size_t n = prometheus__write_request__get_packed_size(r);
    assert_int_equal(buf_reserve(&pb, n + 1), 0);
    pb.len = prometheus__write_request__pack(r, (uint8_t *)pb.data);
    assert_int_equal(snap_compress(pb.data, pb.len, &z), 0);
    struct recv_time t = rt();
    const struct rw_out out = {on_event, on_invalid, g};
    memset(g, 0, sizeof(*g));
    int rc = rw_decode(d, z.data, z.len, max, &t, &out, err);
    buf_putc(&g->events, '\0');
    buf_putc(&g->invalid, '\0');
    buf_free(&pb);
    buf_free(&z);
    return rc;
}

static void got_free(struct got *g)
{
    buf_free(&g->events);
    buf_free(&g->invalid);
}

#define LABEL(n, v)                                                                                \
    {                                                                                              \
        PROTOBUF_C_MESSAGE_INIT(&prometheus__label__descriptor), (char *)(n), (char *)(v)          \
    }
#define SAMPLE(v, t)                                                                               \
    {                                                                                              \
        PROTOBUF_C_MESSAGE_INIT(&prometheus__sample__descriptor), (v), (t)                         \
    }

static void test_samples_and_metadata(void **state)
{
    Prometheus__Label l1[] = {LABEL("__name__", "reqs_total"), LABEL("code", "200"),
                              LABEL("empty", ""), LABEL("job", "api")};
    Prometheus__Label *lp1[] = {&l1[0], &l1[1], &l1[2], &l1[3]};
    Prometheus__Sample s1[] = {SAMPLE(5, 1700000000000), SAMPLE(7.5, 1700000001000)};
    Prometheus__Sample *sp1[] = {&s1[0], &s1[1]};
    Prometheus__Label l2[] = {LABEL("__name__", "temp")};
    Prometheus__Label *lp2[] = {&l2[0]};
    uint64_t stale_bits = 0x7ff0000000000002ULL;
    double stale;
    memcpy(&stale, &stale_bits, 8);
    Prometheus__Sample s2[] = {SAMPLE(NAN, 1), SAMPLE(stale, 2), SAMPLE(-INFINITY, 3)};
    Prometheus__Sample *sp2[] = {&s2[0], &s2[1], &s2[2]};
    Prometheus__TimeSeries ts[2];
    prometheus__time_series__init(&ts[0]);
    prometheus__time_series__init(&ts[1]);
    ts[0].n_labels = 4, ts[0].labels = lp1, ts[0].n_samples = 2, ts[0].samples = sp1;
    ts[1].n_labels = 1, ts[1].labels = lp2, ts[1].n_samples = 3, ts[1].samples = sp2;
    Prometheus__TimeSeries *tsp[] = {&ts[0], &ts[1]};
    Prometheus__WriteRequest r = PROMETHEUS__WRITE_REQUEST__INIT;
    r.n_timeseries = 2;
    r.timeseries = tsp;
    struct rw_decoder *d = rw_decoder_new("rw");
    struct got g;
    const char *err;
    /* Without metadata: unknown. */
    assert_int_equal(decode(d, &r, 1 << 20, &g, &err), 5);
    assert_string_equal(
        g.events.data,
        "{\"timestamp\":\"2023-11-14T22:13:20.000000Z\",\"kind\":\"metric\",\"source\":\"rw\","
        "\"name\":\"reqs_total\",\"metric_type\":\"unknown\",\"value\":5,\"labels\":{\"code\":"
        "\"200\",\"job\":\"api\"},\"received_at\":\"2026-01-01T00:00:00.123456Z\"}\n"
        "{\"timestamp\":\"2023-11-14T22:13:21.000000Z\",\"kind\":\"metric\",\"source\":\"rw\","
        "\"name\":\"reqs_total\",\"metric_type\":\"unknown\",\"value\":7.5,\"labels\":{\"code\":"
        "\"200\",\"job\":\"api\"},\"received_at\":\"2026-01-01T00:00:00.123456Z\"}\n"
        "{\"timestamp\":\"1970-01-01T00:00:00.001000Z\",\"kind\":\"metric\",\"source\":\"rw\","
        "\"name\":\"temp\",\"metric_type\":\"unknown\",\"value\":\"NaN\",\"labels\":{},"
        "\"received_at\":\"2026-01-01T00:00:00.123456Z\"}\n"
        "{\"timestamp\":\"1970-01-01T00:00:00.002000Z\",\"kind\":\"metric\",\"source\":\"rw\","
        "\"name\":\"temp\",\"metric_type\":\"unknown\",\"value\":\"StaleNaN\",\"labels\":{},"
        "\"received_at\":\"2026-01-01T00:00:00.123456Z\"}\n"
        "{\"timestamp\":\"1970-01-01T00:00:00.003000Z\",\"kind\":\"metric\",\"source\":\"rw\","
        "\"name\":\"temp\",\"metric_type\":\"unknown\",\"value\":\"-Inf\",\"labels\":{},"
        "\"received_at\":\"2026-01-01T00:00:00.123456Z\"}\n");
    got_free(&g);
    /* Metadata, in a request of its own as Prometheus sends it, types what follows; a counter
     * family named without _total types its _total series. */
    Prometheus__MetricMetadata m[2];
    prometheus__metric_metadata__init(&m[0]);
    prometheus__metric_metadata__init(&m[1]);
    m[0].type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER;
    m[0].metric_family_name = "reqs";
    m[1].type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE;
    m[1].metric_family_name = "temp";
    Prometheus__MetricMetadata *mp[] = {&m[0], &m[1]};
    Prometheus__WriteRequest meta = PROMETHEUS__WRITE_REQUEST__INIT;
    meta.n_metadata = 2;
    meta.metadata = mp;
    assert_int_equal(decode(d, &meta, 1 << 20, &g, &err), 0);
    got_free(&g);
    assert_int_equal(decode(d, &r, 1 << 20, &g, &err), 5);
    assert_non_null(strstr(g.events.data, "\"name\":\"reqs_total\",\"metric_type\":\"counter\","
                                          "\"value\":5,\"temporality\":\"cumulative\","));
    assert_non_null(strstr(g.events.data, "\"name\":\"temp\",\"metric_type\":\"gauge\","));
    got_free(&g);
    rw_decoder_free(d);
}

static void test_invalid_samples(void **state)
{
    Prometheus__Label nn[] = {LABEL("job", "x")};
    Prometheus__Label *nnp[] = {&nn[0]};
    Prometheus__Label dup[] = {LABEL("__name__", "a"), LABEL("b", "1"), LABEL("b", "2")};
    Prometheus__Label *dupp[] = {&dup[0], &dup[1], &dup[2]};
    Prometheus__Label ok[] = {LABEL("__name__", "ok")};
    Prometheus__Label *okp[] = {&ok[0]};
    Prometheus__Sample s[] = {SAMPLE(1, 1), SAMPLE(2, -1), SAMPLE(3, 2)};
    Prometheus__Sample *sp[] = {&s[0], &s[1], &s[2]};
    Prometheus__Histogram h;
    prometheus__histogram__init(&h);
    Prometheus__Histogram *hp[] = {&h};
    Prometheus__TimeSeries ts[3];
    for (int i = 0; i < 3; i++)
        prometheus__time_series__init(&ts[i]);
    ts[0].n_labels = 1, ts[0].labels = nnp, ts[0].n_samples = 1, ts[0].samples = sp;
    ts[1].n_labels = 3, ts[1].labels = dupp, ts[1].n_samples = 1, ts[1].samples = sp;
    ts[2].n_labels = 1, ts[2].labels = okp, ts[2].n_samples = 3, ts[2].samples = sp;
    ts[2].n_histograms = 1, ts[2].histograms = hp;
    Prometheus__TimeSeries *tsp[] = {&ts[0], &ts[1], &ts[2]};
    Prometheus__WriteRequest r = PROMETHEUS__WRITE_REQUEST__INIT;
    r.n_timeseries = 3;
    r.timeseries = tsp;
    struct rw_decoder *d = rw_decoder_new("rw");
    struct got g;
    const char *err;
    assert_int_equal(decode(d, &r, 1 << 20, &g, &err), 6);
    assert_string_equal(
        g.invalid.data,
        "remote write: a series without a __name__ label: {job=\"x\"}\n"
        "remote write: a label name given twice in one series: {__name__=\"a\",b=\"1\",b=\"2\"}\n"
        "remote write: a sample's timestamp is out of range: {__name__=\"ok\"}\n"
        "remote write: native histograms are not taken (send classic histograms: the _bucket, "
        "_sum and _count series): {__name__=\"ok\"}\n");
    assert_non_null(strstr(g.events.data, "\"value\":3,"));
    got_free(&g);
    rw_decoder_free(d);
}

static void test_refused_bodies(void **state)
{
    struct rw_decoder *d = rw_decoder_new("rw");
    struct recv_time t = rt();
    struct got g = {0};
    const struct rw_out out = {on_event, on_invalid, &g};
    const char *err;
    assert_int_equal(rw_decode(d, "plain", 5, 1 << 20, &t, &out, &err), -EINVAL);
    assert_string_equal(err, "remote write: the body is not snappy-compressed (block format) data");
    struct buf z = {0};
    assert_int_equal(snap_compress("\xff\xff\xff\xff", 4, &z), 0);
    assert_int_equal(rw_decode(d, z.data, z.len, 1 << 20, &t, &out, &err), -EINVAL);
    assert_non_null(strstr(err, "not a protobuf WriteRequest"));
    /* The header says 100 MiB: refused before anything is decompressed. */
    assert_int_equal(rw_decode(d, "\x80\x80\x80\x32", 4, 8 << 20, &t, &out, &err), -E2BIG);
    assert_string_equal(err,
                        "remote write: the body decompresses to 104857600 bytes, over max_body "
                        "(8388608)");
    assert_int_equal(g.n, 0);
    buf_free(&z);
    got_free(&g);
    rw_decoder_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples_and_metadata),
        cmocka_unit_test(test_invalid_samples),
        cmocka_unit_test(test_refused_bodies),
    };
    return cmocka_run_group_tests_name("remote_write", tests, NULL, NULL);
}
