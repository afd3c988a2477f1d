/* An event of the metric model (docs/metrics.md) read and turned into the samples of Prometheus'
 * series: its fields, its labels (sanitized, stringified, sorted; job and instance from the
 * resource as the OpenTelemetry specification says; the sink's external labels), its name
 * (router/sinks/prom_name.h) and its values, deltas made cumulative through the encoder's table
 * of delta series (prom_series.c). Everything an event says is checked before anything of it is
 * added, so a refused event leaves the request and the table as they were. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"
#include "core/timeutil.h"
#include "router/sinks/prom_encode_int.h"
#include "router/sinks/prom_name.h"

#define MAX_LABELS  256
#define MAX_BUCKETS 4096

enum mtype { MT_GAUGE, MT_COUNTER, MT_UNKNOWN, MT_HISTOGRAM, MT_SUMMARY, MT_EXPONENTIAL };

/* The members of the event the encoder reads: value tokens, -1 when absent. */
enum {
    F_KIND,
    F_NAME,
    F_TYPE,
    F_VALUE,
    F_TEMPORALITY,
    F_UNIT,
    F_LABELS,
    F_TIMESTAMP,
    F_COUNT,
    F_SUM,
    F_BUCKETS,
    F_BOUNDS,
    F_QUANTILES,
    F_RATE,
    F_SERVICE,
    F_NAMESPACE,
    F_INSTANCE,
    F_SCALE,
    F_ZERO_COUNT,
    F_ZERO_THRESHOLD,
    F_POSITIVE,
    F_NEGATIVE,
    F_STATSD_TYPE,
    F_FIELDS
};

static const char *const field_names[F_FIELDS] = {"kind",
                                                  "name",
                                                  "metric_type",
                                                  "value",
                                                  "temporality",
                                                  "unit",
                                                  "labels",
                                                  "timestamp",
                                                  "count",
                                                  "sum",
                                                  "bucket_counts",
                                                  "explicit_bounds",
                                                  "quantiles",
                                                  "statsd_sample_rate",
                                                  "service",
                                                  "resource.service.namespace",
                                                  "resource.service.instance.id",
                                                  "scale",
                                                  "zero_count",
                                                  "zero_threshold",
                                                  "positive",
                                                  "negative",
                                                  "statsd_type"};

struct event {
    int f[F_FIELDS];
    enum mtype type;
    int delta; /* temporality delta */
    int64_t ts;
};

static int refuse(struct prom_encoder *e, const char **why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(struct prom_encoder *e, const char **why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->why, sizeof(e->why), fmt, ap);
    va_end(ap);
    *why = e->why;
    return -EINVAL;
}

struct prom_encoder *prom_encoder_new(const struct prom_encode_opts *opts)
{
    struct prom_encoder *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->o = opts;
    e->arena.keep = 16 << 20;
    return e;
}

void prom_encoder_free(struct prom_encoder *e)
{
    if (!e)
        return;
    jsontok_free(&e->tok);
    buf_free(&e->lab);
    buf_free(&e->name);
    buf_free(&e->key);
    buf_free(&e->text);
    buf_free(&e->keys);
    buf_free(&e->skeys);
    free(e->labels);
    free(e->dbl);
    free(e->series);
    free(e->samples);
    free(e->state);
    free(e->sdbl);
    pe_index_free(&e->sidx);
    pe_index_free(&e->stidx);
    arena_free(&e->arena);
    free(e);
}

/* ---- reading values ---- */

static const jsmntok_t *tk(const struct prom_encoder *e, int i)
{
    return &e->tok.tok[i];
}

/* The unescaped text of string token i (in e->text when it has escapes); -1 when not a string. */
static int text(struct prom_encoder *e, int i, const char **p, size_t *n)
{
    const jsmntok_t *t = tk(e, i);
    if (t->type != JSMN_STRING)
        return -1;
    *p = e->tok.js + t->start;
    *n = (size_t)(t->end - t->start);
    if (!e->tok.escapes || !memchr(*p, '\\', *n))
        return 0;
    buf_reset(&e->text);
    if (jsontok_unescape(*p, *n, &e->text))
        return -1;
    *p = e->text.data ? e->text.data : "";
    *n = e->text.len;
    return 0;
}

static int text_is(struct prom_encoder *e, int i, const char *s)
{
    const char *p;
    size_t n;
    return text(e, i, &p, &n) == 0 && n == strlen(s) && !memcmp(p, s, n);
}

