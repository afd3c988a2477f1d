/* Prometheus remote write 1.0 requests (a WriteRequest in protobuf, compressed with snappy's
 * block format: what Prometheus' remote_write, Grafana Agent, the OpenTelemetry Collector's
 * prometheusremotewrite exporter and spillway's own sink send) into metric events of the model
 * (docs/metrics.md), one per sample (collector/prom_event.h). Decoded by libsnappy (core/snap.h)
 * and protobuf-c, into an arena reset per request. Metadata the senders send now and then (the
 * families' types) is remembered per decoder and types the samples that follow. The caller owns
 * the decoder; nothing else is shared, so it is unit-tested and fuzzed on its own. */
#ifndef SPILLWAY_REMOTE_WRITE_H
#define SPILLWAY_REMOTE_WRITE_H

#include <stddef.h>

#include "collector/normalize.h"

/* Where a decode hands what it made; strings are valid until the call returns. */
struct rw_out {
    /* An event: valid JSON, one object on one line. */
    void (*event)(void *ud, const char *json, size_t len);
    /* A record that has no event form (a series without __name__ or with a label given twice, a
     * native histogram sample, a time out of range): why, and the series as text. */
    void (*invalid)(void *ud, const char *reason, const char *raw, size_t len);
    void *ud;
};

struct rw_decoder;

/* A decoder for input `source` (borrowed for the decoder's life). NULL when out of memory. */
struct rw_decoder *rw_decoder_new(const char *source);
void rw_decoder_free(struct rw_decoder *d);

/* Decodes one request body body[0..len) (snappy-compressed; it may decompress to max bytes at
 * most) and hands its records to out, in order. Returns how many records were handed over, or,
 * with nothing handed over and *err saying why (a string of the decoder's, valid until its next
 * decode):
 * -EINVAL  not snappy's block format, or not a protobuf WriteRequest once decompressed;
 * -E2BIG   it decompresses to more than max bytes (said by snappy's header, before anything is
 *          decompressed), or decoding would take more than RW_MEMORY_PER_BYTE times that;
 * -ENOMEM. */
int rw_decode(struct rw_decoder *d, const char *body, size_t len, size_t max,
              const struct recv_time *rt, const struct rw_out *out, const char **err);

/* Decoded messages may take this many bytes per byte of the decompressed body. */
#define RW_MEMORY_PER_BYTE 16
/* Families whose type the decoder remembers from metadata. */
#define RW_MAX_FAMILIES 100000

#endif
