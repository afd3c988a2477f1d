#include "router/sinks/encode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsontok.h"
#include "core/jsonw.h"
#include "core/timeutil.h"

const char *const encoding_names[] = {"ndjson",     "json_array", "elasticsearch", "loki",
                                      "splunk_hec", "honeycomb",  "datadog",       NULL};

struct encode_limits encode_limits_of(const struct encode_opts *o)
{
    if (o->encoding == ENC_DATADOG)
        return (struct encode_limits){1000, 5000000};
    return (struct encode_limits){0, 0};
}

/* Appends the text of top-level field name to out: a string unescaped, a number or boolean as
 * written. Returns 0 when the field is absent, null, or an object or array. */
static int field_text(struct jsontok *t, const char *name, struct buf *out)
{
    int v = jsontok_find(t, 0, name, strlen(name));
    if (v < 0)
        return 0;
    const jsmntok_t *k = &t->tok[v];
    if (k->type == JSMN_STRING)
        jsontok_unescape(t->js + k->start, (size_t)(k->end - k->start), out);
    else if (k->type == JSMN_PRIMITIVE && t->js[k->start] != 'n')
        buf_append(out, t->js + k->start, (size_t)(k->end - k->start));
    else
        return 0;
    return 1;
}

static int64_t event_time(struct jsontok *t)
{
    struct buf ts = {0};
    int64_t ns = time_now_ns();
    if (field_text(t, "timestamp", &ts))
        time_parse_rfc3339(ts.data, ts.len, &ns);
    buf_free(&ts);
    return ns;
}

/* "logs-{service}-{date}" -> "logs-checkout-2026.11.27"; missing fields become "unknown". */
static void expand(struct jsontok *t, const char *tmpl, struct buf *out)
{
    for (const char *p = tmpl; *p;) {
        const char *open = strchr(p, '{');
        const char *close = open ? strchr(open, '}') : NULL;
        if (!open || !close) {
            buf_puts(out, p);
            return;
        }
        buf_append(out, p, (size_t)(open - p));
        char name[128];
        size_t n = (size_t)(close - open - 1);
        if (n >= sizeof(name))
            n = sizeof(name) - 1;
        memcpy(name, open + 1, n);
        name[n] = '\0';
        if (!strcmp(name, "date")) {
            char ts[TIME_RFC3339_LEN + 1];
            time_format_rfc3339(event_time(t), ts);
            buf_printf(out, "%.4s.%.2s.%.2s", ts, ts + 5, ts + 8);
        } else if (!field_text(t, name, out)) {
            buf_puts(out, "unknown");
        }
        p = close + 1;
    }
}

static void es_bulk(const struct encode_opts *o, const struct encode_item *it, size_t n,
                    struct buf *out)
{
    struct jsontok t = {0};
    struct buf idx = {0};
    for (size_t i = 0; i < n; i++) {
        buf_reset(&idx);
        if (strchr(o->index, '{') && jsontok_parse_trusted(&t, it[i].json, it[i].len) == 0)
            expand(&t, o->index, &idx);
        else
            buf_puts(&idx, o->index);
        buf_puts(out, "{\"create\":{\"_index\":");
        jsonw_string(out, idx.data ? idx.data : "", idx.len);
        buf_puts(out, "}}\n");
        buf_append(out, it[i].json, it[i].len);
        buf_putc(out, '\n');
    }
    buf_free(&idx);
    jsontok_free(&t);
}

/* Loki: {"streams":[{"stream":{labels},"values":[["<ns>","<line>"],...]},...]}. Events with
 * the same label values share a stream; the line is the whole event. */
