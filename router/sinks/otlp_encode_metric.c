/* Metric events (the metric model of docs/metrics.md) into OTLP data points, the reverse of
 * collector/otlp_map.c's metrics: the event's metric_type picks the shape: a gauge (with a
 * temporality: an up-down counter, OTLP's non-monotonic sum; an `unknown` metric is a gauge, as
 * the OpenTelemetry specification reads Prometheus' untyped ones), a counter (a monotonic sum; a
 * statsd counter's value divided by statsd_sample_rate, as a statsd server counts it, and one
 * sent a negative increment is not monotonic), a histogram (with a count and buckets, or one
 * observation: a statsd timer, histogram or distribution, a delta histogram of that one value),
 * an exponential histogram or a summary. The labels become the point's attributes (statsd_type
 * is statsd's name of the type: not an attribute). A set has no
 * OTLP form without counting its distinct members over an interval, which this sink does not do:
 * such an event is refused. Which fields are the point's own depends on the shape; the others are
 * attributes. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/sinks/otlp_encode_int.h"

enum {
    MF_NAME,
    MF_UNIT,
    MF_DESCRIPTION,
    MF_TYPE,
    MF_START,
    MF_VALUE,
    MF_TEMPORALITY,
    MF_COUNT,
    MF_SUM,
    MF_MIN,
    MF_MAX,
    MF_BUCKETS,
    MF_BOUNDS,
    MF_SCALE,
    MF_ZERO_COUNT,
    MF_ZERO_THRESHOLD,
    MF_POSITIVE,
    MF_NEGATIVE,
    MF_QUANTILES,
    MF_RATE,
    MF_LABELS,
    MF_STATSD_TYPE,
    MF_FIELDS
};

static const char *const mf_names[MF_FIELDS] = {"name",
                                                "unit",
                                                "description",
                                                "metric_type",
                                                "start_time",
                                                "value",
                                                "temporality",
                                                "count",
                                                "sum",
                                                "min",
                                                "max",
                                                "bucket_counts",
                                                "explicit_bounds",
                                                "scale",
                                                "zero_count",
                                                "zero_threshold",
                                                "positive",
                                                "negative",
                                                "quantiles",
                                                "statsd_sample_rate",
                                                "labels",
                                                "statsd_type"};

/* The shapes a metric event can have, and the fields each one owns. */
enum shape {
    SH_GAUGE,
    SH_UPDOWN, /* a gauge with a temporality: a non-monotonic sum */
    SH_COUNTER,
    SH_HISTOGRAM,
    SH_EXPONENTIAL,
    SH_SUMMARY,
    SH_OBSERVATION, /* a histogram of one value (statsd ms, h, d) */
};

#define B(f) (1u << (f))
#define COMMON                                                                                     \
    (B(MF_NAME) | B(MF_UNIT) | B(MF_DESCRIPTION) | B(MF_TYPE) | B(MF_START) | B(MF_LABELS) |       \
     B(MF_STATSD_TYPE))
#define HISTO (B(MF_COUNT) | B(MF_SUM) | B(MF_MIN) | B(MF_MAX) | B(MF_TEMPORALITY))

static const unsigned shape_fields[] = {
    [SH_GAUGE] = COMMON | B(MF_VALUE),
    [SH_UPDOWN] = COMMON | B(MF_VALUE) | B(MF_TEMPORALITY),
    [SH_COUNTER] = COMMON | B(MF_VALUE) | B(MF_TEMPORALITY) | B(MF_RATE),
    [SH_HISTOGRAM] = COMMON | HISTO | B(MF_BUCKETS) | B(MF_BOUNDS),
    [SH_EXPONENTIAL] = COMMON | HISTO | B(MF_SCALE) | B(MF_ZERO_COUNT) | B(MF_ZERO_THRESHOLD) |
                       B(MF_POSITIVE) | B(MF_NEGATIVE),
    [SH_SUMMARY] = COMMON | B(MF_COUNT) | B(MF_SUM) | B(MF_QUANTILES),
    [SH_OBSERVATION] = COMMON | B(MF_VALUE) | B(MF_TEMPORALITY),
};