/* A number: a JSON number, null (how the OTLP input writes NaN), or the model's strings for what
 * JSON has no number for. 0, or -1 when token i is none of those. */
static int number(struct prom_encoder *e, int i, double *v)
{
    const jsmntok_t *t = tk(e, i);
    const char *p = e->tok.js + t->start;
    size_t n = (size_t)(t->end - t->start);
    if (t->type == JSMN_STRING) {
        uint64_t stale = PE_STALE_NAN_BITS;
        if (n == 3 && !memcmp(p, "NaN", 3))
            *v = NAN;
        else if (n == 8 && !memcmp(p, "StaleNaN", 8))
            memcpy(v, &stale, sizeof(*v));
        else if ((n == 4 && !memcmp(p, "+Inf", 4)) || (n == 3 && !memcmp(p, "Inf", 3)))
            *v = INFINITY;
        else if (n == 4 && !memcmp(p, "-Inf", 4))
            *v = -INFINITY;
        else
            return -1;
        return 0;
    }
    if (t->type != JSMN_PRIMITIVE || n == 0 || n > 400)
        return -1;
    if (p[0] == 'n') {
        *v = NAN;
        return 0;
    }
    if (p[0] != '-' && (p[0] < '0' || p[0] > '9'))
        return -1;
    char tmp[401];
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    *v = strtod(tmp, NULL);
    return 0;
}

/* Room for need numbers in e->dbl. */
static int dbl_fit(struct prom_encoder *e, size_t need)
{
    if (need <= e->capdbl)
        return 0;
    size_t cap = e->capdbl ? e->capdbl : 64;
    while (cap < need)
        cap *= 2;
    double *d = realloc(e->dbl, cap * sizeof(*d));
    if (!d)
        return -ENOMEM;
    e->dbl = d;
    e->capdbl = cap;
    return 0;
}

/* An array of numbers into e->dbl from at, with room for as many more after them; their count
 * in *n. */
static int numbers(struct prom_encoder *e, int arr, size_t at, size_t *n)
{
    const jsmntok_t *t = tk(e, arr);
    if (t->type != JSMN_ARRAY || t->size > MAX_BUCKETS || dbl_fit(e, at + 2 * (size_t)t->size + 2))
        return -1;
    *n = 0;
    for (int c = arr + 1, k = 0; k < t->size; k++, c = e->tok.next[c]) {
        if (number(e, c, &e->dbl[at + (*n)++]))
            return -1;
    }
    return 0;
}

/* ---- labels ---- */

static int add_label(struct prom_encoder *e, const char *n, size_t nl, const char *v, size_t vl)
{
    if (e->nlabels == MAX_LABELS)
        return -E2BIG;
    if (e->nlabels == e->caplabels) {
        size_t cap = e->caplabels ? e->caplabels * 2 : 32;
        struct pe_label *l = realloc(e->labels, cap * sizeof(*l));
        if (!l)
            return -ENOMEM;
        e->labels = l;
        e->caplabels = cap;
    }
    struct pe_label *l = &e->labels[e->nlabels];
    l->n = (uint32_t)e->lab.len;
    if (prom_label_name(&e->lab, n, nl))
        return -ENOMEM;
    l->nl = (uint32_t)(e->lab.len - l->n);
    l->v = (uint32_t)e->lab.len;
    /* A NUL would end the string in protobuf (and the key): U+FFFD instead. */
    for (size_t i = 0; i < vl; i++) {
        int rc = v[i] ? buf_putc(&e->lab, v[i]) : buf_append(&e->lab, "\xef\xbf\xbd", 3);
        if (rc)
            return -ENOMEM;
    }
    l->vl = (uint32_t)(e->lab.len - l->v);
    /* An empty name or value is no label (Prometheus drops empty values), nor is __name__. */
    if (l->nl && l->vl && !(l->nl == 8 && !memcmp(e->lab.data + l->n, "__name__", 8)))
        e->nlabels++;
    return 0;
}

/* Whether the event has a label named n (after sanitizing) already. */
static int has_label(const struct prom_encoder *e, const char *n)
{
    size_t nl = strlen(n);
    for (size_t i = 0; i < e->nlabels; i++) {
        if (e->labels[i].nl == nl && !memcmp(e->lab.data + e->labels[i].n, n, nl))
            return 1;
    }
    return 0;
}

/* Takes the label named n out: le and quantile are a histogram's and a summary's own, on every
 * series they make (a label of that name would mix with them). */
