"""The OTLP telemetry the OTLP tests send (test_otlp_http, test_otlp_grpc, test_otlp_sink), as
OTLP/JSON documents with hex ids: two log records (every kind of attribute value, a body that is
a map), one span (events, links, a status) and one data point of every metric type (gauge, sum,
histogram, exponential histogram, summary), under one resource and scope. N_RECORDS counts what
each document gives as events."""

TRACE = "5B8EFFF798038103D269B633813FC60C"
RESOURCE = {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}},
                           {"key": "host.name", "value": {"stringValue": "web-1"}},
                           {"key": "k8s.pod.uid", "value": {"intValue": "42"}}]}
SCOPE = {"name": "lib", "version": "2.0",
         "attributes": [{"key": "lang", "value": {"stringValue": "c"}}]}

LOGS = {"resourceLogs": [{"resource": RESOURCE, "scopeLogs": [{"scope": SCOPE, "logRecords": [
    {"timeUnixNano": "1544712660300000000", "severityNumber": 17, "severityText": "ERROR",
     "traceId": TRACE, "spanId": "EEE19B7EC3C1B174", "body": {"stringValue": "payment declined"},
     "attributes": [{"key": "http.status", "value": {"intValue": "402"}},
                    {"key": "ratio", "value": {"doubleValue": 0.1}},
                    {"key": "tags", "value": {"arrayValue": {"values": [
                        {"stringValue": "a"}, {"boolValue": True}]}}},
                    {"key": "blob", "value": {"bytesValue": "aGVsbG8="}},
                    {"key": "message", "value": {"stringValue": "an attribute"}}]},
    {"observedTimeUnixNano": "1544712661000000000", "severityNumber": 9,
     "body": {"kvlistValue": {"values": [{"key": "user", "value": {"stringValue": "u1"}},
                                         {"key": "n", "value": {"intValue": 7}}]}}}]}]}]}

TRACES = {"resourceSpans": [{"resource": RESOURCE, "scopeSpans": [{"scope": SCOPE, "spans": [
    {"traceId": TRACE, "spanId": "EEE19B7EC3C1B174", "parentSpanId": "EEE19B7EC3C1B173",
     "name": "POST /pay", "kind": 2, "startTimeUnixNano": "1544712660000000000",
     "endTimeUnixNano": "1544712660250000000", "status": {"code": 2, "message": "declined"},
     "attributes": [{"key": "status", "value": {"stringValue": "teapot"}}],
     "events": [{"timeUnixNano": "1544712660100000000", "name": "retry",
                 "attributes": [{"key": "attempt", "value": {"intValue": "2"}}]}],
     "links": [{"traceId": TRACE, "spanId": "0102030405060708"}]}]}]}]}

METRICS = {"resourceMetrics": [{"resource": RESOURCE, "scopeMetrics": [{"scope": SCOPE, "metrics": [
    {"name": "temp", "unit": "Cel", "gauge": {"dataPoints": [
        {"timeUnixNano": "1544712660300000000", "asDouble": 21.5}]}},
    {"name": "orders", "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [
        {"asInt": "7", "timeUnixNano": "1544712660300000000",
         "startTimeUnixNano": "1544712600000000000"}]}},
    {"name": "latency", "unit": "ms", "histogram": {"aggregationTemporality": 1, "dataPoints": [
        {"timeUnixNano": "1544712660300000000", "count": "4", "sum": 10.5, "min": 0.25,
         "max": 7, "bucketCounts": ["1", "0", "3"], "explicitBounds": [0.5, 2.5]}]}},
    {"name": "size", "exponentialHistogram": {"aggregationTemporality": 2, "dataPoints": [
        {"timeUnixNano": "1544712660300000000", "count": "5", "sum": 12, "scale": 1,
         "zeroCount": "1", "positive": {"offset": -1, "bucketCounts": ["2", "2"]}}]}},
    {"name": "rtt", "summary": {"dataPoints": [
        {"timeUnixNano": "1544712660300000000", "count": "3", "sum": 0.9,
         "quantileValues": [{"quantile": 0.5, "value": 0.2}, {"quantile": 0.99, "value": 0.5}]}]}},
]}]}]}


N_RECORDS = {"logs": 2, "traces": 1, "metrics": 5}