static int text_eq(const char *p, size_t n, const char *s)
{
    return strlen(s) == n && !memcmp(p, s, n);
}

/* The event's shape, from metric_type (and for a histogram, whether it has a count and buckets,
 * or one observation's value). */
static int shape_of(struct otlp_encoder *e, const int *at, enum shape *sh)
{
    int t = oe_val(e, at, MF_TYPE), v = oe_val(e, at, MF_VALUE);
    double d;
    const char *p;
    size_t n;
    if (t < 0) {
        if (v < 0 || oe_tok(e, v)->type != JSMN_PRIMITIVE || oe_double(e, v, &d))
            return oe_refuse(e, "metric event without metric_type and without a numeric value");
        *sh = SH_GAUGE;
        return 0;
    }
    if (oe_text(e, t, &p, &n))
        return oe_refuse(e, "metric event: metric_type: not a string");
    if (text_eq(p, n, "gauge"))
        *sh = oe_val(e, at, MF_TEMPORALITY) >= 0 ? SH_UPDOWN : SH_GAUGE;
    else if (text_eq(p, n, "unknown"))
        *sh = SH_GAUGE;
    else if (text_eq(p, n, "counter"))
        *sh = SH_COUNTER;
    else if (text_eq(p, n, "histogram") && oe_val(e, at, MF_COUNT) < 0 && v >= 0)
        *sh = SH_OBSERVATION;
    else if (text_eq(p, n, "histogram"))
        *sh = SH_HISTOGRAM;
    else if (text_eq(p, n, "exponential_histogram"))
        *sh = SH_EXPONENTIAL;
    else if (text_eq(p, n, "summary"))
        *sh = SH_SUMMARY;
    else if (text_eq(p, n, "set"))
        return oe_refuse(e, "metric event: a statsd set has no OTLP form (counting its distinct "
                            "members needs an aggregation this sink does not do)");
    else
        return oe_refuse(e,
                         "metric event: metric_type \"%.*s\" is not counter, gauge, histogram, "
                         "summary, exponential_histogram, unknown or set",
                         (int)(n > 64 ? 64 : n), p);
    return 0;
}

/* ---- values ---- */

static int uints(struct otlp_encoder *e, int v, uint64_t **out, size_t *n)
{
    const jsmntok_t *t = oe_tok(e, v);
    if (t->type != JSMN_ARRAY)
        return -1;
    *out = oe_alloc(e, (t->size ? (size_t)t->size : 1) * sizeof(**out));
    if (!*out)
        return -1;
    *n = 0;
    for (int c = v + 1, k = 0; k < t->size; k++, c = e->tok.next[c]) {
        if (oe_uint(e, c, &(*out)[(*n)++], 0))
            return -1;
    }
    return 0;
}

static int doubles(struct otlp_encoder *e, int v, double **out, size_t *n)
{
    const jsmntok_t *t = oe_tok(e, v);
    if (t->type != JSMN_ARRAY)
        return -1;
    *out = oe_alloc(e, (t->size ? (size_t)t->size : 1) * sizeof(**out));
    if (!*out)
        return -1;
    *n = 0;
    for (int c = v + 1, k = 0; k < t->size; k++, c = e->tok.next[c]) {
        if (oe_double(e, c, &(*out)[(*n)++]))
            return -1;
    }
    return 0;
}

static int int32_of(struct otlp_encoder *e, int v, int32_t *out)
{
    int64_t x;
    if (oe_int(e, v, &x) || x < INT32_MIN || x > INT32_MAX)
        return -1;
    *out = (int32_t)x;
    return 0;
}

/* A gauge's or sum's value: an integer (digits that fit 64 bits) as as_int, another number as
 * as_double, null as NaN; rate divides it (a sampled statsd counter), which makes it a double. */