static void drop_label(struct prom_encoder *e, const char *n)
{
    size_t nl = strlen(n), k = 0;
    for (size_t i = 0; i < e->nlabels; i++) {
        if (!(e->labels[i].nl == nl && !memcmp(e->lab.data + e->labels[i].n, n, nl)))
            e->labels[k++] = e->labels[i];
    }
    e->nlabels = k;
}

/* The value of a label as text: a string as it is, anything else as its JSON text. */
static int label_value(struct prom_encoder *e, int v, const char **p, size_t *n)
{
    if (tk(e, v)->type == JSMN_STRING)
        return text(e, v, p, n);
    size_t s = jsontok_text_start(&e->tok, v), end = jsontok_text_end(&e->tok, v);
    *p = e->tok.js + s;
    *n = end - s;
    if (tk(e, v)->type == JSMN_PRIMITIVE && **p == 'n')
        *n = 0; /* null: no value */
    return 0;
}

/* Sorts the labels by name (insertion sort: a few labels) and joins the values of names that
 * sanitizing made equal with ";" (the specification's rule), keeping the first one's place. */
static int sort_labels(struct prom_encoder *e)
{
    struct pe_label *l = e->labels;
    for (size_t i = 1; i < e->nlabels; i++) {
        struct pe_label x = l[i];
        size_t j = i;
        while (j > 0) {
            const struct pe_label *y = &l[j - 1];
            size_t m = y->nl < x.nl ? y->nl : x.nl;
            int c = memcmp(e->lab.data + y->n, e->lab.data + x.n, m);
            if (c < 0 || (c == 0 && y->nl <= x.nl))
                break;
            l[j] = l[j - 1];
            j--;
        }
        l[j] = x;
    }
    size_t k = 0;
    for (size_t i = 0; i < e->nlabels; i++) {
        if (k && l[k - 1].nl == l[i].nl &&
            !memcmp(e->lab.data + l[k - 1].n, e->lab.data + l[i].n, l[i].nl)) {
            /* name;value of both, appended at the end of e->lab as the new value */
            size_t at = e->lab.len;
            if (buf_reserve(&e->lab, l[k - 1].vl + l[i].vl + 1))
                return -ENOMEM;
            memmove(e->lab.data + at, e->lab.data + l[k - 1].v, l[k - 1].vl);
            e->lab.data[at + l[k - 1].vl] = ';';
            memmove(e->lab.data + at + l[k - 1].vl + 1, e->lab.data + l[i].v, l[i].vl);
            e->lab.len = at + l[k - 1].vl + 1 + l[i].vl;
            l[k - 1].v = (uint32_t)at;
            l[k - 1].vl = (uint32_t)(e->lab.len - at);
            continue;
        }
        l[k++] = l[i];
    }
    e->nlabels = k;
    return 0;
}

/* The event's labels: its `labels` object; job and instance from the resource when it has none
 * of its own (service.namespace/service.name and service.instance.id, as the specification
 * says); the sink's external labels it lacks. */
static int labels(struct prom_encoder *e, const struct event *ev, const char **why)
{
    buf_reset(&e->lab);
    e->nlabels = 0;
    int obj = ev->f[F_LABELS], rc;
    if (obj >= 0 && tk(e, obj)->type == JSMN_OBJECT) {
        for (int k = obj + 1, m = 0; m < tk(e, obj)->size; m++, k = e->tok.next[k + 1]) {
            const char *n, *v;
            size_t nl, vl;
            /* The key's text is used before the value's: text() reuses one buffer. */
            if (text(e, k, &n, &nl))
                return refuse(e, why, "prometheus: a label name does not read");
            char name[256];
            if (nl >= sizeof(name))
                return refuse(e, why, "prometheus: a label name is longer than 255 bytes");
            memcpy(name, n, nl);
            if (label_value(e, k + 1, &v, &vl))
                return refuse(e, why, "prometheus: label %.*s: the value does not read", (int)nl,
                              name);
            if ((rc = add_label(e, name, nl, v, vl)))
                return rc == -E2BIG ? refuse(e, why, "prometheus: more than %d labels", MAX_LABELS)
                                    : rc;
        }
    } else if (obj >= 0 && tk(e, obj)->type != JSMN_PRIMITIVE) {
        return refuse(e, why, "prometheus: labels: not an object");
    }
    const char *p;
    size_t n;
    if (ev->f[F_SERVICE] >= 0 && !has_label(e, "job") && text(e, ev->f[F_SERVICE], &p, &n) == 0) {
        char job[512];
        int len = 0;
        const char *ns;
        size_t nsl;
        if (ev->f[F_NAMESPACE] >= 0 && text(e, ev->f[F_NAMESPACE], &ns, &nsl) == 0 && nsl)
            len = snprintf(job, sizeof(job), "%.*s/", (int)(nsl > 250 ? 250 : nsl), ns);
        /* text() may have overwritten the service's unescaped text: read it again. */
        if (text(e, ev->f[F_SERVICE], &p, &n) == 0)
            len += snprintf(job + len, sizeof(job) - (size_t)len, "%.*s", (int)n, p);
        if ((rc = add_label(e, "job", 3, job, (size_t)len < sizeof(job) ? (size_t)len : 511)))
            return rc;
    }
    if (ev->f[F_INSTANCE] >= 0 && !has_label(e, "instance") &&
        text(e, ev->f[F_INSTANCE], &p, &n) == 0 && (rc = add_label(e, "instance", 8, p, n)))
        return rc;
    const struct cfg_strmap *x = e->o->external_labels;
    for (int i = 0; x && i < x->n; i++) {
        if (!has_label(e, x->key[i]) &&
            (rc = add_label(e, x->key[i], strlen(x->key[i]), x->val[i], strlen(x->val[i]))))
            return rc;
    }
    return sort_labels(e);
}

