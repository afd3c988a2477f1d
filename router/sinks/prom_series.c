/* The request's series and samples, the table of delta series and the WriteRequest, for the
 * Prometheus remote write encoder (router/sinks/prom_encode.h). A series is identified by its key,
 * its labels sorted by name, each as "name\0value\0": comparing keys with memcmp orders series by
 * their labels, and the key's strings are the protobuf message's strings as they are (NUL-ended).
 * Nothing here allocates per sample once the request's arrays have grown to their size. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "router/sinks/prom_encode_int.h"

#include "prometheus/remote.pb-c.h"

/* ---- the index ---- */

void pe_index_free(struct pe_index *x)
{
    free(x->slot);
    x->slot = NULL;
    x->mask = 0;
}

/* Room for n + 1 entries at half load at most: rebuilt from the hashes when it grows. */
static int index_fit(struct pe_index *x, size_t n, const void *entries, size_t size)
{
    if (x->slot && (n + 1) * 2 <= x->mask + 1)
        return 0;
    size_t cap = 64;
    while (cap < (n + 1) * 2)
        cap <<= 1;
    uint32_t *slot = calloc(cap, sizeof(*slot));
    if (!slot)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = *(const uint64_t *)((const char *)entries + i * size);
        size_t j = (size_t)h & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = (uint32_t)(i + 1);
    }
    free(x->slot);
    x->slot = slot;
    x->mask = cap - 1;
    return 0;
}

/* ---- keys ---- */

static int put_label(struct buf *k, const char *n, size_t nl, const char *v, size_t vl)
{
    if (buf_reserve(k, nl + vl + 2))
        return -ENOMEM;
    memcpy(k->data + k->len, n, nl);
    k->data[k->len + nl] = '\0';
    memcpy(k->data + k->len + nl + 1, v, vl);
    k->data[k->len + nl + 1 + vl] = '\0';
    k->len += nl + vl + 2;
    return 0;
}

static int name_lt(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c < 0 || (c == 0 && al < bl);
}

int pe_key(struct prom_encoder *e, size_t name_from, const char *extra, const char *xval)
{
    struct {
        const char *n, *v;
        size_t nl, vl;
    } x[2] = {{"__name__", e->name.data + name_from, 8, e->name.len - name_from},
              {extra, xval, extra ? strlen(extra) : 0, xval ? strlen(xval) : 0}};
    size_t nx = extra ? 2 : 1;
    if (nx == 2 && name_lt(x[1].n, x[1].nl, x[0].n, x[0].nl)) {
        __typeof__(x[0]) t = x[0];
        x[0] = x[1];
        x[1] = t;
    }
    buf_reset(&e->key);
    e->key_labels = (uint32_t)nx;
    size_t xi = 0;
    for (size_t i = 0; i <= e->nlabels; i++) {
        const struct pe_label *l = i < e->nlabels ? &e->labels[i] : NULL;
        const char *ln = l ? e->lab.data + l->n : NULL;
        while (xi < nx && (!l || name_lt(x[xi].n, x[xi].nl, ln, l->nl))) {
            if (put_label(&e->key, x[xi].n, x[xi].nl, x[xi].v, x[xi].vl))
                return -ENOMEM;
            xi++;
        }
        if (!l)
            break;
        /* The extra label (le, quantile) is the series' own: a label of that name loses. */
        if (extra && l->nl == strlen(extra) && !memcmp(ln, extra, l->nl))
            continue;
        if (put_label(&e->key, ln, l->nl, e->lab.data + l->v, l->vl))
            return -ENOMEM;
        e->key_labels++;
    }
    return 0;
}

/* ---- the request ---- */

int pe_sample(struct prom_encoder *e, int64_t ts, double v)
{
    uint64_t h = hash_table64(e->key.data, e->key.len);
    if (index_fit(&e->sidx, e->nseries, e->series, sizeof(*e->series)))
        return -ENOMEM;
    size_t j = (size_t)h & e->sidx.mask;
    uint32_t at = 0;
    for (; e->sidx.slot[j]; j = (j + 1) & e->sidx.mask) {
        const struct pe_series *s = &e->series[e->sidx.slot[j] - 1];
        if (s->hash == h && s->klen == e->key.len &&
            !memcmp(e->keys.data + s->key, e->key.data, s->klen)) {
            at = e->sidx.slot[j];
            break;
        }
    }
    if (!at) {
        if (e->nseries == e->capseries) {
            size_t cap = e->capseries ? e->capseries * 2 : 256;
            struct pe_series *v2 = realloc(e->series, cap * sizeof(*v2));
            if (!v2)
                return -ENOMEM;
            e->series = v2;
            e->capseries = cap;
        }
        if (e->keys.len + e->key.len > UINT32_MAX || buf_append(&e->keys, e->key.data, e->key.len))
            return -ENOMEM;
        e->series[e->nseries] = (struct pe_series){
            h, (uint32_t)(e->keys.len - e->key.len), (uint32_t)e->key.len, 0, 0, e->key_labels};
        at = (uint32_t)++e->nseries;
        e->sidx.slot[j] = at;
    }
    if (e->nsamples == e->capsamples) {
        size_t cap = e->capsamples ? e->capsamples * 2 : 1024;
        struct pe_sample *v2 = realloc(e->samples, cap * sizeof(*v2));
        if (!v2)
            return -ENOMEM;
        e->samples = v2;
        e->capsamples = cap;
    }
    e->series[at - 1].nsamples++;
    e->samples[e->nsamples++] = (struct pe_sample){at - 1, e->seq++, ts, v};
    return 0;
}

