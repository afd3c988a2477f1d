#!/usr/bin/env python3
"""spillway's benchmark harness (issue 9). Runs each scenario several times against a Release
build and prints one table: median events/s end to end (first byte sent -> last event handled
by the sinks), the spread, the ratio to the loopback limit measured in the same run (the same
bytes through the same transport into /dev/null), CPU seconds per million events, peak RSS.

Usage: bench/run.py BUILD_DIR [scenario ...]     (environment: BENCH_EVENTS, BENCH_RUNS)

With FLUENT_BIT naming a fluent-bit binary (built from its source elsewhere, never kept here),
the OTLP scenarios (S7, S7J, S8) also run against Fluent Bit's `opentelemetry` input into its
`null` output, with the same bodies and the same clients: rows FB-S7, FB-S7J, FB-S8.
"""
import json
import os
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
# S6 spills into librdkafka's mock broker, which keeps only 5 MiB per partition (older records
# are deleted as by retention): 120,000 events over 8 partitions stay under that.
N6 = min(N, int(os.environ.get("BENCH_SPILL_EVENTS", "120000")))
PARTS = os.environ.get("BENCH_PARTITIONS", "2")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
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
    if name.removeprefix("FB-") in ("S7", "S7J", "S8"):
        return N // OTLP_BATCH * OTLP_BATCH
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


def stats(d):
    r = subprocess.run([BIN, "ctl", "-s", os.path.join(d, "admin.sock"), "--json", "stats"],
                       capture_output=True, text=True)
    return json.loads(r.stdout)


def settled(d, n):
    """Every event consumed by the workers and every sink queue empty."""
    st = stats(d)
    if sum(p["out"] for p in st["partitions"]) < n:
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
        pipeline = ", memory_limit: 4MiB, when_full: spill, kafka: {brokers: BOOT, topic: spill}"
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
    p = subprocess.Popen([FLUENT_BIT, "-c", os.path.join(d, "fb.conf")], stdout=log, stderr=log,
                         cwd=d)
    wait(p, d, lambda: fluent_bit_records(mon) >= 0, name, 20)
    time.sleep(0.2)
    cpu0 = cpu_seconds(p.pid)
    n = events_of(name)
    t0 = time.monotonic()
    sender = subprocess.Popen(otlp_send(scen, port), stdout=subprocess.PIPE)
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


def wait(p, d, cond, name, timeout=300):
    deadline = time.monotonic() + timeout
    while not cond():
        if p.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"{name}: did not finish (see {d}/log)")
        time.sleep(0.01)


