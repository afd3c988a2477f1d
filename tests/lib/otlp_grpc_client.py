"""An OTLP/gRPC client for the integration tests: Debian's python3-grpcio calling the Export
methods of opentelemetry.proto.collector.{logs,trace,metrics}.v1, with message classes generated
from proto/ by protoc at test time (the same as otlp_pb.py). Run by /usr/bin/python3;
spillway_test.OtlpGrpcClient drives it.

    otlp_grpc_client.py GEN_DIR TARGET SIGNAL [--gzip] [--raw] [--path PATH] [--timeout S]
                        [--repeat N]

reads the request from stdin: an OTLP/JSON document (hex ids), or with --raw the message's bytes
as they are (to send what is not a request), and calls SIGNAL's Export method on TARGET
(host:port, h2c), or PATH instead. Prints one JSON object: {"code": the status name, "message",
"response": the Export*ServiceResponse as proto3 JSON (when OK), "retry_s": the RetryInfo delay
in seconds when the status carried one}. With --repeat, the call is made up to N times on one
channel, stopping at the first that is not OK; "calls_ok" says how many were OK."""
import json
import sys

sys.path.insert(0, sys.argv[1])
sys.path.insert(0, __file__.rsplit("/", 1)[0])

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402

from otlp_pb import REQUESTS, RESPONSES, hex_ids_to_base64  # noqa: E402

METHODS = {"logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
           "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
           "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"}


def retry_of(err):
    """The RetryInfo delay (seconds) in an error's grpc-status-details-bin, or None."""
    for key, value in err.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        st = status_pb2.Status()
        st.ParseFromString(value)
        for d in st.details:
            info = error_details_pb2.RetryInfo()
            if d.Unpack(info):
                return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


def main():
    target, signal, args = sys.argv[2], sys.argv[3], sys.argv[4:]
    path = args[args.index("--path") + 1] if "--path" in args else METHODS[signal]
    timeout = float(args[args.index("--timeout") + 1]) if "--timeout" in args else 30
    repeat = int(args[args.index("--repeat") + 1]) if "--repeat" in args else 1
    data = sys.stdin.buffer.read()
    if "--raw" not in args:
        doc = hex_ids_to_base64(json.loads(data))
        data = json_format.ParseDict(doc, REQUESTS[signal]()).SerializeToString()
    compression = grpc.Compression.Gzip if "--gzip" in args else grpc.Compression.NoCompression
    with grpc.insecure_channel(target, compression=compression) as ch:
        call = ch.unary_unary(path, request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
        ok = 0
        for _ in range(repeat):
            out = {"code": "OK", "message": ""}
            try:
                body = call(data, timeout=timeout)
                msg = RESPONSES[signal]()
                msg.ParseFromString(body)
                out["response"] = json_format.MessageToDict(msg)
                ok += 1
            except grpc.RpcError as e:
                out = {"code": e.code().name, "message": e.details() or "", "retry_s": retry_of(e)}
                break
        out["calls_ok"] = ok
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
