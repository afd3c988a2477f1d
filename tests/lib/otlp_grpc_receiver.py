"""An OTLP/gRPC receiver for the integration tests: the three Export methods of
opentelemetry.proto.collector.{logs,trace,metrics}.v1 served by Debian's python3-grpcio (h2c on
127.0.0.1), with message classes generated from proto/ by protoc at test time. Run by
/usr/bin/python3; spillway_test.OtlpGrpcReceiver drives it.

    otlp_grpc_receiver.py GEN_DIR LOG [CERT KEY]

(with CERT and KEY, PEM files, it serves over TLS) prints "listening PORT", then takes commands on stdin, one per line, each answered "ok":

    answer CODE [retry_ms=N] [rejected=N] [message=TEXT]
        queues the answer to a coming request (first in, first out; with none queued a request
        is answered OK): CODE is a gRPC status name (OK, UNAVAILABLE, INVALID_ARGUMENT, ...);
        retry_ms adds a google.rpc.RetryInfo to the status (grpc-status-details-bin); rejected
        makes an OK a partial success of that many records, message its error_message (or the
        status message); TEXT is the rest of the line
    forward URL
        POSTs every request answered OK, as it came (protobuf), to URL/v1/<signal>: another
        spillway's http input, so a test can compare that spillway's events with the sender's

Every request is written to LOG as a JSON line: {"t": monotonic time, "signal", "metadata" (the
request's metadata), "records" (how many log records, spans or data points), "code" (what it
was answered), "body" (the request, base64)}."""
import base64
import json
import sys
import threading
import time
import urllib.request
from concurrent import futures

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
from google.protobuf import any_pb2, duration_pb2  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2  # noqa: E402
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2  # noqa: E402
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: E402

SERVICES = {
    "logs": ("opentelemetry.proto.collector.logs.v1.LogsService",
             logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse,
             "rejected_log_records"),
    "traces": ("opentelemetry.proto.collector.trace.v1.TraceService",
               trace_service_pb2.ExportTraceServiceRequest,
               trace_service_pb2.ExportTraceServiceResponse, "rejected_spans"),
    "metrics": ("opentelemetry.proto.collector.metrics.v1.MetricsService",
                metrics_service_pb2.ExportMetricsServiceRequest,
                metrics_service_pb2.ExportMetricsServiceResponse, "rejected_data_points"),
}

lock = threading.Lock()
answers = []
forward = [None]
log = open(sys.argv[2], "a")


def count(signal, req):
    if signal == "logs":
        return sum(len(s.log_records) for r in req.resource_logs for s in r.scope_logs)
    if signal == "traces":
        return sum(len(s.spans) for r in req.resource_spans for s in r.scope_spans)
    n = 0
    for r in req.resource_metrics:
        for s in r.scope_metrics:
            for m in s.metrics:
                kind = m.WhichOneof("data")
                n += len(getattr(m, kind).data_points) if kind else 0
    return n


def handler(signal):
    _, request_cls, response_cls, rejected_field = SERVICES[signal]

    def export(raw, context):
        req = request_cls()
        req.ParseFromString(raw)
        with lock:
            a = answers.pop(0) if answers else {"code": "OK"}
        md = {k: v for k, v in context.invocation_metadata()}
        log.write(json.dumps({"t": time.monotonic(), "signal": signal, "metadata": md,
                              "records": count(signal, req), "code": a["code"],
                              "body": base64.b64encode(raw).decode()}) + "\n")
        log.flush()
        if a["code"] != "OK":
            if a.get("retry_ms"):
                st = status_pb2.Status(code=getattr(grpc.StatusCode, a["code"]).value[0],
                                       message=a.get("message", ""))
                ms = int(a["retry_ms"])
                info = error_details_pb2.RetryInfo(
                    retry_delay=duration_pb2.Duration(seconds=ms // 1000,
                                                      nanos=ms % 1000 * 1000000))
                detail = any_pb2.Any()
                detail.Pack(info)
                st.details.append(detail)
                context.set_trailing_metadata((("grpc-status-details-bin",
                                                st.SerializeToString()),))
            context.abort(getattr(grpc.StatusCode, a["code"]), a.get("message", ""))
        if forward[0]:
            r = urllib.request.Request(f"{forward[0]}/v1/{signal}", data=raw, method="POST",
                                       headers={"Content-Type": "application/x-protobuf"})
            urllib.request.urlopen(r, timeout=30).read()
        resp = response_cls()
        if a.get("rejected"):
            setattr(resp.partial_success, rejected_field, int(a["rejected"]))
            resp.partial_success.error_message = a.get("message", "")
        return resp.SerializeToString()

    return grpc.unary_unary_rpc_method_handler(export)


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    for signal, (service, *_) in SERVICES.items():
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"Export": handler(signal)}),))
    if len(sys.argv) > 4:
        with open(sys.argv[3], "rb") as c, open(sys.argv[4], "rb") as k:
            creds = grpc.ssl_server_credentials(((k.read(), c.read()),))
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening {port}", flush=True)
    for line in sys.stdin:
        words = line.split(" ", 1)
        cmd, rest = words[0].strip(), words[1].strip() if len(words) > 1 else ""
        if cmd == "answer":
            parts = rest.split(" ")
            a = {"code": parts[0]}
            for i, p in enumerate(parts[1:], 1):
                k, _, v = p.partition("=")
                if k == "message":
                    a["message"] = " ".join([v] + parts[i + 1:])
                    break
                a[k] = v
            with lock:
                answers.append(a)
        elif cmd == "forward":
            forward[0] = rest.rstrip("/")
        else:
            print(f"unknown command {cmd}", flush=True)
            continue
        print("ok", flush=True)
    server.stop(0)


if __name__ == "__main__":
    main()