static void loki_push(const struct encode_opts *o, const struct encode_item *it, size_t n,
                      struct buf *out)
{
    struct jsontok t = {0};
    char **keys = calloc(n + 1, sizeof(char *)); /* each item's label object text */
    int64_t *ns = calloc(n + 1, sizeof(int64_t));
    struct buf lb = {0}, v = {0};
    for (size_t i = 0; i < n && keys && ns; i++) {
        buf_reset(&lb);
        buf_putc(&lb, '{');
        int first = 1;
        int ok = jsontok_parse_trusted(&t, it[i].json, it[i].len) == 0;
        ns[i] = ok ? event_time(&t) : time_now_ns();
        for (int m = 0; o->static_labels && m < o->static_labels->n; m++) {
            buf_puts(&lb, first ? "" : ",");
            first = 0;
            jsonw_string(&lb, o->static_labels->key[m], strlen(o->static_labels->key[m]));
            buf_putc(&lb, ':');
            jsonw_string(&lb, o->static_labels->val[m], strlen(o->static_labels->val[m]));
        }
        for (int l = 0; ok && o->labels && l < o->labels->n; l++) {
            buf_reset(&v);
            if (!field_text(&t, o->labels->v[l], &v))
                continue;
            buf_puts(&lb, first ? "" : ",");
            first = 0;
            /* Loki label names are [a-zA-Z_][a-zA-Z0-9_]*: other characters become '_'. */
            char name[128];
            snprintf(name, sizeof(name), "%s", o->labels->v[l]);
            for (char *c = name; *c; c++) {
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || *c == '_'))
                    *c = '_';
            }
            jsonw_string(&lb, name, strlen(name));
            buf_putc(&lb, ':');
            jsonw_string(&lb, v.data ? v.data : "", v.len);
        }
        buf_putc(&lb, '}');
        keys[i] = strndup(lb.data, lb.len);
    }
    buf_puts(out, "{\"streams\":[");
    int first_stream = 1;
    for (size_t i = 0; i < n && keys && ns; i++) {
        if (!keys[i])
            continue;
        buf_puts(out, first_stream ? "" : ",");
        first_stream = 0;
        buf_puts(out, "{\"stream\":");
        buf_puts(out, keys[i]);
        buf_puts(out, ",\"values\":[");
        char *mine = keys[i];
        for (size_t j = i, first = 1; j < n; j++) {
            if (!keys[j] || strcmp(keys[j], mine) != 0)
                continue;
            buf_printf(out, "%s[\"%lld\",", first ? "" : ",", (long long)ns[j]);
            first = 0;
            jsonw_string(out, it[j].json, it[j].len);
            buf_putc(out, ']');
            if (j != i) {
                free(keys[j]);
                keys[j] = NULL;
            }
        }
        buf_puts(out, "]}");
        free(mine);
        keys[i] = NULL;
    }
    buf_puts(out, "]}");
    buf_free(&lb);
    buf_free(&v);
    free(keys);
    free(ns);
    jsontok_free(&t);
}

/* Splunk HEC: one envelope per event, concatenated. */
static void hec(const struct encode_opts *o, const struct encode_item *it, size_t n,
                struct buf *out)
{
    struct jsontok t = {0};
    struct buf v = {0};
    for (size_t i = 0; i < n; i++) {
        int ok = jsontok_parse_trusted(&t, it[i].json, it[i].len) == 0;
        int64_t ns = ok ? event_time(&t) : time_now_ns();
        /* Floor division: 1969-12-31T23:59:58.5Z is -1.500000 s, i.e. -2 + 0.5. */
        int64_t us = ns / 1000 - (ns % 1000 < 0), sec = us / 1000000 - (us % 1000000 < 0);
        if (sec < 0 && us % 1000000) /* HEC wants a number: -1.5, not -2 + .500000 */
            buf_printf(out, "{\"time\":-%lld.%06lld", (long long)(-(sec + 1)),
                       (long long)(1000000 - (us - sec * 1000000)));
        else
            buf_printf(out, "{\"time\":%lld.%06lld", (long long)sec,
                       (long long)(us - sec * 1000000));
        static const char *const meta[] = {"host", "source", NULL};
        for (int m = 0; ok && meta[m]; m++) {
            buf_reset(&v);
            if (field_text(&t, meta[m], &v)) {
                buf_printf(out, ",\"%s\":", meta[m]);
                jsonw_string(out, v.data, v.len);
            }
        }
        buf_puts(out, ",\"sourcetype\":");
        jsonw_string(out, o->sourcetype, strlen(o->sourcetype));
        if (o->hec_index && *o->hec_index) {
            buf_puts(out, ",\"index\":");
            jsonw_string(out, o->hec_index, strlen(o->hec_index));
        }
        buf_puts(out, ",\"event\":");
        buf_append(out, it[i].json, it[i].len);
        buf_puts(out, "}\n");
    }
    buf_free(&v);
    jsontok_free(&t);
}

/* Honeycomb's batch events API: [{"data": event, "samplerate": N, "time": timestamp}, ...].
 * spillway's sample_rate is the fraction kept (0.1); Honeycomb's samplerate is how many events
 * each one stands for (10), so its counts stay right after spillway's sampling. */
