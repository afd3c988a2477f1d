"""Issue 3: every input fed with the tools a user has (logger, curl, socat) and the canonical
events that come out; limits and bad input give clear errors and lose nothing else."""
import gzip
import json
import os
import signal
import socket
import subprocess
import time

from spillway_test import (BIN, Spillway, check, check_canonical, count_lines, free_port, main,
                           read_ndjson, run, socat_send, wait_for)

HEAD = """
data_dir: ./data
admin: {socket: ./run/admin.sock, http: ""}
pipeline: {partitions: 2, memory_limit: 16MiB}
routes: [{name: all, sinks: [out]}]
sinks:
  - {name: out, type: file, path: ./out.ndjson}
  - {name: dl,  type: file, path: ./dead.ndjson}
dead_letter: dl
inputs:
"""


def spill(inputs, ports=None):
    return Spillway(HEAD + inputs)


def events(sw):
    return read_ndjson(sw.path("out.ndjson"))


def dead(sw):
    return read_ndjson(sw.path("dead.ndjson"))


def stats(sw):
    r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", "stats"])
    return {i["name"]: i for i in json.loads(r.stdout)["inputs"]}


def wait_lines(sw, n, what="events"):
    wait_for(lambda: count_lines(sw.path("out.ndjson")) >= n, 30, what)


def test_syslog_with_logger():
    tcp = free_port()
    cfg = f"""
  - {{name: udp, type: udp, listen: "127.0.0.1:{{udp}}"}}
  - {{name: tcp, type: tcp, listen: "127.0.0.1:{tcp}", format: syslog}}
  - {{name: devlog, type: unix_dgram, path: ./run/log}}
  - {{name: usock, type: unix, path: ./run/syslog.sock, format: syslog}}
"""
    with spill(cfg) as sw:
        sw.start()
        udp = str(sw.ports["udp"])
        run(["logger", "-n", "127.0.0.1", "-P", udp, "-d", "--rfc5424", "-t", "billing", "-p",
             "auth.err", "--sd-id", "order@32473", "--sd-param", 'id="42"', "charge failed"])
        run(["logger", "-n", "127.0.0.1", "-P", udp, "-d", "--rfc3164", "-t", "cron", "-i",
             "-p", "cron.warning", "disk almost full"])
        run(["logger", "-n", "127.0.0.1", "-P", str(tcp), "-T", "--octet-count", "-t", "api",
             "line one\nline two in the same message"])
        run(["logger", "-n", "127.0.0.1", "-P", str(tcp), "-T", "-t", "api", "newline framed"])
        run(["logger", "-u", sw.path("run/log"), "-t", "local", "via /dev/log style socket"])
        usock = sw.path("run/syslog.sock")
        # -T: the unix stream socket; logger's local format (no hostname), newline framed.
        run(["logger", "-u", usock, "-T", "-t", "unixapp", "-p", "local3.warning",
             "over a unix stream"])
        run(["logger", "-u", usock, "-T", "--octet-count", "--rfc5424", "-t", "unixapp",
             "octet-counted over a unix stream"])
        wait_lines(sw, 7)
        check(sw.stop() == 0, "clean stop")
        by_msg = {e["message"]: e for e in events(sw)}
        e = by_msg["charge failed"]
        check_canonical(e, "udp")
        check(e["service"] == "billing" and e["level"] == "ERROR" and e["facility"] == "auth"
              and e["host"] and e["structured_data"]["order@32473"]["id"] == "42", f"5424: {e}")
        e = by_msg["disk almost full"]
        check(e["service"] == "cron" and e["level"] == "WARN" and e["facility"] == "cron"
              and e["procid"].isdigit(), f"3164: {e}")
        e = by_msg["line one\nline two in the same message"]
        check(e["source"] == "tcp" and e["service"] == "api", f"octet counting keeps newlines: {e}")
        check(by_msg["newline framed"]["source"] == "tcp", "newline framing")
        check(by_msg["via /dev/log style socket"]["source"] == "devlog", "unix_dgram")
        for m in ("over a unix stream", "octet-counted over a unix stream"):
            e = by_msg[m]
            check_canonical(e, "usock")
            check(e["service"] == "unixapp" and "syslog_error" not in e, f"unix syslog: {e}")
        check(by_msg["over a unix stream"]["level"] == "WARN"
              and by_msg["over a unix stream"]["facility"] == "local3", "unix: PRI read")


