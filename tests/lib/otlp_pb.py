"""OTLP protobuf for the integration tests, with Google's protobuf library (Debian's
python3-protobuf) and message classes generated from proto/ by protoc at test time: an encoder
and decoder that share nothing with spillway's. Run by /usr/bin/python3 (the tests' own python
may not have google.protobuf); spillway_test.OtlpProtobuf drives it.

    otlp_pb.py GEN_DIR encode logs|traces|metrics    OTLP/JSON on stdin -> protobuf on stdout
    otlp_pb.py GEN_DIR decode logs|traces|metrics|status
                                                     an Export*ServiceResponse (or a
                                                     google.rpc.Status) on stdin -> JSON
    otlp_pb.py GEN_DIR encode|decode write           a Prometheus remote write WriteRequest
    otlp_pb.py GEN_DIR snappy|unsnappy -             snappy's block format (python3-snappy)

GEN_DIR holds the generated modules (protoc --python_out=GEN_DIR -I proto ...). OTLP/JSON is
proto3's JSON mapping except for trace and span ids, which are hex rather than base64: they are
turned into base64 before json_format reads the document."""
import base64
import json
import sys

sys.path.insert(0, sys.argv[1])

from google.protobuf import json_format  # noqa: E402
from google.rpc import status_pb2  # noqa: E402
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2  # noqa: E402
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2  # noqa: E402
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: E402
from prometheus import remote_pb2  # noqa: E402

REQUESTS = {"logs": logs_service_pb2.ExportLogsServiceRequest,
            "traces": trace_service_pb2.ExportTraceServiceRequest,
            "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
            "write": remote_pb2.WriteRequest}
RESPONSES = {"logs": logs_service_pb2.ExportLogsServiceResponse,
             "traces": trace_service_pb2.ExportTraceServiceResponse,
             "metrics": metrics_service_pb2.ExportMetricsServiceResponse,
             "status": status_pb2.Status,
             "write": remote_pb2.WriteRequest}
IDS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}


def hex_ids_to_base64(v):
    if isinstance(v, dict):
        return {k: base64.b64encode(bytes.fromhex(x)).decode()
                if k in IDS and isinstance(x, str) else hex_ids_to_base64(x)
                for k, x in v.items()}
    if isinstance(v, list):
        return [hex_ids_to_base64(x) for x in v]
    return v


def main():
    what, kind = sys.argv[2], sys.argv[3]
    if what in ("snappy", "unsnappy"):
        import snappy
        data = sys.stdin.buffer.read()
        sys.stdout.buffer.write(snappy.compress(data) if what == "snappy"
                                else snappy.uncompress(data))
        return
    if what == "encode":
        doc = hex_ids_to_base64(json.load(sys.stdin))
        msg = json_format.ParseDict(doc, REQUESTS[kind]())
        sys.stdout.buffer.write(msg.SerializeToString())
    else:
        msg = RESPONSES[kind]()
        msg.ParseFromString(sys.stdin.buffer.read())
        json.dump(json_format.MessageToDict(msg), sys.stdout)


if __name__ == "__main__":
    main()
