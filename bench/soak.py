"""Soak: mixed traffic through every kind of input, several routes and a flaky HTTP sink for
SOAK_SECONDS; samples RSS and open file descriptors every second; reports events in, out and
dropped (with reasons, from `spillway ctl --json stats`); fails when RSS or fds grow.

Flat means: after a warm-up (the first quarter of the run, at least 20 s: two outages of the
flaky sink, so its queue has been as deep as it gets), the maximum over the
last third is not more than SOAK_RSS_GROWTH (default 10%) above the maximum over the first
third, and the fd count's maximum over the last third is not above the first third's maximum
plus SOAK_FD_SLACK (default 8: a reconnecting sink may hold a socket more at a sample).

Usage: bench/soak.sh [SECONDS]   (or python3 bench/soak.py with SPILLWAY_BIN set)
Exit 0 when flat and balanced, 1 otherwise. Uses tests/lib/spillway_test.py's harness."""
import gzip
import http.client
import json
import os
import random
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
from spillway_test import BIN, Spillway, free_port, run  # noqa: E402

CONFIG = """
data_dir: ./data
shutdown_timeout: 30s
log_level: info
admin: {socket: ./run/admin.sock, http: "127.0.0.1:{admin_http}"}
pipeline: {partitions: 2, memory_limit: 32MiB}
inputs:
  - {name: app, type: tcp, listen: "127.0.0.1:{tcp}"}
  - {name: syslog_udp, type: udp, listen: "127.0.0.1:{udp}"}
  - {name: syslog_tcp, type: tcp, listen: "127.0.0.1:SYSLOG_TCP", format: syslog}
  - {name: web, type: http, listen: "127.0.0.1:{http}"}
  - {name: metrics, type: statsd, listen: "127.0.0.1:STATSD"}
  - {name: files, type: tail, path: ./logs/*.log, poll_interval: 100ms}
router: {scripts: ./scripts}
routes:
  - {name: errors, script: errors.lua, sinks: [errors], stop: false}
  - {name: sampled, sample_rate: 0.3, sinks: [flaky], shadow: [counted]}
  - {name: all, sinks: [archive]}
sinks:
  - {name: errors, type: file, path: ./out/errors.ndjson, max_size: 4MiB, keep: 2}
  - {name: archive, type: file, path: ./out/all.ndjson, max_size: 8MiB, keep: 2}
  - {name: flaky, type: http, url: "http://127.0.0.1:FLAKY/", batch_timeout: 50ms,
     request_timeout: 2s, when_full: drop_newest}
  - {name: counted, type: null}
  - {name: dl, type: file, path: ./out/dead.ndjson, max_size: 4MiB, keep: 2}
dead_letter: dl
"""
ERRORS_LUA = """function process(ev)
  if ev.level ~= "ERROR" and ev.level ~= "ERR" then return false end
  ev.seen = spillway.dedup(ev.trace_id or "", 5) and 1 or 0
  ev.email = spillway.mask(ev.email)
  return true
end
"""