def test_syslog_loose_and_rejected():
    with spill('  - {name: udp, type: udp, listen: "127.0.0.1:{udp}"}\n') as sw:
        sw.start()
        addr = f"UDP:127.0.0.1:{sw.ports['udp']}"
        socat_send(b"just some text without a header", addr)
        socat_send(b"<13>\xff\xfe not utf-8", addr)
        wait_for(lambda: count_lines(sw.path("out.ndjson")) == 1
                 and count_lines(sw.path("dead.ndjson")) == 1, 30, "loose + dead")
        st = stats(sw)["udp"]
        check(sw.stop() == 0, "clean stop")
        e = events(sw)[0]
        check(e["message"] == "just some text without a header" and "syslog_error" in e,
              f"kept as a log with the raw text: {e}")
        check(st["syslog_loose"] == 1 and st["dead_letter"] == 1 and st["received"] == 2,
              f"the loose message counted: {st}")
        d = dead(sw)[0]
        check("UTF-8" in d["error"] and "raw_base64" in d, f"dead letter: {d}")


def test_syslog_events_staged_where_they_are_built():
    """A syslog event is built in the staging batch of the partition the last one went to and
    staged there without a copy; when its partition key sends it elsewhere it is copied, and
    when the stream adds a field (a tailed file's path) it is rebuilt. Over four partitions keyed
    by host (runs of one host and changes at every message), with loose and rejected messages
    between, every event arrives whole, each host's in order, and a tailed file's events carry
    their path."""
    conf = HEAD.replace("partitions: 2, memory_limit: 16MiB",
                        "partitions: 4, partition_key: host, memory_limit: 16MiB")
    with Spillway(conf + '  - {name: tcp, type: tcp, listen: "127.0.0.1:{tcp}", format: syslog}\n'
                  '  - {name: files, type: tail, path: ./logs/*.log, poll_interval: 50ms, '
                  'format: syslog}\n') as sw:
        os.makedirs(sw.path("logs"))
        sw.start()
        sent, frames, loose, bad = [], [], 0, 0
        for i in range(4000):
            host = f"h{(i // 7) % 5}" if i < 2000 else f"h{i % 5}"
            text = f"n={i} " + '"q"\\' * (i % 13)
            msg = f"<14>1 2026-11-27T10:00:00.000000Z {host} app - - - {text}".encode()
            frames.append(str(len(msg)).encode() + b" " + msg)
            sent.append((host, i, text))
            if i % 500 == 250:
                loose_msg = b"no header at all"
                frames.append(str(len(loose_msg)).encode() + b" " + loose_msg)
                loose += 1
            if i % 700 == 350:
                bad_msg = b"<13>1 - h a - - - \xff"
                frames.append(str(len(bad_msg)).encode() + b" " + bad_msg)
                bad += 1
        socat_send(b"".join(frames), f"TCP:127.0.0.1:{sw.ports['tcp']}")
        with open(sw.path("logs/app.log"), "w") as f:
            for i in range(50):
                f.write(f"<14>1 2026-11-27T10:00:00.000000Z t{i % 2} tailapp - - - line {i}\n")
        total = len(sent) + loose + 50
        wait_for(lambda: count_lines(sw.path("out.ndjson")) == total
                 and count_lines(sw.path("dead.ndjson")) == bad, 60, "every event")
        st = stats(sw)
        check(sw.stop() == 0, "clean stop")
        got = events(sw)
        tcp = [e for e in got if e.get("service") == "app"]
        check(sorted((e["host"], int(e["message"].split()[0][2:]), e["message"]) for e in tcp)
              == sorted(sent), "every TCP event whole")
        for host in {h for h, _, _ in sent}:
            seq = [int(e["message"].split()[0][2:]) for e in tcp if e["host"] == host]
            check(seq == sorted(seq), f"host {host}: in order")
        check(sum(1 for e in got if e.get("message") == "no header at all") == loose,
              "the loose messages")
        tail = [e for e in got if e.get("service") == "tailapp"]
        check(len(tail) == 50 and all(e["file"].endswith("logs/app.log") for e in tail),
              f"the tailed events with their path: {tail[:2]}")
        for host in ("t0", "t1"):
            seq = [int(e["message"].split()[1]) for e in tail if e["host"] == host]
            check(seq == sorted(seq), f"tailed host {host}: in order")
        check(st["tcp"]["received"] == len(sent) + loose + bad
              and st["tcp"]["dead_letter"] == bad and st["tcp"]["syslog_loose"] == loose,
              f"counted: {st['tcp']}")


