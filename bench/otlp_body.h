/* The OTLP request the S7 and S7J benchmarks send (bench/run.py) and micro_event decodes: n log
 * records with the fields of loadgen's NDJSON events (the level as severity, service and host in
 * the one resource, trace and span ids, the message as the body; user, email, latency_ms and seq
 * as attributes), as protobuf (protobuf-c) and as the same records in OTLP/JSON. */
#ifndef SPILLWAY_BENCH_OTLP_BODY_H
#define SPILLWAY_BENCH_OTLP_BODY_H

#include "core/buf.h"

/* Appends the request of n records to pb (protobuf) and json (OTLP/JSON). Returns 0, or 1 when
 * out of memory. */
int otlp_body(long n, struct buf *pb, struct buf *json);

#endif
