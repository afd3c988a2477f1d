#include "collector/format_statsd.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "collector/collector.h"
#include "collector/format.h"
#include "core/jsonw.h"
#include "core/timeutil.h"
#include "core/utf8.h"

/* Each statsd type as the metric model (docs/metrics.md) has it: counters are deltas (what was
 * counted since the last line), timers, histograms and distributions one observation each (a delta
 * histogram of one value), sets a member. statsd_type keeps the line's type: the observations'
 * kind, and for gauges what a sink needs to apply a later "+N" to the value the line set. */
static const struct {
    const char *code;
    const char *type;        /* the model's metric_type */
    const char *statsd;      /* statsd_type */
    const char *temporality; /* "delta", or NULL for none */
} types[] = {
    {"c", "counter", "counter", "delta"},
    {"g", "gauge", "gauge", NULL},
    {"ms", "histogram", "timer", "delta"},
    {"h", "histogram", "histogram", "delta"},
    {"s", "set", "set", NULL},
    {"d", "histogram", "distribution", "delta"},
};

/* A number in the strict sense statsd senders use: [+-]digits[.digits][e[+-]digits]. No hex,
 * no inf or nan, nothing strtod would take that a statsd client never sends. */
static int number(const char *s, size_t n, double *v)
{
    char tmp[64];
    size_t i = 0;
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    if (s[i] == '+' || s[i] == '-')
        i++;
    size_t d0 = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t digits = i - d0;
    if (i < n && s[i] == '.') {
        i++;
        size_t f0 = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        digits += i - f0;
    }
    if (digits == 0)
        return -1;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e0 = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == e0)
            return -1;
    }
    if (i != n)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *v = strtod(tmp, NULL);
    return isfinite(*v) ? 0 : -1;
}

/* "#k:v,flag,k:w" -> "labels":{"k":["v","w"],"flag":true}: a repeated key keeps every value
 * (docs/metrics.md: a sink that needs one string per label joins them). No tags: "labels":{}. */
static void put_labels(struct buf *o, const char *s, size_t n)
{
    json_t *tags = json_object();
    struct buf k = {0};
    for (size_t i = 0; i < n;) {
        const char *comma = memchr(s + i, ',', n - i);
        size_t e = comma ? (size_t)(comma - s) : n;
        const char *t = s + i;
        size_t tn = e - i;
        if (tn) {
            const char *colon = memchr(t, ':', tn);
            size_t kn = colon ? (size_t)(colon - t) : tn;
            buf_reset(&k);
            buf_append(&k, t, kn);
            buf_putc(&k, '\0');
            json_t *v = colon ? json_stringn(colon + 1, tn - kn - 1) : json_true();
            json_t *old = json_object_get(tags, k.data);
            if (!old) {
                json_object_set_new(tags, k.data, v);
            } else {
                if (!json_is_array(old)) {
                    json_t *arr = json_array();
                    json_array_append(arr, old);
                    json_object_set_new(tags, k.data, arr);
                    old = arr;
                }
                json_array_append_new(old, v);
            }
        }
        i = e + 1;
    }
    char *text = json_dumps(tags, JSON_COMPACT);
    buf_puts(o, ",\"labels\":");
    buf_puts(o, text ? text : "{}");
    free(text);
    json_decref(tags);
    buf_free(&k);
}

