"""Issue 16: the otlp_grpc input, with the clients a user has and the bad input they do not send.
The same telemetry sent as OTLP/JSON and protobuf over HTTP and over gRPC (plain and gzip) must
give the same events; the answers follow the OTLP specification's gRPC codes (checked with
python3-grpcio, spillway_test.OtlpGrpcClient); raw HTTP/2 (python3-h2's frame and header layers,
spillway_test.H2Raw) sends what no library sends: a 100 MB length prefix, cut and malformed
messages, resets in the middle of a message, not HTTP/2 at all, a client that never reads, calls
that trickle, a call half sent when SIGTERM comes; the limits on streams and connections hold;
and the OpenTelemetry JS SDK's gRPC and protobuf exporters deliver with their default settings.
Never a crash, a hang, or a lost good record."""
import base64
import gzip
import json
import os
import signal
import socket
import subprocess
import threading
import time

from otlp_fixtures import LOGS, METRICS, N_RECORDS, TRACE, TRACES
from spillway_test import (BIN, H2Raw, OtlpGrpcClient, OtlpProtobuf, Spillway, check,
                           count_lines, free_port, main, read_ndjson, rss_kib, run, wait_for)

LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
DOCS = {"logs": LOGS, "traces": TRACES, "metrics": METRICS}
PATHS = {"logs": "/v1/logs", "traces": "/v1/traces", "metrics": "/v1/metrics"}

CONF = """
data_dir: ./data
shutdown_timeout: 10s
admin: {socket: ./run/admin.sock, http: ""}
pipeline: {partitions: 2, memory_limit: 16MiB}
routes: [{name: all, sinks: [out]}]
sinks:
  - {name: out, type: file, path: ./out.ndjson}
  - {name: dl,  type: file, path: ./dead.ndjson}
dead_letter: dl
inputs:
  - {name: grpc, type: otlp_grpc, listen: "127.0.0.1:{grpc}", max_event_size: 1KiB,
     max_message_size: 64KiB@GRPC@}
  - {name: otlp, type: http, listen: "127.0.0.1:{http}", max_event_size: 1KiB}
"""


def conf(**grpc):
    """CONF with more keys for the otlp_grpc input, or other values (YAML flow text)."""
    text = CONF.replace("max_message_size: 64KiB", f"max_message_size: "
                        f"{grpc.pop('max_message_size', '64KiB')}")
    return text.replace("@GRPC@", "".join(f", {k}: {v}" for k, v in grpc.items()))


def stats(sw):
    r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", "stats"])
    return json.loads(r.stdout)


def input_stats(sw, name="grpc"):
    return {i["name"]: i for i in stats(sw)["inputs"]}[name]


def balanced(sw):
    b = stats(sw)["balance"]
    return b["state"] == "balanced" and all(c["difference"] == 0 for c in b["checks"])


def events(sw):
    return read_ndjson(sw.path("out.ndjson"))


def wait_events(sw, n, what="events"):
    wait_for(lambda: count_lines(sw.path("out.ndjson")) >= n, 30, f"{n} {what}")
    return events(sw)


def http_post(sw, path, body, ctype, gz=False):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", sw.ports["http"], timeout=30)
    headers = {"Content-Type": ctype}
    if gz:
        headers["Content-Encoding"] = "gzip"
        body = gzip.compress(body)
    c.request("POST", path, body, headers)
    r = c.getresponse()
    r.read()
    c.close()
    check(r.status == 200, f"POST {path} {ctype}: {r.status}")


def comparable(evs):
    out = []
    for e in evs:
        e = dict(e)
        e.pop("received_at")
        e.pop("source")
        out.append(json.dumps(e, sort_keys=True))
    return sorted(out)


def b64(data):
    return base64.b64encode(data).decode()


