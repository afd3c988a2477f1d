#!/usr/bin/env python3
"""spillway's benchmark harness (issue 9). Runs each scenario several times against a Release
build and prints one table: median events/s end to end (first byte sent -> last event handled
by the sinks), the spread, the ratio to the scenario's limit or peer measured in the same run,
CPU seconds per million events, peak RSS.

The limits and peers, each run RUNS times in the same invocation as the scenarios:
- loopback: the same bytes through the same transport into /dev/null (socat), for every
  scenario over TCP or HTTP;
- rsyslog (S4's peer): rsyslogd 8 from Debian (installed when missing), imtcp -> omfile with a
  raw template, its own process and config in a temp dir, fed S4's exact bytes by the same
  client; done when its file holds every message;
- kcat (S6's "spill limit", as loopback is for TCP): `kcat -P` (librdkafka's own producer,
  idempotent, acks=all, Nagle's algorithm off as spillway has it) putting S6's exact records
  into a topic of 8 partitions of the same mock cluster; its start and stop, timed the same way
  with no input, are taken off.

Usage: bench/run.py BUILD_DIR [scenario ...]     (environment: BENCH_EVENTS, BENCH_RUNS)

The runs alternate: each round runs every limit, peer and scenario once, so a neighbour's load
on this shared machine falls on all of them alike rather than on one scenario's runs.

With BENCH_BEFORE naming the build directory of another version (say the commit before a
change, built from a `git worktree`), each scenario also runs against that version's spillway,
with the same clients, in the same rounds: rows "S2 (before)" and so on, and the ratio of each
scenario to its "before" row: a change's gain measured in one invocation.

BENCH_SPILL_EVENTS sets S6's event count (100,000: the mock broker keeps 5 MiB per partition, so
S6's drain needs every record still there; 250,000 gives a steadier ingest and counts what
retention took as lost). BENCH_S6_PROPERTIES ("key: value, ...") adds kafka.properties to S6's
spillway, for trying librdkafka settings.

With FLUENT_BIT naming a fluent-bit binary (built from its source elsewhere, never kept here),
the OTLP scenarios (S7, S7J, S8) also run against Fluent Bit's `opentelemetry` input into its
`null` output, with the same bodies and the same clients: rows FB-S7, FB-S7J, FB-S8.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-release"))
BIN = os.path.join(BUILD, "spillway")
LOADGEN = os.path.join(BUILD, "bench", "loadgen")
GRPCLOAD = os.path.join(BUILD, "bench", "grpcload")
FLUENT_BIT = os.environ.get("FLUENT_BIT")
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
GRPC_INFLIGHT = "16"  # calls in flight on each of S8's connections
MOCK = os.path.join(BUILD, "tests", "kafka_mock")
CACHE = os.path.join(ROOT, "bench", "cache")
N = int(os.environ.get("BENCH_EVENTS", "2000000"))
# S6 and S9 go through librdkafka's mock broker, which keeps only 5 MiB per partition (older
# records are deleted as by retention): 100,000 events (the issue's) over 8 partitions stay under
# that (what it would delete is counted as spill_lost and said in S6's note).
N6 = min(N, int(os.environ.get("BENCH_SPILL_EVENTS", "100000")))
# S9's topic is lz4-compressed (as a Kafka pipeline's would be), which makes room for more.
N9 = min(N, int(os.environ.get("BENCH_KAFKA_EVENTS", "300000")))
PARTS = os.environ.get("BENCH_PARTITIONS", "2")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
BEFORE = os.environ.get("BENCH_BEFORE")
SPILLWAY = BIN  # the binary run_once starts: BIN, or BEFORE's for the "(before)" rows
TICK = os.sysconf("SC_CLK_TCK")

S2_SCRIPT = """
function process(ev)
  local l = ev.level
  if l == "DEBUG" then return false end
  if l ~= "WARN" and l ~= "ERROR" and not spillway.sample(ev.trace_id) then return false end
  ev.env = "prod"
  ev.email = spillway.mask(ev.email)
  return true
end
"""
# S2 that also aggregates every event into a per-service count and latency histogram
# (spillway.metric, logs to metrics), flushed every second to a null sink: what that costs.
S2M_SCRIPT = """
local count, observe = spillway.metric.count, spillway.metric.observe
local labels = {}
function process(ev)
  labels.service = ev.service
  count("events", labels)
  local ms = ev.latency_ms
  if ms then observe("latency_seconds", labels, ms / 1000) end
  local l = ev.level
  if l == "DEBUG" then return false end
  if l ~= "WARN" and l ~= "ERROR" and not spillway.sample(ev.trace_id) then return false end
  ev.env = "prod"
  ev.email = spillway.mask(ev.email)
  return true
