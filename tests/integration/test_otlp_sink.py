"""Issue 16 point 4: the otlp sink. A round trip: spillway A receives OTLP (logs, spans, every metric
type), routes it to a file and to its otlp sink, which exports into spillway B's http input; B's
events must be A's (apart from received_at and source, which each input sets), over http/protobuf,
http/json and gRPC (into B's otlp_grpc input directly, with and without gzip, and through a gRPC
receiver run by the test with python3-grpcio, which passes what it gets on to B). And the
answers, as the OTLP specification says: 503 with Retry-After and gRPC UNAVAILABLE with a RetryInfo
are retried after the delay asked; 400 and INVALID_ARGUMENT dead-letter the request's events with
the answer; a partial success dead-letters as many events as were rejected and keeps its message as
the sink's last error; events with no OTLP form are dead-lettered with the reason."""
import gzip
import http.server
import json
import os
import shutil
import threading
import time
import urllib.request

from otlp_fixtures import LOGS, METRICS, TRACES
from spillway_test import (BIN, OtlpGrpcReceiver, OtlpProtobuf, Spillway, check, count_lines,
                           free_port, main, read_ndjson, run, socat_send, wait_for)
from test_sink_types import make_certs

RECEIVER = """
data_dir: ./data
admin: {socket: ./run/admin.sock, http: ""}
pipeline: {partitions: 2, memory_limit: 16MiB}
inputs: [{name: otlp, type: http, listen: "127.0.0.1:{http}"}]
routes: [{name: all, sinks: [out]}]
sinks:
  - {name: out, type: file, path: ./out.ndjson}
"""

SENDER = """
data_dir: ./data
shutdown_timeout: 20s
admin: {socket: ./run/admin.sock, http: ""}
pipeline: {partitions: 1, memory_limit: 16MiB}
inputs:
  - {name: otlp, type: http, listen: "127.0.0.1:{http}"}
  - {name: app, type: tcp, listen: "127.0.0.1:{tcp}"}
routes: [{name: all, sinks: [out, @NAMES@]}]
sinks:
  - {name: out, type: file, path: ./out.ndjson}
  - {name: dl, type: file, path: ./dead.ndjson}
@SINKS@dead_letter: dl
"""


def sender(sinks):
    """A's config with otlp sinks: {name: endpoint-and-options} (YAML flow text)."""
    return SENDER.replace("@NAMES@", ", ".join(sinks)).replace(
        "@SINKS@", "".join(f"  - {{name: {n}, type: otlp, batch_timeout: 50ms, {o}}}\n"
                              for n, o in sinks.items()))


def ctl(sw, *args):
    r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", *args])
    check(r.returncode == 0, f"ctl {args}: {r.stderr}")
    return json.loads(r.stdout)


def sink_stats(sw, name):
    return next(s for s in ctl(sw, "sinks")["sinks"] if s["name"] == name)


