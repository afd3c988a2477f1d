/* Internals of the Prometheus remote write encoder (router/sinks/prom_encode.h), shared by its two
 * files and nothing else: prom_encode.c (an event's fields, labels and conversions into samples)
 * and prom_series.c (the request's series and samples, the table of delta series, the
 * WriteRequest). */
#ifndef SPILLWAY_PROM_ENCODE_INT_H
#define SPILLWAY_PROM_ENCODE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/jsontok.h"
#include "router/sinks/prom_encode.h"

/* Prometheus' staleness marker: a NaN with these bits. */
#define PE_STALE_NAN_BITS 0x7ff0000000000002ULL

/* A label of the event being added: offsets into e->lab (name, then value; no NUL inside). */
struct pe_label {
    uint32_t n, nl, v, vl;
};

/* A series of the request: its key (labels sorted by name, each "name\0value\0") in e->keys. */
struct pe_series {
    uint64_t hash;
    uint32_t key, klen;
    uint32_t nsamples, at; /* samples in the request; where they start once grouped */
    uint32_t nlabels;
};

struct pe_sample {
    uint32_t series;
    uint32_t seq; /* the order added: of two samples at one time, the later wins */
    int64_t ts;   /* ms */
    double v;
};

/* A series the encoder keeps between requests to make deltas cumulative: its key in e->skeys,
 * its running value (counters, up-down gauges) or histogram (bucket bounds and cumulative counts
 * in e->sdbl: nb bounds, then nb + 1 counts), and the last time it was sent. */
struct pe_state {
    uint64_t hash;
    uint32_t key, klen;
    int64_t last_ms;
    double value, sum, count;
    uint32_t b, nb;
    int hist; /* b and nb hold a histogram */
};

/* A growable open-addressing index of entries 1..n (0: empty). */
struct pe_index {
    uint32_t *slot;
    size_t mask;
};

struct prom_encoder {
    const struct prom_encode_opts *o;
    struct jsontok tok;
    /* The event being added. */
    struct buf lab; /* label names and values */
    struct pe_label *labels;
    size_t nlabels, caplabels;
    struct buf name;     /* the Prometheus name */
    struct buf key;      /* a series key being built */
    uint32_t key_labels; /* the labels in it */
    struct buf text;     /* unescaping */
    double *dbl;         /* an event's numbers (bounds, counts) */
    size_t capdbl;
    char why[256];
    /* The request. */
    struct buf keys;
    struct pe_series *series;
    size_t nseries, capseries;
    struct pe_index sidx;
    struct pe_sample *samples;
    size_t nsamples, capsamples;
    uint32_t seq;
    struct arena arena; /* the WriteRequest's messages */
    /* Delta series, for the encoder's life. */
    struct buf skeys;
    struct pe_state *state;
    size_t nstate, capstate;
    struct pe_index stidx;
    double *sdbl;
    size_t nsdbl, capsdbl;
};

/* prom_series.c */
/* The key of the series named e->name[name_from..) with the event's labels (sorted, no
 * duplicate names) and, when extra is not NULL, one more label extra=xval, into e->key. */
int pe_key(struct prom_encoder *e, size_t name_from, const char *extra, const char *xval);
/* Adds a sample of the series whose key is in e->key. 0 or -ENOMEM. */
int pe_sample(struct prom_encoder *e, int64_t ts, double v);
/* The delta series whose key is in e->key, created when new (for a histogram, hist: with nb
 * buckets of those bounds, all counts 0): NULL with *full set when the table holds max_series
 * already, or out of memory. A histogram found with other bounds starts over with these. */
struct pe_state *pe_state_get(struct prom_encoder *e, int hist, const double *bounds, size_t nb,
                              int *full);
/* The state's bounds and counts (nb + 1 of them). */
double *pe_state_bounds(struct prom_encoder *e, const struct pe_state *s);
void pe_index_free(struct pe_index *x);

#endif
