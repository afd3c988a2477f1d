#include "collector/remote_write.h"

#include <errno.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/prom_event.h"
#include "core/arena.h"
#include "core/hash.h"
#include "core/snap.h"

#include "prometheus/remote.pb-c.h"
#include "proto/pb_arena.h"

typedef Prometheus__TimeSeries TimeSeries;
typedef Prometheus__Label Label;

/* A family's type, from metadata: its name in d->names. */
struct family {
    uint64_t hash;
    uint32_t name, len;
    enum prom_type type;
};

struct rw_decoder {
    const char *source;
    struct buf raw; /* the decompressed body */
    struct arena arena;
    ProtobufCAllocator alloc;
    struct buf ev;   /* one event */
    struct buf text; /* a series as text, for a dead letter */
    struct prom_label *labels;
    size_t caplabels;
    struct family *fam;
    size_t nfam, capfam;
    uint32_t *slot; /* families by hash (index + 1; 0: empty) */
    size_t mask;
    struct buf names;
    char err[200];
};

struct rw_decoder *rw_decoder_new(const char *source)
{
    struct rw_decoder *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->source = source;
    d->alloc = pb_arena_allocator(&d->arena);
    d->arena.keep = 16 << 20;
    return d;
}

void rw_decoder_free(struct rw_decoder *d)
{
    if (!d)
        return;
    arena_free(&d->arena);
    buf_free(&d->raw);
    buf_free(&d->ev);
    buf_free(&d->text);
    buf_free(&d->names);
    free(d->labels);
    free(d->fam);
    free(d->slot);
    free(d);
}

/* ---- families ---- */

static struct family *family_find(const struct rw_decoder *d, const char *name, size_t n)
{
    if (!d->slot)
        return NULL;
    uint64_t h = hash64(name, n);
    for (size_t j = (size_t)h & d->mask; d->slot[j]; j = (j + 1) & d->mask) {
        struct family *f = &d->fam[d->slot[j] - 1];
        if (f->hash == h && f->len == n && !memcmp(d->names.data + f->name, name, n))
            return f;
    }
    return NULL;
}

static int family_grow(struct rw_decoder *d)
{
    size_t cap = d->mask ? (d->mask + 1) * 2 : 1024;
    uint32_t *slot = calloc(cap, sizeof(*slot));
    if (!slot)
        return -ENOMEM;
    for (size_t i = 0; i < d->nfam; i++) {
        size_t j = (size_t)d->fam[i].hash & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = (uint32_t)(i + 1);
    }
    free(d->slot);
    d->slot = slot;
    d->mask = cap - 1;
    return 0;
}

/* Remembers (or changes) a family's type; past RW_MAX_FAMILIES new ones are not kept. */
static int family_set(struct rw_decoder *d, const char *name, enum prom_type type)
{
    size_t n = strlen(name);
    struct family *f = family_find(d, name, n);
    if (f) {
        f->type = type;
        return 0;
    }
    if (d->nfam >= RW_MAX_FAMILIES)
        return 0;
    if ((d->nfam + 1) * 2 > (d->slot ? d->mask + 1 : 0) && family_grow(d))
        return -ENOMEM;
    if (d->nfam == d->capfam) {
        size_t cap = d->capfam ? d->capfam * 2 : 256;
        struct family *v = realloc(d->fam, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        d->fam = v;
        d->capfam = cap;
    }
    if (buf_append(&d->names, name, n))
        return -ENOMEM;
    uint64_t h = hash64(name, n);
    d->fam[d->nfam] = (struct family){h, (uint32_t)(d->names.len - n), (uint32_t)n, type};
    size_t j = (size_t)h & d->mask;
    while (d->slot[j])
        j = (j + 1) & d->mask;
    d->slot[j] = (uint32_t)++d->nfam;
    return 0;
}

static int metadata(struct rw_decoder *d, const Prometheus__WriteRequest *r)
{
    for (size_t i = 0; i < r->n_metadata; i++) {
        const Prometheus__MetricMetadata *m = r->metadata[i];
        enum prom_type t =
            m->type == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER ? PROM_COUNTER
            : m->type == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE ? PROM_GAUGE
                                                                         : PROM_UNKNOWN;
        if (m->metric_family_name && *m->metric_family_name &&
            family_set(d, m->metric_family_name, t))
            return -ENOMEM;
    }
    return 0;
}

/* A series' type: its family's when metadata said it (a counter family's name with or without
 * _total); the series of histograms and summaries, and what metadata never named, unknown. */
static enum prom_type type_of(const struct rw_decoder *d, const char *name, size_t n)
{
    const struct family *f = family_find(d, name, n);
    if (!f && n > 6 && !memcmp(name + n - 6, "_total", 6))
        f = family_find(d, name, n - 6);
    return f && f->type != PROM_UNKNOWN ? f->type : PROM_UNKNOWN;
}

/* ---- series ---- */

/* The series as text ({a="b",...}) for a dead letter. */
static const char *series_text(struct rw_decoder *d, const TimeSeries *ts, size_t *len)
{
    buf_reset(&d->text);
    buf_putc(&d->text, '{');
    for (size_t i = 0; i < ts->n_labels && d->text.len < 4096; i++)
        buf_printf(&d->text, "%s%s=\"%s\"", i ? "," : "", ts->labels[i]->name,
                   ts->labels[i]->value);
    buf_putc(&d->text, '}');
    *len = d->text.len;
    return d->text.data ? d->text.data : "";
}

/* The series' labels but __name__ into d->labels, its name in *name: 0, or -EINVAL with *why. */
static int series_labels(struct rw_decoder *d, const TimeSeries *ts, const char **name,
                         size_t *nlen, size_t *n, const char **why)
{
    if (ts->n_labels > d->caplabels) {
        struct prom_label *l = realloc(d->labels, ts->n_labels * sizeof(*l));
        if (!l)
            return -ENOMEM;
        d->labels = l;
        d->caplabels = ts->n_labels;
    }
    *name = NULL;
    *n = 0;
    for (size_t i = 0; i < ts->n_labels; i++) {
        const Label *l = ts->labels[i];
        size_t ln = strlen(l->name);
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(ts->labels[j]->name, l->name)) {
                *why = "remote write: a label name given twice in one series";
                return -EINVAL;
            }
        }
        if (ln == 8 && !memcmp(l->name, "__name__", 8)) {
            *name = l->value;
            *nlen = strlen(l->value);
        } else if (*l->value) { /* an empty value is no label */
            d->labels[(*n)++] = (struct prom_label){l->name, l->value, ln, strlen(l->value)};
        }
    }
    if (!*name || !*nlen) {
        *why = "remote write: a series without a __name__ label";
        return -EINVAL;
    }
    return 0;
}

