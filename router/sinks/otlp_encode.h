/* Canonical events back into OTLP, for the otlp sink: the reverse of the OTLP input's mapping
 * (collector/otlp_map.c, docs/inputs.md), so that the input decodes what this encodes into the
 * same events. An event (its JSON text, read with core/jsontok.h, no tree) becomes a LogRecord, a
 * Span or a metric data point, built as protobuf-c structures in an arena that a reset frees at
 * once; events with the same resource share one ResourceLogs/ResourceSpans/ResourceMetrics, within
 * it those with the same scope one Scope*, and data points of the same metric one Metric. A batch's
 * request of each signal is then written as protobuf (protobuf-c's pack) or as OTLP/JSON (core/
 * jsonw.h). docs/sinks.md has the whole mapping. The caller owns the encoder and uses it from one
 * thread. */
#ifndef SPILLWAY_OTLP_ENCODE_H
#define SPILLWAY_OTLP_ENCODE_H

#include <stddef.h>

#include "core/buf.h"

enum otlp_encode_signal { OTLP_ENCODE_LOGS, OTLP_ENCODE_TRACES, OTLP_ENCODE_METRICS };
#define OTLP_ENCODE_SIGNALS 3
extern const char *const otlp_encode_signal_names[]; /* "logs", "traces", "metrics" */

enum otlp_encode_format { OTLP_ENCODE_PROTOBUF, OTLP_ENCODE_JSON };

struct otlp_encoder;

/* NULL when out of memory. */
struct otlp_encoder *otlp_encoder_new(void);
void otlp_encoder_free(struct otlp_encoder *e);

/* Starts a new batch: every event added before is forgotten (their memory is kept for the next
 * batch, up to a bound). */
void otlp_encoder_reset(struct otlp_encoder *e);

/* Adds the event json[0..len) (borrowed for the call only) to the batch. Returns the signal whose
 * request it joined; -EINVAL when it has no OTLP form (a trace event without valid ids, a metric
 * event without a value, a statsd set, ...), with *why saying so (the encoder's string, valid
 * until its next call; the event is not in any request); or -ENOMEM (the batch is then unusable:
 * reset it). */
int otlp_encoder_add(struct otlp_encoder *e, const char *json, size_t len, const char **why);

/* How many events of the batch went to signal sig's request. */
size_t otlp_encoder_count(const struct otlp_encoder *e, enum otlp_encode_signal sig);

/* Appends signal sig's export request (ExportLogsServiceRequest, ...) of the batch to out, as
 * protobuf or as OTLP/JSON. Returns 0 or -ENOMEM. */
int otlp_encoder_write(struct otlp_encoder *e, enum otlp_encode_signal sig,
                       enum otlp_encode_format fmt, struct buf *out);

#endif