int statsd_to_event(const char *line, size_t len, const char *source, const struct recv_time *rt,
                    struct buf *out, const char **err)
{
    size_t start = out->len;
    if (utf8_check(line, len) != len || memchr(line, '\0', len)) {
        *err = "invalid UTF-8 or NUL in statsd line";
        return -EINVAL;
    }
    const char *colon = memchr(line, ':', len);
    const char *bar = colon ? memchr(colon, '|', len - (size_t)(colon - line)) : NULL;
    if (!colon || colon == line || !bar) {
        *err = "not a statsd line (name:value|type)";
        return -EINVAL;
    }
    const char *name = line;
    size_t nlen = (size_t)(colon - line);
    const char *val = colon + 1;
    size_t vlen = (size_t)(bar - val);
    /* Sections after the value: |type |@rate |#tags |Tts |c:container... */
    const char *sec[8];
    size_t secn[8];
    int ns = 0;
    for (const char *p = bar; p < line + len && ns < 8;) {
        const char *next = memchr(p + 1, '|', (size_t)(line + len - p - 1));
        const char *e = next ? next : line + len;
        sec[ns] = p + 1;
        secn[ns++] = (size_t)(e - p - 1);
        p = e;
    }
    int ti = -1;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strlen(types[i].code) == secn[0] && !memcmp(types[i].code, sec[0], secn[0]))
            ti = (int)i;
    }
    if (ti < 0) {
        *err = "unknown statsd metric type (c, g, ms, h, s, d)";
        return -EINVAL;
    }
    const char *type = types[ti].type;
    double v = 0, rate = 1;
    int is_set = !strcmp(type, "set");
    if (!is_set && number(val, vlen, &v)) {
        *err = "statsd value is not a number";
        return -EINVAL;
    }
    int64_t ts = rt->ns;
    const char *tags = NULL;
    size_t tagn = 0;
    for (int i = 1; i < ns; i++) {
        if (secn[i] > 1 && sec[i][0] == '@') {
            if (number(sec[i] + 1, secn[i] - 1, &rate) || rate <= 0 || rate > 1) {
                *err = "statsd sample rate must be in (0, 1]";
                return -EINVAL;
            }
        } else if (secn[i] >= 1 && sec[i][0] == '#') {
            tags = sec[i] + 1;
            tagn = secn[i] - 1;
        } else if (secn[i] > 1 && sec[i][0] == 'T') {
            /* Seconds; a value that is no plausible time keeps the receive time. */
            double t;
            if (number(sec[i] + 1, secn[i] - 1, &t) == 0 && t > 0 && t < 9.2e9)
                ts = (int64_t)t * 1000000000;
        }
    }
    char tsbuf[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(ts, tsbuf);
    buf_printf(out, "{\"timestamp\":\"%s\",\"kind\":\"metric\",\"source\":", tsbuf);
    jsonw_string(out, source, strlen(source));
    buf_puts(out, ",\"name\":");
    jsonw_string(out, name, nlen);
    buf_printf(out, ",\"metric_type\":\"%s\",\"value\":", type);
    if (is_set)
        jsonw_string(out, val, vlen);
    else
        jsonw_double(out, v);
    /* "+N" / "-N" moves a gauge by N: an up-down counter's delta in the model. */
    const char *temporality = types[ti].temporality;
    if (!strcmp(type, "gauge") && (val[0] == '+' || val[0] == '-'))
        temporality = "delta";
    if (temporality)
        buf_printf(out, ",\"temporality\":\"%s\"", temporality);
    if (!strcmp(types[ti].code, "ms"))
        buf_puts(out, ",\"unit\":\"ms\"");
    buf_printf(out, ",\"statsd_type\":\"%s\"", types[ti].statsd);
    if (rate < 1) {
        buf_puts(out, ",\"statsd_sample_rate\":");
        jsonw_double(out, rate);
    }
    if (tags)
        put_labels(out, tags, tagn);
    else
        buf_puts(out, ",\"labels\":{}");
    buf_printf(out, ",\"received_at\":\"%s\"}", rt->text);
    if (out->len < start) /* unreachable; keeps the length invariant explicit */
        return -EINVAL;
    return 0;
}

/* The next non-empty line of msg from *at: its start in *line and its length returned, with *at
 * moved past it; 0 once there is none. */
static size_t next_line(const char *msg, size_t len, size_t *at, const char **line)
{
    while (*at < len) {
        const char *nl = memchr(msg + *at, '\n', len - *at);
        size_t s = *at, e = nl ? (size_t)(nl - msg) : len;
        *at = e + 1;
        if (e > s) {
            *line = msg + s;
            return e - s;
        }
    }
    return 0;
}

/* A message holds one or more lines (a datagram often carries several); each is a record. */
static void statsd_decode(struct input *in, const char *msg, size_t len)
{
    const char *line;
    for (size_t at = 0, n; (n = next_line(msg, len, &at, &line));) {
        const char *err = NULL;
        struct buf *out = collector_buffer(in->col);
        if (statsd_to_event(line, n, in->name, collector_now(in->col), out, &err))
            collector_dead(in, err, line, n);
        else
            collector_event(in, out->data, out->len);
    }
}

/* The records statsd_decode makes of a message: its non-empty lines. */
static size_t statsd_records(const char *msg, size_t len)
{
    const char *line;
    size_t count = 0;
    for (size_t at = 0; next_line(msg, len, &at, &line);)
        count++;
    return count;
}

const struct format format_statsd = {
    .id = {"statsd", NULL,
           "StatsD lines (counters, gauges, timers, histograms, sets, distributions, sample "
           "rates, DogStatsD tags) as kind: metric events."},
    .framing = FRAMING_LINE,
    .decode = statsd_decode,
    .records = statsd_records,
};