end
"""
PASS = "function process(ev) return true end\n"
BY = "function process(ev) return ev.%s == '%s' end\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cache(kind, n=N):
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"events-{n}.{kind}")
    if not os.path.exists(path):
        subprocess.run([LOADGEN, "gen", path + ".tmp", str(n)] + (["syslog"] if kind == "syslog"
                                                                  else []), check=True)
        os.rename(path + ".tmp", path)
    return path


OTLP_BATCH = 512  # log records per OTLP request (S7, S7J, S8)
RW_BATCH = 2000  # series (one sample each) per remote write request (S11)
N11 = int(os.environ.get("BENCH_RW_SAMPLES", "1000000"))


def rw_body_file():
    """One remote write request of RW_BATCH series, snappy-compressed (loadgen rw)."""
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"rw-{RW_BATCH}.snappy")
    if not os.path.exists(path):
        subprocess.run([LOADGEN, "rw", path + ".tmp", str(RW_BATCH)], check=True)
        os.rename(path + ".tmp", path)
    return path


class Receiver:
    """A remote write receiver for S11's sink: answers every POST 204 at once, counting bytes
    (what a TSDB does with them is not spillway's cost)."""

    def __init__(self):
        import http.server

        rec = self
        self.requests = self.bytes = 0

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(h):
                n = int(h.headers["Content-Length"])
                h.rfile.read(n)
                rec.requests += 1
                rec.bytes += n
                h.send_response(204)
                h.send_header("Content-Length", "0")
                h.end_headers()

            def log_message(h, *a):
                pass
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def otlp_bodies():
    """One OTLP/HTTP logs request of OTLP_BATCH records (the fields of the NDJSON events, one
    resource), as protobuf and as OTLP/JSON: the same records both ways."""
    os.makedirs(CACHE, exist_ok=True)
    pb = os.path.join(CACHE, f"otlp-logs-{OTLP_BATCH}.pb")
    js = os.path.join(CACHE, f"otlp-logs-{OTLP_BATCH}.json")
    if not (os.path.exists(pb) and os.path.exists(js)):
        subprocess.run([LOADGEN, "otlp", pb + ".tmp", js + ".tmp", str(OTLP_BATCH)], check=True)
        os.rename(pb + ".tmp", pb)
        os.rename(js + ".tmp", js)
    return pb, js


def events_of(name):
    if name == "S6":
        return N6
    if name == "S9":
        return N9
    if name.removeprefix("FB-") in ("S7", "S7J", "S8"):
        return N // OTLP_BATCH * OTLP_BATCH
    if name == "S11":
        return N11 // RW_BATCH * RW_BATCH
    return N


# S10's stream: the same events as Fluent Bit's forward output sends them, PackedForward messages
# of 1,000 records (its chunks hold about that many), EventTime times, no acks. msgpack is
# written by Debian's python3-msgpack, which only the system's python imports.
FORWARD_GEN = """
import json, struct, sys, msgpack
src, dst = sys.argv[1], sys.argv[2]
def et(ns):
    return msgpack.ExtType(0, struct.pack('>II', ns // 10**9, ns % 10**9))
with open(src, 'rb') as f, open(dst, 'wb') as out:
    batch = []
    for i, line in enumerate(f):
        ev = json.loads(line)
        batch.append(msgpack.packb([et(1764547200 * 10**9 + i * 1000), ev]))
        if len(batch) == 1000:
            out.write(msgpack.packb(['app.logs', b''.join(batch)]))
            batch = []
    if batch:
        out.write(msgpack.packb(['app.logs', b''.join(batch)]))
"""


def forward_cache(n=N):
    path = os.path.join(CACHE, f"events-{n}.forward")
    if not os.path.exists(path):
        subprocess.run(["/usr/bin/python3", "-c", FORWARD_GEN, cache("ndjson", n), path + ".tmp"],
                       check=True)
        os.rename(path + ".tmp", path)
    return path


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0


def stats(d, sock="admin.sock"):
    """ctl stats over the admin socket's JSON lines, without starting a process per poll (each
    `spillway ctl` costs a dynamic link: tens of milliseconds of CPU taken from the run)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(os.path.join(d, sock))
        s.sendall(b'{"cmd":"stats"}\n')
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def settled(d, n):
    """Every event consumed by the workers (or, spilled, lost to the mock broker's retention:
    counted, and reported in S6's note) and every sink queue empty."""
    st = stats(d)
    if sum(p["out"] + p.get("spill_lost", 0) for p in st["partitions"]) < n:
        return False
    return all(s["delivered"] + s["failed"] + s["dropped"] >= s["in"] for s in st["sinks"])


def received(d):
    return sum(i["received"] for i in stats(d)["inputs"])


def config(d, port, routes, sinks, pipeline="", inp=None, parts=PARTS):
    inp = inp or f"{{name: app, type: tcp, listen: '127.0.0.1:{port}'}}"
    return f"""
data_dir: {d}/data
log_level: warn
admin: {{socket: {d}/admin.sock, http: ""}}
inputs: [{inp}]
pipeline: {{partitions: {parts}{pipeline or ", memory_limit: 64MiB"}}}
router: {{scripts: {d}/scripts}}
routes:
{routes}
sinks:
{sinks}
"""


def scenario(name):
    """(config text, scripts, send command, events expected in, extra setup/teardown)"""
    port = free_port()
    data = cache("syslog" if name == "S4" else "ndjson")
    send = [LOADGEN, "tcp", f"127.0.0.1:{port}", data, "1"]
    scripts = {"pass.lua": PASS}
    routes = "  - {name: r, script: pass.lua, sinks: [out]}"
    sinks = "  - {name: out, type: null}"
    inp, pipeline, setup, parts = None, "", None, PARTS
    if name in ("S2", "S2R"):
        scripts = {"s2.lua": S2_SCRIPT}
        routes = "  - {name: r, script: s2.lua, sample_rate: 0.1, sinks: [out]}"
        sinks = "  - {name: out, type: file, path: DIR/out.ndjson}"
    elif name in ("S2M", "S2MD"):
        # S2M: the aggregation in the script; S2MD: the same count and histogram declared in the
        # route's config (metrics.declare), S2's script unchanged.
        scripts = {"s2m.lua": S2M_SCRIPT} if name == "S2M" else {"s2.lua": S2_SCRIPT}
        declare = ("" if name == "S2M" else
                   ", declare: [{type: count, name: events, labels: {service: service}}, "
                   "{type: observe, name: latency_seconds, field: latency_ms, scale: 0.001, "
                   "labels: {service: service}}]")
        routes = (f"  - {{name: r, script: {next(iter(scripts))}, sample_rate: 0.1, sinks: [out], "
                  f"metrics: {{interval: 1s, route: m{declare}}}}}\n"
                  "  - {name: m, enabled: false, sinks: [metrics]}")
        sinks = ("  - {name: out, type: file, path: DIR/out.ndjson}\n"
                 "  - {name: metrics, type: null}")
    elif name == "S11":
        # Prometheus remote write in (2000 series a request, 4 keep-alive clients) and out
        # (prometheus_remote_write to a receiver answering 204), no script.
        inp = f"{{name: rw, type: http, listen: '127.0.0.1:{port}', max_body: 16MiB}}"
        routes = "  - {name: r, sinks: [out]}"
        sinks = ("  - {name: out, type: prometheus_remote_write, "
                 "url: 'http://127.0.0.1:RECV/api/v1/write'}")
        send = [LOADGEN, "post", f"127.0.0.1:{port}", "/api/v1/write", rw_body_file(),
                "application/x-protobuf", "4", str(N11 // RW_BATCH)]
    elif name == "S3":
        scripts = {"err.lua": BY % ("level", "ERROR"), "warn.lua": BY % ("level", "WARN"),
                   "cart.lua": BY % ("service", "cart"), "auth.lua": BY % ("service", "auth")}
        routes = "\n".join(f"  - {{name: {n}, script: {n}.lua, sinks: [{n}]"
                           + (", shadow: [shadow]" if n == "err" else "") + "}"
                           for n in ("err", "warn", "cart", "auth"))
        sinks = "\n".join(f"  - {{name: {n}, type: file, path: DIR/{n}.ndjson}}"
                          for n in ("err", "warn", "cart", "auth"))
        sinks += "\n  - {name: shadow, type: null}"
    elif name == "S4":
        inp = f"{{name: app, type: tcp, listen: '127.0.0.1:{port}', format: syslog}}"
        sinks = "  - {name: out, type: file, path: DIR/out.ndjson}"
    elif name == "S5":
        inp = f"{{name: app, type: http, listen: '127.0.0.1:{port}', max_body: 16MiB}}"
        send = [LOADGEN, "http", f"127.0.0.1:{port}", data, "4", "500"]
    elif name in ("S7", "S7J"):
        # OTLP/HTTP logs, 512 records per request, 4 keep-alive clients -> null: protobuf (S7)
        # or the same records as OTLP/JSON (S7J).
        inp = f"{{name: otlp, type: http, listen: '127.0.0.1:{port}', max_body: 16MiB}}"
        pb, js = otlp_bodies()
        body, ctype = (pb, "application/x-protobuf") if name == "S7" else (js, "application/json")
        send = [LOADGEN, "post", f"127.0.0.1:{port}", "/v1/logs", body, ctype, "4",
                str(N // OTLP_BATCH)]
    elif name == "S8":
        # S7's records over OTLP/gRPC: 4 connections, GRPC_INFLIGHT calls in flight on each.
        inp = f"{{name: otlp, type: otlp_grpc, listen: '127.0.0.1:{port}'}}"
        send = otlp_send(name, port)
    elif name == "S10":
        inp = f"{{name: app, type: forward, listen: '127.0.0.1:{port}'}}"
        send = [LOADGEN, "tcp", f"127.0.0.1:{port}", forward_cache(), "1"]
    elif name == "S6":
        sink_port = free_port()
        sinks = (f"  - {{name: out, type: tcp, address: '127.0.0.1:{sink_port}', "
                 "connect_timeout: 100ms}")
        props = os.environ.get("BENCH_S6_PROPERTIES", "")  # experiments: "k: v, ..."
        pipeline = (", memory_limit: 4MiB, when_full: spill, kafka: {brokers: BOOT, topic: spill"
                    + (f", properties: {{{props}}}" if props else "") + "}")
        setup, parts = sink_port, 8
        send = [LOADGEN, "tcp", f"127.0.0.1:{port}", cache("ndjson", N6), "1"]
    return port, config("DIR", port, routes, sinks, pipeline, inp, parts), scripts, send, setup


def otlp_send(name, port):
    """The client command of OTLP scenario name (S7, S7J, S8) sending to 127.0.0.1:port."""
    pb, js = otlp_bodies()
    if name == "S8":
        return [GRPCLOAD, f"127.0.0.1:{port}", LOGS_EXPORT, pb, "4", str(N // OTLP_BATCH),
                GRPC_INFLIGHT]
    body, ctype = (pb, "application/x-protobuf") if name == "S7" else (js, "application/json")
    return [LOADGEN, "post", f"127.0.0.1:{port}", "/v1/logs", body, ctype, "4",
            str(N // OTLP_BATCH)]


FB_CONF = """[SERVICE]
    flush        1
    log_level    warn
    http_server  on
    http_listen  127.0.0.1
    http_port    {mon}
[INPUT]
    name         opentelemetry
    listen       127.0.0.1
    port         {port}
    buffer_max_size 16M
    buffer_chunk_size 1M
    http2        on
    successful_response_code 200
[OUTPUT]
    name         null
    match        *
"""


def fluent_bit_records(mon):
    """Records Fluent Bit's null output has taken (its monitoring API), or -1 before it answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{mon}/api/v1/metrics", timeout=5) as r:
            out = json.load(r)["output"]
        return sum(o.get("proc_records", 0) for o in out.values())
    except (OSError, ValueError, KeyError):
        return -1


def run_fluent_bit(name):
    """One run of OTLP scenario name (FB-S7, FB-S7J, FB-S8) against Fluent Bit's opentelemetry
    input into its null output: the same bodies, the same clients, the same measures."""
    scen = name.removeprefix("FB-")
    port, mon = free_port(), free_port()
    d = tempfile.mkdtemp(prefix=f"fluent-bit-bench-{scen}-")
    with open(os.path.join(d, "fb.conf"), "w") as f:
        f.write(FB_CONF.format(port=port, mon=mon))
    log = open(os.path.join(d, "log"), "w")
    p = spawn([FLUENT_BIT, "-c", os.path.join(d, "fb.conf")], stdout=log, stderr=log,
                         cwd=d)
    wait(p, d, lambda: fluent_bit_records(mon) >= 0, name, 20)
    time.sleep(0.2)
    cpu0 = cpu_seconds(p.pid)
    n = events_of(name)
    t0 = time.monotonic()
    sender = spawn(otlp_send(scen, port), stdout=subprocess.PIPE)
    sender.wait()
    if sender.returncode:
        sys.exit(f"{name}: the client failed (see {d}/log)")
    wait(p, d, lambda: fluent_bit_records(mon) >= n, name)
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(p.pid) - cpu0
    rss = peak_rss_mib(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait(60)
    subprocess.run(["rm", "-rf", d])
    return n / elapsed, cpu / n * 1e6, rss, "Fluent Bit opentelemetry -> null"


def wait(p, d, cond, name, timeout=300, every=0.01):
    deadline = time.monotonic() + timeout
    while not cond():
        if p.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"{name}: did not finish (see {d}/log)")
        time.sleep(every)


class Mock:
    """librdkafka's mock cluster (tests/tools/kafka_mock), one broker, in its own process."""

    def __init__(self):
        self.p = spawn([MOCK, "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        self.boot = self.p.stdout.readline().split()[1]

    def topic(self, name, partitions):
        self.p.stdin.write(f"topic {name} {partitions}\n")
        self.p.stdin.flush()
        if self.p.stdout.readline().strip() != "ok":
            sys.exit(f"kafka_mock: cannot create topic {name}")

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


STARTED = []


def spawn(cmd, **kw):
    """subprocess.Popen, and the process is killed at exit if still running (a scenario that
    fails exits the harness: nothing it started may outlive it)."""
    p = subprocess.Popen(cmd, **kw)
    STARTED.append(p)
    return p


@atexit.register
def kill_started():
    for p in STARTED:
        if p.poll() is None:
            p.kill()
            p.wait()


def start_spillway(d, name, conf, tag=""):
    """Writes conf into d and starts spillway on it; returns the process once its admin socket
    is there."""
    with open(os.path.join(d, f"c{tag}.yaml"), "w") as f:
        f.write(conf)
    log = open(os.path.join(d, f"log{tag}"), "w")
    p = spawn([SPILLWAY, "run", "-c", os.path.join(d, f"c{tag}.yaml")], stderr=log, cwd=d)
    sock = os.path.join(d, f"admin{tag}.sock")
    deadline = time.monotonic() + 20
    while not os.path.exists(sock):
        if p.poll() is not None or time.monotonic() > deadline:
            with open(os.path.join(d, f"log{tag}")) as f:
                sys.exit(f"{name}: spillway did not start:\n{f.read()[-3000:]}")
        time.sleep(0.02)
    time.sleep(0.2)
    return p


def stop(*procs):
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(60)


def run_once(name):
    """One run of scenario name: a list of rows (row name, events/s, CPU s per million events,
    peak RSS MiB, note); most scenarios make one row, S6 two (ingest, drain)."""
    if name.startswith("FB-"):
        return [(name, *run_fluent_bit(name))]
    if name == "S9":
        return run_kafka_mode()
    port, conf, scripts, send, setup = scenario(name)
    d = tempfile.mkdtemp(prefix=f"spillway-bench-{name}-")
    os.makedirs(os.path.join(d, "scripts"))
    for k, v in scripts.items():
        with open(os.path.join(d, "scripts", k), "w") as f:
            f.write(v)
    mock = recv = None
    if name == "S11":
        recv = Receiver()
        conf = conf.replace("RECV", str(recv.port))
    if name == "S6":
        mock = Mock()
        mock.topic("spill", 8)
        conf = conf.replace("BOOT", f"'{mock.boot}'")
    p = start_spillway(d, name, conf.replace("DIR", d))
    cpu0 = cpu_seconds(p.pid)
    n = events_of(name)
    t0 = time.monotonic()
    sender = spawn(send, stdout=subprocess.PIPE)
    reloads = []
    if name == "S2R":  # a script save every second while S2 runs (the directory is watched)
        stop_saving = threading.Event()

        def saver():
            while not stop_saving.wait(1.0):
                with open(os.path.join(d, "scripts", "s2.lua"), "w") as f:
                    f.write(S2_SCRIPT + f"-- save {len(reloads)}\n")
                reloads.append(1)
        th = threading.Thread(target=saver)
        th.start()
    if name == "S6":
        return run_spill(p, d, n, t0, cpu0, sender, setup, mock)
    sender.wait()
    if sender.returncode:
        sys.exit(f"{name}: the client failed (see {d}/log)")
    wait(p, d, lambda: settled(d, n), name)
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(p.pid) - cpu0
    rss = peak_rss_mib(p.pid)
    note = ""
    if name == "S2R":
        stop_saving.set()
        th.join()
        note = f"{len(reloads)} script saves during the run"
    if name == "S11":
        note = f"{recv.requests} requests out, {recv.bytes / recv.requests / 1024:.0f} KiB each"
    if name in ("S2M", "S2MD"):
        st = stats(d)
        note = f"{sum(r['counters']['metric_events'] for r in st['routes'])} metric events"
    stop(p)
    if recv:
        recv.close()
    subprocess.run(["rm", "-rf", d])
    return [(name, n / elapsed, cpu / n * 1e6, rss, note)]


def run_before(name):
    """run_once(name) against BENCH_BEFORE's spillway: its rows named "... (before)"."""
    global SPILLWAY
    SPILLWAY = os.path.join(os.path.abspath(BEFORE), "spillway")
    try:
        rows = run_once(name)
    finally:
        SPILLWAY = BIN
    return [(f"{r[0]} (before)", *r[1:]) for r in rows]


def run_spill(p, d, n, t0, cpu0, sender, sink_port, mock):
    """S6 after its sender started. The sink stays down while everything is sent: what does not
    fit in 4 MiB spills. Ingest ends when every event is either in memory or acknowledged by
    Kafka (as kcat's time ends when its last record is). Then the sink comes up: the drain is
    timed from its first delivery (the sink's reconnect backoff is not the spill path's) to the
    last event delivered."""
    sender.wait()
    # Polled every 2 ms: 10 ms would add 5 ms on average to an ingest of about 200 ms.
    wait(p, d, lambda: received(d) >= n and unacked(d) == 0, "S6", every=0.002)
    t1, cpu1 = time.monotonic(), cpu_seconds(p.pid)
    st = stats(d)
    spilled = sum(x.get("spilled", 0) for x in st["partitions"])
    listener = spawn(["socat", "-u", f"TCP-LISTEN:{sink_port},reuseaddr,fork",
                                 "/dev/null"])
    wait(p, d, lambda: stats(d)["sinks"][0]["delivered"] > 0, "S6")
    t2, cpu2 = time.monotonic(), cpu_seconds(p.pid)
    first = stats(d)["sinks"][0]["delivered"]
    wait(p, d, lambda: settled(d, n), "S6")
    t3, cpu3 = time.monotonic(), cpu_seconds(p.pid)
    st = stats(d)
    lost = sum(x.get("spill_lost", 0) for x in st["partitions"])
    rss = peak_rss_mib(p.pid)
    stop(p)
    listener.terminate()
    listener.wait(10)
    mock.close()
    subprocess.run(["rm", "-rf", d])
    refused = sum(x.get("spill_refused", 0) for x in st["partitions"])
    note = f"{n:,} events, {spilled:,} spilled, {lost} lost, {refused} refused"
    return [("S6 ingest", n / (t1 - t0), (cpu1 - cpu0) / n * 1e6, rss, note),
            ("S6 drain", (n - first) / (t3 - t2), (cpu3 - cpu2) / (n - first) * 1e6, rss,
             f"from the sink's first delivery ({t2 - t1:.2f} s after it came up)")]


def unacked(d):
    return sum(x.get("spill_unacked", 0) for x in stats(d)["partitions"])


def run_kafka_mode():
    """S9: Kafka as the pipeline. One collector process (the TCP input, producing every event
    to a topic of 8 partitions) and one router process (consuming it in its group, a pass route,
    a file sink), through the mock cluster. Timed from the first byte sent to the last event in
    the router's file; the lag is what the router had still to deliver when the collector had
    produced the last event."""
    mock = Mock()
    mock.topic("events", 8)
    d = tempfile.mkdtemp(prefix="spillway-bench-S9-")
    os.makedirs(os.path.join(d, "scripts"))
    with open(os.path.join(d, "scripts", "pass.lua"), "w") as f:
        f.write(PASS)
    port = free_port()
    # fetch.wait.max.ms: the mock broker answers a fetch that found nothing only at its maximum
    # wait, even when records arrive meanwhile (a real broker answers when they do), so the
    # router would sit out up to 500 ms per fetch (S9: 139,000/s with the default, 324,000/s
    # with 10 ms). lz4, as a pipeline topic would be: the mock keeps 5 MiB per partition.
    kafka = (f"kafka: {{brokers: '{mock.boot}', topic: events, group: bench, properties: "
             "{fetch.wait.max.ms: '10', compression.type: lz4}}")
    procs = {}
    for role in ("router", "collector"):
        conf = config(d, port, "  - {name: r, script: pass.lua, sinks: [out]}",
                      f"  - {{name: out, type: file, path: {d}/out.ndjson}}",
                      f", memory_limit: 64MiB, mode: kafka, role: {role}, {kafka}")
        conf = conf.replace("admin.sock", f"admin-{role}.sock").replace("/data", f"/data-{role}")
        procs[role] = start_spillway(d, "S9", conf, f"-{role}")
    col, rtr = procs["collector"], procs["router"]
    def kstats(role):
        return stats(d, f"admin-{role}.sock")

    def delivered():
        return kstats("router")["sinks"][0]["delivered"]
    # One event first, through to the file: the router has joined its group and been given the
    # partitions (the mock cluster would delete records a late router had not read yet).
    n = events_of("S9")
    data = cache("ndjson", n)
    with open(data, "rb") as f, open(os.path.join(d, "first.ndjson"), "wb") as o:
        o.write(f.readline())
    subprocess.run([LOADGEN, "tcp", f"127.0.0.1:{port}", os.path.join(d, "first.ndjson"), "1"],
                   check=True, stdout=subprocess.DEVNULL)
    wait(rtr, d, lambda: delivered() >= 1, "S9", 60)
    cpu0 = cpu_seconds(col.pid) + cpu_seconds(rtr.pid)
    t0 = time.monotonic()
    subprocess.run([LOADGEN, "tcp", f"127.0.0.1:{port}", data, "1"], check=True,
                   stdout=subprocess.DEVNULL)
    wait(col, d, lambda: kstats("collector")["kafka"]["produced"] >= n + 1, "S9")
    t1 = time.monotonic()
    lag = n + 1 - delivered()
    wait(rtr, d, lambda: delivered() >= n + 1, "S9")
    t2 = time.monotonic()
    cpu = cpu_seconds(col.pid) + cpu_seconds(rtr.pid) - cpu0
    rss = peak_rss_mib(col.pid) + peak_rss_mib(rtr.pid)
    stop(col, rtr)
    mock.close()
    subprocess.run(["rm", "-rf", d])
    return [("S9", n / (t2 - t0), cpu / n * 1e6, rss,
             f"{n:,} events; lag when the collector had produced the last one: {lag:,} events, "
             f"delivered {t2 - t1:.2f} s later; CPU and RSS of both processes")]


def loopback(kind):
    port = free_port()
    sink = spawn(["socat", "-u", "-b", "262144", f"TCP-LISTEN:{port},reuseaddr",
                             "/dev/null"])
    time.sleep(0.2)
    t0 = time.monotonic()
    subprocess.run([LOADGEN, "tcp", f"127.0.0.1:{port}", cache(kind), "1"], check=True,
                   stdout=subprocess.DEVNULL)
    sink.wait(30)
    return N / (time.monotonic() - t0)


def child_run(cmd):
    """Runs cmd; returns its wall time and its CPU seconds and peak RSS MiB (rusage)."""
    t0 = time.monotonic()
    p = spawn(cmd, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if status:
        sys.exit(f"{cmd[0]} failed: status {status}")
    return time.monotonic() - t0, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def kcat_limit():
    """S6's spill limit: kcat -P putting S6's records into the mock cluster (see the top)."""
    mock = Mock()
    mock.topic("limit", 8)
    cmd = ["kcat", "-P", "-b", mock.boot, "-t", "limit", "-X", "enable.idempotence=true",
           "-X", "acks=all", "-X", "socket.nagle.disable=true", "-l"]
    empty, ecpu, _ = child_run(cmd + ["/dev/null"])
    full, cpu, rss = child_run(cmd + [cache("ndjson", N6)])
    mock.close()
    return [("kcat -P", N6 / max(full - empty, 1e-6), max(cpu - ecpu, 0) / N6 * 1e6, rss,
             f"S6's {N6:,} records; its start and stop ({empty:.2f} s) taken off")]


RSYSLOG_CONF = """global(workDirectory="{d}" maxMessageSize="64k")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{d}/out.log" template="raw")
"""


def syslog_out_bytes(path):
    """What rsyslog's raw template writes for an octet-counted file: each message and a
    newline."""
    memo = path + ".rawsize"
    if os.path.exists(memo):
        with open(memo) as f:
            return int(f.read())
    total, i = 0, 0
    with open(path, "rb") as f:
        data = f.read()
    while i < len(data):
        sp = data.index(b" ", i)
        n = int(data[i:sp])
        total += n + 1
        i = sp + 1 + n
    with open(memo, "w") as f:
        f.write(str(total))
    return total


def rsyslog_peer():
    """S4's peer: rsyslogd (imtcp -> omfile, raw template) on S4's exact bytes."""
    if not shutil.which("rsyslogd"):
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "rsyslog"],
                       check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    data = cache("syslog")
    want = syslog_out_bytes(data)
    d = tempfile.mkdtemp(prefix="rsyslog-bench-")
    port = free_port()
    with open(os.path.join(d, "rsyslog.conf"), "w") as f:
        f.write(RSYSLOG_CONF.format(d=d, port=port))
    p = spawn(["rsyslogd", "-n", "-f", os.path.join(d, "rsyslog.conf"), "-i",
                          os.path.join(d, "pid")], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(d, "log"), "w"))
    wait(p, d, lambda: accepts(port), "rsyslog", 20)
    out = os.path.join(d, "out.log")
    cpu0 = cpu_seconds(p.pid)
    t0 = time.monotonic()
    subprocess.run([LOADGEN, "tcp", f"127.0.0.1:{port}", data, "1"], check=True,
                   stdout=subprocess.DEVNULL)
    wait(p, d, lambda: os.path.exists(out) and os.path.getsize(out) >= want, "rsyslog")
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(p.pid) - cpu0
    rss = peak_rss_mib(p.pid)
    stop(p)
    subprocess.run(["rm", "-rf", d])
    return [("rsyslog", N / elapsed, cpu / N * 1e6, rss, "S4's bytes, imtcp -> omfile (raw)")]


def accepts(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


# The limit or peer each scenario is compared with (by row name), measured in the same run.
# A reference that is itself a scenario (S2M's S2) is run with it.
SCENARIOS = ["S1", "S2", "S2M", "S2MD", "S2R", "S3", "S4", "S5", "S6", "S7", "S7J", "S8", "S9", "S10",
             "S11"]
REFERENCES = {"S2M": ("S2", "loopback ndjson"), "S2MD": ("S2", "loopback ndjson"), "S4": ("loopback syslog", "rsyslog"),
              "S6 ingest": ("kcat -P",), "S6 drain": ("kcat -P",),
              "S7": ("FB-S7",), "S7J": ("FB-S7J",), "S8": ("FB-S8",)}
TRANSPORTS = {"S1", "S2", "S2M", "S2MD", "S2R", "S3", "S5", "S10", "S11"}  # ndjson-like bytes over TCP or HTTP


def references(names):
    """The reference rows the scenarios named need, as {row: (name, function)}."""
    need = set()
    for n in names:
        need.update(r for r in REFERENCES.get(n, ()) if not r.startswith("FB-")
                    and r not in SCENARIOS)
        if n in TRANSPORTS or n in ("S7", "S7J", "S8"):
            need.add("loopback ndjson")
        if n == "S6":
            need.add("kcat -P")
    runs = {"loopback ndjson": lambda: [("loopback ndjson", loopback("ndjson"), 0, 0, "")],
            "loopback syslog": lambda: [("loopback syslog", loopback("syslog"), 0, 0, "")],
            "rsyslog": rsyslog_peer, "kcat -P": kcat_limit}
    return [runs[r] for r in sorted(need)]


def main():
    names = [a for a in sys.argv[2:]] or list(SCENARIOS)
    for n in list(names):
        names[:0] = [r for r in REFERENCES.get(n, ()) if r in SCENARIOS and r not in names]
    if FLUENT_BIT:
        names += [f"FB-{n}" for n in names if n in ("S7", "S7J", "S8")]
    results = {}  # row -> list of (rate, cpu, rss, note)
    order = []
    jobs = references(names) + [lambda n=n: run_once(n) for n in names]
    if BEFORE:
        jobs += [lambda n=n: run_before(n) for n in names if not n.startswith("FB-")]
    for r in range(RUNS):  # rounds: every job once per round
        for job in jobs:
            for row, rate, cpu, rss, note in job():
                if row not in results:
                    results[row] = []
                    order.append(row)
                results[row].append((rate, cpu, rss, note))
                print(f"{row}: {rate:,.0f} events/s (round {r + 1})", file=sys.stderr)
    med = {row: statistics.median(r[0] for r in res) for row, res in results.items()}
    print(f"\n{N:,} events x {RUNS} runs ({N6:,} for S6, {N9:,} for S9), {os.cpu_count()} CPUs, "
          f"partitions {PARTS} (S6, S9: 8)\n")
    print("| row | events/s (median) | spread (min-max) | x limit or peer | CPU s / 1M events "
          "| peak RSS MiB | note |")
    print("|---|---:|---:|---|---:|---:|---|")
    for row in order:
        res = results[row]
        rates = sorted(r[0] for r in res)
        refs = REFERENCES.get(row, ("loopback ndjson",) if row in TRANSPORTS | {"S7", "S7J", "S8"}
                              else ())
        refs = (f"{row} (before)",) + tuple(refs)
        ratio = ", ".join(f"{med[row] / med[r]:.2f} x {r}" for r in refs if r in med)
        cpu = statistics.median(r[1] for r in res)
        print(f"| {row} | {med[row]:,.0f} | {rates[0]:,.0f} - {rates[-1]:,.0f} | {ratio} | "
              f"{cpu:.2f} | {max(r[2] for r in res):.0f} | {res[-1][3]} |")


if __name__ == "__main__":
    main()