/* ---- the event ---- */

static int read_fields(struct prom_encoder *e, struct event *ev, const char **why)
{
    for (int j = 0; j < F_FIELDS; j++)
        ev->f[j] = -1;
    if (tk(e, 0)->type != JSMN_OBJECT)
        return refuse(e, why, "prometheus: not a JSON object");
    for (int k = 1, m = 0; m < tk(e, 0)->size; m++, k = e->tok.next[k + 1]) {
        const char *p = e->tok.js + tk(e, k)->start;
        size_t n = (size_t)(tk(e, k)->end - tk(e, k)->start);
        for (int j = 0; j < F_FIELDS; j++) {
            if (ev->f[j] < 0 && strlen(field_names[j]) == n && !memcmp(field_names[j], p, n)) {
                ev->f[j] = k + 1;
                break;
            }
        }
    }
    if (ev->f[F_KIND] < 0 || !text_is(e, ev->f[F_KIND], "metric"))
        return refuse(e, why, "prometheus: not a metric event (kind is not \"metric\")");
    const char *p;
    size_t n;
    if (ev->f[F_TIMESTAMP] < 0 || text(e, ev->f[F_TIMESTAMP], &p, &n) ||
        time_parse_rfc3339(p, n, &ev->ts))
        return refuse(e, why, "prometheus: metric event without an RFC 3339 timestamp");
    ev->ts = ev->ts >= 0 ? ev->ts / 1000000 : -((-ev->ts + 999999) / 1000000);
    if (ev->f[F_NAME] < 0 || text(e, ev->f[F_NAME], &p, &n) || n == 0)
        return refuse(e, why, "prometheus: metric event without a name");
    static const struct {
        const char *name;
        enum mtype t;
    } types[] = {{"gauge", MT_GAUGE},     {"counter", MT_COUNTER},
                 {"unknown", MT_UNKNOWN}, {"histogram", MT_HISTOGRAM},
                 {"summary", MT_SUMMARY}, {"exponential_histogram", MT_EXPONENTIAL}};
    ev->type = MT_GAUGE;
    if (ev->f[F_TYPE] >= 0) {
        if (text(e, ev->f[F_TYPE], &p, &n))
            return refuse(e, why, "prometheus: metric_type: not a string");
        size_t i = 0;
        while (i < sizeof(types) / sizeof(types[0]) &&
               !(strlen(types[i].name) == n && !memcmp(types[i].name, p, n)))
            i++;
        if (i == sizeof(types) / sizeof(types[0])) {
            if (n == 3 && !memcmp(p, "set", 3))
                return refuse(e, why,
                              "prometheus: a statsd set has no Prometheus form (counting its "
                              "distinct members needs an aggregation this sink does not do)");
            return refuse(e, why,
                          "prometheus: metric_type \"%.*s\" is not counter, gauge, histogram, "
                          "summary, exponential_histogram or unknown",
                          (int)(n > 64 ? 64 : n), p);
        }
        ev->type = types[i].t;
    }
    ev->delta = ev->f[F_TEMPORALITY] >= 0 && text_is(e, ev->f[F_TEMPORALITY], "delta");
    if (ev->f[F_TEMPORALITY] >= 0 && !ev->delta && !text_is(e, ev->f[F_TEMPORALITY], "cumulative"))
        return refuse(e, why, "prometheus: temporality: not delta or cumulative");
    return 0;
}