/* The events of one series: one per sample; what cannot be one is handed over as invalid. */
static int series(struct rw_decoder *d, const TimeSeries *ts, const struct recv_time *rt,
                  const struct rw_out *out)
{
    const char *name, *why;
    size_t nlen = 0, n = 0, tl;
    int count = 0;
    int rc = series_labels(d, ts, &name, &nlen, &n, &why);
    if (rc == -ENOMEM)
        return rc;
    if (rc) {
        const char *t = series_text(d, ts, &tl);
        for (size_t i = 0; i < ts->n_samples + ts->n_histograms; i++)
            out->invalid(out->ud, why, t, tl);
        return (int)(ts->n_samples + ts->n_histograms);
    }
    enum prom_type type = type_of(d, name, nlen);
    for (size_t i = 0; i < ts->n_samples; i++, count++) {
        const Prometheus__Sample *s = ts->samples[i];
        if (s->timestamp < 0 || s->timestamp > PROM_MAX_MS) {
            const char *t = series_text(d, ts, &tl);
            out->invalid(out->ud, "remote write: a sample's timestamp is out of range", t, tl);
            continue;
        }
        buf_reset(&d->ev);
        if (prom_event_write(&d->ev, d->source, rt, s->timestamp, name, nlen, type, s->value,
                             d->labels, n))
            return -ENOMEM;
        out->event(out->ud, d->ev.data, d->ev.len);
    }
    for (size_t i = 0; i < ts->n_histograms; i++, count++) {
        const char *t = series_text(d, ts, &tl);
        out->invalid(out->ud,
                     "remote write: native histograms are not taken (send classic histograms: "
                     "the _bucket, _sum and _count series)",
                     t, tl);
    }
    return count;
}

int rw_decode(struct rw_decoder *d, const char *body, size_t len, size_t max,
              const struct recv_time *rt, const struct rw_out *out, const char **err)
{
    int rc = snap_uncompress(body, len, &d->raw, max);
    *err = d->err;
    if (rc == -EINVAL) {
        snprintf(d->err, sizeof(d->err),
                 "remote write: the body is not snappy-compressed (block format) data");
        return rc;
    }
    if (rc == -E2BIG) {
        size_t n = 0;
        snap_length(body, len, &n);
        snprintf(d->err, sizeof(d->err),
                 "remote write: the body decompresses to %zu bytes, over max_body (%zu)", n, max);
        return rc;
    }
    if (rc)
        return rc;
    arena_reset(&d->arena);
    d->arena.limit = d->raw.len * RW_MEMORY_PER_BYTE + (1 << 20);
    Prometheus__WriteRequest *r = prometheus__write_request__unpack(
        &d->alloc, d->raw.len, (const uint8_t *)(d->raw.data ? d->raw.data : ""));
    buf_trim(&d->raw, 16 << 20);
    if (!r) {
        if (d->arena.over) {
            snprintf(d->err, sizeof(d->err),
                     "remote write: decoding the body would take more than %zu bytes",
                     d->arena.limit);
            return -E2BIG;
        }
        snprintf(d->err, sizeof(d->err),
                 "remote write: the body is not a protobuf WriteRequest (once decompressed)");
        return -EINVAL;
    }
    if (metadata(d, r))
        return -ENOMEM;
    int count = 0;
    for (size_t i = 0; i < r->n_timeseries; i++) {
        int n = series(d, r->timeseries[i], rt, out);
        if (n < 0)
            return n;
        count += n;
    }
    buf_trim(&d->ev, 1 << 20);
    return count;
}