def test_syslog_too_large_for_the_pipeline():
    """A syslog message whose event outgrows the pipeline's largest record (1 MiB limit, one
    partition: 256 KiB; 200,000 quotes become 400,000 escaped bytes) is dead-lettered as too
    large with the message it came from; the messages on either side of it are delivered, in
    order, and the counts add up."""
    conf = HEAD.replace("partitions: 2, memory_limit: 16MiB", "partitions: 1, memory_limit: 1MiB")
    with Spillway(conf + '  - {name: tcp, type: tcp, listen: "127.0.0.1:{tcp}", '
                  'format: syslog}\n') as sw:
        sw.start()

        def frame(text):
            msg = b"<14>1 2026-11-27T10:00:00.000000Z host app - - - " + text
            return str(len(msg)).encode() + b" " + msg

        socat_send(frame(b"before") + frame(b'"' * 200000) + frame(b"after"),
                   f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: count_lines(sw.path("out.ndjson")) == 2
                 and count_lines(sw.path("dead.ndjson")) == 1, 30, "two events, one dead letter")
        st = stats(sw)["tcp"]
        check(sw.stop() == 0, "clean stop")
        check([e["message"] for e in events(sw)] == ["before", "after"], f"in order: {events(sw)}")
        d = dead(sw)[0]
        check(d["error"] == "too large" and d.get("raw_bytes", len(d.get("raw", ""))) > 200000,
              f"dead letter: {str(d)[:300]}")
        # accepted counts what went into the pipeline: the dead letter too.
        check(st["received"] == 3 and st["dead_letter"] == 1 and st["accepted"] == 3
              and st["dropped"] == 0, f"counted: {st}")


OTLP_LOGS = {"resourceLogs": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "checkout"}},
    {"key": "host.name", "value": {"stringValue": "web-1"}}]},
    "scopeLogs": [{"scope": {"name": "lib", "version": "2.0"}, "logRecords": [
        {"timeUnixNano": "1544712660300000000", "severityNumber": 17, "severityText": "ERROR",
         "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
         "body": {"stringValue": "payment declined"},
         "attributes": [{"key": "http.status", "value": {"intValue": "402"}}]}]}]}]}
OTLP_TRACES = {"resourceSpans": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "checkout"}}]},
    "scopeSpans": [{"spans": [
        {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
         "parentSpanId": "EEE19B7EC3C1B173", "name": "POST /pay", "kind": 2,
         "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712660250000000",
         "status": {"code": 2, "message": "declined"}}]}]}]}
OTLP_METRICS = {"resourceMetrics": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "checkout"}}]},
    "scopeMetrics": [{"metrics": [
        {"name": "orders", "unit": "1", "sum": {"aggregationTemporality": 2, "isMonotonic": True,
         "dataPoints": [{"asInt": "7", "timeUnixNano": "1544712660300000000"},
                        {"asInt": "9", "timeUnixNano": "1544712661300000000"}]}}]}]}]}


def curl(url, data, *headers):
    args = ["curl", "-s", "-o", "/dev/stderr", "-w", "%{http_code}", "-X", "POST", url,
            "--data-binary", "@-"]
    for h in headers:
        args += ["-H", h]
    r = subprocess.run(args, input=data, capture_output=True, timeout=30)
    return int(r.stdout), r.stderr.decode(errors="replace")


