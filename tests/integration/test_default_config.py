"""`spillway run` without -c in an empty directory: the embedded default config (the one
`make run` starts) writes scripts/default.lua and delivers what arrives on 127.0.0.1:5170 and
run/spillway.sock, syslog on udp 5514, HTTP on 4318 and OTLP/gRPC on 4317 to
data/out/events.ndjson."""
import os

from spillway_test import (OtlpGrpcClient, OtlpProtobuf, Spillway, check, check_canonical,
                           count_lines, main, read_ndjson, run, socat_send, wait_for)


def test_embedded_default():
    with Spillway() as sw:
        sw.start()
        check(os.path.exists(sw.path("scripts/default.lua")), "default script written")
        socat_send(b'{"msg":"tcp","trace_id":"AA"}\n', "TCP:127.0.0.1:5170")
        socat_send(b'{"msg":"unix"}\n', f"UNIX-CONNECT:{sw.path('run/spillway.sock')}")
        run(["logger", "-n", "127.0.0.1", "-P", "5514", "-d", "-t", "t", "syslog"])
        r = run(["curl", "-s", "-X", "POST", "http://127.0.0.1:4318/v1/events", "-d",
                 '{"msg":"http"}'])
        check('"accepted":1' in r.stdout, f"http: {r.stdout} {r.stderr}")
        grpc = OtlpGrpcClient(OtlpProtobuf()).export(4317, "logs", {"resourceLogs": [{"scopeLogs": [
            {"logRecords": [{"body": {"stringValue": "grpc"}}]}]}]})
        check(grpc["code"] == "OK", f"otlp_grpc: {grpc}")
        wait_for(lambda: count_lines(sw.path("data/out/events.ndjson")) == 5, 30, "5 events")
        check(sw.stop() == 0, "clean stop")
        events = read_ndjson(sw.path("data/out/events.ndjson"))
        check(sorted(e["message"] for e in events) == ["grpc", "http", "syslog", "tcp", "unix"],
              f"events: {events}")
        sources = {"tcp": "app", "unix": "local", "syslog": "syslog", "http": "otlp",
                   "grpc": "grpc"}
        for e in events:
            check_canonical(e, sources[e["message"]])


if __name__ == "__main__":
    main([test_embedded_default])