static int number_value(struct otlp_encoder *e, int v, double rate, NumberDataPoint *p)
{
    int64_t x;
    if (v < 0)
        return oe_refuse(e, "metric event without a value");
    if (rate == 1 && oe_int(e, v, &x) == 0) {
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        p->as_int = x;
    } else if (oe_double(e, v, &p->as_double) == 0) {
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        p->as_double /= rate;
    } else {
        return oe_refuse(e, "metric event: value: not a number");
    }
    return 0;
}

/* An exponential histogram's positive or negative buckets: {"offset", "bucket_counts"}. */
static int buckets(struct otlp_encoder *e, int v, Buckets **out)
{
    if (oe_tok(e, v)->type != JSMN_OBJECT)
        return -1;
    Buckets *b = oe_alloc(e, sizeof(*b));
    if (!b)
        return -1;
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(b);
    for (int k = v + 1, m = 0; m < oe_tok(e, v)->size; m++, k = e->tok.next[k]) {
        if (jsontok_str_eq(&e->tok, k, "offset", 6) && int32_of(e, k + 1, &b->offset))
            return -1;
        if ((jsontok_str_eq(&e->tok, k, "bucket_counts", 13) ||
             jsontok_str_eq(&e->tok, k, "bucketCounts", 12)) &&
            uints(e, k + 1, &b->bucket_counts, &b->n_bucket_counts))
            return -1;
    }
    *out = b;
    return 0;
}

/* A summary's quantiles: {"<quantile>": value, ...}. */
static int quantiles(struct otlp_encoder *e, int v, SummaryDataPoint *p)
{
    const jsmntok_t *t = oe_tok(e, v);
    if (t->type != JSMN_OBJECT)
        return -1;
    p->quantile_values = oe_alloc(e, (t->size ? (size_t)t->size : 1) * sizeof(Quantile *));
    if (!p->quantile_values)
        return -1;
    for (int k = v + 1, m = 0; m < t->size; m++, k = e->tok.next[k]) {
        const char *s;
        size_t n;
        char q[64], *end;
        Quantile *qv = oe_alloc(e, sizeof(*qv));
        if (!qv || oe_text(e, k, &s, &n) || n == 0 || n >= sizeof(q))
            return -1;
        opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init(qv);
        memcpy(q, s, n);
        q[n] = '\0';
        qv->quantile = strtod(q, &end);
        if (*end || oe_double(e, k + 1, &qv->value))
            return -1;
        p->quantile_values[p->n_quantile_values++] = qv;
    }
    return 0;
}

/* ---- points ---- */