def post_otlp(sw, path, doc):
    req = urllib.request.Request(f"http://127.0.0.1:{sw.ports['http']}{path}",
                                 data=json.dumps(doc).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        check(r.status == 200, f"{path}: {r.status}")


def comparable(events):
    """Events without what each input sets, in an order that does not depend on the grouping."""
    out = []
    for e in events:
        e = dict(e)
        e.pop("received_at", None)
        e.pop("source", None)
        out.append(json.dumps(e, sort_keys=True))
    return sorted(out)


def send_telemetry(a):
    for path, doc in (("/v1/logs", LOGS), ("/v1/traces", TRACES), ("/v1/metrics", METRICS)):
        post_otlp(a, path, doc)


N_TELEMETRY = 8  # 2 log records, 1 span, 5 data points


def check_round_trip(a, b, sink):
    """B got what A routed, once each, and A's sink says so."""
    wait_for(lambda: count_lines(b.path("out.ndjson")) >= N_TELEMETRY, 30, "B's events")
    wait_for(lambda: sink_stats(a, sink)["delivered"] == N_TELEMETRY, 30, f"{sink} delivered")
    sent = comparable(read_ndjson(a.path("out.ndjson")))
    got = comparable(read_ndjson(b.path("out.ndjson")))
    check(len(sent) == N_TELEMETRY, f"A routed {len(sent)} events")
    check(got == sent, f"{sink}: B's events are not A's:\nA " + "\nA ".join(sent) +
          "\nB " + "\nB ".join(got))
    st = sink_stats(a, sink)
    check(st["failed"] == 0 and st["bytes"] > 0, f"{sink}: {st}")


def test_round_trip_over_http():
    """http/protobuf and http/json, A to B: the same events."""
    for protocol in ("http/protobuf", "http/json"):
        with Spillway(RECEIVER) as b:
            b.start()
            conf = sender({"otel": f"protocol: {protocol}, "
                                   f"endpoint: 'http://127.0.0.1:{b.ports['http']}/'"})
            with Spillway(conf) as a:
                a.start()
                send_telemetry(a)
                check_round_trip(a, b, "otel")
                check(a.stop() == 0, "A stops clean")


def test_round_trip_over_grpc_into_spillway():
    """grpc, A's sink into B's otlp_grpc input, compressed (the default) and not: the same
    events; B answered every call OK."""
    for compression in ("gzip", "none"):
        with Spillway(RECEIVER.replace("inputs: [", 'inputs: [{name: grpc, type: otlp_grpc, '
                                       'listen: "127.0.0.1:{grpc}"}, ')) as b:
            b.start()
            conf = sender({"otel": f"protocol: grpc, compression: {compression}, "
                                   f"endpoint: 'http://127.0.0.1:{b.ports['grpc']}'"})
            with Spillway(conf) as a:
                a.start()
                send_telemetry(a)
                check_round_trip(a, b, "otel")
                st = next(i for i in ctl(b, "stats")["inputs"] if i["name"] == "grpc")
                check(st["received"] == N_TELEMETRY and st["rejected"] == 0
                      and st["refused"] == 0, f"B's otlp_grpc input: {st}")
                check({e["source"] for e in read_ndjson(b.path("out.ndjson"))} == {"grpc"},
                      "every event came over gRPC")
                check(a.stop() == 0, "A stops clean")


def test_round_trip_over_grpc():
    """grpc: A's sink to a gRPC receiver that passes every request on to B (as protobuf over
    http, which B decodes as it decodes gRPC's messages): the same events. The ${ENV} header
    arrives as gRPC metadata and is redacted in A's config dump."""
    pb = OtlpProtobuf()
    try:
        with Spillway(RECEIVER) as b, OtlpGrpcReceiver(pb) as rx:
            b.start()
            rx.forward(f"http://127.0.0.1:{b.ports['http']}")
            conf = sender({"otel": f"protocol: grpc, endpoint: '127.0.0.1:{rx.port}', "
                                   "headers: {authorization: 'Bearer ${OTLP_TOKEN}'}"})
            with Spillway(conf, env={"OTLP_TOKEN": "s3cret"}) as a:
                a.start()
                send_telemetry(a)
                check_round_trip(a, b, "otel")
                reqs = rx.requests()
                check({r["signal"] for r in reqs} == {"logs", "traces", "metrics"},
                      f"one request per signal: {[r['signal'] for r in reqs]}")
                check(all(r["metadata"].get("authorization") == "Bearer s3cret" for r in reqs),
                      f"headers as metadata: {[r['metadata'] for r in reqs]}")
                dump = json.dumps(ctl(a, "config"))
                check("s3cret" not in dump and "<redacted>" in dump, "headers redacted")
                check(a.stop() == 0, "A stops clean")
    finally:
        pb.close()


def test_grpc_over_tls():
    """grpc to https://: HTTP/2 over TLS (ALPN), the server verified with tls_ca_file; requests
    on one connection one after the other."""
    if not shutil.which("openssl"):
        print("  skip: the openssl CLI is not installed (needed to make the certificates)")
        return
    pb = OtlpProtobuf()
    try:
        conf = sender({"otel": "protocol: grpc, endpoint: 'https://127.0.0.1:PORT', "
                               "tls_ca_file: ./ca.pem"})
        with Spillway(conf) as a:
            make_certs(a.dir)
            with OtlpGrpcReceiver(pb, tls=(a.path("server.pem"), a.path("server.key"))) as rx:
                with open(a.config_path) as f:
                    text = f.read().replace("PORT", str(rx.port))
                with open(a.config_path, "w") as f:
                    f.write(text)
                a.start()
                for i in range(3):
                    send_logs(a, 2, start=2 * i)
                    wait_for(lambda: sink_stats(a, "otel")["delivered"] == 2 * i + 2, 30,
                             f"batch {i} delivered")
                st = sink_stats(a, "otel")
                check(st["retries"] == 0 and st["failed"] == 0, f"{st}")
                check(sum(r["records"] for r in rx.requests()) == 6, f"{rx.requests()}")
                check(a.stop() == 0, "A stops clean")
    finally:
        pb.close()


def send_logs(sw, n, start=0):
    lines = [json.dumps({"level": "INFO", "service": "svc", "msg": f"event {i}", "seq": i})
             for i in range(start, start + n)]
    socat_send(("\n".join(lines) + "\n").encode(), f"TCP:127.0.0.1:{sw.ports['tcp']}")


def dead(sw):
    return read_ndjson(sw.path("dead.ndjson"))


def test_grpc_answers():
    """UNAVAILABLE with a RetryInfo of 1.5 s: retried 1.5 s later, then delivered;
    INVALID_ARGUMENT: the request's events dead-lettered with the status message, never sent
    again; RESOURCE_EXHAUSTED without a RetryInfo: final too; a partial success rejecting 2 of 3:
    2 failed and dead-lettered, its message the sink's last error."""
    pb = OtlpProtobuf()
    try:
        with OtlpGrpcReceiver(pb) as rx:
            conf = sender({"otel": f"protocol: grpc, endpoint: 'http://127.0.0.1:{rx.port}'"})
            with Spillway(conf) as a:
                a.start()
                rx.answer("UNAVAILABLE", retry_ms=1500, message="busy")
                send_logs(a, 3)
                wait_for(lambda: sink_stats(a, "otel")["delivered"] == 3, 30, "delivered")
                reqs = rx.requests()
                check([r["code"] for r in reqs] == ["UNAVAILABLE", "OK"], f"{reqs}")
                gap = reqs[1]["t"] - reqs[0]["t"]
                check(1.4 <= gap < 4, f"retried {gap:.2f} s after UNAVAILABLE, not ~1.5 s")
                check(sink_stats(a, "otel")["retries"] == 1, "one retry")

                rx.answer("INVALID_ARGUMENT", message="bad record")
                send_logs(a, 2, start=3)
                wait_for(lambda: sink_stats(a, "otel")["failed"] == 2, 30, "refused for good")
                d = dead(a)
                check(len(d) == 2 and all(x["source"] == "sink:otel" and
                                          x["error"] == "gRPC INVALID_ARGUMENT: bad record" and
                                          x["event"]["seq"] in (3, 4) for x in d), f"{d}")

                rx.answer("RESOURCE_EXHAUSTED", message="quota")
                send_logs(a, 1, start=5)
                wait_for(lambda: sink_stats(a, "otel")["failed"] == 3, 30, "no RetryInfo: final")

                rx.answer("OK", rejected=2, message="2 records too large")
                send_logs(a, 3, start=6)
                wait_for(lambda: sink_stats(a, "otel")["failed"] == 5, 30, "partial success")
                st = sink_stats(a, "otel")
                check(st["delivered"] == 4 and "2 records too large" in st["last_error"], f"{st}")
                d = [x for x in dead(a) if "partial success" in x["error"]]
                check(len(d) == 2 and {x["event"]["seq"] for x in d} == {7, 8} and
                      all("2 records too large" in x["error"] for x in d),
                      f"the request's last 2 events dead-lettered: {d}")
                check([r["code"] for r in rx.requests()] ==
                      ["UNAVAILABLE", "OK", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "OK"],
                      "nothing refused was sent again")
                check(a.stop() == 0, "A stops clean")
    finally:
        pb.close()


class HttpReceiver:
    """An OTLP/HTTP destination answering from a script: (status, headers, body) per request,
    the last one repeated."""

    def __init__(self, script):
        self.requests = []
        self.script = list(script)
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    code, headers, body = (outer.script.pop(0) if len(outer.script) > 1
                                           else outer.script[0])
                    outer.requests.append({"t": time.monotonic(), "path": self.path,
                                           "headers": dict(self.headers), "raw": raw,
                                           "code": code})
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def pb_field(field, data):
    """A length-delimited protobuf field (shorter than 128 bytes), written out by hand."""
    return bytes([field << 3 | 2, len(data)]) + data


PB = {"Content-Type": "application/x-protobuf"}
# google.rpc.Status{code: 3, message: "no such tenant"}.
STATUS_400 = bytes([0x08, 3]) + pb_field(2, b"no such tenant")
# ExportLogsServiceResponse{partial_success: {rejected_log_records: 2, error_message: ...}}.
PARTIAL = pb_field(1, bytes([0x08, 2]) + pb_field(2, b"2 too old"))


def test_http_answers():
    """http/protobuf: the request as OTLP/HTTP says (POST /v1/logs, protobuf, gzip, the
    configured headers); 503 with Retry-After: 2 retried 2 s later; 400 with a google.rpc.Status
    dead-letters the request with its message; a partial success rejecting 2 dead-letters the
    last 2 events; and an event with no OTLP form is dead-lettered with the reason, the others
    delivered."""
    rx = HttpReceiver([(503, {"Retry-After": "2"}, b""), (200, PB, b""), (400, PB, STATUS_400),
                       (200, PB, PARTIAL), (200, PB, b"")])
    try:
        conf = sender({"otel": f"endpoint: 'http://127.0.0.1:{rx.port}/otlp', "
                               "headers: {X-Scope-OrgID: team-a}"})
        with Spillway(conf) as a:
            a.start()
            send_logs(a, 3)
            wait_for(lambda: sink_stats(a, "otel")["delivered"] == 3, 30, "delivered")
            r0, r1 = rx.requests[0], rx.requests[1]
            check(r1["t"] - r0["t"] >= 1.9, f"Retry-After: 2 waited {r1['t'] - r0['t']:.2f} s")
            check(r0["path"] == "/otlp/v1/logs", f"path {r0['path']}")
            h = r0["headers"]
            check(h.get("Content-Type") == "application/x-protobuf" and
                  h.get("Content-Encoding") == "gzip" and h.get("X-Scope-OrgID") == "team-a",
                  f"headers {h}")
            check(r0["raw"] == r1["raw"], "the same request sent again")
            body = gzip.decompress(r0["raw"])
            check(b"event 0" in body and b"service.name" in body, "an OTLP request")

            send_logs(a, 2, start=3)
            wait_for(lambda: sink_stats(a, "otel")["failed"] == 2, 30, "400 is final")
            d = dead(a)
            check(len(d) == 2 and all(x["error"] == "HTTP 400: no such tenant" for x in d),
                  f"dead letters with the Status message: {d}")

            send_logs(a, 3, start=5)
            wait_for(lambda: sink_stats(a, "otel")["failed"] == 4, 30, "partial success")
            st = sink_stats(a, "otel")
            check(st["delivered"] == 4 and "2 too old" in st["last_error"], f"{st}")
            check({x["event"]["seq"] for x in dead(a)[2:]} == {6, 7}, "the last 2 dead-lettered")

            # No OTLP form: a metric event without a value. The log next to it goes through.
            socat_send(b'{"kind":"metric","name":"cpu","metric_type":"gauge"}\n'
                       b'{"msg":"fine","seq":8}\n', f"TCP:127.0.0.1:{a.ports['tcp']}")
            wait_for(lambda: sink_stats(a, "otel")["failed"] == 5, 30, "refused before sending")
            wait_for(lambda: sink_stats(a, "otel")["delivered"] == 5, 30, "the log delivered")
            d = dead(a)[-1]
            check(d["error"] == "otlp: metric event without a value" and
                  d["event"]["name"] == "cpu", f"{d}")
            check(len(rx.requests) == 5, f"5 requests: {[r['code'] for r in rx.requests]}")
            b = ctl(a, "stats")["balance"]
            check(b["state"] == "balanced", f"balance: {b}")
            check(a.stop() == 0, "A stops clean")
    finally:
        rx.close()


def test_http_json_answers():
    """http/json: the request in OTLP/JSON (ids in hex); a partial success in OTLP/JSON
    dead-letters as many events as it rejected; a 400's JSON body is the dead letters' error."""
    js = {"Content-Type": "application/json"}
    rx = HttpReceiver([(200, js, b'{"partialSuccess":{"rejectedLogRecords":"1",'
                                 b'"errorMessage":"one too old"}}'),
                       (400, js, b'{"code":3,"message":"bad json"}'), (200, js, b"{}")])
    try:
        conf = sender({"otel": f"protocol: http/json, compression: none, "
                               f"endpoint: 'http://127.0.0.1:{rx.port}'"})
        with Spillway(conf) as a:
            a.start()
            socat_send(b'{"msg":"a","seq":0,"trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736"}\n'
                       b'{"msg":"b","seq":1}\n', f"TCP:127.0.0.1:{a.ports['tcp']}")
            wait_for(lambda: sink_stats(a, "otel")["failed"] == 1, 30, "partial success")
            st = sink_stats(a, "otel")
            check(st["delivered"] == 1 and "one too old" in st["last_error"], f"{st}")
            req = json.loads(rx.requests[0]["raw"])
            rec = req["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
            check(rx.requests[0]["headers"].get("Content-Type") == "application/json" and
                  rec["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736" and
                  rec["body"] == {"stringValue": "a"} and
                  isinstance(rec["timeUnixNano"], str), f"OTLP/JSON: {rec}")
            check([x["event"]["seq"] for x in dead(a)] == [1], "the last event dead-lettered")
            send_logs(a, 1, start=2)
            wait_for(lambda: sink_stats(a, "otel")["failed"] == 2, 30, "400 is final")
            check(dead(a)[-1]["error"] == 'HTTP 400: {"code":3,"message":"bad json"}',
                  f"{dead(a)[-1]}")
            check(a.stop() == 0, "A stops clean")
    finally:
        rx.close()


if __name__ == "__main__":
    main([test_round_trip_over_http, test_round_trip_over_grpc_into_spillway,
          test_round_trip_over_grpc, test_grpc_over_tls,
          test_grpc_answers, test_http_answers, test_http_json_answers])