def test_three_encodings_give_the_same_events():
    """Issue 16 point 3: logs, a span and every metric type sent as OTLP/JSON and protobuf over
    HTTP and over gRPC, plain and gzip: byte for byte the same events but for received_at and
    source (each input's name)."""
    pb = OtlpProtobuf()
    try:
        gc = OtlpGrpcClient(pb)
        with Spillway(conf()) as sw:
            sw.start()
            total = 0
            for kind, doc in DOCS.items():
                n = N_RECORDS[kind]
                body = pb.encode(kind, doc)
                sends = (("http json", "otlp", lambda: http_post(
                             sw, PATHS[kind], json.dumps(doc).encode(), "application/json")),
                         ("http protobuf", "otlp", lambda: http_post(
                             sw, PATHS[kind], body, "application/x-protobuf")),
                         ("grpc", "grpc", lambda: gc.export(sw.ports["grpc"], kind, doc)),
                         ("grpc gzip", "grpc",
                          lambda: gc.export(sw.ports["grpc"], kind, doc, gzip=True)))
                got = []
                for what, source, send in sends:
                    r = send()
                    if r is not None:
                        check(r["code"] == "OK" and r["response"] == {},
                              f"{kind} {what}: answered {r}")
                    total += n
                    evs = wait_events(sw, total)[total - n:total]
                    check(all(e["source"] == source for e in evs), f"{what}: sources {evs}")
                    got.append((what, comparable(evs)))
                for what, g in got[1:]:
                    check(g == got[0][1], f"{kind}: {what} gives other events than "
                          f"{got[0][0]}:\n" + "\n".join(g) + "\n---\n" + "\n".join(got[0][1]))
            evs = events(sw)
            log = next(e for e in evs
                       if e.get("message") == "payment declined" and e["source"] == "grpc")
            check(log["trace_id"] == TRACE.lower() and log["service"] == "checkout"
                  and log["resource.k8s.pod.uid"] == 42 and log["http.status"] == 402,
                  f"log event over gRPC: {log}")
            types = sorted(e["metric_type"] for e in evs
                           if e["kind"] == "metric" and e["source"] == "grpc")
            check(types == sorted(["gauge", "counter", "histogram", "exponential_histogram",
                                   "summary"] * 2), f"every metric type over gRPC: {types}")
            st = input_stats(sw)
            n_grpc = 2 * sum(N_RECORDS.values())
            check(st["received"] == n_grpc and st["accepted"] == n_grpc
                  and st["rejected"] == 0 and st["dead_letter"] == 0, f"counters: {st}")
            wait_for(lambda: balanced(sw), 10, "the stats balance")
            check(sw.stop() == 0, "clean stop")
    finally:
        pb.close()


def test_answers():
    """Partial success in the Export*ServiceResponse for a record over max_event_size;
    INVALID_ARGUMENT for bytes that are not a request; UNIMPLEMENTED for another method;
    RESOURCE_EXHAUSTED over max_message_size, as sent and once inflated."""
    pb = OtlpProtobuf()
    try:
        gc = OtlpGrpcClient(pb)
        with Spillway(conf()) as sw:
            sw.start()
            port = sw.ports["grpc"]
            small = {"timeUnixNano": "1544712660300000000", "body": {"stringValue": "small"}}
            big = {"timeUnixNano": "1544712660300000000", "body": {"stringValue": "x" * 2000}}
            doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [small, big, small]}]}]}
            r = gc.export(port, "logs", doc)
            ps = r.get("response", {}).get("partialSuccess", {})
            check(r["code"] == "OK" and ps.get("rejectedLogRecords") == "1"
                  and "too large" in ps.get("errorMessage", ""), f"partial success: {r}")
            spans = {"resourceSpans": [{"scopeSpans": [{"spans": [
                {"name": "big", "attributes": [{"key": "a", "value": {"stringValue": "y" * 2000}}]},
                {"name": "ok"}]}]}]}
            r = gc.export(port, "traces", spans)
            check(r["code"] == "OK"
                  and r["response"].get("partialSuccess", {}).get("rejectedSpans") == "1",
                  f"partial success of spans: {r}")
            r = gc.export(port, "metrics", raw=b"\x0a\x80\xc2\xd7\x2f\x12\x00")
            check(r["code"] == "INVALID_ARGUMENT" and "runs past the end" in r["message"],
                  f"not a request: {r}")
            r = gc.export(port, "logs", raw=b"", path="/opentelemetry.proto.collector.profiles."
                          "v1development.ProfilesService/Export")
            check(r["code"] == "UNIMPLEMENTED" and "ProfilesService" in r["message"],
                  f"unknown method: {r}")
            r = gc.export(port, "logs", raw=b"\x00" * 70_000)
            check(r["code"] == "RESOURCE_EXHAUSTED" and "max_message_size" in r["message"],
                  f"over max_message_size: {r}")
            r = gc.export(port, "logs", raw=b"\x00" * 200_000, gzip=True)
            check(r["code"] == "RESOURCE_EXHAUSTED" and "inflated" in r["message"],
                  f"inflated past max_message_size: {r}")
            wait_for(lambda: count_lines(sw.path("dead.ndjson")) >= 2, 30, "2 dead letters")
            wait_events(sw, 3)
            st = input_stats(sw)
            check(st["received"] == 5 and st["accepted"] == 5 and st["dead_letter"] == 2
                  and st["rejected"] == 4, f"counters: {st}")
            wait_for(lambda: balanced(sw), 10, "the stats balance")
            check(sw.stop() == 0, "clean stop")
    finally:
        pb.close()