/* sum, min and max of a histogram: optional doubles, each a one-field oneof. */
#define OPTIONAL_DOUBLE(field, j, what, case_value)                                                \
    do {                                                                                           \
        int v_ = oe_val(e, at, j);                                                                 \
        if (v_ >= 0) {                                                                             \
            if (oe_double(e, v_, &p->field))                                                       \
                return oe_refuse(e, "%s metric event: " #field ": not a number", what);            \
            p->_##field##_case = case_value;                                                       \
        }                                                                                          \
    } while (0)

static int histogram_point(struct otlp_encoder *e, const int *at, HistogramDataPoint *p)
{
    int v;
    if ((v = oe_val(e, at, MF_COUNT)) < 0 || oe_uint(e, v, &p->count, 0))
        return oe_refuse(e, "histogram metric event: count: %s",
                         v < 0 ? "missing" : "not a non-negative integer");
    OPTIONAL_DOUBLE(sum, MF_SUM, "histogram",
                    OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
    OPTIONAL_DOUBLE(min, MF_MIN, "histogram",
                    OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN);
    OPTIONAL_DOUBLE(max, MF_MAX, "histogram",
                    OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX_MAX);
    if ((v = oe_val(e, at, MF_BUCKETS)) >= 0 && uints(e, v, &p->bucket_counts, &p->n_bucket_counts))
        return oe_refuse(e, "histogram metric event: bucket_counts: not an array of counts");
    if ((v = oe_val(e, at, MF_BOUNDS)) >= 0 &&
        doubles(e, v, &p->explicit_bounds, &p->n_explicit_bounds))
        return oe_refuse(e, "histogram metric event: explicit_bounds: not an array of numbers");
    return 0;
}

/* One statsd timer, distribution or histogram value: a histogram of that one value. */
static int observation_point(struct otlp_encoder *e, const int *at, HistogramDataPoint *p)
{
    int v = oe_val(e, at, MF_VALUE);
    double d;
    if (v < 0 || oe_tok(e, v)->type != JSMN_PRIMITIVE || oe_double(e, v, &d) || isnan(d))
        return oe_refuse(e, "metric event: value: not a number");
    p->count = 1;
    p->sum = p->min = p->max = d;
    p->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    p->_min_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN;
    p->_max_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX_MAX;
    if (!(p->bucket_counts = oe_alloc(e, sizeof(*p->bucket_counts))))
        return -ENOMEM;
    p->bucket_counts[0] = 1; /* no bounds: one bucket, (-inf, +inf) */
    p->n_bucket_counts = 1;
    return 0;
}

static int exponential_point(struct otlp_encoder *e, const int *at, ExpDataPoint *p)
{
    int v;
    const char *what = "exponential_histogram metric event";
    if ((v = oe_val(e, at, MF_COUNT)) < 0 || oe_uint(e, v, &p->count, 0))
        return oe_refuse(e, "%s: count: %s", what,
                         v < 0 ? "missing" : "not a non-negative integer");
    OPTIONAL_DOUBLE(sum, MF_SUM, "exponential_histogram",
                    OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM);
    OPTIONAL_DOUBLE(min, MF_MIN, "exponential_histogram",
                    OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MIN_MIN);
    OPTIONAL_DOUBLE(max, MF_MAX, "exponential_histogram",
                    OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MAX_MAX);
    if ((v = oe_val(e, at, MF_SCALE)) >= 0 && int32_of(e, v, &p->scale))
        return oe_refuse(e, "%s: scale: not a 32-bit integer", what);
    if ((v = oe_val(e, at, MF_ZERO_COUNT)) >= 0 && oe_uint(e, v, &p->zero_count, 0))
        return oe_refuse(e, "%s: zero_count: not a non-negative integer", what);
    if ((v = oe_val(e, at, MF_ZERO_THRESHOLD)) >= 0 && oe_double(e, v, &p->zero_threshold))
        return oe_refuse(e, "%s: zero_threshold: not a number", what);
    if ((v = oe_val(e, at, MF_POSITIVE)) >= 0 && buckets(e, v, &p->positive))
        return oe_refuse(e, "%s: positive: not {\"offset\", \"bucket_counts\"}", what);
    if ((v = oe_val(e, at, MF_NEGATIVE)) >= 0 && buckets(e, v, &p->negative))
        return oe_refuse(e, "%s: negative: not {\"offset\", \"bucket_counts\"}", what);
    return 0;
}

static int summary_point(struct otlp_encoder *e, const int *at, SummaryDataPoint *p)
{
    int v;
    if ((v = oe_val(e, at, MF_COUNT)) < 0 || oe_uint(e, v, &p->count, 0))
        return oe_refuse(e, "summary metric event: count: %s",
                         v < 0 ? "missing" : "not a non-negative integer");
    if ((v = oe_val(e, at, MF_SUM)) >= 0 && oe_double(e, v, &p->sum))
        return oe_refuse(e, "summary metric event: sum: not a number");
    if ((v = oe_val(e, at, MF_QUANTILES)) >= 0 && quantiles(e, v, p))
        return oe_refuse(e, "summary metric event: quantiles: not {\"<quantile>\": value, ...}");
    return 0;
}

/* ---- the metric ---- */

/* What the metric says of its points: name (required), unit, description, and for the shapes
 * that have one the temporality (1 delta, 2 cumulative; none: cumulative, the meaning a counter
 * has in Prometheus). */
static int metric_head(struct otlp_encoder *e, const int *at, Metric *m, int *temporality)
{
    int v;
    if ((v = oe_val(e, at, MF_NAME)) < 0 || !(m->name = oe_string(e, v)) || !oe_strlen(m->name))
        return oe_refuse(e, "metric event without a name");
    if ((v = oe_val(e, at, MF_UNIT)) >= 0 && !(m->unit = oe_string(e, v)))
        return oe_refuse(e, "metric event: unit: not a string");
    if ((v = oe_val(e, at, MF_DESCRIPTION)) >= 0 && !(m->description = oe_string(e, v)))
        return oe_refuse(e, "metric event: description: not a string");
    *temporality = 2;
    if ((v = oe_val(e, at, MF_TEMPORALITY)) >= 0) {
        *temporality = oe_text_is(e, v, "delta", 5)         ? 1
                       : oe_text_is(e, v, "cumulative", 10) ? 2
                                                            : -1;
        if (*temporality < 0)
            return oe_refuse(e, "metric event: temporality: not delta or cumulative");
    }
    return 0;
}

static int nonnegative(const NumberDataPoint *p)
{
    if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
        return p->as_int >= 0;
    return p->as_double >= 0;
}

/* Allocates a point of type T (its init function I) into var, with the fields every point has:
 * its time, its start time, its attributes. */
#define POINT(T, I, var)                                                                           \
    T *var = oe_alloc(e, sizeof(*var));                                                            \
    if (!var)                                                                                      \
        return -ENOMEM;                                                                            \
    I(var);                                                                                        \
    var->time_unix_nano = ev->time;                                                                \
    var->start_time_unix_nano = start;                                                             \
    if (oe_attrs(e, labels, &var->attributes, &var->n_attributes))                                 \
        return -ENOMEM;                                                                            \
    *point = var

/* The point of the event's shape, and its metric's container (a Sum for a counter, ...). */
static int shape_point(struct otlp_encoder *e, const struct oe_event *ev, const int *at,
                       enum shape sh, Metric *m, int temporality, uint64_t start, int labels,
                       void **point)
{
    double rate = 1;
    int v, rc;
    if ((v = oe_val(e, at, MF_RATE)) >= 0 && (oe_double(e, v, &rate) || !(rate > 0 && rate <= 1)))
        return oe_refuse(e, "metric event: statsd_sample_rate: not in (0, 1]");
    switch (sh) {
    case SH_GAUGE: {
        POINT(NumberDataPoint, opentelemetry__proto__metrics__v1__number_data_point__init, p);
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        if (!(m->gauge = oe_alloc(e, sizeof(*m->gauge))))
            return -ENOMEM;
        opentelemetry__proto__metrics__v1__gauge__init(m->gauge);
        return number_value(e, oe_val(e, at, MF_VALUE), 1, p);
    }
    case SH_COUNTER:
    case SH_UPDOWN: {
        POINT(NumberDataPoint, opentelemetry__proto__metrics__v1__number_data_point__init, p);
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        if (!(m->sum = oe_alloc(e, sizeof(*m->sum))))
            return -ENOMEM;
        opentelemetry__proto__metrics__v1__sum__init(m->sum);
        if ((rc = number_value(e, oe_val(e, at, MF_VALUE), rate, p)))
            return rc;
        m->sum->aggregation_temporality = temporality;
        /* A counter counts up, unless it was sent a negative increment (statsd allows it). */
        m->sum->is_monotonic = sh == SH_COUNTER && (temporality != 1 || nonnegative(p));
        return 0;
    }
    case SH_HISTOGRAM:
    case SH_OBSERVATION: {
        POINT(HistogramDataPoint, opentelemetry__proto__metrics__v1__histogram_data_point__init, p);
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
        if (!(m->histogram = oe_alloc(e, sizeof(*m->histogram))))
            return -ENOMEM;
        opentelemetry__proto__metrics__v1__histogram__init(m->histogram);
        m->histogram->aggregation_temporality = sh == SH_HISTOGRAM ? temporality : 1;
        return sh == SH_HISTOGRAM ? histogram_point(e, at, p) : observation_point(e, at, p);
    }
    case SH_EXPONENTIAL: {
        POINT(ExpDataPoint,
              opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init, p);
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
        if (!(m->exponential_histogram = oe_alloc(e, sizeof(*m->exponential_histogram))))
            return -ENOMEM;
        opentelemetry__proto__metrics__v1__exponential_histogram__init(m->exponential_histogram);
        m->exponential_histogram->aggregation_temporality = temporality;
        return exponential_point(e, at, p);
    }
    default: {
        POINT(SummaryDataPoint, opentelemetry__proto__metrics__v1__summary_data_point__init, p);
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
        if (!(m->summary = oe_alloc(e, sizeof(*m->summary))))
            return -ENOMEM;
        opentelemetry__proto__metrics__v1__summary__init(m->summary);
        return summary_point(e, at, p);
    }
    }
}

/* The identity of the point's metric, for the grouping: points that agree on all of it share one
 * Metric. */
static void metric_key(struct otlp_encoder *e, const Metric *m, int temporality, int monotonic)
{
    struct buf *k = &e->mkey;
    buf_reset(k);
    int rc = buf_append(k, m->name, oe_strlen(m->name)) | buf_putc(k, '\0') |
             buf_append(k, m->unit, oe_strlen(m->unit)) | buf_putc(k, '\0') |
             buf_append(k, m->description, oe_strlen(m->description)) |
             buf_printf(k, "%c%d/%d/%d", '\0', (int)m->data_case, temporality, monotonic);
    if (rc < 0)
        e->nomem = 1;
}

int oe_point(struct otlp_encoder *e, const struct oe_event *ev, Metric **metric, void **point)
{
    int at[MF_FIELDS], temporality = 0, v, rc;
    enum shape sh = SH_GAUGE;
    oe_own(e, mf_names, MF_FIELDS, at);
    if ((rc = shape_of(e, at, &sh)))
        return rc;
    /* Only the shape's own fields are the point's: the others are attributes (a summary's
     * temporality is an attribute that happens to have that name). */
    for (int j = 0; j < MF_FIELDS; j++) {
        if (!(shape_fields[sh] & B(j)))
            at[j] = -1;
    }
    /* The labels: one attribute per label, when they are an object. */
    int labels = -1;
    if (at[MF_LABELS] >= 0 && oe_tok(e, e->mem[at[MF_LABELS]].val)->type == JSMN_OBJECT)
        labels = at[MF_LABELS];
    for (int j = 0; j < MF_FIELDS; j++) {
        if (j != MF_LABELS)
            oe_take(e, at, j);
    }
    if (labels >= 0)
        e->mem[labels].taken = 1;
    Metric *m = oe_alloc(e, sizeof(*m));
    if (!m)
        return -ENOMEM;
    opentelemetry__proto__metrics__v1__metric__init(m);
    if ((rc = metric_head(e, at, m, &temporality)))
        return rc;
    uint64_t start = 0;
    if ((v = oe_val(e, at, MF_START)) >= 0 && oe_time(e, v, &start))
        return oe_refuse(e, "metric event: start_time: not an RFC 3339 time");
    rc = shape_point(e, ev, at, sh, m, temporality, start, labels, point);
    if (rc)
        return rc;
    int t = sh == SH_GAUGE || sh == SH_SUMMARY ? 0 : sh == SH_OBSERVATION ? 1 : temporality;
    metric_key(e, m, t,
               m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM
                   ? m->sum->is_monotonic
                   : 0);
    *metric = m;
    return 0;
}