def test_http_events_and_otlp():
    cfg = '  - {name: web, type: http, listen: "127.0.0.1:{http}", max_body: 64KiB}\n'
    with spill(cfg) as sw:
        sw.start()
        u = f"http://127.0.0.1:{sw.ports['http']}"
        code, body = curl(u + "/v1/events", b'{"msg":"n1"}\n{"msg":"n2"}\nbroken\n')
        check(code == 200 and json.loads(body) == {"accepted": 2, "dead_letter": 1},
              f"NDJSON: {code} {body}")
        code, body = curl(u + "/v1/events", b'[{"msg":"a1"},{"msg":"a2"}]',
                          "Content-Type: application/json")
        check(code == 200 and json.loads(body)["accepted"] == 2, f"array: {code} {body}")
        code, body = curl(u + "/v1/events", gzip.compress(b'{"msg":"zipped"}\n'),
                          "Content-Encoding: gzip")
        check(code == 200, f"gzip: {code} {body}")
        code, body = curl(u + "/v1/events", b'[{"msg":')
        check(code == 400 and "error" in json.loads(body), f"bad body: {code} {body}")
        # Nothing in the body is a JSON object: 400, the sender is told why, nothing is kept.
        for bad in (b'{"msg":', b"hello", b"hello\nworld\n", b'"a string"\n42\n'):
            code, body = curl(u + "/v1/events", bad)
            check(code == 400 and json.loads(body)["error"].startswith(
                "body is neither JSON nor NDJSON: line 1: "), f"{bad!r}: {code} {body}")
        # One line that reads makes the body NDJSON: the bad lines before it are dead-lettered.
        code, body = curl(u + "/v1/events", b'oops\n\n{"msg":"n3"}\n')
        check(code == 200 and json.loads(body) == {"accepted": 1, "dead_letter": 1},
              f"bad line first: {code} {body}")
        code, _ = curl(u + "/v1/events", b"x" * 100_000)
        check(code == 413, f"over max_body: {code}")
        code, _ = curl(u + "/v1/events", gzip.compress(b'{"a":"' + b"y" * 200_000 + b'"}'),
                       "Content-Encoding: gzip")
        check(code == 413, f"gzip bomb over max_body after decompression: {code}")
        # OTLP protobuf (test_otlp_http.py has the rest): one empty ResourceLogs, no record.
        code, body = curl(u + "/v1/logs", b"\x0a\x00", "Content-Type: application/x-protobuf")
        check(code == 200 and body == "", f"protobuf: {code} {body!r}")
        code, body = curl(u + "/v1/logs", b"\x0a\x00", "Content-Type: text/plain")
        check(code == 415 and json.loads(body)["code"] == 3, f"text/plain: {code} {body!r}")
        for path, doc in (("/v1/logs", OTLP_LOGS), ("/v1/traces", OTLP_TRACES),
                          ("/v1/metrics", OTLP_METRICS)):
            code, body = curl(u + path, json.dumps(doc).encode(),
                              "Content-Type: application/json")
            check(code == 200 and json.loads(body) == {}, f"{path}: {code} {body}")
        wait_lines(sw, 10)
        st = stats(sw)["web"]
        # The 400s, 415 and the gzip 413 are ours; a Content-Length over max_body is refused
        # (413) by the HTTP layer before spillway sees the request.
        check(st["rejected"] >= 7 and st["dead_letter"] == 2, f"counters: {st}")
        check(sw.stop() == 0, "clean stop")
        raws = sorted(d["raw"] for d in dead(sw))
        check(raws == ["broken", "oops"], f"only the lines of NDJSON bodies dead-lettered: {raws}")
        evs = events(sw)
        msgs = sorted(e.get("message") for e in evs if e["kind"] == "log")
        check(msgs == ["a1", "a2", "n1", "n2", "n3", "payment declined", "zipped"],
              f"logs: {msgs}")
        log = next(e for e in evs if e.get("message") == "payment declined")
        check(log["service"] == "checkout" and log["host"] == "web-1" and log["level"] == "ERROR"
              and log["trace_id"] == "5b8efff798038103d269b633813fc60c"
              and log["http.status"] == 402 and log["timestamp"] == "2018-12-13T14:51:00.300000Z"
              and log["scope.name"] == "lib", f"OTLP log: {log}")
        span = next(e for e in evs if e["kind"] == "trace")
        check(span["name"] == "POST /pay" and span["duration_ns"] == 250_000_000
              and span["status"] == "ERROR" and span["span_kind"] == "SERVER"
              and span["parent_span_id"] == "eee19b7ec3c1b173", f"OTLP span: {span}")
        points = sorted(e["value"] for e in evs if e["kind"] == "metric")
        check(points == [7, 9], f"one event per data point: {points}")


def test_statsd():
    cfg = '  - {name: m, type: statsd, listen: "127.0.0.1:{udp}"}\n'
    with spill(cfg) as sw:
        sw.start()
        socat_send(b"hits:1|c|@0.5|#env:prod\nload:0.75|g\nlat:12|ms\nnot statsd",
                   f"UDP:127.0.0.1:{sw.ports['udp']}")
        wait_for(lambda: count_lines(sw.path("out.ndjson")) == 3
                 and count_lines(sw.path("dead.ndjson")) == 1, 30, "metrics")
        check(sw.stop() == 0, "clean stop")
        by = {e["name"]: e for e in events(sw)}
        check(by["hits"]["metric_type"] == "counter" and by["hits"]["labels"] == {"env": "prod"}
              and by["hits"]["statsd_sample_rate"] == 0.5, f"counter: {by['hits']}")
        check(by["load"]["value"] == 0.75 and by["lat"]["unit"] == "ms", f"{by}")
        for e in by.values():
            check_canonical(e, "m")
            check(e["kind"] == "metric", "kind metric")


def test_tail_rotation_truncation_and_restart():
    cfg = ('  - {name: files, type: tail, path: ./logs/*.log, poll_interval: 50ms, '
           'glob_interval: 100ms}\n')
    with spill(cfg) as sw:
        os.makedirs(sw.path("logs"))
        log = sw.path("logs/app.log")

        def append(*lines):
            with open(log, "a") as f:
                f.write("".join(l + "\n" for l in lines))

        append("l1", "l2")
        sw.start()
        wait_lines(sw, 2)
        append("l3")
        wait_lines(sw, 3)
        os.rename(log, log + ".1")               # rotate by rename...
        with open(log + ".1", "a") as f:          # ...while the writer still has the old file
            f.write("l4\n")
        append("l5")                              # the new file
        wait_lines(sw, 5, "rotation followed")
        with open(log, "r+") as f:               # copytruncate
            f.truncate(0)
        time.sleep(0.2)
        append("l6")
        wait_lines(sw, 6, "truncation followed")
        with open(log, "a") as f:
            f.write("l7-start")                   # a partial line at stop
        check(sw.stop() == 0, "clean stop")
        with open(log, "a") as f:
            f.write("-end\nl8\n")
        sw.start()
        wait_lines(sw, 8, "resume after restart")
        check(sw.stop() == 0, "clean stop")
        evs = events(sw)
        msgs = [e["message"] for e in evs]
        check(sorted(msgs) == ["l1", "l2", "l3", "l4", "l5", "l6", "l7-start-end", "l8"],
              f"nothing re-read or skipped: {msgs}")
        files = {e["message"]: os.path.basename(e.get("file", "")) for e in evs}
        check(files["l1"] == "app.log" and files["l8"] == "app.log", f"path_key: {files}")
        check(files["l4"] in ("app.log", "app.log.1"), f"rotated file's path: {files}")


