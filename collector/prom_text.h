/* The Prometheus text exposition format (version 0.0.4, what /metrics endpoints serve) and the
 * OpenMetrics text format where it is the same (timestamps in seconds, `# EOF`, exemplars and
 * `_created` series), parsed line by line into samples: a sample's name, its labels (values
 * unescaped), its value (NaN and the infinities included), its timestamp, and its type from the
 * page's `# TYPE` lines (collector/prom_event.h: counters, gauges; the series of histograms,
 * summaries and families without a TYPE are unknown). A line that cannot be read (not a sample,
 * longer than the limit, a series already on the page) is handed over as an error with the reason
 * and the line, and the next line is read. Pure: the caller owns the parser and reuses it from
 * page to page; unit-tested and fuzzed on its own. */
#ifndef SPILLWAY_PROM_TEXT_H
#define SPILLWAY_PROM_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "collector/prom_event.h"

struct prom_sample {
    const char *name;
    size_t nlen;
    enum prom_type type;
    double value;
    int64_t ts_ms; /* INT64_MIN: none on the line */
    const struct prom_label *labels;
    size_t nlabels;
};

/* Where the parser hands what it read; everything is valid until the callback returns. */
struct prom_text_out {
    void (*sample)(void *ud, const struct prom_sample *s);
    /* A line that is not read: why, and the line (its first max_line bytes when longer). */
    void (*error)(void *ud, const char *why, const char *line, size_t len);
    void *ud;
};

struct prom_text {
    struct prom_label *labels;
    size_t caplabels;
    struct buf values; /* unescaped label values of the line */
    /* The page's families (TYPE lines) and the series seen on it: open addressing by hash. */
    uint64_t *fam_hash;
    unsigned char *fam_type;
    size_t fam_mask, nfam;
    uint64_t *seen;
    size_t seen_mask, nseen;
};

void prom_text_init(struct prom_text *p);
void prom_text_free(struct prom_text *p);

/* Parses page[0..len) (openmetrics: OpenMetrics timestamps, in seconds; `# EOF` ends the page in
 * both) and hands each sample and each line it cannot read to out, in order. Lines longer than
 * max_line are errors. Returns the number of samples, or -ENOMEM. */
int prom_text_parse(struct prom_text *p, const char *page, size_t len, int openmetrics,
                    size_t max_line, const struct prom_text_out *out);

#endif