/* The Prometheus name of the event's metric into e->name. */
static int metric_name(struct prom_encoder *e, const struct event *ev)
{
    const char *p = "", *u = NULL;
    size_t n = 0, ul = 0;
    char unit[64];
    buf_reset(&e->name);
    if (ev->f[F_UNIT] >= 0 && text(e, ev->f[F_UNIT], &u, &ul) == 0 && ul < sizeof(unit)) {
        memcpy(unit, u, ul);
        u = unit;
    } else {
        ul = 0;
    }
    if (text(e, ev->f[F_NAME], &p, &n)) /* read_fields checked it: not reached */
        return -EINVAL;
    enum prom_name_kind kind = ev->type == MT_COUNTER                           ? PROM_NAME_COUNTER
                               : ev->type == MT_GAUGE || ev->type == MT_UNKNOWN ? PROM_NAME_GAUGE
                                                                                : PROM_NAME_OTHER;
    /* A gauge with a temporality is an up-down counter: no ratio, no _total. */
    if (ev->type == MT_GAUGE && ev->f[F_TEMPORALITY] >= 0)
        kind = PROM_NAME_OTHER;
    return prom_metric_name(&e->name, p, n, u, ul, kind);
}

size_t prom_format_float(double v, char *out)
{
    if (isnan(v))
        return (size_t)snprintf(out, 32, "NaN");
    if (isinf(v))
        return (size_t)snprintf(out, 32, v > 0 ? "+Inf" : "-Inf");
    struct buf b = {0};
    char tmp[40];
    size_t n = 0;
    if (jsonw_double(&b, v) == 0 && b.len < sizeof(tmp)) {
        memcpy(tmp, b.data, b.len);
        n = b.len;
    }
    buf_free(&b);
    memcpy(out, tmp, n);
    out[n] = '\0';
    return n;
}

/* A sample of the series named e->name[from..) (+ suffix), with extra=xval when extra. */
static int sample(struct prom_encoder *e, const char *suffix, const char *extra, const char *xval,
                  int64_t ts, double v)
{
    size_t at = e->name.len;
    if (buf_puts(&e->name, suffix))
        return -ENOMEM;
    int rc = pe_key(e, 0, extra, xval);
    e->name.len = at;
    return rc ? rc : pe_sample(e, ts, v);
}

/* The time of a point made from the state: never before the series' last one (a delta that
 * arrives late moves the total on at the time already sent, not back in time). */
static int64_t state_time(struct pe_state *s, int64_t ts)
{
    if (ts < s->last_ms)
        ts = s->last_ms;
    s->last_ms = ts;
    return ts;
}

static struct pe_state *state_of(struct prom_encoder *e, int hist, const double *bounds, size_t nb,
                                 const char **why, int *rc)
{
    int full;
    if ((*rc = pe_key(e, 0, NULL, NULL)))
        return NULL;
    struct pe_state *s = pe_state_get(e, hist, bounds, nb, &full);
    if (!s && full && !why)
        return NULL; /* only wanted if there is room (a statsd gauge's value) */
    if (!s)
        *rc = full ? refuse(e, why,
                            "prometheus: more than max_series (%lld) delta series to make "
                            "cumulative",
                            (long long)e->o->max_series)
                   : -ENOMEM;
    return s;
}

/* A counter, gauge or unknown: one sample; a delta adds to the series' total. */
static int number_point(struct prom_encoder *e, const struct event *ev, const char **why)
{
    double v, rate = 1;
    int rc;
    if (ev->f[F_VALUE] < 0 || number(e, ev->f[F_VALUE], &v))
        return refuse(e, why, "prometheus: metric event without a numeric value");
    if (ev->f[F_RATE] >= 0 && (number(e, ev->f[F_RATE], &rate) || !(rate > 0 && rate <= 1)))
        return refuse(e, why, "prometheus: statsd_sample_rate: not in (0, 1]");
    if (!ev->delta || ev->type == MT_UNKNOWN) {
        /* A statsd gauge's value is where a later "+N" line starts from: kept when there is
         * room (it needs none to be sent). */
        if (ev->type == MT_GAUGE && ev->f[F_STATSD_TYPE] >= 0 && isfinite(v)) {
            struct pe_state *s = state_of(e, 0, NULL, 0, NULL, &rc);
            if (s) {
                s->value = v;
                return pe_sample(e, state_time(s, ev->ts), v);
            }
            if (rc)
                return rc;
        }
        return sample(e, "", NULL, NULL, ev->ts, v);
    }
    if (!isfinite(v))
        return refuse(e, why, "prometheus: a delta of %s cannot be added to a total",
                      isnan(v) ? "NaN" : "infinity");
    struct pe_state *s = state_of(e, 0, NULL, 0, why, &rc);
    if (!s)
        return rc;
    s->value += ev->type == MT_COUNTER ? v / rate : v;
    return pe_sample(e, state_time(s, ev->ts), s->value);
}

