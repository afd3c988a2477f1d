#include "collector/format_statsd.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/collector.h"
#include "collector/format.h"
#include "core/buf.h"
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

/* One tag of "#k:v,flag": its key, its value (a flag has none), its place in the list and the
 * place of its key's first tag. */
struct tag {
    const char *key, *val;
    uint32_t keyn, valn, pos, first;
    int flag;
};

#define TAGS_STACK 32

static int by_key(const void *x, const void *y)
{
    const struct tag *a = x, *b = y;
    int c = bytes_cmp(a->key, a->keyn, b->key, b->keyn);
    return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

static int by_first(const void *x, const void *y)
{
    const struct tag *a = x, *b = y;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

static void put_tag_value(struct buf *o, const struct tag *t)
{
    if (t->flag)
        buf_puts(o, "true");
    else
        jsonw_string(o, t->val, t->valn);
}

/* "#k:v,flag,k:w" -> "labels":{"k":["v","w"],"flag":true}: keys in the order they first come, a
 * repeated key keeps every value (docs/metrics.md: a sink that needs one string per label joins
 * them). No tags: "labels":{}. Two sorts group the keys (a line of ten thousand tags costs no
 * more than sorting them); no tree is built. */
static int put_labels(struct buf *o, const char *s, size_t n)
{
    struct tag stack[TAGS_STACK], *t = stack;
    size_t nt = 0, cap = TAGS_STACK;
    for (size_t i = 0; i < n;) {
        const char *comma = memchr(s + i, ',', n - i);
        size_t e = comma ? (size_t)(comma - s) : n, tn = e - i;
        if (tn) {
            if (nt == cap) {
                struct tag *q = malloc(cap * 2 * sizeof(*q));
                if (!q) {
                    if (t != stack)
                        free(t);
                    return -ENOMEM;
                }
                memcpy(q, t, nt * sizeof(*q));
                if (t != stack)
                    free(t);
                t = q;
                cap *= 2;
            }
            const char *colon = memchr(s + i, ':', tn);
            size_t kn = colon ? (size_t)(colon - (s + i)) : tn;
            t[nt] = (struct tag){.key = s + i,
                                 .keyn = (uint32_t)kn,
                                 .val = colon ? colon + 1 : NULL,
                                 .valn = colon ? (uint32_t)(tn - kn - 1) : 0,
                                 .pos = (uint32_t)nt,
                                 .flag = !colon};
            nt++;
        }
        i = e + 1;
    }
    qsort(t, nt, sizeof(*t), by_key);
    for (size_t i = 0; i < nt; i++)
        t[i].first = i && !bytes_cmp(t[i].key, t[i].keyn, t[i - 1].key, t[i - 1].keyn)
                         ? t[i - 1].first
                         : t[i].pos;
    qsort(t, nt, sizeof(*t), by_first);
    buf_puts(o, ",\"labels\":{");
    for (size_t i = 0; i < nt;) {
        size_t j = i + 1;
        while (j < nt && t[j].first == t[i].first)
            j++;
        if (i)
            buf_putc(o, ',');
        jsonw_string(o, t[i].key, t[i].keyn);
        buf_putc(o, ':');
        if (j - i == 1) {
            put_tag_value(o, &t[i]);
        } else {
            buf_putc(o, '[');
            for (size_t k = i; k < j; k++) {
                if (k > i)
                    buf_putc(o, ',');
                put_tag_value(o, &t[k]);
            }
            buf_putc(o, ']');
        }
        i = j;
    }
    buf_putc(o, '}');
    if (t != stack)
        free(t);
    return 0;
}

int statsd_to_event(const char *line, size_t len, const char *source, const struct recv_time *rt,
                    struct buf *out, const char **err)
{
    size_t start = out->len;
    if (utf8_check_text(line, len) != len) {
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
    if (!tags) {
        buf_puts(out, ",\"labels\":{}");
    } else if (put_labels(out, tags, tagn)) {
        out->len = start;
        *err = "out of memory for the statsd tags";
        return -ENOMEM;
    }
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
        size_t start;
        struct buf *out = collector_buffer(in->col, &start);
        if (statsd_to_event(line, n, in->name, collector_now(in->col), out, &err))
            collector_dead(in, err, line, n);
        else
            collector_event(in, out->data + start, out->len - start);
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