def test_tail_glob_that_matches_rotated_names():
    """app.log* also matches app.log.1: a renamed file is one file, followed under its new name
    and never read again, while spillway runs and when it was renamed while spillway was
    stopped."""
    cfg = ('  - {name: files, type: tail, path: ./logs/app.log*, poll_interval: 50ms, '
           'glob_interval: 100ms}\n')
    with spill(cfg) as sw:
        os.makedirs(sw.path("logs"))
        log = sw.path("logs/app.log")

        def append(path, *lines):
            with open(path, "a") as f:
                f.write("".join(l + "\n" for l in lines))

        append(log, "r1", "r2")
        sw.start()
        wait_lines(sw, 2)
        os.rename(log, log + ".1")
        append(log + ".1", "r3")                  # the writer still has the old file
        append(log, "r4")
        wait_lines(sw, 4, "rotation followed")
        append(log + ".1", "r5")                  # still followed under its new name
        wait_lines(sw, 5, "renamed file followed")
        time.sleep(1.5)                           # two glob rounds: nothing read again
        check(sw.stop() == 0, "clean stop")
        append(log, "r6")                         # written, then rotated while stopped
        os.rename(log + ".1", log + ".2")
        os.rename(log, log + ".1")
        append(log, "r7")
        sw.start()
        wait_lines(sw, 7, "lines written while stopped")
        time.sleep(1.5)
        check(sw.stop() == 0, "clean stop")
        msgs = [e["message"] for e in events(sw)]
        check(sorted(msgs) == ["r1", "r2", "r3", "r4", "r5", "r6", "r7"],
              f"each line once: {msgs}")


def test_stdin_pipe():
    conf = HEAD.replace("inputs:\n", "inputs:\n  - {name: in, type: stdin, format: lines}\n")
    with Spillway(conf) as sw:
        r = subprocess.run([BIN, "run", "-c", sw.config_path], cwd=sw.dir,
                           input=b"first line\nsecond line\nno newline at the end",
                           capture_output=True, timeout=60)
        check(r.returncode == 0, f"exits 0 at end of input: {r.stderr[-2000:]}")
        msgs = sorted(e["message"] for e in events(sw))
        check(msgs == ["first line", "no newline at the end", "second line"], f"{msgs}")
        check(all("file" not in e for e in events(sw)), "no tail field on other inputs")


def test_stdin_to_stdout_text():
    conf = ("data_dir: ./data\nadmin: {socket: '', http: ''}\n"
            "inputs: [{name: in, type: stdin, format: ndjson}]\npipeline: {partitions: 1}\n"
            "routes: [{name: all, sinks: [console]}]\n"
            "sinks: [{name: console, type: stdout, format: text}]\n")
    with Spillway(conf) as sw:
        lines = (b'{"timestamp":"2026-01-02T03:04:05Z","level":"ERROR","service":"api",'
                 b'"message":"disk full"}\n'
                 b'{"timestamp":"2026-01-02T03:04:06Z","message":"no level, no service"}\n')
        r = subprocess.run([BIN, "run", "-c", sw.config_path], cwd=sw.dir, input=lines,
                           capture_output=True, timeout=60)
        check(r.returncode == 0, f"exits 0 at end of input: {r.stderr[-2000:]}")
        out = r.stdout.decode().splitlines()
        check(out == ["2026-01-02T03:04:05.000000Z ERROR api: disk full",
                      "2026-01-02T03:04:06.000000Z in: no level, no service"], f"text lines: {out}")


