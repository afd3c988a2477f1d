/* Encoders that reshape canonical events for a destination: NDJSON, a JSON array, an
 * Elasticsearch _bulk body, a Loki push request (streams grouped by label values), Splunk
 * HEC envelopes, Honeycomb's batch events and Datadog's logs intake v2. They read each event's
 * fields with the trusted tokenizer; the caller owns the body buffer. */
#ifndef SPILLWAY_ENCODE_H
#define SPILLWAY_ENCODE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/cfg.h"

enum encoding {
    ENC_NDJSON,
    ENC_JSON_ARRAY,
    ENC_ELASTICSEARCH,
    ENC_LOKI,
    ENC_SPLUNK_HEC,
    ENC_HONEYCOMB,
    ENC_DATADOG,
};
extern const char *const encoding_names[];

struct encode_opts {
    int encoding;
    const char *index;                /* ES: index name; "{field}" and "{date}" expand */
    const struct cfg_strlist *labels; /* Loki: fields that become labels */
    const struct cfg_strmap *static_labels;
    const char *sourcetype; /* HEC */
    const char *hec_index;  /* HEC: "" for the token's default */
    const char *ddsource;   /* Datadog: "" for each event's `source` (the input) */
    const char *ddtags;     /* Datadog: "" for none */
};

/* What the destination takes in one request at most (0: no limit of its own): Datadog's logs
 * intake takes 1,000 entries and 5 MB (uncompressed) a request. */
struct encode_limits {
    size_t events;
    size_t bytes;
};
struct encode_limits encode_limits_of(const struct encode_opts *o);

/* One record to encode. */
struct encode_item {
    const char *json;
    size_t len;
};

/* Appends the body for items[0..n) to out and returns its Content-Type. */
const char *encode_batch(const struct encode_opts *o, const struct encode_item *items, size_t n,
                         struct buf *out);

#endif
