/* OTLP/HTTP JSON (what OpenTelemetry SDKs send with the http/json protocol) into canonical
 * events: one per log record, span or metric data point. Resource attributes become
 * `resource.<key>` fields (service.name also becomes `service`, host.name `host`), scope ones
 * `scope.<key>`, the record's own attributes plain top-level fields (prefixed `attributes.`
 * only when they would overwrite a canonical field). Ids are lowercase hex. Pure functions:
 * unit-tested and fuzzed on their own. */
#ifndef SPILLWAY_OTLP_H
#define SPILLWAY_OTLP_H

#include <stddef.h>

#include "collector/normalize.h"
#include "core/buf.h"

enum otlp_signal { OTLP_LOGS, OTLP_TRACES, OTLP_METRICS };

/* Called once per event built (json is valid until the call returns). */
typedef void (*otlp_emit_fn)(void *ud, const char *json, size_t len);

/* Parses one export request body. Returns the number of events emitted (>= 0), or -EINVAL with
 * *err set to a static reason when the body is not an OTLP JSON request of that signal. */
int otlp_parse(enum otlp_signal sig, const char *body, size_t len, const char *source,
               const struct recv_time *rt, otlp_emit_fn emit, void *ud, const char **err);

#endif
