/* The bodies spillway answers OTLP requests with, in the request's encoding (protobuf or
 * OTLP/JSON): the Export*ServiceResponse of a signal (empty, or with partial_success: how many
 * records were rejected and why) and the google.rpc.Status of an error. Pure functions writing
 * into a caller's buffer. */
#ifndef SPILLWAY_OTLP_REPLY_H
#define SPILLWAY_OTLP_REPLY_H

#include <stdint.h>

#include "collector/otlp.h"
#include "core/buf.h"
#include "proto/grpc_codes.h"

/* application/x-protobuf or application/json. */
const char *otlp_content_type(enum otlp_encoding enc);

/* Appends the Export*ServiceResponse of sig: empty when rejected is 0 and message NULL. Returns
 * 0 or -ENOMEM. */
int otlp_reply_export(struct buf *out, enum otlp_signal sig, enum otlp_encoding enc,
                      int64_t rejected, const char *message);

/* Appends a google.rpc.Status with code and message. Returns 0 or -ENOMEM. */
int otlp_reply_status(struct buf *out, enum otlp_encoding enc, enum grpc_code code,
                      const char *message);

/* Appends a google.rpc.Status UNAVAILABLE, in protobuf, whose details hold a RetryInfo asking
 * the client to retry after delay_s seconds (what gRPC's grpc-status-details-bin carries, and
 * what the OpenTelemetry SDKs honour). Returns 0 or -ENOMEM. */
int otlp_reply_retry(struct buf *out, const char *message, int64_t delay_s);

#endif
