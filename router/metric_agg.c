#include "router/metric_agg.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/hash.h"
#include "core/jsonw.h"
#include "core/timeutil.h"

#define MAX_KEY    4096
#define MAX_LABELS 64

/* A series: its key in a->keys (the kind, the name, then each label as length-prefixed key and
 * value, sorted by key), its value or histogram (a->counts: nbuckets + 1 counts). */
struct series {
    uint64_t hash;
    uint32_t key, klen;
    uint32_t nlen; /* the name's length (it follows the kind byte) */
    double value, sum;
    uint64_t count;
    uint32_t counts; /* histograms: offset in a->counts */
};

struct metric_agg {
    struct metric_agg_opts o;
    struct series *series;
    size_t nseries, capseries;
    uint32_t *slot; /* series by hash (index + 1; 0: empty), 2 * max_series rounded up */
    size_t mask;
    struct buf keys;
    uint64_t *counts;
    size_t ncounts, capcounts;
    struct buf key; /* the key being looked up */
    struct buf out; /* one event */
    uint16_t order[MAX_LABELS];
    uint64_t overflow;
};

struct metric_agg *metric_agg_new(const struct metric_agg_opts *opts)
{
    struct metric_agg *a = calloc(1, sizeof(*a));
    if (a)
        a->o = *opts;
    return a;
}

void metric_agg_free(struct metric_agg *a)
{
    if (!a)
        return;
    free(a->series);
    free(a->slot);
    free(a->counts);
    buf_free(&a->keys);
    buf_free(&a->key);
    buf_free(&a->out);
    free(a);
}

uint64_t metric_agg_take_overflow(struct metric_agg *a)
{
    uint64_t n = a->overflow;
    a->overflow = 0;
    return n;
}

size_t metric_agg_series(const struct metric_agg *a)
{
    return a->nseries;
}

static char *put_part(char *d, const char *s, size_t n)
{
    uint16_t len = (uint16_t)n;
    memcpy(d, &len, sizeof(len));
    memcpy(d + sizeof(len), s, n);
    return d + sizeof(len) + n;
}

/* The series' key into a->key: kind, name, labels sorted by key (a repeated key: its last). */
static int make_key(struct metric_agg *a, enum metric_kind k, const char *name, size_t nlen,
                    const struct metric_label *l, size_t n)
{
    if (n > MAX_LABELS)
        return -E2BIG;
    size_t total = 1 + nlen;
    for (size_t i = 0; i < n; i++) {
        a->order[i] = (uint16_t)i;
        total += l[i].klen + l[i].vlen + 4;
    }
    if (total > MAX_KEY)
        return -E2BIG;
    for (size_t i = 1; i < n; i++) { /* insertion sort: a few labels */
        uint16_t x = a->order[i];
        size_t j = i;
        while (j > 0) {
            const struct metric_label *p = &l[a->order[j - 1]], *q = &l[x];
            if (bytes_cmp(p->key, p->klen, q->key, q->klen) <= 0)
                break;
            a->order[j] = a->order[j - 1];
            j--;
        }
        a->order[j] = x;
    }
    /* One reservation, then plain stores: this runs for every spillway.metric call. */
    buf_reset(&a->key);
    if (buf_reserve(&a->key, total))
        return -ENOMEM;
    char *d = a->key.data;
    *d++ = (char)k;
    memcpy(d, name, nlen);
    d += nlen;
    for (size_t i = 0; i < n; i++) {
        const struct metric_label *p = &l[a->order[i]];
        /* Of two labels with one key (now next to each other), the later one. */
        if (i + 1 < n && l[a->order[i + 1]].klen == p->klen &&
            !memcmp(l[a->order[i + 1]].key, p->key, p->klen))
            continue;
        d = put_part(d, p->key, p->klen);
        d = put_part(d, p->value, p->vlen);
    }
    a->key.len = (size_t)(d - a->key.data);
    return 0;
}

static struct series *find_or_add(struct metric_agg *a, size_t nlen, int *rc)
{
    if (!a->slot) {
        size_t cap = 64;
        while (cap < (size_t)a->o.max_series * 2)
            cap <<= 1;
        if (!(a->slot = calloc(cap, sizeof(*a->slot)))) {
            *rc = -ENOMEM;
            return NULL;
        }
        a->mask = cap - 1;
    }
    uint64_t h = hash_table64(a->key.data, a->key.len);
    size_t j = (size_t)h & a->mask;
    for (; a->slot[j]; j = (j + 1) & a->mask) {
        struct series *s = &a->series[a->slot[j] - 1];
        if (s->hash == h && s->klen == a->key.len &&
            !memcmp(a->keys.data + s->key, a->key.data, s->klen))
            return s;
    }
    if ((int64_t)a->nseries >= a->o.max_series) {
        a->overflow++;
        *rc = -ENOSPC;
        return NULL;
    }
    int hist = a->key.data[0] == METRIC_OBSERVE;
    size_t nc = hist ? a->o.nbuckets + 1 : 0;
    if (a->nseries == a->capseries) {
        size_t cap = a->capseries ? a->capseries * 2 : 64;
        struct series *v = realloc(a->series, cap * sizeof(*v));
        if (!v) {
            *rc = -ENOMEM;
            return NULL;
        }
        a->series = v;
        a->capseries = cap;
    }
    if (a->ncounts + nc > a->capcounts) {
        size_t cap = a->capcounts ? a->capcounts * 2 : 256;
        while (cap < a->ncounts + nc)
            cap *= 2;
        uint64_t *v = realloc(a->counts, cap * sizeof(*v));
        if (!v) {
            *rc = -ENOMEM;
            return NULL;
        }
        a->counts = v;
        a->capcounts = cap;
    }
    if (buf_append(&a->keys, a->key.data, a->key.len)) {
        *rc = -ENOMEM;
        return NULL;
    }
    struct series *s = &a->series[a->nseries];
    *s = (struct series){.hash = h,
                         .key = (uint32_t)(a->keys.len - a->key.len),
                         .klen = (uint32_t)a->key.len,
                         .nlen = (uint32_t)nlen,
                         .counts = (uint32_t)a->ncounts};
    if (nc) {
        memset(a->counts + a->ncounts, 0, nc * sizeof(*a->counts));
        a->ncounts += nc;
    }
    a->slot[j] = (uint32_t)++a->nseries;
    return s;
}