static void honeycomb(const struct encode_item *it, size_t n, struct buf *out)
{
    struct jsontok t = {0};
    struct buf v = {0};
    buf_putc(out, '[');
    for (size_t i = 0; i < n; i++) {
        long long rate = 1;
        buf_reset(&v);
        int ok = jsontok_parse_trusted(&t, it[i].json, it[i].len) == 0;
        if (ok && field_text(&t, "sample_rate", &v) && buf_putc(&v, '\0') == 0) {
            double r = strtod(v.data, NULL);
            if (r > 0 && r <= 1)
                rate = llround(1.0 / r);
        }
        buf_puts(out, i ? ",{\"data\":" : "{\"data\":");
        buf_append(out, it[i].json, it[i].len);
        buf_printf(out, ",\"samplerate\":%lld", rate < 1 ? 1 : rate);
        buf_reset(&v);
        if (ok && field_text(&t, "timestamp", &v)) {
            buf_puts(out, ",\"time\":");
            jsonw_string(out, v.data, v.len);
        }
        buf_putc(out, '}');
    }
    buf_putc(out, ']');
    buf_free(&v);
    jsontok_free(&t);
}

/* A member of a Datadog entry from a field of the event, when it has one as text. */
static int dd_field(struct jsontok *t, const char *field, const char *as, struct buf *v,
                    struct buf *out)
{
    buf_reset(v);
    if (!field_text(t, field, v))
        return 0;
    buf_printf(out, ",\"%s\":", as);
    jsonw_string(out, v->data ? v->data : "", v->len);
    return 1;
}

/* Datadog's logs intake v2: a JSON array of entries, each the event's fields with Datadog's
 * reserved attributes set: ddsource (configured, else the event's source: the input),
 * ddtags, hostname (from host), status (from level); service and message are spillway's own
 * names already. */
static void datadog(const struct encode_opts *o, const struct encode_item *it, size_t n,
                    struct buf *out)
{
    static const char *const ours[] = {"ddsource", "ddtags", "hostname", "status", "host"};
    struct jsontok t = {0};
    struct buf v = {0};
    buf_putc(out, '[');
    for (size_t i = 0; i < n; i++) {
        buf_puts(out, i ? ",{\"ddsource\":" : "{\"ddsource\":");
        if (jsontok_parse_trusted(&t, it[i].json, it[i].len) != 0 || t.tok[0].type != JSMN_OBJECT) {
            jsonw_string(out, o->ddsource, strlen(o->ddsource));
            buf_puts(out, ",\"message\":");
            jsonw_string(out, it[i].json, it[i].len);
            buf_putc(out, '}');
            continue;
        }
        buf_reset(&v);
        if (*o->ddsource || !field_text(&t, "source", &v))
            jsonw_string(out, o->ddsource, strlen(o->ddsource));
        else
            jsonw_string(out, v.data ? v.data : "", v.len);
        if (*o->ddtags) {
            buf_puts(out, ",\"ddtags\":");
            jsonw_string(out, o->ddtags, strlen(o->ddtags));
        }
        /* The event's members, but for those the entry has set (host is hostname). */
        int set[5] = {1, *o->ddtags != '\0', 0, 0, 1};
        set[2] = dd_field(&t, "host", "hostname", &v, out);
        set[3] = dd_field(&t, "level", "status", &v, out);
        int k = 1;
        for (int m = 0; m < t.tok[0].size; m++, k = t.next[k]) {
            int skip = 0;
            for (size_t x = 0; x < sizeof(ours) / sizeof(ours[0]) && !skip; x++)
                skip = set[x] && jsontok_str_eq(&t, k, ours[x], strlen(ours[x]));
            if (skip)
                continue;
            size_t ks = jsontok_text_start(&t, k), ve = jsontok_text_end(&t, k + 1);
            buf_putc(out, ',');
            buf_append(out, it[i].json + ks, ve - ks);
        }
        buf_putc(out, '}');
    }
    buf_putc(out, ']');
    buf_free(&v);
    jsontok_free(&t);
}

const char *encode_batch(const struct encode_opts *o, const struct encode_item *items, size_t n,
                         struct buf *out)
{
    switch (o->encoding) {
    case ENC_JSON_ARRAY:
        buf_putc(out, '[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                buf_putc(out, ',');
            buf_append(out, items[i].json, items[i].len);
        }
        buf_putc(out, ']');
        return "application/json";
    case ENC_ELASTICSEARCH:
        es_bulk(o, items, n, out);
        return "application/x-ndjson";
    case ENC_LOKI:
        loki_push(o, items, n, out);
        return "application/json";
    case ENC_SPLUNK_HEC:
        hec(o, items, n, out);
        return "application/json";
    case ENC_HONEYCOMB:
        honeycomb(items, n, out);
        return "application/json";
    case ENC_DATADOG:
        datadog(o, items, n, out);
        return "application/json";
    default:
        for (size_t i = 0; i < n; i++) {
            buf_append(out, items[i].json, items[i].len);
            buf_putc(out, '\n');
        }
        return "application/x-ndjson";
    }
}
