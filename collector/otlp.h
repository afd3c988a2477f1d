/* OTLP export requests (ExportLogsServiceRequest, ExportTraceServiceRequest,
 * ExportMetricsServiceRequest), in protobuf or in OTLP/JSON, into canonical events: one per log
 * record, span or metric data point. Both encodings are decoded into the same protobuf-c
 * structures (protobuf-c's generated unpack; core/jsontok.h for JSON), in an arena reset per
 * request, and one mapping turns those into events, so the same telemetry gives the same bytes
 * whatever its encoding. Resource attributes become `resource.<key>` fields (service.name also
 * `service`, host.name `host`), scope ones `scope.<key>`, the record's own attributes plain
 * top-level fields (`attributes.<key>` where they would overwrite a field already written), ids
 * lowercase hex (docs/inputs.md has the whole mapping). The caller owns the decoder; nothing
 * else is shared, so it is unit-tested and fuzzed on its own. */
#ifndef SPILLWAY_OTLP_H
#define SPILLWAY_OTLP_H

#include <stddef.h>

#include "collector/normalize.h"

enum otlp_signal { OTLP_LOGS, OTLP_TRACES, OTLP_METRICS };
enum otlp_encoding { OTLP_PROTOBUF, OTLP_JSON };

/* Where a decode hands what it made. Strings are valid until the call returns. */
struct otlp_out {
    /* An event: valid JSON, one object on one line. key[0..klen) is the JSON text of the value
     * of its member named as the decoder's key field (a string with its quotes), or NULL when
     * it has none: the partition key, found without searching the event. */
    void (*event)(void *ud, const char *json, size_t len, const char *key, size_t klen);
    /* A record of a JSON body that does not decode (a log record, span or metric holding a value
     * of the wrong type, an id that is not hex, ...): why, and the record's JSON text. The other
     * records are delivered. */
    void (*invalid)(void *ud, const char *reason, const char *raw, size_t len);
    void *ud;
};

struct otlp_decoder;

/* A decoder for the events of input `source`, which tells where the value of their member named
 * key_field is (NULL or "": none). Both strings are borrowed for the decoder's life. NULL when
 * out of memory. */
struct otlp_decoder *otlp_decoder_new(const char *source, const char *key_field);
void otlp_decoder_free(struct otlp_decoder *d);

/* Decodes one export request of signal sig and hands its records to out, in order: first the
 * invalid ones, then the events. Returns how many records were handed over, or, with nothing
 * handed over and *err saying why (a string of the decoder's, valid until its next decode):
 * -EINVAL  the body is not an export request of that encoding (not protobuf, not JSON, a
 *          resource or scope that does not decode, nested deeper than OTLP_MAX_DEPTH);
 * -E2BIG   decoding it would take more memory than OTLP_MEMORY_PER_BYTE times its size (plus
 *          1 MiB): millions of near-empty messages; or its events more than OTLP_EXPANSION
 *          times its size (plus 64 MiB): a big resource repeated in every tiny record;
 * -ENOMEM. */
int otlp_decode(struct otlp_decoder *d, enum otlp_signal sig, enum otlp_encoding enc,
                const char *body, size_t len, const struct recv_time *rt,
                const struct otlp_out *out, const char **err);

/* Messages nested deeper than this are refused (protobuf-c unpacks recursively). */
#define OTLP_MAX_DEPTH 100
/* Decoded messages may take this many bytes per byte of body (a typical request takes 4 to 6). */
#define OTLP_MEMORY_PER_BYTE 16
/* The events of a request may take this many bytes per byte of body, plus 64 MiB: a resource of
 * many attributes over hundreds of records takes 10 to 20 times the body. */
#define OTLP_EXPANSION 64

#endif