/* ---- delta series ---- */

double *pe_state_bounds(struct prom_encoder *e, const struct pe_state *s)
{
    return e->sdbl + s->b;
}

/* Room for n more doubles in the state's number array. */
static int sdbl_fit(struct prom_encoder *e, size_t n)
{
    if (e->capsdbl - e->nsdbl >= n)
        return 0;
    size_t cap = e->capsdbl ? e->capsdbl * 2 : 1024;
    while (cap - e->nsdbl < n)
        cap *= 2;
    double *v = realloc(e->sdbl, cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    e->sdbl = v;
    e->capsdbl = cap;
    return 0;
}

/* Gives series s room for nb bounds and nb + 1 counts, set to bounds and zeros. */
static int state_buckets(struct prom_encoder *e, struct pe_state *s, const double *bounds,
                         size_t nb)
{
    if (!s->hist || nb > s->nb) {
        if (sdbl_fit(e, nb * 2 + 1))
            return -ENOMEM;
        s->b = (uint32_t)e->nsdbl;
        e->nsdbl += nb * 2 + 1;
    }
    s->hist = 1;
    s->nb = (uint32_t)nb;
    memcpy(e->sdbl + s->b, bounds, nb * sizeof(double));
    memset(e->sdbl + s->b + nb, 0, (nb + 1) * sizeof(double));
    s->sum = s->count = 0;
    return 0;
}

struct pe_state *pe_state_get(struct prom_encoder *e, int hist, const double *bounds, size_t nb,
                              int *full)
{
    *full = 0;
    uint64_t h = hash_table64(e->key.data, e->key.len);
    size_t j = e->stidx.slot ? (size_t)h & e->stidx.mask : 0;
    for (; e->stidx.slot && e->stidx.slot[j]; j = (j + 1) & e->stidx.mask) {
        struct pe_state *s = &e->state[e->stidx.slot[j] - 1];
        if (s->hash != h || s->klen != e->key.len ||
            memcmp(e->skeys.data + s->key, e->key.data, s->klen))
            continue;
        /* Other bounds than before: the histogram starts over (a counter reset to Prometheus). */
        if (hist &&
            (!s->hist || s->nb != nb || memcmp(e->sdbl + s->b, bounds, nb * sizeof(double))) &&
            state_buckets(e, s, bounds, nb))
            return NULL;
        return s;
    }
    if ((int64_t)e->nstate >= e->o->max_series) {
        *full = 1;
        return NULL;
    }
    if (index_fit(&e->stidx, e->nstate, e->state, sizeof(*e->state)))
        return NULL;
    if (e->nstate == e->capstate) {
        size_t cap = e->capstate ? e->capstate * 2 : 256;
        struct pe_state *v = realloc(e->state, cap * sizeof(*v));
        if (!v)
            return NULL;
        e->state = v;
        e->capstate = cap;
    }
    if (e->skeys.len + e->key.len > UINT32_MAX || buf_append(&e->skeys, e->key.data, e->key.len))
        return NULL;
    struct pe_state *s = &e->state[e->nstate];
    *s = (struct pe_state){.hash = h,
                           .key = (uint32_t)(e->skeys.len - e->key.len),
                           .klen = (uint32_t)e->key.len,
                           .last_ms = INT64_MIN};
    if (hist && state_buckets(e, s, bounds, nb)) {
        e->skeys.len -= e->key.len;
        return NULL;
    }
    j = (size_t)h & e->stidx.mask;
    while (e->stidx.slot[j])
        j = (j + 1) & e->stidx.mask;
    e->stidx.slot[j] = (uint32_t)++e->nstate;
    return s;
}

/* ---- the WriteRequest ---- */

/* qsort has no context argument; each sink thread sorts its own encoder's series. */
static _Thread_local const char *key_base;

static int series_cmp(const void *a, const void *b)
{
    const struct pe_series *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(key_base + x->key, key_base + y->key, n);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

/* Samples of one series in time order, the order added among equal times (insertion sort: they
 * nearly always come in order), then one per time, the last added. Returns how many are left. */
static size_t time_order(struct pe_sample *s, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct pe_sample x = s[i];
        size_t j = i;
        while (j > 0 && (s[j - 1].ts > x.ts || (s[j - 1].ts == x.ts && s[j - 1].seq > x.seq))) {
            s[j] = s[j - 1];
            j--;
        }
        s[j] = x;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && s[k - 1].ts == s[i].ts)
            k--;
        s[k++] = s[i];
    }
    return k;
}