def run_once(name):
    if name.startswith("FB-"):
        return run_fluent_bit(name)
    port, conf, scripts, send, setup = scenario(name)
    d = tempfile.mkdtemp(prefix=f"spillway-bench-{name}-")
    os.makedirs(os.path.join(d, "scripts"))
    for k, v in scripts.items():
        with open(os.path.join(d, "scripts", k), "w") as f:
            f.write(v)
    mock = listener = None
    if name == "S6":
        mock = subprocess.Popen([MOCK, "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
        boot = mock.stdout.readline().split()[1]
        mock.stdin.write("topic spill 8\n")
        mock.stdin.flush()
        mock.stdout.readline()
        conf = conf.replace("BOOT", f"'{boot}'")
    conf = conf.replace("DIR", d)
    with open(os.path.join(d, "c.yaml"), "w") as f:
        f.write(conf)
    log = open(os.path.join(d, "log"), "w")
    p = subprocess.Popen([BIN, "run", "-c", os.path.join(d, "c.yaml")], stderr=log, cwd=d)
    deadline = time.monotonic() + 20
    while not os.path.exists(os.path.join(d, "admin.sock")):
        if p.poll() is not None or time.monotonic() > deadline:
            with open(os.path.join(d, "log")) as f:
                sys.exit(f"{name}: spillway did not start:\n{f.read()[-3000:]}")
        time.sleep(0.02)
    time.sleep(0.2)
    cpu0 = cpu_seconds(p.pid)
    n = events_of(name)
    t0 = time.monotonic()
    sender = subprocess.Popen(send, stdout=subprocess.PIPE)
    extra = ""
    reloads = []
    if name == "S2R":  # a script save every second while S2 runs (the directory is watched)
        stop = threading.Event()

        def saver():
            while not stop.wait(1.0):
                with open(os.path.join(d, "scripts", "s2.lua"), "w") as f:
                    f.write(S2_SCRIPT + f"-- save {len(reloads)}\n")
                reloads.append(1)
        th = threading.Thread(target=saver)
        th.start()
    if name == "S6":
        # The sink stays down while everything is sent: what does not fit in 4 MiB spills.
        # Then it comes up and the backlog drains: ingest and drain rates are reported apart.
        sender.wait()
        wait(p, d, lambda: received(d) >= n, name)
        t1 = time.monotonic()
        listener = subprocess.Popen(["socat", "-u", f"TCP-LISTEN:{setup},reuseaddr,fork",
                                     "/dev/null"])
    sender.wait()
    if sender.returncode:
        sys.exit(f"{name}: the client failed (see {d}/log)")
    wait(p, d, lambda: settled(d, n), name)
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(p.pid) - cpu0
    rss = peak_rss_mib(p.pid)
    if name == "S2R":
        stop.set()
        th.join()
        extra = f"{len(reloads)} script saves during the run"
    if name == "S6":
        st = stats(d)
        spilled = sum(x.get("spilled", 0) for x in st["partitions"])
        lost = sum(x.get("spill_lost", 0) for x in st["partitions"])
        extra = (f"{n:,} events: ingest {n / (t1 - t0):,.0f}/s, drain "
                 f"{n / (time.monotonic() - t1):,.0f}/s, spilled {spilled:,}, lost {lost}")
    p.send_signal(signal.SIGTERM)
    p.wait(60)
    for proc in (listener, mock):
        if proc:
            proc.terminate() if proc is listener else proc.stdin.close()
            proc.wait(10)
    subprocess.run(["rm", "-rf", d])
    return n / elapsed, cpu / n * 1e6, rss, extra


def loopback(kind):
    port = free_port()
    sink = subprocess.Popen(["socat", "-u", "-b", "262144", f"TCP-LISTEN:{port},reuseaddr",
                             "/dev/null"])
    time.sleep(0.2)
    t0 = time.monotonic()
    subprocess.run([LOADGEN, "tcp", f"127.0.0.1:{port}", cache(kind), "1"], check=True,
                   stdout=subprocess.DEVNULL)
    sink.wait(30)
    return N / (time.monotonic() - t0)


def main():
    names = [a for a in sys.argv[2:]] or ["S1", "S2", "S2R", "S3", "S4", "S5", "S6", "S7", "S7J",
                                          "S8", "S10"]
    if FLUENT_BIT:
        names += [f"FB-{n}" for n in names if n in ("S7", "S7J", "S8")]
    rows = []
    loop = {k: statistics.median(loopback(k) for _ in range(RUNS)) for k in ("ndjson", "syslog")}
    for name in names:
        res = [run_once(name) for _ in range(RUNS)]
        rates = sorted(r[0] for r in res)
        med = statistics.median(rates)
        lim = loop["syslog" if name == "S4" else "ndjson"]
        rows.append((name, med, rates[0], rates[-1], med / lim,
                     statistics.median(r[1] for r in res), max(r[2] for r in res), res[-1][3]))
        print(f"{name}: {med:,.0f} events/s", file=sys.stderr)
    print(f"\n{N:,} events x {RUNS} runs, {os.cpu_count()} CPUs, partitions "
          f"{PARTS} (S6: 8); loopback limit ndjson "
          f"{loop['ndjson']:,.0f}/s, syslog {loop['syslog']:,.0f}/s\n")
    print("| scenario | events/s (median) | spread (min-max) | x loopback | CPU s / 1M events "
          "| peak RSS MiB | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, med, lo, hi, ratio, cpu, rss, extra in rows:
        print(f"| {name} | {med:,.0f} | {lo:,.0f} - {hi:,.0f} | {ratio:.2f} | {cpu:.2f} | "
              f"{rss:.0f} | {extra} |")


if __name__ == "__main__":
    main()