def test_limits_and_bad_input():
    cfg = ('  - {name: app, type: tcp, listen: "127.0.0.1:{tcp}", max_event_size: 1KiB, '
           'max_connections: 2, aliases: {lvl: level, text: message}}\n')
    with spill(cfg) as sw:
        sw.start()
        port = sw.ports["tcp"]
        data = (b'{"text":"before","lvl":"INFO"}\n' + b'{"big":"' + b"x" * 5000 + b'"}\n'
                + b'{"nul":"a\x00b"}\n' + b'{"text":"after"}\n')
        socat_send(data, f"TCP:127.0.0.1:{port}")
        wait_for(lambda: count_lines(sw.path("out.ndjson")) == 2, 30, "good lines")
        d = dead(sw) if count_lines(sw.path("dead.ndjson")) >= 2 else None
        wait_for(lambda: count_lines(sw.path("dead.ndjson")) == 2, 30, "dead letters")
        d = dead(sw)
        check(any(x["error"] == "too large" and x.get("raw_bytes", 0) >= 1024 or
                  x["error"] == "too large" for x in d), f"too large: {d}")
        check(any("NUL" in x["error"] or "control" in x["error"] or "invalid" in x["error"]
                  for x in d), f"NUL byte: {d}")
        evs = {e["message"]: e for e in events(sw)}
        check(evs["before"]["level"] == "INFO", f"custom aliases: {evs}")
        # max_connections: two held open, the third refused and counted.
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        wait_for(lambda: stats(sw)["app"]["connections"] == 2, 10, "two connections")
        third = socket.create_connection(("127.0.0.1", port))
        third.settimeout(10)
        check(third.recv(1) == b"", "third connection closed by the server")
        wait_for(lambda: stats(sw)["app"]["refused"] == 1, 10, "refusal counted")
        for s in held + [third]:
            s.close()
        st = stats(sw)["app"]
        check(st["received"] == 4 and st["dead_letter"] == 2 and st["bytes"] == len(data),
              f"counters: {st} ({len(data)} bytes sent)")
        check(sw.stop() == 0, "clean stop")


def test_http_idle_and_request_timeouts():
    """idle_timeout closes an http connection quiet between requests (keep-alive) or since it
    opened; request_timeout runs from a request's first byte, so a request may pause longer
    than idle_timeout and still be served."""
    cfg = ('  - {name: web, type: http, listen: "127.0.0.1:{http}", idle_timeout: 1s, '
           'request_timeout: 4s}\n')
    with spill(cfg) as sw:
        sw.start()
        addr = ("127.0.0.1", sw.ports["http"])

        def closed_after(s):
            t0 = time.monotonic()
            s.settimeout(15)
            while s.recv(4096):
                pass
            return time.monotonic() - t0

        s = socket.create_connection(addr)
        took = closed_after(s)
        check(0.8 <= took < 3, f"a connection that never sends is closed: {took}")
        s = socket.create_connection(addr)
        req = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\n"
               b'{"msg":"slow"}')
        s.sendall(req[:20])
        time.sleep(2)  # longer than idle_timeout, within request_timeout
        s.sendall(req[20:])
        s.settimeout(10)
        answer = s.recv(4096)
        check(answer.startswith(b"HTTP/1.1 200"), f"the paused request is served: {answer!r}")
        took = closed_after(s)  # keep-alive, now idle
        check(0.8 <= took < 3, f"the idle keep-alive connection is closed: {took}")
        wait_lines(sw, 1)
        check(stats(sw)["web"]["refused"] == 0, f"idle closes are not refusals: {stats(sw)['web']}")
        check(sw.stop() == 0, "clean stop")


def test_tcp_format_auto():
    """format: auto decides per connection: NDJSON, newline-framed syslog (logger --tcp) and
    RFC 6587 octet-counted syslog (logger --octet-count) on separate connections to one port
    each come out as their format's canonical events."""
    cfg = '  - {name: mixed, type: tcp, listen: "127.0.0.1:{tcp}", format: auto}\n'
    with spill(cfg) as sw:
        sw.start()
        port = str(sw.ports["tcp"])
        socat_send(b'{"msg":"as ndjson","level":"WARN","n":1}\n{"msg":"<not syslog>"}\n',
                   f"TCP:127.0.0.1:{port}")
        run(["logger", "-n", "127.0.0.1", "-P", port, "-T", "-t", "nl", "-p", "daemon.err",
             "newline framed"])
        run(["logger", "-n", "127.0.0.1", "-P", port, "-T", "--octet-count", "-t", "oc",
             "-p", "local0.info", "octet\ncounted"])
        socat_send(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed\n",
                   f"TCP:127.0.0.1:{port}")
        wait_lines(sw, 5)
        check(sw.stop() == 0, "clean stop")
        check(count_lines(sw.path("dead.ndjson")) == 0, "nothing dead-lettered")
        by_msg = {e["message"]: e for e in events(sw)}
        for e in by_msg.values():
            check_canonical(e, "mixed")
            check("syslog_error" not in e, f"each read in its own format: {e}")
        e = by_msg["as ndjson"]
        check(e["level"] == "WARN" and e["n"] == 1 and "facility" not in e, f"NDJSON: {e}")
        check("facility" not in by_msg["<not syslog>"], "a later line of an NDJSON connection")
        e = by_msg["newline framed"]
        check(e["service"] == "nl" and e["level"] == "ERROR" and e["facility"] == "daemon"
              and e["host"], f"newline-framed syslog: {e}")
        e = by_msg["octet\ncounted"]
        check(e["service"] == "oc" and e["level"] == "INFO" and e["facility"] == "local0",
              f"octet-counted syslog: {e}")
        e = by_msg["'su root' failed"]
        check(e["host"] == "mymachine" and e["service"] == "su" and e["level"] == "CRITICAL",
              f"RFC 3164: {e}")