def test_unavailable_with_retry_info_when_the_pipeline_is_full():
    """when_full: block, a small memory_limit and a sink that never takes anything: once the
    pipeline is full, calls are answered UNAVAILABLE with a RetryInfo of 1 s (what the SDKs
    retry after); what was taken before is counted, and the stats balance."""
    dead_port = free_port()  # nothing listens there: the tcp sink never delivers
    conf_full = f"""
data_dir: ./data
shutdown_timeout: 1s
admin: {{socket: ./run/admin.sock, http: ""}}
pipeline: {{partitions: 1, memory_limit: 1MiB, when_full: block}}
routes: [{{name: all, sinks: [stuck]}}]
sinks: [{{name: stuck, type: tcp, address: "127.0.0.1:{dead_port}", connect_timeout: 100ms}}]
inputs:
  - {{name: grpc, type: otlp_grpc, listen: "127.0.0.1:{{grpc}}"}}
"""
    pb = OtlpProtobuf()
    try:
        gc = OtlpGrpcClient(pb)
        with Spillway(conf_full) as sw:
            sw.start()
            recs = [{"timeUnixNano": "1544712660300000000",
                     "body": {"stringValue": f"record {i} " + "z" * 200}} for i in range(500)]
            doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": recs}]}]}
            r = gc.export(sw.ports["grpc"], "logs", doc, repeat=200)
            check(r["code"] == "UNAVAILABLE" and r["retry_s"] == 1 and r["calls_ok"] > 0,
                  f"UNAVAILABLE with a RetryInfo of 1 s once full: {r}")
            records = 500 * r["calls_ok"]
            st = input_stats(sw)
            check(st["received"] == records and st["accepted"] == records
                  and st["dropped"] == 0 and st["refused"] >= 1 and st["rejected"] == 0,
                  f"counters ({records} records taken): {st}")
            wait_for(lambda: balanced(sw), 10, "the stats balance")
            sw.stop()
    finally:
        pb.close()


def grpc_status(s):
    return (s.get("trailers") or {}).get("grpc-status")