/* The series of a histogram whose cumulative bucket counts are cum[0..nb] (the last one, +Inf,
 * is the count), with its sum when has_sum. */
static int histogram_series(struct prom_encoder *e, const double *bounds, const double *cum,
                            size_t nb, double sum, int has_sum, int64_t ts)
{
    char le[40];
    int rc;
    for (size_t i = 0; i <= nb; i++) {
        prom_format_float(i < nb ? bounds[i] : INFINITY, le);
        if ((rc = sample(e, "_bucket", "le", le, ts, cum[i])))
            return rc;
    }
    if (has_sum && (rc = sample(e, "_sum", NULL, NULL, ts, sum)))
        return rc;
    return sample(e, "_count", NULL, NULL, ts, cum[nb]);
}

/* One observation (statsd timers, histograms, distributions): counted into the series'
 * histogram with the sink's buckets. */
static int observation(struct prom_encoder *e, const struct event *ev, const char **why)
{
    double v;
    int rc;
    if (number(e, ev->f[F_VALUE], &v) || isnan(v))
        return refuse(e, why, "prometheus: histogram observation: value: not a number");
    size_t nb = e->o->nbuckets;
    struct pe_state *s = state_of(e, 1, e->o->buckets, nb, why, &rc);
    if (!s)
        return rc;
    double *c = pe_state_bounds(e, s) + nb;
    for (size_t i = 0; i <= nb; i++) {
        if (i == nb || v <= e->o->buckets[i])
            c[i]++; /* cumulative: every bucket from the first that holds it */
    }
    s->sum += v;
    return histogram_series(e, e->o->buckets, c, nb, s->sum, 1, state_time(s, ev->ts));
}

/* bounds[0..nb) and the per-bucket counts[0..nb] of an aggregated histogram: checked. */
static int check_buckets(const double *bounds, size_t nb, const double *counts, size_t nc)
{
    if (nc != nb + 1)
        return -1;
    for (size_t i = 0; i < nb; i++) {
        if (isnan(bounds[i]) || (i && !(bounds[i] > bounds[i - 1])))
            return -1;
    }
    for (size_t i = 0; i < nc; i++) {
        if (!(counts[i] >= 0) || isinf(counts[i]))
            return -1;
    }
    return 0;
}

/* A histogram given by bounds and per-bucket counts (e->dbl: nb bounds, nb + 1 counts): its
 * series, cumulative (a delta adds to the series' own). */
static int bucket_point(struct prom_encoder *e, const struct event *ev, size_t nb, double count,
                        double sum, int has_sum, const char **why)
{
    double *bounds = e->dbl, *c = e->dbl + nb;
    int rc;
    for (size_t i = 1; i <= nb; i++)
        c[i] += c[i - 1];
    if (nb == 0 || c[nb] < count)
        c[nb] = count; /* +Inf is the count (bucket_counts may be left out) */
    if (!ev->delta)
        return histogram_series(e, bounds, c, nb, sum, has_sum, ev->ts);
    struct pe_state *s = state_of(e, 1, bounds, nb, why, &rc);
    if (!s)
        return rc;
    double *sc = pe_state_bounds(e, s) + nb;
    for (size_t i = 0; i <= nb; i++)
        sc[i] += c[i];
    s->sum += has_sum ? sum : 0;
    return histogram_series(e, bounds, sc, nb, s->sum, has_sum, state_time(s, ev->ts));
}

