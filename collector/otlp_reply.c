#include "collector/otlp_reply.h"

#include <errno.h>
#include <string.h>

#include "core/jsonw.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

const char *otlp_content_type(enum otlp_encoding enc)
{
    return enc == OTLP_PROTOBUF ? "application/x-protobuf" : "application/json";
}

static int pack(struct buf *out, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n == 0) /* the empty response: out may have no memory yet, and NULL + 0 is undefined */
        return 0;
    if (buf_reserve(out, n))
        return -ENOMEM;
    out->len += protobuf_c_message_pack(msg, (uint8_t *)out->data + out->len);
    return 0;
}

static int export_pb(struct buf *out, enum otlp_signal sig, int64_t rejected, char *message)
{
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse logs =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsPartialSuccess logs_ps =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse traces =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess traces_ps =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse metrics =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsPartialSuccess metrics_ps =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
    int partial = rejected || message;
    switch (sig) {
    case OTLP_LOGS:
        logs_ps.rejected_log_records = rejected;
        logs_ps.error_message = message ? message : logs_ps.error_message;
        logs.partial_success = partial ? &logs_ps : NULL;
        return pack(out, &logs.base);
    case OTLP_TRACES:
        traces_ps.rejected_spans = rejected;
        traces_ps.error_message = message ? message : traces_ps.error_message;
        traces.partial_success = partial ? &traces_ps : NULL;
        return pack(out, &traces.base);
    default:
        metrics_ps.rejected_data_points = rejected;
        metrics_ps.error_message = message ? message : metrics_ps.error_message;
        metrics.partial_success = partial ? &metrics_ps : NULL;
        return pack(out, &metrics.base);
    }
}

int otlp_reply_export(struct buf *out, enum otlp_signal sig, enum otlp_encoding enc,
                      int64_t rejected, const char *message)
{
    static const char *const field[] = {[OTLP_LOGS] = "rejectedLogRecords",
                                        [OTLP_TRACES] = "rejectedSpans",
                                        [OTLP_METRICS] = "rejectedDataPoints"};
    if (enc == OTLP_PROTOBUF)
        return export_pb(out, sig, rejected, (char *)message);
    if (!rejected && !message)
        return buf_puts(out, "{}");
    /* int64 as a JSON number: what OTLP/JSON readers take, and what the http input answered
     * before protobuf came. */
    int rc = buf_puts(out, "{\"partialSuccess\":{\"") | buf_puts(out, field[sig]) |
             buf_puts(out, "\":") | jsonw_int(out, rejected);
    if (message)
        rc |= buf_puts(out, ",\"errorMessage\":") | jsonw_string(out, message, strlen(message));
    return rc | buf_puts(out, "}}") ? -ENOMEM : 0;
}

int otlp_reply_status(struct buf *out, enum otlp_encoding enc, enum grpc_code code,
                      const char *message)
{
    if (enc == OTLP_PROTOBUF) {
        Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
        st.code = (int32_t)code;
        st.message = (char *)message;
        return pack(out, &st.base);
    }
    int rc = buf_puts(out, "{\"code\":") | jsonw_int(out, code) | buf_puts(out, ",\"message\":") |
             jsonw_string(out, message, strlen(message)) | buf_puts(out, "}");
    return rc ? -ENOMEM : 0;
}

int otlp_reply_retry(struct buf *out, const char *message, int64_t delay_s)
{
    Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
    delay.seconds = delay_s;
    Google__Rpc__RetryInfo info = GOOGLE__RPC__RETRY_INFO__INIT;
    info.retry_delay = &delay;
    uint8_t packed[32]; /* a RetryInfo of seconds only: a dozen bytes */
    size_t n = google__rpc__retry_info__get_packed_size(&info);
    if (n > sizeof(packed))
        return -ENOMEM;
    google__rpc__retry_info__pack(&info, packed);
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = "type.googleapis.com/google.rpc.RetryInfo";
    any.value = (ProtobufCBinaryData){n, packed};
    Google__Protobuf__Any *details[1] = {&any};
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = GRPC_UNAVAILABLE;
    st.message = (char *)message;
    st.n_details = 1;
    st.details = details;
    return pack(out, &st.base);
}