def test_raw_http2_bad_input():
    """Raw HTTP/2: a 100 MB length prefix answered RESOURCE_EXHAUSTED at once, and the connection
    serves the next call; truncated protobuf and wrong wire types INVALID_ARGUMENT; a message cut
    short then END_STREAM INVALID_ARGUMENT; a stream reset in the middle of a message: nothing of
    it delivered, the connection goes on; a content type that is not gRPC: HTTP 415; compressed
    but not with gzip: UNIMPLEMENTED; not a POST: 405; a PING answered; bytes that are not HTTP/2: the connection closed and counted. Every good record
    sent on the way arrives."""
    pb = OtlpProtobuf()
    try:
        with Spillway(conf()) as sw, H2Raw(None) as h:
            sw.start()
            port = sw.ports["grpc"]
            good = pb.encode("logs", LOGS)
            h.cmd("connect", port=port)
            h.cmd("preface")
            check(h.cmd("read", until="settings", timeout=10)["met"], "the server's SETTINGS")
            # 100 MB announced, 1,000 bytes sent, no END_STREAM: answered without the rest.
            h.cmd("call", stream=1, path=LOGS_EXPORT, msg_b64=b64(b"\x0a" * 1000),
                  length=100_000_000, end=False)
            s = h.answer(1)
            check(grpc_status(s) == "8" and "max_message_size" in s["trailers"]["grpc-message"],
                  f"100 MB prefix: {s}")
            h.cmd("call", stream=3, path=LOGS_EXPORT, msg_b64=b64(good))
            s = h.answer(3)
            check(grpc_status(s) == "0" and s["headers"][":status"] == "200",
                  f"a good call after it: {s}")
            # Truncated protobuf, wrong wire types, cut short before END_STREAM.
            half = good[:len(good) // 2]
            for sid, msg, kw, want in ((5, half, {}, "protobuf: "),
                                       (7, b"\x0d\x00\x00\x00\x00", {}, "wire type"),
                                       (9, good, {"cut": 40}, "cut short")):
                h.cmd("call", stream=sid, path=LOGS_EXPORT, msg_b64=b64(msg), **kw)
                s = h.answer(sid)
                check(grpc_status(s) == "3" and want in s["trailers"].get("grpc-message", ""),
                      f"stream {sid} ({want}): {s}")
            # A reset in the middle of a message whose records would be recognized.
            marked = pb.encode("logs", {"resourceLogs": [{"scopeLogs": [{"logRecords": [
                {"body": {"stringValue": "never whole"}}] * 20}]}]})
            h.cmd("call", stream=11, path=LOGS_EXPORT, msg_b64=b64(marked),
                  cut=len(marked) // 2, end=False)
            h.cmd("rst", stream=11, code=8)
            h.cmd("call", stream=13, path=LOGS_EXPORT, msg_b64=b64(good))
            s = h.answer(13)
            check(grpc_status(s) == "0", f"the connection goes on after a reset: {s}")
            # Not gRPC: HTTP 415, no grpc-status.
            h.cmd("call", stream=15, path=LOGS_EXPORT, msg_b64=b64(good), ctype="application/json")
            s = h.answer(15)
            check(s["headers"][":status"] == "415" and grpc_status(s) is None, f"415: {s}")
            # Compressed without grpc-encoding gzip: UNIMPLEMENTED; not a POST: HTTP 405.
            h.cmd("call", stream=19, path=LOGS_EXPORT, msg_b64=b64(good), flag=1)
            s = h.answer(19)
            check(grpc_status(s) == "12" and "gzip" in s["trailers"].get("grpc-message", ""),
                  f"compressed, not gzip: {s}")
            h.cmd("call", stream=21, path=LOGS_EXPORT, msg_b64=b64(good), method="GET")
            s = h.answer(21)
            check(s["headers"][":status"] == "405" and grpc_status(s) is None, f"405: {s}")
            h.cmd("ping", hex="0102030405060708")
            r = h.cmd("read", until="ping_ack", timeout=10)
            check(r["state"]["ping_acks"] == ["0102030405060708"], f"PING ACK: {r['state']}")
            evs = wait_events(sw, 2 * N_RECORDS["logs"])
            check(len(evs) == 2 * N_RECORDS["logs"]
                  and not any(e.get("message") == "never whole" for e in evs),
                  f"two good calls delivered, nothing of the reset one: {evs}")
            # Not HTTP/2 at all: closed, counted in rejected; the server goes on.
            before = input_stats(sw)["rejected"]
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s2:
                s2.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                while s2.recv(65536):  # the server's SETTINGS, then the end (or a timeout)
                    pass
            wait_for(lambda: input_stats(sw)["rejected"] == before + 1, 10,
                     "the bad connection counted in rejected")
            h.cmd("call", stream=23, path=LOGS_EXPORT, msg_b64=b64(good))
            check(grpc_status(h.answer(23)) == "0", "still serving")
            wait_events(sw, 3 * N_RECORDS["logs"])
            st = input_stats(sw)
            # rejected: the 100 MB prefix, three undecodable calls, the 415, UNIMPLEMENTED, the
            # 405, the bad connection.
            check(st["received"] == 3 * N_RECORDS["logs"] and st["rejected"] == 8
                  and sw.proc.poll() is None, f"counters: {st}")
            wait_for(lambda: balanced(sw), 10, "the stats balance")
            check(sw.stop() == 0, "clean stop")
    finally:
        pb.close()


def test_a_client_that_never_reads():
    """A client that sends call after call and reads none of the answers: once its answers pile
    up spillway stops reading it (its writes stop going through), its memory stays bounded, other
    clients are served meanwhile, and it is cut off after idle_timeout."""
    pb = OtlpProtobuf()
    try:
        gc = OtlpGrpcClient(pb)
        with Spillway(conf(idle_timeout="6s")) as sw, H2Raw(None) as h:
            sw.start()
            port = sw.ports["grpc"]
            rss0 = rss_kib(sw.proc.pid)
            h.cmd("connect", port=port, rcvbuf=4096)
            h.cmd("preface")
            # Each call is an unknown method with a path of its own: some 200 bytes of answer
            # that HPACK cannot shorten. 400,000 of them would be 80 MB of answers. (Not reading,
            # the client does not learn max_concurrent_streams either: calls past it are
            # refused, which answers are as well.)
            r = h.cmd("flood", count=400_000, first=1, seconds=60)
            t0 = time.monotonic()
            check(r["blocked"] and r["bytes"] < 48 << 20,
                  f"spillway kept reading a client that reads nothing: {r}")
            check(input_stats(sw)["connections"] == 1, "not cut off as soon as it stopped reading")
            grown = rss_kib(sw.proc.pid) - rss0
            check(grown < 48 * 1024, f"memory grew by {grown} KiB for one client")
            other = gc.export(port, "logs", LOGS)
            check(other["code"] == "OK", f"another client is served meanwhile: {other}")
            wait_events(sw, N_RECORDS["logs"])
            wait_for(lambda: input_stats(sw)["connections"] == 0, 30,
                     "the client that does not read cut off")
            took = time.monotonic() - t0
            check(2 <= took < 20, f"cut off {took:.1f} s after its writes stopped going through, "
                  "not about idle_timeout (6 s) after its last byte")
            check(h.cmd("read", until="closed", timeout=30)["met"], "its connection closed")
            check(sw.proc.poll() is None, "spillway still runs")
            check(sw.stop() == 0, "clean stop")
    finally:
        pb.close()


def test_answers_that_wait_hold_no_request():
    """A client that lets no answer's DATA through (SETTINGS_INITIAL_WINDOW_SIZE 0) keeps each of
    its calls open after it was answered; each call must then hold its answer only, not its
    request: 90 requests of 1 MB leave spillway's memory about where it was (it held all 90 MB
    before the request was freed once handed over). Reading nothing, it is cut off after
    idle_timeout (it was held for ever)."""
    big = b"\xa2\x06" + bytes([0xc0, 0x84, 0x3d]) + b"x" * 1_000_000  # an unknown field of 1 MB
    with Spillway(conf(max_message_size="2MiB", idle_timeout="4s")) as sw, H2Raw(None) as h:
        sw.start()
        h.cmd("connect", port=sw.ports["grpc"])
        h.cmd("preface", settings={"4": 0})
        rss0 = rss_kib(sw.proc.pid)
        for i in range(90):
            h.cmd("call", stream=2 * i + 1, path=LOGS_EXPORT, msg_b64=b64(big))
        wait_for(lambda: input_stats(sw)["bytes"] >= 90 * len(big), 60, "every request read")
        r = h.cmd("read", until="none", timeout=1)
        answered = [s for s in r["state"]["streams"].values()
                    if s["headers"] and s["headers"].get(":status") == "200"]
        check(len(answered) == 90 and not any(s["ended"] for s in answered),
              f"90 answers begun, none ended (their DATA waits): {len(answered)}")
        grown = rss_kib(sw.proc.pid) - rss0
        check(grown < 30 * 1024, f"memory grew by {grown} KiB: the requests are held")
        check(input_stats(sw)["rejected"] == 0, "nothing refused")
        wait_for(lambda: input_stats(sw)["connections"] == 0, 30,
                 "the client taking none of its answers cut off after idle_timeout")
        check(sw.stop() == 0, "clean stop")


def test_idle_and_request_timeouts():
    """idle_timeout: a connection with nothing to do gets a GOAWAY, then is closed;
    request_timeout: a call that trickles is cancelled (RST_STREAM CANCEL) and counted, while a
    call on the same connection that comes whole is answered."""
    pb = OtlpProtobuf()
    try:
        good = pb.encode("logs", LOGS)
        with Spillway(conf(idle_timeout="2s", request_timeout="2s")) as sw:
            sw.start()
            port = sw.ports["grpc"]
            with H2Raw(port) as h:
                h.cmd("call", stream=1, path=LOGS_EXPORT, msg_b64=b64(good))
                check(grpc_status(h.answer(1)) == "0", "a call")
                t0 = time.monotonic()
                r = h.cmd("read", until="goaway", timeout=30)
                check(r["met"] and r["state"]["goaway"]["code"] == 0,
                      f"a GOAWAY (NO_ERROR) once idle: {r['state']}")
                check(time.monotonic() - t0 >= 1, "not before idle_timeout")
                check(h.cmd("read", until="closed", timeout=30)["met"], "then closed")
            with H2Raw(port) as h:
                h.cmd("call", stream=1, path=LOGS_EXPORT, msg_b64=b64(good), cut=10, end=False)
                t0 = time.monotonic()
                rest = good[10:]
                for i in range(40):  # a byte every 0.3 s: never whole within 2 s
                    h.cmd("data", stream=1, b64=b64(rest[i:i + 1]), end=False)
                    r = h.cmd("read", until="end:1", timeout=0.3)
                    if r["met"]:
                        break
                s = r["state"]["streams"]["1"]
                check(s["reset"] == 8, f"the trickling call cancelled: {s}")
                took = time.monotonic() - t0
                check(1.5 <= took < 8, f"cancelled {took:.1f} s after it began")
                h.cmd("call", stream=3, path=LOGS_EXPORT, msg_b64=b64(good))
                check(grpc_status(h.answer(3)) == "0", "the connection goes on")
            wait_events(sw, 2 * N_RECORDS["logs"])
            st = input_stats(sw)
            check(st["rejected"] == 1 and st["received"] == 2 * N_RECORDS["logs"],
                  f"counters: {st}")
            check(sw.stop() == 0, "clean stop")
    finally:
        pb.close()


def test_sigterm_lets_a_call_in_flight_finish():
    """SIGTERM while a call is half sent: the client gets a GOAWAY that still covers its call,
    sends the rest, and gets its answer; the records are delivered and spillway exits 0 within
    shutdown_timeout."""
    pb = OtlpProtobuf()
    try:
        body = pb.encode("logs", LOGS)
        with Spillway(conf()) as sw, H2Raw(None) as h:
            sw.start()
            h.cmd("connect", port=sw.ports["grpc"])
            h.cmd("preface")
            h.cmd("call", stream=1, path=LOGS_EXPORT, msg_b64=b64(body), cut=len(body) // 2,
                  end=False)
            sent = 24 + 9 + 9 + 5 + len(body) // 2  # preface, SETTINGS, HEADERS head, DATA
            wait_for(lambda: input_stats(sw)["bytes"] >= sent, 10, "the first half read")
            t0 = time.monotonic()
            sw.proc.send_signal(signal.SIGTERM)
            r = h.cmd("read", until="goaway", timeout=10)
            check(r["met"] and r["state"]["goaway"]["last_stream"] == 1
                  and r["state"]["goaway"]["code"] == 0,
                  f"a GOAWAY that covers the call in flight: {r['state']}")
            h.cmd("data", stream=1, b64=b64(body[len(body) // 2:]), end=True)
            s = h.answer(1)
            check(grpc_status(s) == "0", f"the call in flight answered: {s}")
            check(h.cmd("read", until="closed", timeout=10)["met"], "then the connection closed")
            rc = sw.proc.wait(15)
            check(rc == 0 and time.monotonic() - t0 < 10,
                  f"exit {rc} within shutdown_timeout ({time.monotonic() - t0:.1f} s)")
            evs = events(sw)
            check(len(evs) == N_RECORDS["logs"]
                  and any(e.get("message") == "payment declined" for e in evs),
                  f"the call's records delivered: {evs}")
    finally:
        pb.close()


def test_flow_control_holds_a_call_while_the_pipeline_is_full():
    """While the pipeline is full (when_full: block), the request bytes read are not
    acknowledged: a client sending a 3 MB call stops once its window (1 MiB) is spent, without
    an answer and without the connection being closed; once the sink takes events again the
    window opens, the rest arrives, and the call is answered OK."""
    dead_port = free_port()  # nothing listens there until the test starts a listener
    conf_full = f"""
data_dir: ./data
shutdown_timeout: 2s
admin: {{socket: ./run/admin.sock, http: ""}}
pipeline: {{partitions: 1, memory_limit: 1MiB, when_full: block}}
routes: [{{name: all, sinks: [slow]}}]
sinks: [{{name: slow, type: tcp, address: "127.0.0.1:{dead_port}", connect_timeout: 100ms}}]
inputs:
  - {{name: grpc, type: otlp_grpc, listen: "127.0.0.1:{{grpc}}", max_message_size: 8MiB}}
"""
    pb = OtlpProtobuf()
    listener = None
    try:
        gc = OtlpGrpcClient(pb)
        with Spillway(conf_full) as sw:
            sw.start()
            port = sw.ports["grpc"]
            recs = [{"timeUnixNano": "1544712660300000000",
                     "body": {"stringValue": f"record {i} " + "z" * 200}} for i in range(500)]
            r = gc.export(port, "logs", {"resourceLogs": [{"scopeLogs": [{"logRecords": recs}]}]},
                          repeat=200)
            check(r["code"] == "UNAVAILABLE", f"the pipeline full: {r}")
            before = input_stats(sw)["bytes"]
            # An unknown field of 3 MB: a valid request that gives no event.
            big = b"\xa2\x06" + bytes([0xc0, 0x8d, 0xb7, 0x01]) + b"x" * 3_000_000
            result = {}
            th = threading.Thread(target=lambda: result.update(
                gc.export(port, "logs", raw=big, timeout=120)))
            th.start()
            wait_for(lambda: input_stats(sw)["bytes"] - before > 900_000, 30,
                     "the first MiB of the call read")
            time.sleep(2)  # what must not happen: the rest read, or an answer
            read = input_stats(sw)["bytes"] - before
            check(th.is_alive() and read < 1_200_000 + 100_000,
                  f"the client not held by flow control: {read} bytes read, answer {result}")
            listener = subprocess.Popen(["socat", "-u", f"TCP-LISTEN:{dead_port},reuseaddr,fork",
                                         "/dev/null"])
            th.join(90)
            check(not th.is_alive() and result.get("code") == "OK",
                  f"the call answered once the pipeline had room: {result}")
            check(input_stats(sw)["bytes"] - before >= len(big), "every byte of it read")
            sw.stop()
    finally:
        if listener:
            listener.terminate()
            listener.wait(10)
        pb.close()


def h2_stalled_call(port, body):
    """A connection with a call half sent that will never end, written by hand (HPACK literals,
    no Huffman): what a client that hangs mid-call leaves open."""
    def frame(ftype, flags, sid, payload):
        return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + \
            sid.to_bytes(4, "big") + payload

    def literal(name, value):
        return bytes([0, len(name)]) + name + bytes([len(value)]) + value
    block = b"".join(literal(k, v) for k, v in (
        (b":method", b"POST"), (b":scheme", b"http"), (b":path", LOGS_EXPORT.encode()),
        (b":authority", b"127.0.0.1"), (b"content-type", b"application/grpc"),
        (b"te", b"trailers")))
    msg = b"\x00" + len(body).to_bytes(4, "big") + body
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") +
              frame(1, 4, 1, block) + frame(0, 0, 1, msg[:len(msg) // 2]))
    return s


def test_sigterm_with_many_connections():
    """SIGTERM with more connections than the stop polls at once (64): 70 clients hang in the
    middle of a call, and the oldest connection's call, finished after the GOAWAY, must still be
    read and answered (the stop polled only the 64 newest connections, so it was never read, and
    its client saw the connection closed)."""
    pb = OtlpProtobuf()
    try:
        body = pb.encode("logs", LOGS)
        with Spillway(conf().replace("shutdown_timeout: 10s", "shutdown_timeout: 8s")) as sw, \
                H2Raw(None) as h:
            sw.start()
            port = sw.ports["grpc"]
            h.cmd("connect", port=port)
            h.cmd("preface")
            h.cmd("call", stream=1, path=LOGS_EXPORT, msg_b64=b64(body), cut=len(body) // 2,
                  end=False)
            stalled = [h2_stalled_call(port, body) for _ in range(70)]
            wait_for(lambda: input_stats(sw)["connections"] == 71, 10, "71 connections")
            t0 = time.monotonic()
            sw.proc.send_signal(signal.SIGTERM)
            check(h.cmd("read", until="goaway", timeout=10)["met"], "a GOAWAY")
            h.cmd("data", stream=1, b64=b64(body[len(body) // 2:]), end=True)
            s = h.answer(1, timeout=10)
            check(grpc_status(s) == "0", f"the oldest connection's call answered: {s}")
            rc = sw.proc.wait(15)
            check(rc == 0 and time.monotonic() - t0 < 8,
                  f"exit {rc} within shutdown_timeout ({time.monotonic() - t0:.1f} s)")
            check(len(events(sw)) == N_RECORDS["logs"], "its records delivered")
            for c in stalled:
                c.close()
    finally:
        pb.close()


def test_stream_and_connection_limits():
    """max_concurrent_streams (announced in SETTINGS): a call past it is refused with RST_STREAM
    REFUSED_STREAM while the client has not acknowledged the limit, the calls within it answered;
    once the client acknowledged it, opening one more breaks HTTP/2 and the connection gets a
    GOAWAY (nghttp2's rule); both counted in refused. max_connections: a connection past it is
    closed at once and counted in refused, and one is taken again once another closed. A gRPC
    client keeps to the limit by itself: many calls at once all succeed."""
    pb = OtlpProtobuf()
    try:
        gc = OtlpGrpcClient(pb)
        good = pb.encode("logs", LOGS)
        with Spillway(conf(max_concurrent_streams=2, max_connections=2)) as sw:
            sw.start()
            port = sw.ports["grpc"]
            with H2Raw(port) as h, H2Raw(port) as h2:
                for sid in (1, 3, 5):  # before reading (and acknowledging) the SETTINGS
                    h.cmd("call", stream=sid, path=LOGS_EXPORT, msg_b64=b64(good), cut=10,
                          end=False)
                s = h.answer(5)
                check(s["reset"] == 7, f"the third call refused (REFUSED_STREAM): {s}")
                check(h.cmd("state")["state"]["settings"].get("3") == 2,
                      "SETTINGS_MAX_CONCURRENT_STREAMS 2 announced")
                for sid in (1, 3):
                    h.cmd("data", stream=sid, b64=b64(good[10:]), end=True)
                    check(grpc_status(h.answer(sid)) == "0", f"call {sid} answered")
                wait_for(lambda: input_stats(sw)["connections"] == 2, 10, "2 connections")
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s3:
                    check(s3.recv(100) == b"", "the third connection closed at once")
                # h2 acknowledged the SETTINGS when it read them: 3 calls open break the limit.
                check(h2.cmd("read", until="settings", timeout=10)["met"], "SETTINGS read")
                for sid in (1, 3, 5):
                    h2.cmd("call", stream=sid, path=LOGS_EXPORT, msg_b64=b64(good), cut=10,
                           end=False)
                r = h2.cmd("read", until="closed", timeout=10)
                check(r["met"] and r["state"]["goaway"]["code"] == 1,
                      f"GOAWAY PROTOCOL_ERROR past the acknowledged limit: {r['state']}")
                st = input_stats(sw)
                check(st["refused"] == 3 and st["rejected"] == 0, f"counters: {st}")
            wait_for(lambda: input_stats(sw)["connections"] == 0, 10, "both closed")
            r = gc.export(port, "logs", LOGS, repeat=3)
            check(r["code"] == "OK" and r["calls_ok"] == 3, f"a connection taken again: {r}")
            wait_events(sw, 5 * N_RECORDS["logs"])
            check(sw.stop() == 0, "clean stop")
    finally:
        pb.close()

def test_opentelemetry_js_sdk():
    """Issue 16 point 6: the OpenTelemetry JS SDK's OTLP exporters for traces, logs and metrics,
    over gRPC (exporter-*-otlp-grpc, into otlp_grpc) and protobuf over HTTP (exporter-*-otlp-proto,
    into the http input), with their default settings: only OTEL_EXPORTER_OTLP_ENDPOINT is set.
    The span, the log record and the counter arrive with their resource and attributes. The SDK
    is installed by tests/lib/otel_js.py (pinned versions, npm ci, cached in the build tree)."""
    import otel_js
    tree = otel_js.ensure()
    with Spillway(conf()) as sw:
        sw.start()
        for proto, port, source in (("grpc", sw.ports["grpc"], "grpc"),
                                    ("proto", sw.ports["http"], "otlp")):
            env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{port}"
            r = subprocess.run(["node", "export.js", proto], cwd=tree, env=env,
                               capture_output=True, text=True, timeout=120)
            check(r.returncode == 0 and "exported" in r.stdout,
                  f"the {proto} exporters failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr}")
            wait_for(lambda: len([e for e in events(sw) if e["source"] == source]) >= 3, 30,
                     f"the span, the log record and the counter over {proto}")
            evs = [e for e in events(sw) if e["source"] == source]
            by_kind = {e["kind"]: e for e in evs}
            check(len(evs) == 3 and set(by_kind) == {"trace", "log", "metric"},
                  f"{proto}: one event of each kind: {evs}")
            for e in evs:
                check(e["service"] == f"checkout-{proto}"
                      and e.get("resource.deployment.environment") == "test",
                      f"{proto}: the resource: {e}")
            span, log, metric = by_kind["trace"], by_kind["log"], by_kind["metric"]
            check(span["name"] == "POST /pay" and span["order.id"] == "o-42"
                  and len(span["trace_id"]) == 32 and span["scope.name"] == "demo",
                  f"{proto}: the span: {span}")
            check(log["message"] == f"paid {proto}" and log["level"] == "INFO"
                  and log["order.id"] == "o-42", f"{proto}: the log record: {log}")
            check(metric["name"] == "orders" and metric["metric_type"] == "counter"
                  and metric["value"] == 3 and metric["labels"] == {"route": "/pay"},
                  f"{proto}: the counter: {metric}")
        check(input_stats(sw)["rejected"] == 0 and input_stats(sw, "otlp")["rejected"] == 0,
              "nothing refused")
        check(sw.stop() == 0, "clean stop")


if __name__ == "__main__":
    main([test_three_encodings_give_the_same_events, test_answers,
          test_unavailable_with_retry_info_when_the_pipeline_is_full,
          test_flow_control_holds_a_call_while_the_pipeline_is_full, test_raw_http2_bad_input,
          test_a_client_that_never_reads, test_answers_that_wait_hold_no_request,
          test_idle_and_request_timeouts,
          test_sigterm_lets_a_call_in_flight_finish, test_sigterm_with_many_connections,
          test_stream_and_connection_limits,
          test_opentelemetry_js_sdk])