def test_every_format_on_every_kind_of_input():
    """The format registry serves every byte-stream input: statsd lines over TCP, auto per
    datagram over UDP (syslog or NDJSON), plain lines over a unix datagram socket (`lines`, the
    older spelling, still accepted), syslog from a tailed file (stdin: test_stdin_*)."""
    cfg = ('  - {name: st, type: tcp, listen: "127.0.0.1:{tcp}", format: statsd}\n'
           '  - {name: dg, type: udp, listen: "127.0.0.1:{udp}", format: auto}\n'
           '  - {name: ux, type: unix_dgram, path: ./run/lines.sock, format: lines}\n'
           '  - {name: tl, type: tail, path: ./logs/*.log, format: syslog, poll_interval: 50ms}\n')
    with spill(cfg) as sw:
        os.makedirs(sw.path("logs"), exist_ok=True)
        with open(sw.path("logs/app.log"), "w") as f:
            f.write("<11>Dec  6 10:00:00 web nginx: from a file\n")
        sw.start()
        socat_send(b"api.requests:3|c|#env:prod\nlatency:12|ms\n", f"TCP:127.0.0.1:{sw.ports['tcp']}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.sendto(b"<13>Dec  6 10:00:00 host app: a syslog datagram", ("127.0.0.1", sw.ports["udp"]))
            u.sendto(b'{"msg":"a json datagram"}', ("127.0.0.1", sw.ports["udp"]))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as u:
            u.sendto(b"just a line {not json}\n", sw.path("run/lines.sock"))
        wait_lines(sw, 6)
        conf = json.loads(run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json",
                               "config"]).stdout)["config"]
        listening = {r["input"]: r for r in sw.log_records() if r.get("msg") == "input listening"}
        check(listening.get("st", {}).get("type") == "tcp" and listening["dg"]["type"] == "udp"
              and listening["ux"]["address"] == "./run/lines.sock",
              f"each input says where it listens: {listening}")
        check(sw.stop() == 0, "clean stop")
        check(count_lines(sw.path("dead.ndjson")) == 0, "nothing dead-lettered")
        by = {}
        for e in events(sw):
            by.setdefault(e["source"], []).append(e)
    st = {e["name"]: e for e in by["st"]}
    check(st["api.requests"]["kind"] == "metric" and st["api.requests"]["value"] == 3
          and st["api.requests"]["labels"] == {"env": "prod"} and st["latency"]["unit"] == "ms",
          f"statsd over tcp: {by['st']}")
    dg = {e["message"]: e for e in by["dg"]}
    check(dg["a syslog datagram"]["service"] == "app" and "facility" in dg["a syslog datagram"]
          and "facility" not in dg["a json datagram"], f"auto per datagram: {by['dg']}")
    check([e["message"] for e in by["ux"]] == ["just a line {not json}"], f"lines: {by['ux']}")
    tl = by["tl"][0]
    check(tl["service"] == "nginx" and tl["level"] == "ERROR" and tl["message"] == "from a file"
          and tl["file"].endswith("logs/app.log"), f"syslog from a file: {tl}")
    formats = {i["name"]: i["format"] for i in conf["inputs"]}
    check(formats == {"st": "statsd", "dg": "auto", "ux": "line", "tl": "syslog"},
          f"canonical names in ctl config: {formats}")


def test_udp_kernel_overflow_is_counted():
    """Datagrams the kernel drops because the socket's receive buffer is full are counted
    (overflow), so every datagram sent is either received or counted: spillway is stopped
    (SIGSTOP) while 200 datagrams arrive at a 4 KiB buffer that holds only a few."""
    cfg = '  - {name: udp, type: udp, listen: "127.0.0.1:{udp}", receive_buffer: 4KiB}\n'
    with spill(cfg) as sw:
        sw.start()
        port = sw.ports["udp"]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"<14>first", ("127.0.0.1", port))
        wait_for(lambda: stats(sw)["udp"]["received"] == 1, 30, "the first datagram")
        burst = 200
        os.kill(sw.proc.pid, signal.SIGSTOP)
        try:
            for i in range(burst):
                s.sendto(b"<14>burst %d " % i + b"x" * 200, ("127.0.0.1", port))
        finally:
            os.kill(sw.proc.pid, signal.SIGCONT)
        sent = 1 + burst
        # The kernel's count comes with the next datagram it queues: send one now and then
        # until it is counted (the first ones may still find the buffer full).
        deadline = time.monotonic() + 30
        while stats(sw)["udp"]["overflow"] == 0:
            check(time.monotonic() < deadline, f"overflow counted: {stats(sw)['udp']}")
            s.sendto(b"<14>after", ("127.0.0.1", port))
            sent += 1
            time.sleep(0.2)
        wait_for(lambda: stats(sw)["udp"]["received"] + stats(sw)["udp"]["overflow"]
                 == sent, 30, "every datagram received or counted")
        st = stats(sw)["udp"]
        check(st["overflow"] > 0, f"the kernel dropped some, counted: {st}")
        check("the kernel dropped datagrams" in sw.log(), "and logged")
        wait_for(lambda: count_lines(sw.path("out.ndjson")) == st["received"], 30, "delivered")
        check(sw.stop() == 0, "clean stop")