static int histogram(struct prom_encoder *e, const struct event *ev, const char **why)
{
    double count = 0, sum = 0;
    size_t nb = 0, nc = 0;
    if (ev->f[F_COUNT] < 0 && ev->f[F_VALUE] >= 0)
        return observation(e, ev, why);
    if (ev->f[F_COUNT] < 0 || number(e, ev->f[F_COUNT], &count) || !(count >= 0))
        return refuse(e, why, "prometheus: histogram: count: missing or not a number");
    int has_sum = ev->f[F_SUM] >= 0;
    if (has_sum && number(e, ev->f[F_SUM], &sum))
        return refuse(e, why, "prometheus: histogram: sum: not a number");
    if (ev->f[F_BOUNDS] >= 0 && numbers(e, ev->f[F_BOUNDS], 0, &nb))
        return refuse(e, why, "prometheus: histogram: explicit_bounds: not an array of numbers");
    if (ev->f[F_BUCKETS] >= 0) {
        if (numbers(e, ev->f[F_BUCKETS], nb, &nc))
            return refuse(e, why, "prometheus: histogram: bucket_counts: not an array of counts");
    } else {
        if (dbl_fit(e, 2 * nb + 1))
            return -ENOMEM;
        memset(e->dbl + nb, 0, (nb + 1) * sizeof(double));
        nc = nb + 1;
    }
    if (check_buckets(e->dbl, nb, e->dbl + nb, nc))
        return refuse(e, why,
                      "prometheus: histogram: bucket_counts must have one more count than "
                      "explicit_bounds has bounds, the bounds ascending");
    return bucket_point(e, ev, nb, count, sum, has_sum, why);
}

/* An exponential histogram's positive or negative buckets: offset and counts (into e->dbl from
 * at). */
static int exp_buckets(struct prom_encoder *e, int obj, size_t at, int64_t *offset, size_t *n)
{
    *offset = 0;
    *n = 0;
    if (obj < 0)
        return 0;
    if (tk(e, obj)->type != JSMN_OBJECT)
        return -1;
    int o = jsontok_find(&e->tok, obj, "offset", 6),
        c = jsontok_find(&e->tok, obj, "bucket_counts", 13);
    double d;
    if (o >= 0) {
        if (number(e, o, &d) || d != floor(d) || fabs(d) > 1e6)
            return -1;
        *offset = (int64_t)d;
    }
    return c >= 0 ? numbers(e, c, at, n) : 0;
}

/* An exponential histogram as a classic one: bucket i of scale s holds (base^i, base^(i+1)],
 * base = 2^(2^-s), so its upper bound is 2^((i+1) * 2^-s); the zero bucket's is zero_threshold.
 * Negative observations have no place among classic buckets: refused. */
static int exponential(struct prom_encoder *e, const struct event *ev, const char **why)
{
    double count = 0, sum = 0, scale = 0, zc = 0, zt = 0;
    int64_t off, noff;
    size_t np, nn;
    if (ev->f[F_COUNT] < 0 || number(e, ev->f[F_COUNT], &count) || !(count >= 0))
        return refuse(e, why, "prometheus: exponential_histogram: count: missing or not a number");
    int has_sum = ev->f[F_SUM] >= 0;
    if ((has_sum && number(e, ev->f[F_SUM], &sum)) ||
        (ev->f[F_SCALE] >= 0 && (number(e, ev->f[F_SCALE], &scale) || scale != floor(scale) ||
                                 scale < -10 || scale > 20)) ||
        (ev->f[F_ZERO_COUNT] >= 0 && (number(e, ev->f[F_ZERO_COUNT], &zc) || !(zc >= 0))) ||
        (ev->f[F_ZERO_THRESHOLD] >= 0 && (number(e, ev->f[F_ZERO_THRESHOLD], &zt) || !(zt >= 0))))
        return refuse(e, why,
                      "prometheus: exponential_histogram: sum, scale, zero_count or "
                      "zero_threshold is not a number it can be");
    if (exp_buckets(e, ev->f[F_NEGATIVE], 0, &noff, &nn))
        return refuse(e, why, "prometheus: exponential_histogram: negative: not buckets");
    for (size_t i = 0; i < nn; i++) {
        if (e->dbl[i] != 0)
            return refuse(e, why,
                          "prometheus: an exponential histogram with negative observations has "
                          "no classic Prometheus histogram form");
    }
    /* The counts go after the bounds: np + 1 bounds at most (the zero bucket's and one each). */
    if (ev->f[F_POSITIVE] >= 0) {
        int c = tk(e, ev->f[F_POSITIVE])->type == JSMN_OBJECT
                    ? jsontok_find(&e->tok, ev->f[F_POSITIVE], "bucket_counts", 13)
                    : -1;
        np = c >= 0 && tk(e, c)->type == JSMN_ARRAY ? (size_t)tk(e, c)->size : 0;
    } else {
        np = 0;
    }
    size_t nb = np + 1;
    if (exp_buckets(e, ev->f[F_POSITIVE], nb + 1, &off, &np))
        return refuse(e, why, "prometheus: exponential_histogram: positive: not buckets");
    double *bounds = e->dbl, *counts = e->dbl + nb;
    /* counts[1..np] hold the positive buckets already (read at nb + 1); the zero bucket first. */
    bounds[0] = zt;
    counts[0] = zc;
    for (size_t i = 0; i < np; i++)
        bounds[i + 1] = exp2((double)(off + (int64_t)i + 1) * exp2(-scale));
    counts[nb] = 0;
    for (size_t i = 1; i < nb; i++) {
        if (!(bounds[i] > bounds[i - 1]))
            return refuse(e, why,
                          "prometheus: exponential_histogram: its buckets do not fit above "
                          "zero_threshold");
    }
    return bucket_point(e, ev, nb, count, sum, has_sum, why);
}

