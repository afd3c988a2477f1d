/* Where OTLP's signals go (the OTLP specification): each signal's OTLP/gRPC Export method and
 * its OTLP/HTTP path, written once for the gRPC and HTTP inputs, the OTLP sink and their tests.
 * Macros, so that a file takes only the ones it uses. */
#ifndef SPILLWAY_PROTO_OTLP_SERVICES_H
#define SPILLWAY_PROTO_OTLP_SERVICES_H

#define OTLP_GRPC_LOGS    "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
#define OTLP_GRPC_TRACES  "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define OTLP_GRPC_METRICS "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

#define OTLP_HTTP_LOGS    "/v1/logs"
#define OTLP_HTTP_TRACES  "/v1/traces"
#define OTLP_HTTP_METRICS "/v1/metrics"

#endif