int metric_agg_add(struct metric_agg *a, enum metric_kind k, const char *name, size_t nlen,
                   const struct metric_label *l, size_t n, double v)
{
    int rc = make_key(a, k, name, nlen, l, n);
    if (rc)
        return rc;
    struct series *s = find_or_add(a, nlen, &rc);
    if (!s)
        return rc;
    switch (k) {
    case METRIC_COUNT:
        s->value += v;
        break;
    case METRIC_GAUGE:
        s->value = v;
        break;
    case METRIC_OBSERVE: {
        size_t b = 0;
        while (b < a->o.nbuckets && !(v <= a->o.buckets[b]))
            b++;
        a->counts[s->counts + b]++;
        s->sum += v;
        s->count++;
        break;
    }
    }
    return 0;
}

/* ---- flushing ---- */

static uint16_t part_len(const char *p)
{
    uint16_t n;
    memcpy(&n, p, sizeof(n));
    return n;
}

static int write_labels(struct buf *o, const char *p, const char *end)
{
    int rc = buf_puts(o, ",\"labels\":{");
    for (int first = 1; p < end && !rc; first = 0) {
        uint16_t kl = part_len(p);
        const char *k = p + 2;
        p = k + kl;
        uint16_t vl = part_len(p);
        const char *v = p + 2;
        p = v + vl;
        rc = (first ? 0 : buf_putc(o, ',')) | jsonw_string(o, k, kl) | buf_putc(o, ':') |
             jsonw_string(o, v, vl);
    }
    return rc | buf_putc(o, '}');
}

static int write_series(struct metric_agg *a, const struct series *s, const char *source,
                        const char *start, const char *now)
{
    struct buf *o = &a->out;
    const char *k = a->keys.data + s->key;
    enum metric_kind kind = (enum metric_kind)k[0];
    buf_reset(o);
    int rc = buf_puts(o, "{\"timestamp\":\"") | buf_puts(o, now) |
             buf_puts(o, "\",\"kind\":\"metric\",\"source\":") |
             jsonw_string(o, source, strlen(source)) | buf_puts(o, ",\"name\":") |
             jsonw_string(o, k + 1, s->nlen);
    if (kind == METRIC_GAUGE) {
        rc |= buf_puts(o, ",\"metric_type\":\"gauge\",\"value\":") | jsonw_double(o, s->value);
    } else if (kind == METRIC_COUNT) {
        rc |= buf_puts(o, ",\"metric_type\":\"counter\",\"value\":") | jsonw_double(o, s->value) |
              buf_puts(o, ",\"temporality\":\"delta\",\"start_time\":\"") | buf_puts(o, start) |
              buf_putc(o, '"');
    } else {
        rc |= buf_puts(o, ",\"metric_type\":\"histogram\",\"temporality\":\"delta\","
                          "\"start_time\":\"") |
              buf_puts(o, start) | buf_puts(o, "\",\"count\":") | jsonw_uint(o, s->count) |
              buf_puts(o, ",\"sum\":") | jsonw_double(o, s->sum) |
              buf_puts(o, ",\"bucket_counts\":[");
        for (size_t i = 0; i <= a->o.nbuckets; i++)
            rc |= (i ? buf_putc(o, ',') : 0) | jsonw_uint(o, a->counts[s->counts + i]);
        rc |= buf_puts(o, "],\"explicit_bounds\":[");
        for (size_t i = 0; i < a->o.nbuckets; i++)
            rc |= (i ? buf_putc(o, ',') : 0) | jsonw_double(o, a->o.buckets[i]);
        rc |= buf_putc(o, ']');
    }
    rc |= write_labels(o, k + 1 + s->nlen, k + s->klen) | buf_puts(o, ",\"received_at\":\"") |
          buf_puts(o, now) | buf_puts(o, "\"}");
    return rc ? -ENOMEM : 0;
}

int metric_agg_flush(struct metric_agg *a, const char *source, int64_t start_ns, int64_t now_ns,
                     void (*emit)(void *ud, const char *json, size_t len), void *ud)
{
    char start[TIME_RFC3339_LEN + 1], now[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(start_ns, start);
    time_format_rfc3339(now_ns, now);
    int n = 0, rc = 0;
    for (size_t i = 0; i < a->nseries; i++) {
        if ((rc = write_series(a, &a->series[i], source, start, now)))
            break;
        emit(ud, a->out.data, a->out.len);
        n++;
    }
    /* Forgotten whole: the next interval starts from nothing (deltas), and a burst of series
     * gives its room back. */
    if (a->slot)
        memset(a->slot, 0, (a->mask + 1) * sizeof(*a->slot));
    a->nseries = 0;
    a->ncounts = 0;
    buf_reset(&a->keys);
    buf_trim(&a->keys, 1 << 20);
    return rc ? rc : n;
}