def test_backpressure_when_full_block():
    """pipeline.when_full: block with a sink that never takes anything: the TCP input stops
    reading (its received count stops, the sender blocks), HTTP answers 503 with Retry-After,
    and UDP datagrams are read and counted as dropped, none silently lost."""
    dead_port = free_port()  # nothing listens there: the tcp sink never delivers
    conf = f"""
data_dir: ./data
shutdown_timeout: 1s
admin: {{socket: ./run/admin.sock, http: ""}}
pipeline: {{partitions: 1, memory_limit: 1MiB, when_full: block}}
routes: [{{name: all, sinks: [stuck]}}]
sinks: [{{name: stuck, type: tcp, address: "127.0.0.1:{dead_port}", connect_timeout: 100ms}}]
inputs:
  - {{name: app, type: tcp, listen: "127.0.0.1:{{tcp}}"}}
  - {{name: web, type: http, listen: "127.0.0.1:{{http}}"}}
  - {{name: dg, type: udp, listen: "127.0.0.1:{{udp}}", format: json}}
"""
    with Spillway(conf) as sw:
        sw.start()
        s = socket.create_connection(("127.0.0.1", sw.ports["tcp"]))
        s.settimeout(1)
        chunk = (json.dumps({"msg": "x" * 200}) + "\n").encode() * 1000
        sent, deadline = 0, time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                s.sendall(chunk)
                sent += len(chunk)
        except socket.timeout:
            pass
        check(time.monotonic() < deadline, f"the sender blocks (sent {sent} bytes)")
        # Paused: what spillway read stays where it is while the kernel holds the rest.
        wait_for(lambda: stats(sw)["app"]["received"] > 0, 10, "the flood read")
        before = stats(sw)["app"]
        time.sleep(1.5)
        after = stats(sw)["app"]
        check(after["received"] == before["received"] and after["bytes"] == before["bytes"]
              and after["bytes"] < sent, f"the input stopped reading: {before} {after} "
              f"({sent} bytes sent)")
        check(after["connections"] == 1 and after["dropped"] == 0, f"held, nothing lost: {after}")
        try:
            s.send(chunk)
            check(False, "the sender is still blocked")
        except socket.timeout:
            pass
        # HTTP: 503 with Retry-After, the body not read; counted as refused.
        r = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "-X", "POST",
                            f"http://127.0.0.1:{sw.ports['http']}/v1/events",
                            "--data-binary", '{"msg":"while full"}'],
                           capture_output=True, text=True, timeout=30)
        head = r.stdout.lower()
        check(head.startswith("http/1.1 503") and "\nretry-after: 1\n" in head,
              f"503 with Retry-After: {r.stdout!r}")
        check(stats(sw)["web"]["refused"] == 1, f"counted: {stats(sw)['web']}")
        # UDP cannot push back: every datagram is read and counted as dropped.
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(50):
            u.sendto(json.dumps({"msg": "dgram", "i": i}).encode(), ("127.0.0.1", sw.ports["udp"]))
        u.close()
        wait_for(lambda: stats(sw)["dg"]["received"] == 50, 10, "the datagrams read")
        dg = stats(sw)["dg"]
        check(dg["dropped"] == 50 and dg["accepted"] == 0, f"all 50 counted as dropped: {dg}")
        check(stats(sw)["app"]["received"] == before["received"], "the TCP input still paused")
        s.close()
        sw.stop()


if __name__ == "__main__":
    main([test_syslog_with_logger, test_syslog_loose_and_rejected,
          test_syslog_too_large_for_the_pipeline, test_syslog_events_staged_where_they_are_built,
          test_http_events_and_otlp,
          test_every_format_on_every_kind_of_input,
          test_statsd, test_tail_rotation_truncation_and_restart,
          test_tail_glob_that_matches_rotated_names, test_stdin_pipe,
          test_stdin_to_stdout_text, test_limits_and_bad_input,
          test_http_idle_and_request_timeouts, test_tcp_format_auto,
          test_backpressure_when_full_block,
          test_udp_kernel_overflow_is_counted])