/* The samples grouped by series in the series' new order (a counting sort that keeps the order
 * they were added in), into out. */
static void group(struct prom_encoder *e, const uint32_t *rank, struct pe_sample *out)
{
    size_t at = 0;
    for (size_t r = 0; r < e->nseries; r++) {
        struct pe_series *s = &e->series[rank[r]];
        s->at = (uint32_t)at;
        at += s->nsamples;
    }
    for (size_t i = 0; i < e->nsamples; i++) {
        struct pe_series *s = &e->series[e->samples[i].series];
        out[s->at++] = e->samples[i];
    }
    for (size_t r = 0; r < e->nseries; r++) {
        struct pe_series *s = &e->series[rank[r]];
        s->at -= s->nsamples;
    }
}

static Prometheus__TimeSeries *time_series(struct prom_encoder *e, const struct pe_series *s,
                                           struct pe_sample *smp)
{
    struct arena *a = &e->arena;
    size_t n = time_order(smp + s->at, s->nsamples);
    size_t nl = s->nlabels;
    const char *k = e->keys.data + s->key;
    Prometheus__TimeSeries *ts = arena_alloc(a, sizeof(*ts));
    Prometheus__Label **labels = arena_alloc(a, (nl ? nl : 1) * sizeof(*labels));
    Prometheus__Label *lv = arena_alloc(a, (nl ? nl : 1) * sizeof(*lv));
    Prometheus__Sample **samples = arena_alloc(a, n * sizeof(*samples));
    Prometheus__Sample *sv = arena_alloc(a, n * sizeof(*sv));
    if (!ts || !labels || !lv || !samples || !sv)
        return NULL;
    prometheus__time_series__init(ts);
    const char *p = k;
    for (size_t i = 0; i < nl; i++) {
        prometheus__label__init(&lv[i]);
        lv[i].name = (char *)p;
        p += strlen(p) + 1;
        lv[i].value = (char *)p;
        p += strlen(p) + 1;
        labels[i] = &lv[i];
    }
    for (size_t i = 0; i < n; i++) {
        prometheus__sample__init(&sv[i]);
        sv[i].timestamp = smp[s->at + i].ts;
        sv[i].value = smp[s->at + i].v;
        samples[i] = &sv[i];
    }
    ts->n_labels = nl;
    ts->labels = labels;
    ts->n_samples = n;
    ts->samples = samples;
    return ts;
}

int prom_encoder_write(struct prom_encoder *e, struct buf *out)
{
    struct arena *a = &e->arena;
    arena_reset(a);
    buf_reset(out);
    uint32_t *rank = arena_alloc(a, (e->nseries ? e->nseries : 1) * sizeof(*rank));
    struct pe_sample *smp = arena_alloc(a, (e->nsamples ? e->nsamples : 1) * sizeof(*smp));
    Prometheus__TimeSeries **tsv = arena_alloc(a, (e->nseries ? e->nseries : 1) * sizeof(*tsv));
    if (!rank || !smp || !tsv)
        return -ENOMEM;
    /* Sorting moves the series: the samples follow them through a rank of the old indexes. */
    struct pe_series *sorted = arena_alloc(a, (e->nseries ? e->nseries : 1) * sizeof(*sorted));
    if (!sorted)
        return -ENOMEM;
    for (size_t i = 0; i < e->nseries; i++) {
        sorted[i] = e->series[i];
        sorted[i].at = (uint32_t)i; /* its old index, for now */
    }
    key_base = e->keys.data;
    qsort(sorted, e->nseries, sizeof(*sorted), series_cmp);
    for (size_t r = 0; r < e->nseries; r++)
        rank[r] = sorted[r].at;
    group(e, rank, smp);
    size_t nts = 0;
    for (size_t r = 0; r < e->nseries; r++) {
        if (!e->series[rank[r]].nsamples)
            continue; /* its samples were taken back (prom_encoder_add ran out of memory) */
        if (!(tsv[nts++] = time_series(e, &e->series[rank[r]], smp)))
            return -ENOMEM;
    }
    Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
    req.n_timeseries = nts;
    req.timeseries = tsv;
    size_t n = prometheus__write_request__get_packed_size(&req);
    if (buf_reserve(out, n ? n : 1))
        return -ENOMEM;
    out->len = prometheus__write_request__pack(&req, (uint8_t *)out->data);
    return 0;
}

void prom_encoder_reset(struct prom_encoder *e)
{
    buf_reset(&e->keys);
    e->nseries = e->nsamples = 0;
    e->seq = 0;
    if (e->sidx.slot)
        memset(e->sidx.slot, 0, (e->sidx.mask + 1) * sizeof(*e->sidx.slot));
    arena_reset(&e->arena);
    buf_trim(&e->keys, 8 << 20);
}

size_t prom_encoder_samples(const struct prom_encoder *e)
{
    return e->nsamples;
}

size_t prom_encoder_series(const struct prom_encoder *e)
{
    return e->nseries;
}

size_t prom_encoder_state_series(const struct prom_encoder *e)
{
    return e->nstate;
}
