/* gRPC as a client speaks it over libcurl's HTTP/2 (router/sinks/httpc.h), for the otlp sink: the
 * 5-byte prefix of a message, the status of an answer when the server sent none (mapped from the
 * HTTP status as gRPC's specification says), the retry delay a google.rpc.RetryInfo carries in
 * grpc-status-details-bin, the status names, and which codes the OTLP specification retries.
 * Pure functions of their arguments, unit-tested on their own (test_grpcc). */
#ifndef SPILLWAY_GRPCC_H
#define SPILLWAY_GRPCC_H

#include <stddef.h>
#include <stdint.h>

#include "proto/grpc_codes.h"

/* "INVALID_ARGUMENT", ...; "UNKNOWN" for a code gRPC does not define. */
const char *grpcc_code_name(int code);

/* The prefix of a message of len bytes: its compressed flag, then its length, big-endian. */
void grpcc_prefix(uint8_t out[5], int compressed, uint32_t len);

/* The message of a response body that holds one uncompressed message. Returns 0 with *msg and
 * *len (pointing into body), or -1 (no message, a cut one, or a compressed one). */
int grpcc_message(const void *body, size_t n, const uint8_t **msg, size_t *len);

/* The status of an answer that carries no grpc-status: gRPC's mapping of its HTTP status (400
 * INTERNAL, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429, 502, 503 and 504
 * UNAVAILABLE, another UNKNOWN). */
int grpcc_from_http(long status);

/* The wait a google.rpc.Status (grpc-status-details-bin, decoded) asks for in a
 * google.rpc.RetryInfo detail, in ns (0 when the RetryInfo gives none, or a negative one); -1
 * when it has no RetryInfo (or does not decode). */
int64_t grpcc_retry_delay(const void *status, size_t n);

/* True when OTLP retries code (its specification: CANCELLED, DEADLINE_EXCEEDED, ABORTED,
 * OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS; RESOURCE_EXHAUSTED only when the server said when to come
 * back, with a RetryInfo). */
int grpcc_retryable(int code, int has_retry_info);

#endif