class FlakySink:
    """An HTTP destination that fails one request in five (500), closes one in twenty without
    an answer and is down for 2 s every 10 s."""

    def __init__(self):
        self.port = free_port()
        self.ok = 0
        self.stop = threading.Event()
        self.lsock = None
        threading.Thread(target=self._cycle, daemon=True).start()

    def _listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.lsock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _cycle(self):
        while not self.stop.is_set():
            self._listen()
            self.stop.wait(8)
            s, self.lsock = self.lsock, None
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
            self.stop.wait(2)

    def _accept(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        f = c.makefile("rb")
        try:
            while self.lsock is not None:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = f.readline()
                    if not line:
                        return
                    head += line
                n = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        n = int(line.split(b":")[1])
                f.read(n)
                r = random.random()
                if r < 0.05:
                    return  # closed without an answer
                if r < 0.25:
                    c.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
                    continue
                self.ok += 1
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            pass
        finally:
            f.close()
            c.close()


def traffic(sw, ports, stop, sent):
    """One thread per kind of input, each at a modest steady rate."""
    levels = ["INFO", "INFO", "INFO", "WARN", "ERROR"]

    def ndjson(i):
        return json.dumps({"seq": i, "trace_id": "%x" % (i % 5000), "level": levels[i % 5],
                           "service": "svc%d" % (i % 7), "email": "u%d@example.com" % i,
                           "msg": "event %d" % i}) + "\n"

    def count(kind, n):
        with sent["lock"]:
            sent[kind] = sent.get(kind, 0) + n

    def tcp():
        i = 0
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", ports["tcp"]))
                for _ in range(20):  # reconnect now and then: connection churn
                    s.sendall("".join(ndjson(i + k) for k in range(100)).encode())
                    i += 100
                    count("tcp", 100)
                    time.sleep(0.02)
                s.close()
            except OSError:
                time.sleep(0.1)

    def syslog_udp():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        i = 0
        while not stop.is_set():
            for _ in range(50):
                s.sendto(b"<%d>1 2026-11-27T10:00:00.000Z host app%d - - - udp message %d"
                         % (8 + i % 8, i % 3, i), ("127.0.0.1", ports["udp"]))
                i += 1
            count("syslog_udp", 50)
            time.sleep(0.02)

    def syslog_tcp():
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", ports["syslog_tcp"]))
                for j in range(20):
                    msgs = b"".join(b"<11>Nov 27 10:00:00 host cron[%d]: tcp syslog %d\n" % (j, k)
                                    for k in range(50))
                    s.sendall(msgs)
                    count("syslog_tcp", 50)
                    time.sleep(0.02)
                s.close()
            except OSError:
                time.sleep(0.1)

    def http_events():
        i = 0
        c = None
        while not stop.is_set():
            try:
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", ports["http"], timeout=10)
                body = "".join(ndjson(i + k) for k in range(50)).encode()
                hdrs = {}
                if i % 200 == 0:
                    body, hdrs = gzip.compress(body), {"Content-Encoding": "gzip"}
                c.request("POST", "/v1/events", body, hdrs)
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    count("http", 50)
                    i += 50
                otlp = {"resourceLogs": [{"resource": {"attributes": [
                    {"key": "service.name", "value": {"stringValue": "otel"}}]},
                    "scopeLogs": [{"logRecords": [
                        {"timeUnixNano": "1764237600000000000", "severityText": "ERROR",
                         "body": {"stringValue": "otlp %d" % k}} for k in range(10)]}]}]}
                c.request("POST", "/v1/logs", json.dumps(otlp),
                          {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    count("otlp", 10)
            except (OSError, http.client.HTTPException):
                c = None
                time.sleep(0.1)
            time.sleep(0.02)

    def statsd():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        while not stop.is_set():
            s.sendto(b"page.views:1|c|#env:soak\nqueue.depth:42|g\nreq.time:%d|ms\n"
                     % random.randint(1, 500), ("127.0.0.1", ports["statsd"]))
            count("statsd", 3)
            time.sleep(0.01)

    def tail():
        path = sw.path("logs", "app.log")
        i = 0
        while not stop.is_set():
            with open(path, "a") as f:
                f.write("".join("tailed line %d\n" % (i + k) for k in range(50)))
            i += 50
            count("tail", 50)
            if os.path.getsize(path) > 2 << 20:  # logrotate "create"
                os.rename(path, path + ".1")
                open(path, "w").close()
            time.sleep(0.05)

    ts = [threading.Thread(target=f, daemon=True)
          for f in (tcp, syslog_udp, syslog_tcp, http_events, statsd, tail)]
    for t in ts:
        t.start()
    return ts


def sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def ctl_stats(sw):
    r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", "stats"])
    return json.loads(r.stdout)


def flat(series, warm, growth, slack):
    """(ok, first third's max, last third's max) over the samples after warm-up."""
    xs = series[warm:]
    third = max(1, len(xs) // 3)
    first, last = max(xs[:third]), max(xs[-third:])
    return last <= first * (1 + growth) + slack, first, last


def soak(seconds, out=sys.stdout):
    seconds = max(15, int(seconds))
    growth = float(os.environ.get("SOAK_RSS_GROWTH", "0.10"))
    fd_slack = int(os.environ.get("SOAK_FD_SLACK", "8"))
    flaky = FlakySink()
    ports = {"syslog_tcp": free_port(), "statsd": free_port(socket.SOCK_DGRAM)}
    conf = (CONFIG.replace("SYSLOG_TCP", str(ports["syslog_tcp"]))
            .replace("STATSD", str(ports["statsd"])).replace("FLAKY", str(flaky.port)))
    ok = True
    with Spillway(conf, extra_files={"scripts/errors.lua": ERRORS_LUA, "logs/app.log": ""}) as sw:
        sw.start()
        ports.update(sw.ports)
        stop, sent = threading.Event(), {"lock": threading.Lock()}
        ts = traffic(sw, ports, stop, sent)
        rss, fds = [], []
        t0 = time.monotonic()
        print(f"soak: {seconds}s of mixed traffic, pid {sw.proc.pid}, dir {sw.dir}", file=out)
        while time.monotonic() - t0 < seconds:
            r, f = sample(sw.proc.pid)
            rss.append(r)
            fds.append(f)
            n = len(rss)
            if n % max(1, seconds // 10) == 0:
                print(f"  t={n:4d}s rss={r / 1024:6.1f} MiB fds={f}", file=out)
            time.sleep(1)
        stop.set()
        for t in ts:
            t.join(15)
        time.sleep(2)  # let the tail of the traffic settle before the final count
        st = ctl_stats(sw)
        rc = sw.stop(timeout=60)
        warm = min(max(20, len(rss) // 4), len(rss) // 2)
        rss_ok, r1, r3 = flat(rss, warm, growth, 0)
        fd_ok, f1, f3 = flat(fds, warm, 0, fd_slack)
        sent.pop("lock")
        print(f"sent by the clients: {json.dumps(sent)}", file=out)
        print("inputs (received / accepted / dead_letter / dropped / refused / rejected):",
              file=out)
        for i in st["inputs"]:
            print(f"  {i['name']:12s} {i['received']:9d} {i['accepted']:9d} "
                  f"{i['dead_letter']:6d} {i['dropped']:6d} {i['refused']:6d} {i['rejected']:6d}",
                  file=out)
        print("routes (in / kept / filtered / sampled_out / errors):", file=out)
        for r in st["routes"]:
            c = r["counters"]
            print(f"  {r['name']:12s} {c['in']:9d} {c['kept']:9d} {c['filtered']:9d} "
                  f"{c['sampled_out']:9d} {c['errors']:6d}", file=out)
        print("sinks (in / delivered / failed / dropped / retries):", file=out)
        for s in st["sinks"]:
            print(f"  {s['name']:12s} {s['in']:9d} {s['delivered']:9d} {s['failed']:6d} "
                  f"{s['dropped']:6d} {s['retries']:6d}", file=out)
        drops = {i["name"]: i["dropped"] for i in st["inputs"] if i["dropped"]}
        drops.update({"sink " + s["name"]: s["dropped"] for s in st["sinks"] if s["dropped"]})
        print(f"dropped, by reason: {json.dumps(drops) or 'none'} (inputs: pipeline full, "
              "UDP cannot push back; sinks: drop_newest queue full or shadow)", file=out)
        print(f"flaky sink accepted {flaky.ok} requests", file=out)
        print(f"RSS after warm-up: first third max {r1 / 1024:.1f} MiB, last third max "
              f"{r3 / 1024:.1f} MiB ({'flat' if rss_ok else 'GROWING'}, allowed "
              f"+{growth:.0%})", file=out)
        print(f"fds after warm-up: first third max {f1}, last third max {f3} "
              f"({'flat' if fd_ok else 'GROWING'}, allowed +{fd_slack})", file=out)
        # Balance: every input record was accepted or dropped; every route saw what the
        # partitions handed it.
        for i in st["inputs"]:
            if i["received"] != i["accepted"] + i["dropped"]:
                print(f"UNBALANCED input {i}", file=out)
                ok = False
        for r in st["routes"]:
            c = r["counters"]
            if c["in"] != c["kept"] + c["filtered"] + c["errors"]:  # sampled_out is filtered
                print(f"UNBALANCED route {r['name']}: {c}", file=out)
                ok = False
        if rc not in (0, 1):
            print(f"spillway exited {rc}", file=out)
            ok = False
        ok = ok and rss_ok and fd_ok and all(st["inputs"][k]["received"] > 0
                                             for k in range(len(st["inputs"])))
    flaky.stop.set()
    return ok, {"rss": rss, "fds": fds, "stats": st}


if __name__ == "__main__":
    secs = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("SOAK_SECONDS", "600"))
    good, _ = soak(secs)
    print("soak: OK" if good else "soak: FAILED")
    sys.exit(0 if good else 1)