static int summary(struct prom_encoder *e, const struct event *ev, const char **why)
{
    double count = 0, sum = 0;
    int rc, q = ev->f[F_QUANTILES];
    if (ev->f[F_COUNT] < 0 || number(e, ev->f[F_COUNT], &count) ||
        (ev->f[F_SUM] >= 0 && number(e, ev->f[F_SUM], &sum)))
        return refuse(e, why, "prometheus: summary: count or sum: missing or not a number");
    if (q >= 0 && tk(e, q)->type != JSMN_OBJECT)
        return refuse(e, why, "prometheus: summary: quantiles: not an object");
    if (ev->delta)
        return refuse(e, why, "prometheus: a delta summary has no Prometheus form");
    /* Checked whole before any sample is added. */
    for (int k = q + 1, m = 0; q >= 0 && m < tk(e, q)->size; m++, k = e->tok.next[k + 1]) {
        double v;
        const char *p;
        size_t n;
        char *end, qs[64];
        if (text(e, k, &p, &n) || n == 0 || n >= sizeof(qs) || number(e, k + 1, &v))
            return refuse(e, why, "prometheus: summary: quantiles: not {\"<quantile>\": value}");
        memcpy(qs, p, n);
        qs[n] = '\0';
        if (!isfinite(strtod(qs, &end)) || *end)
            return refuse(e, why, "prometheus: summary: quantile %s is not a number", qs);
    }
    for (int k = q + 1, m = 0; q >= 0 && m < tk(e, q)->size; m++, k = e->tok.next[k + 1]) {
        double v = 0;
        const char *p = "";
        size_t n = 0;
        char qs[64], label[40];
        if (text(e, k, &p, &n) || n >= sizeof(qs)) /* checked above: not reached */
            continue;
        memcpy(qs, p, n);
        qs[n] = '\0';
        number(e, k + 1, &v);
        prom_format_float(strtod(qs, NULL), label);
        if ((rc = sample(e, "", "quantile", label, ev->ts, v)))
            return rc;
    }
    if (ev->f[F_SUM] >= 0 && (rc = sample(e, "_sum", NULL, NULL, ev->ts, sum)))
        return rc;
    return sample(e, "_count", NULL, NULL, ev->ts, count);
}

int prom_encoder_add(struct prom_encoder *e, const char *json, size_t len, const char **why)
{
    struct event ev;
    int rc = jsontok_parse_trusted(&e->tok, json, len);
    if (rc)
        return rc == -ENOMEM ? rc : refuse(e, why, "prometheus: not a JSON object");
    if ((rc = read_fields(e, &ev, why)) || (rc = labels(e, &ev, why)) || (rc = metric_name(e, &ev)))
        return rc;
    size_t nsamples = e->nsamples;
    if (ev.type == MT_HISTOGRAM || ev.type == MT_EXPONENTIAL)
        drop_label(e, "le");
    else if (ev.type == MT_SUMMARY)
        drop_label(e, "quantile");
    switch (ev.type) {
    case MT_HISTOGRAM:
        rc = histogram(e, &ev, why);
        break;
    case MT_EXPONENTIAL:
        rc = exponential(e, &ev, why);
        break;
    case MT_SUMMARY:
        rc = summary(e, &ev, why);
        break;
    default:
        rc = number_point(e, &ev, why);
        break;
    }
    if (rc && e->nsamples != nsamples) {
        /* Out of memory half way: what this event added goes (its series' counts with it; a
         * series left without samples is not written). */
        for (size_t i = nsamples; i < e->nsamples; i++)
            e->series[e->samples[i].series].nsamples--;
        e->nsamples = nsamples;
    }
    return rc;
}
