"""Issue 6: what each sink type promises, one by one (test_sinks.py covers the encodings as a
set, retries, Kafka, rotation under load, shadows and compare). File rotation by age and the
keep limit, fsync, reopen on SIGHUP; stdout NDJSON; null; tcp and unix feeding another spillway
through its restarts; a drop_newest sink beside a blocking one; exact HTTP bodies, a header from
the environment; TLS with and without the CA."""
import calendar
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

from spillway_test import (BIN, Spillway, check, check_canonical, count_lines, free_port, main,
                           read_ndjson, run, socat_send, wait_for)


class Receiver:
    """An HTTP(S) server recording every request in arrival order. hold: a threading.Event that
    requests wait for before being answered (a stalled destination). tls: (cert, key) files."""

    def __init__(self, hold=None, tls=None):
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.requests.append({"path": self.path, "headers": dict(self.headers),
                                           "body": raw})
                if hold is not None:
                    hold.wait(300)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def config(sinks, routes="  - {name: r, sinks: [s]}\n", pipeline="{partitions: 1}", extra=""):
    """One tcp input, one partition (so every sink sees the events in the order sent)."""
    return f"""
data_dir: ./data
shutdown_timeout: 20s
admin: {{socket: ./run/admin.sock, http: ""}}
pipeline: {pipeline}
inputs: [{{name: app, type: tcp, listen: "127.0.0.1:{{tcp}}"}}]
routes:
{routes}sinks:
{sinks}  - {{name: dl, type: file, path: ./dead.ndjson}}
dead_letter: dl
{extra}"""


def event(i, **extra):
    return dict({"seq": i, "trace_id": "%08x" % i, "service": "svc", "level": "INFO",
                 "message": f"event {i}"}, **extra)


def lines_for(n, start=0, **extra):
    return "".join(json.dumps(event(i, **extra)) + "\n" for i in range(start, start + n)).encode()


def send(sw, n, start=0, port=None, **extra):
    socat_send(lines_for(n, start, **extra), f"TCP:127.0.0.1:{port or sw.ports['tcp']}")


def send_in_order(sw, chunks, pause=0.0):
    """Chunks of (n, start) over one connection: one connection keeps its order, while
    spillway may read a later connection before the end of an earlier one."""
    with socket.create_connection(("127.0.0.1", sw.ports["tcp"])) as c:
        for n, start in chunks:
            c.sendall(lines_for(n, start))
            time.sleep(pause)


def ctl(sw, *args):
    r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", *args])
    check(r.returncode == 0, f"ctl {args}: {r.stderr}")
    return json.loads(r.stdout)


def sink_stats(sw, name):
    return next(s for s in ctl(sw, "sinks")["sinks"] if s["name"] == name)


def seqs(path):
    return [e["seq"] for e in read_ndjson(path)]


def lines_of(path):
    with open(path, "rb") as f:
        return f.read().splitlines()


# ---- file -------------------------------------------------------------------------------------

def test_file_rotates_by_age():
    """max_age: a file is rotated to path.1 once its first line is that old, even while idle,
    and not before (a file that sat empty for longer is not rotated the moment its first line
    arrives); an empty file is never rotated; the next events start a fresh file; every line is
    in exactly one file, in order."""
    sinks = "  - {name: s, type: file, path: ./out/ev.ndjson, max_age: 2s, keep: 10}\n"
    with Spillway(config(sinks)) as sw:
        sw.start()
        time.sleep(2.5)  # idle past max_age with the file open and empty
        check(not os.path.exists(sw.path("out/ev.ndjson.1")), "an empty file is not rotated")
        t0 = time.monotonic()
        send(sw, 50)
        wait_for(lambda: count_lines(sw.path("out/ev.ndjson")) == 50, 30, "first events")

        def rotated():
            if os.path.exists(sw.path("out/ev.ndjson.1")):
                return True
            check(time.monotonic() - t0 < 30, "no rotation by age within 30 s")
            return False
        wait_for(rotated, 40, "rotation by age", interval=0.01)
        took = time.monotonic() - t0
        # The first line was written after t0, so at max_age it is old no earlier than t0 + 2 s.
        check(took >= 1.95, f"rotated {took:.2f}s after the first line, before max_age 2s")
        check(seqs(sw.path("out/ev.ndjson.1")) == list(range(50)), "the old file whole")
        check(count_lines(sw.path("out/ev.ndjson")) == 0, "a fresh file at the path")
        send(sw, 50, 50)
        wait_for(lambda: os.path.exists(sw.path("out/ev.ndjson.2")), 30, "second rotation")
        check(sw.stop() == 0, "clean stop")
        files = sorted(os.listdir(sw.path("out")))
        check(files == ["ev.ndjson", "ev.ndjson.1", "ev.ndjson.2"], f"files: {files}")
        got = seqs(sw.path("out/ev.ndjson.2")) + seqs(sw.path("out/ev.ndjson.1"))
        check(got == list(range(100)), f"oldest file first, every event once, in order: {got}")


def test_file_keeps_n_rotated_files():
    """keep: 3 with many size rotations: exactly path, path.1, path.2, path.3 remain, each under
    max_size, and read from path.3 to path they hold the newest events, contiguous and in
    order, ending with the last one sent."""
    sinks = "  - {name: s, type: file, path: ./out/ev.ndjson, max_size: 2KiB, keep: 3}\n"
    total = 400
    with Spillway(config(sinks)) as sw:
        sw.start()
        # several batches, so rotations happen between them too
        send_in_order(sw, [(40, k) for k in range(0, total, 40)], pause=0.01)
        wait_for(lambda: sink_stats(sw, "s")["delivered"] == total, 30, "all delivered")
        check(sw.stop() == 0, "clean stop")
        files = sorted(os.listdir(sw.path("out")))
        check(files == ["ev.ndjson", "ev.ndjson.1", "ev.ndjson.2", "ev.ndjson.3"],
              f"exactly keep=3 rotated files: {files}")
        got = []
        for f in ["ev.ndjson.3", "ev.ndjson.2", "ev.ndjson.1", "ev.ndjson"]:
            size = os.path.getsize(sw.path("out", f))
            check(0 < size <= 2048, f"{f}: {size} bytes, max_size 2KiB")
            got += seqs(sw.path("out", f))
        check(got and got[-1] == total - 1 and got == list(range(got[0], total)),
              f"the newest events, whole, in order: {got}")
        check(got[0] > 0, "the oldest files were deleted")


def test_file_fsync_batch():
    """fsync: batch calls fsync on the file after writing (seen with strace), fsync: none never
    does; both deliver everything."""
    sinks = ("  - {name: s, type: file, path: ./synced.ndjson, fsync: batch}\n"
             "  - {name: n, type: file, path: ./unsynced.ndjson}\n")
    with Spillway(config(sinks, "  - {name: r, sinks: [s, n]}\n")) as sw:
        sw.start()
        trace = sw.path("strace.out")
        st = subprocess.Popen(["strace", "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync",
                               "-o", trace, "-p", str(sw.proc.pid)],
                              stderr=subprocess.PIPE) if shutil.which("strace") else None
        if st:
            time.sleep(1)  # strace attaches to every thread before it returns anything
            if st.poll() is not None:
                print(f"  (strace cannot attach: {st.stderr.read().decode()[:200]}; "
                      "fsync calls not checked)")
                st = None
        send(sw, 1000)
        wait_for(lambda: sink_stats(sw, "s")["delivered"] == 1000
                 and sink_stats(sw, "n")["delivered"] == 1000, 30, "both delivered")
        check(seqs(sw.path("synced.ndjson")) == list(range(1000)), "fsync: batch delivers all")
        check(lines_of(sw.path("synced.ndjson")) == lines_of(sw.path("unsynced.ndjson")),
              "the same lines with and without fsync")
        if st:
            st.send_signal(signal.SIGINT)
            st.wait(30)
            calls = open(trace).read()
            check(re.search(r"fsync\(\d+</[^>]*synced\.ndjson>\)", calls),
                  f"fsync on synced.ndjson: {calls[-1000:]}")
            check("unsynced.ndjson" not in calls, f"no fsync with fsync: none: {calls[-1000:]}")
        check(sw.stop() == 0, "clean stop")
    bad = config("  - {name: s, type: file, path: ./x.ndjson, fsync: always}\n")
    with Spillway(bad) as sw:
        r = run([BIN, "check", "-c", sw.config_path], cwd=sw.dir)
        check(r.returncode == 1 and "none, batch" in r.stderr, f"bad fsync value: {r.stderr}")


def cached_bytes(path):
    """Bytes of path in the page cache (util-linux fincore)."""
    r = run(["fincore", "--bytes", "--noheadings", "--output", "RES", path])
    check(r.returncode == 0, f"fincore {path}: {r.stderr}")
    return int(r.stdout.split()[0])


def test_file_drops_what_it_wrote_from_the_page_cache():
    """page_cache: drop (the default) leaves at most a few 8 MiB windows of a 48 MiB file in the
    page cache; page_cache: keep leaves it to the kernel (all of it, on a machine with memory to
    spare). Both files hold the same lines, every event once and in order."""
    sinks = ("  - {name: s, type: file, path: ./dropped.ndjson}\n"
             "  - {name: k, type: file, path: ./kept.ndjson, page_cache: keep}\n")
    n = 100000
    with Spillway(config(sinks, "  - {name: r, sinks: [s, k]}\n")) as sw:
        sw.start()
        send(sw, n, pad="x" * 400)
        wait_for(lambda: sink_stats(sw, "s")["delivered"] == n
                 and sink_stats(sw, "k")["delivered"] == n, 60, "both delivered")
        dropped, kept = sw.path("dropped.ndjson"), sw.path("kept.ndjson")
        size = os.path.getsize(dropped)
        check(size > 48 << 20 and size == os.path.getsize(kept), f"48 MiB each: {size}")
        fs = run(["stat", "-f", "-c", "%T", dropped]).stdout.strip()
        if fs == "tmpfs":
            print("  (the test directory is on tmpfs, whose pages cannot be dropped: the page "
                  "cache is not checked)")
        else:
            d, k = cached_bytes(dropped), cached_bytes(kept)
            print(f"  in the page cache: {d} bytes dropped, {k} kept, of {size}")
            check(d <= 3 * (8 << 20), f"page_cache: drop leaves at most 24 MiB cached: {d}")
            check(k >= size * 0.9, f"page_cache: keep leaves the file cached: {k} of {size}")
        check(seqs(dropped) == list(range(n)), "every event once, in order")
        check(lines_of(dropped) == lines_of(kept), "the same lines either way")
        check(sw.stop() == 0, "clean stop")


def test_file_reopens_on_sighup():
    """logrotate: the file is renamed away while events keep coming, SIGHUP, and new events land
    in a new file at the path. Together the two files hold every event once, in order, every
    line whole: those written before the reopen in the renamed file, the rest in the new one."""
    sinks = "  - {name: s, type: file, path: ./out/ev.ndjson}\n"
    total = 20000
    with Spillway(config(sinks)) as sw:
        sw.start()
        sender = threading.Thread(
            target=lambda: send_in_order(sw, [(500, k) for k in range(0, total // 2, 500)],
                                         pause=0.01))
        sender.start()
        wait_for(lambda: count_lines(sw.path("out/ev.ndjson")) >= 2000, 30, "some events")
        os.rename(sw.path("out/ev.ndjson"), sw.path("out/ev.ndjson-rotated"))
        sw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any(r.get("msg") == "sink reopened" and r.get("sink") == "s"
                             for r in sw.log_records()), 30, "the sink reopened")
        check(os.path.exists(sw.path("out/ev.ndjson")), "a new file at the path")
        sender.join()
        wait_for(lambda: sink_stats(sw, "s")["delivered"] == total // 2, 60, "the first half")
        send(sw, total // 2, total // 2)
        wait_for(lambda: sink_stats(sw, "s")["delivered"] == total, 60, "all delivered")
        check(sw.stop() == 0, "clean stop")
        old = seqs(sw.path("out/ev.ndjson-rotated"))
        new = seqs(sw.path("out/ev.ndjson"))
        check(len(old) >= 2000 and new, f"both files written: {len(old)} + {len(new)}")
        check(old + new == list(range(total)), f"every event once, in order, none split: "
              f"{len(old)} + {len(new)}")
        check(sorted(os.listdir(sw.path("out"))) == ["ev.ndjson", "ev.ndjson-rotated"],
              "no other file")


# ---- stdout and null --------------------------------------------------------------------------

def test_stdout_ndjson_is_the_canonical_event():
    """stdout with the default format prints the canonical events as NDJSON, line for line what
    a file sink on the same route writes, and nothing else (logs go to stderr)."""
    conf = ("data_dir: ./data\nadmin: {socket: '', http: ''}\n"
            "inputs: [{name: in, type: stdin, format: ndjson}]\npipeline: {partitions: 1}\n"
            "routes: [{name: all, sinks: [console, f]}]\n"
            "sinks: [{name: console, type: stdout}, {name: f, type: file, path: ./f.ndjson}]\n")
    evs = [event(i) for i in range(300)]
    evs[1] = {"msg": "alias and unicode \u00e9\u4e2d \\ \"q\"", "severity": "warn",
              "@timestamp": "2026-01-02T03:04:05Z", "nested": {"a": [1, 2]}}
    evs[2] = {"timestamp": "2026-01-02T03:04:05.123456Z", "kind": "metric", "value": 1.5}
    data = "".join(json.dumps(e) + "\n" for e in evs).encode()
    with Spillway(conf) as sw:
        r = subprocess.run([BIN, "run", "-c", sw.config_path], cwd=sw.dir, input=data,
                           capture_output=True, timeout=60)
        check(r.returncode == 0, f"exits 0 at end of input: {r.stderr[-2000:]}")
        out = r.stdout.splitlines()
        check(out == lines_of(sw.path("f.ndjson")),
              f"stdout is what the file sink wrote: {out[:3]}")
        check(r.stdout.endswith(b"\n") and len(out) == 300, f"{len(out)} lines")
        got = [json.loads(l) for l in out]
        for ev in got:
            check_canonical(ev, source="in")
        check([e.get("seq") for e in got[3:]] == list(range(3, 300)), "in order")
        check(got[1]["message"] == evs[1]["msg"] and got[1]["nested"] == {"a": [1, 2]}
              and got[1]["timestamp"] == "2026-01-02T03:04:05.000000Z", f"normalized: {got[1]}")
        check(got[2]["kind"] == "metric" and got[2]["timestamp"] == evs[2]["timestamp"],
              f"kept: {got[2]}")
        check(b'"msg":"ready"' in r.stderr, "logs on stderr")


def test_null_counts_and_discards():
    """null: delivered equals what was sent, bytes equal the NDJSON a file sink writes for the
    same events, and nothing is written anywhere."""
    sinks = ("  - {name: s, type: null}\n"
             "  - {name: f, type: file, path: ./f.ndjson}\n")
    total = 5000
    with Spillway(config(sinks, "  - {name: r, sinks: [s, f]}\n")) as sw:
        sw.start()
        before = set(os.listdir(sw.dir))
        send(sw, total)
        wait_for(lambda: all(sink_stats(sw, x)["delivered"] == sink_stats(sw, x)["in"] == total
                             for x in "sf"), 30, "both delivered")
        st = sink_stats(sw, "s")
        check(st["in"] == total and st["failed"] == 0 and st["dropped"] == 0
              and st["queued"] == 0 and st["state"] == "up", f"null sink counters: {st}")
        check(st["bytes"] == os.path.getsize(sw.path("f.ndjson")) == sink_stats(sw, "f")["bytes"],
              f"bytes counted as NDJSON: {st['bytes']} vs {os.path.getsize(sw.path('f.ndjson'))}")
        stats = ctl(sw, "stats")
        check(next(s for s in stats["sinks"] if s["name"] == "s")["delivered"] == total,
              "ctl stats agrees")
        check(set(os.listdir(sw.dir)) == before, f"nothing written: {set(os.listdir(sw.dir))}")
        check(sw.stop() == 0, "clean stop")


# ---- tcp and unix -----------------------------------------------------------------------------

def b_config():
    return """
data_dir: ./data
shutdown_timeout: 20s
admin: {socket: ./run/admin.sock, http: ""}
pipeline: {partitions: 1}
inputs:
  - {name: tin, type: tcp, listen: "127.0.0.1:{tcp}"}
  - {name: uin, type: unix, path: ./run/b.sock}
routes: [{name: r, sinks: [out]}]
sinks:
  - {name: out, type: file, path: ./out.ndjson}
  - {name: dl, type: file, path: ./dead.ndjson}
dead_letter: dl
"""


def by_input(b):
    """B's output split by the input it came through: {"tin": [seq...], "uin": [seq...]}."""
    got = {"tin": [], "uin": []}
    for e in read_ndjson(b.path("out.ndjson")):
        got[e["source"]].append(e["seq"])
    return got


def test_tcp_and_unix_feed_another_spillway():
    """A's tcp and unix sinks feed B's tcp and unix inputs. Every event arrives once and in
    order. B stopped between batches loses nothing: A notices the closed connection, retries
    while B is down, and delivers everything once B is back on the same port and path. B
    stopped in the middle of a stream loses at most what was in flight: one contiguous gap,
    after which every event arrives, in order, none twice."""
    with Spillway(b_config()) as b:
        b.start()
        sinks = (f"  - {{name: t, type: tcp, address: '127.0.0.1:{b.ports['tcp']}', "
                 "connect_timeout: 500ms}\n"
                 f"  - {{name: u, type: unix, path: '{b.path('run/b.sock')}', "
                 "connect_timeout: 500ms}\n")
        with Spillway(config(sinks, "  - {name: r, sinks: [t, u]}\n")) as a:
            a.start()
            send(a, 1000)
            wait_for(lambda: count_lines(b.path("out.ndjson")) == 2000, 30, "B got both copies")
            got = by_input(b)
            check(got["tin"] == list(range(1000)) and got["uin"] == list(range(1000)),
                  "once each, in order, through both")
            for e in read_ndjson(b.path("out.ndjson")):
                check_canonical(e)

            # B stops cleanly between batches; A keeps receiving while B is down.
            check(b.stop() == 0, "B stops cleanly")
            send_in_order(a, [(500, 1000), (500, 1500)])
            wait_for(lambda: all(sink_stats(a, x)["state"] == "retrying"
                                 and sink_stats(a, x)["in"] == 2000 for x in "tu"), 30,
                     "A's sinks retrying while B is down")
            st = {x: sink_stats(a, x) for x in "tu"}
            check(all(s["delivered"] == 1000 and s["queued"] == 1000 for s in st.values()),
                  f"nothing counted as delivered while B is down: {st}")
            b.start()
            wait_for(lambda: all(sink_stats(a, x)["delivered"] == 2000 for x in "tu"), 60,
                     "A delivers the backlog once B is back")
            wait_for(lambda: count_lines(b.path("out.ndjson")) >= 4000, 30, "B wrote it")
            got = by_input(b)
            check(got["tin"] == list(range(2000)) and got["uin"] == list(range(2000)),
                  f"nothing lost across B's restart: tcp {len(got['tin'])}, "
                  f"unix {len(got['uin'])}")

            # B stops in the middle of a stream.
            total = 40000
            sender = threading.Thread(
                target=lambda: send_in_order(a, [(1000, k) for k in range(2000, total, 1000)],
                                             pause=0.005))
            sender.start()
            wait_for(lambda: count_lines(b.path("out.ndjson")) >= 4000 + 2 * 5000, 60,
                     "B receiving the stream")
            check(b.stop() == 0, "B stops cleanly mid-stream")
            at_stop = count_lines(b.path("out.ndjson"))
            check(at_stop < 2 * total, f"B stopped before the stream's end: {at_stop} lines")
            time.sleep(0.5)  # let A hit the closed connection while the stream goes on
            b.start()
            sender.join()
            wait_for(lambda: all(sink_stats(a, x)["queued"] == 0
                                 and sink_stats(a, x)["in"] == total for x in "tu"), 60,
                     "A's queues drained")
            check(all(sink_stats(a, x)["state"] == "up" for x in "tu"), "A's sinks up again")
            check(a.stop() == 0, "A stops cleanly")
        check(b.stop() == 0, "B stops cleanly")
        got = by_input(b)
        for name, s in got.items():
            check(s[:2000] == list(range(2000)), f"{name}: the earlier events unchanged")
            check(s == sorted(set(s)), f"{name}: in order, none twice")
            check(s[-1] == total - 1, f"{name}: the stream's end arrived")
            missing = sorted(set(range(total)) - set(s))
            check(not missing or missing == list(range(missing[0], missing[-1] + 1)),
                  f"{name}: at most one contiguous gap: {missing[:5]}..{missing[-5:]}")
            print(f"  {name}: {len(missing)} events lost in flight at B's stop")


# ---- isolation --------------------------------------------------------------------------------

def test_drop_newest_sink_beside_a_blocking_one():
    """A drop_newest sink whose destination stalls drops what does not fit in its queue,
    counted: in + dropped equals what the route kept, and after the stall ends it delivers
    exactly what it took in. The other sink on the route (block) gets every event meanwhile."""
    hold = threading.Event()
    rx = Receiver(hold=hold)
    try:
        sinks = (f"  - {{name: slow, type: http, url: 'http://127.0.0.1:{rx.port}/x', "
                 "when_full: drop_newest, batch_timeout: 10ms, request_timeout: 300s}\n"
                 "  - {name: f, type: file, path: ./f.ndjson}\n")
        total = 30000  # 6+ MB of canonical events against a queue of 1MiB / 2 / 3 sinks
        conf = config(sinks, "  - {name: r, sinks: [slow, f]}\n",
                      pipeline="{partitions: 1, memory_limit: 1MiB}")
        with Spillway(conf) as sw:
            sw.start()
            for k in range(0, total, 5000):
                send(sw, 5000, k)
            wait_for(lambda: count_lines(sw.path("f.ndjson")) == total, 60,
                     "the blocking sink got everything while the other stalls")
            got = seqs(sw.path("f.ndjson"))
            # Each send() is its own connection: spillway may read the next one before the
            # end of the last, so order holds within a connection, not across them.
            check(sorted(got) == list(range(total)), "all, once each")
            for k in range(0, total, 5000):
                run_k = [x for x in got if k <= x < k + 5000]
                check(run_k == sorted(run_k), f"in order within connection {k // 5000}")
            st = sink_stats(sw, "slow")
            check(st["dropped"] > 0 and st["delivered"] == 0, f"stalled and dropping: {st}")
            wait_for(lambda: ctl(sw, "routes")["routes"][0]["counters"]["kept"] == total, 30,
                     "the route's counters")  # added just after the sinks' queues
            hold.set()
            wait_for(lambda: sink_stats(sw, "slow")["queued"] == 0, 60, "the stall ends")
            st = sink_stats(sw, "slow")
            check(st["in"] + st["dropped"] == total, f"in + dropped == routed: {st}")
            check(st["delivered"] == st["in"] and st["failed"] == 0, f"delivered: {st}")
            check(sw.stop() == 0, "clean stop")
        got = [json.loads(l)["seq"] for r in rx.requests for l in r["body"].splitlines()]
        check(len(got) == st["delivered"] and got == sorted(set(got)),
              f"the receiver got what was counted delivered, once each: {len(got)} {st}")
    finally:
        hold.set()
        rx.close()


# ---- http -------------------------------------------------------------------------------------

TS0 = calendar.timegm((2026, 1, 2, 3, 4, 5))


def fixed_ts(i):
    """A fixed canonical timestamp per event, and its epoch seconds as text (6 decimals)."""
    us = 123456 + i * 1001
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(TS0 + us // 1000000))
            + ".%06dZ" % (us % 1000000), "%d.%06d" % (TS0 + us // 1000000, us % 1000000))


def test_http_exact_bodies():
    """Byte for byte, against the canonical lines a file sink on the same route wrote: ndjson
    bodies, json_array bodies, elasticsearch with a fixed index, splunk_hec envelopes whose
    time is the event's timestamp in epoch seconds; a header whose value comes from ${ENV}
    reaches the server and is redacted in ctl config."""
    rx = Receiver()
    try:
        url = f"http://127.0.0.1:{rx.port}"
        opts = "batch_timeout: 100ms, batch_max_events: 7"
        sinks = (f"  - {{name: nd, type: http, url: '{url}/nd', {opts}, "
                 "headers: {Authorization: 'Bearer ${SW_TEST_TOKEN}', X-Fixed: plain}}\n"
                 f"  - {{name: arr, type: http, url: '{url}/arr', encoding: json_array, {opts}}}\n"
                 f"  - {{name: es, type: http, url: '{url}/es', encoding: elasticsearch, "
                 f"index: logs-fixed, {opts}}}\n"
                 f"  - {{name: hec, type: http, url: '{url}/hec', encoding: splunk_hec, {opts}}}\n"
                 "  - {name: f, type: file, path: ./f.ndjson}\n")
        routes = "  - {name: r, sinks: [nd, arr, es, hec, f]}\n"
        n = 50
        with Spillway(config(sinks, routes), env={"SW_TEST_TOKEN": "t0k-\u00e9n 42"}) as sw:
            sw.start()
            lines = [json.dumps(event(i, timestamp=fixed_ts(i)[0], host="h%d" % (i % 3)))
                     for i in range(n)]
            socat_send(("\n".join(lines) + "\n").encode(), f"TCP:127.0.0.1:{sw.ports['tcp']}")
            wait_for(lambda: all(sink_stats(sw, x)["delivered"] == n
                                 for x in ("nd", "arr", "es", "hec", "f")), 30, "all delivered")
            dump = json.dumps(ctl(sw, "config"))
            check("t0k" not in dump and "<redacted>" in dump, "header values redacted")
            check(sw.stop() == 0, "clean stop")
            canon = lines_of(sw.path("f.ndjson"))
        check(len(canon) == n and [json.loads(l)["timestamp"] for l in canon]
              == [fixed_ts(i)[0] for i in range(n)], "the fixed timestamps kept")

        def rebatch(path, enc):
            """The canonical lines cut into the same batches the server got, each encoded."""
            reqs = rx.on(path)
            out, i = [], 0
            for r in reqs:
                k = len(r["body"].splitlines()) if enc != "arr" else len(json.loads(r["body"]))
                if enc == "es":
                    k //= 2
                out.append(canon[i:i + k])
                i += k
            check(i == n, f"{path}: {i} events in {len(reqs)} requests")
            check(all(1 <= len(b) <= 7 for b in out), f"{path}: batch_max_events 7")
            return reqs, out

        reqs, batches = rebatch("/nd", "nd")
        for r, b in zip(reqs, batches):
            check(r["body"] == b"".join(l + b"\n" for l in b), f"ndjson body: {r['body'][:200]}")
            check(r["headers"]["Content-Type"] == "application/x-ndjson", "ndjson content type")
            check(r["headers"]["Authorization"] == "Bearer t0k-\u00e9n 42".encode().decode(
                "latin-1") and r["headers"]["X-Fixed"] == "plain",
                f"header from the environment: {r['headers']}")
        reqs, batches = rebatch("/arr", "arr")
        for r, b in zip(reqs, batches):
            check(r["body"] == b"[" + b",".join(b) + b"]", f"json_array body: {r['body'][:200]}")
            check(r["headers"]["Content-Type"] == "application/json", "json content type")
        reqs, batches = rebatch("/es", "es")
        for r, b in zip(reqs, batches):
            want = b"".join(b'{"create":{"_index":"logs-fixed"}}\n' + l + b"\n" for l in b)
            check(r["body"] == want, f"bulk body: {r['body'][:300]}")
        reqs, batches = rebatch("/hec", "hec")
        for r, b in zip(reqs, batches):
            want = b""
            for l in b:
                ev = json.loads(l)
                t = fixed_ts(ev["seq"])[1]
                want += (b'{"time":%s,"host":"%s","source":"app","sourcetype":"_json",'
                         b'"event":%s}\n' % (t.encode(), ev["host"].encode(), l))
            check(r["body"] == want, f"hec body:\n{r['body'][:300]}\nwant\n{want[:300]}")
    finally:
        rx.close()


def test_hec_time_before_1970():
    """splunk_hec's time is a JSON number of epoch seconds also before 1970 (floor division:
    1969-12-31T23:59:58.5Z is -1.5, not "-1.-500000")."""
    rx = Receiver()
    try:
        url = f"http://127.0.0.1:{rx.port}"
        sinks = f"  - {{name: s, type: http, url: '{url}/hec', encoding: splunk_hec}}\n"
        stamps = [("1969-12-31T23:59:58.500000Z", -1.5), ("1969-12-31T23:59:59.750000Z", -0.25),
                  ("1960-01-01T00:00:00.000000Z", -315619200.0),
                  ("2026-01-02T03:04:05.000001Z", 1767323045.000001)]
        with Spillway(config(sinks)) as sw:
            sw.start()
            lines = [json.dumps(event(i, timestamp=ts)) for i, (ts, _) in enumerate(stamps)]
            socat_send(("\n".join(lines) + "\n").encode(), f"TCP:127.0.0.1:{sw.ports['tcp']}")
            wait_for(lambda: sink_stats(sw, "s")["delivered"] == len(stamps), 30, "delivered")
            check(sw.stop() == 0, "clean stop")
        got = {}
        for r in rx.on("/hec"):
            for l in r["body"].splitlines():
                h = json.loads(l)  # raises on "-1.-500000"
                got[h["event"]["seq"]] = h["time"]
        check(got == {i: t for i, (_, t) in enumerate(stamps)}, f"times: {got}")
    finally:
        rx.close()


def test_honeycomb_and_datadog_exact_bodies():
    """Honeycomb's batch events API: [{"data": event, "samplerate": N, "time": timestamp}], N
    from the event's sample_rate (0.5 kept: each stands for 2), the dataset in the URL, the team
    key header from ${ENV}. Datadog's logs intake v2: a gzip JSON array of entries with
    ddsource, ddtags, hostname (from host), status (from level), service and message, the
    rest of the event as attributes; never more than 1,000 entries or 5 MB a request, whatever
    the sink's batch settings."""
    rx = Receiver()
    try:
        url = f"http://127.0.0.1:{rx.port}"
        sinks = (f"  - {{name: hc, type: http, url: '{url}/1/batch/checkout', "
                 "encoding: honeycomb, headers: {X-Honeycomb-Team: '${HC_KEY}'}, "
                 "batch_timeout: 100ms}\n"
                 f"  - {{name: dd, type: http, url: '{url}/api/v2/logs', encoding: datadog, "
                 "compression: gzip, ddtags: 'env:test,team:pay', headers: {DD-API-KEY: "
                 "'${DD_KEY}'}, batch_max_events: 100000, batch_max_bytes: 64MiB, "
                 "batch_timeout: 1s}\n"
                 "  - {name: f, type: file, path: ./f.ndjson}\n")
        routes = ("  - {name: sampled, sample_rate: 0.5, sample_key: trace_id, sinks: [hc, f]}\n"
                  "  - {name: all, sinks: [dd]}\n")
        n = 3000
        with Spillway(config(sinks, routes), env={"HC_KEY": "hc-key", "DD_KEY": "dd-key"}) as sw:
            sw.start()
            lines = [json.dumps(event(i, timestamp=fixed_ts(i)[0], host="h%d" % (i % 3),
                                      message=("big %d " % i) + "x" * (20000 if i < 400 else 10)))
                     for i in range(n)]
            socat_send(("\n".join(lines) + "\n").encode(), f"TCP:127.0.0.1:{sw.ports['tcp']}")
            wait_for(lambda: sink_stats(sw, "dd")["delivered"] == n
                     and sink_stats(sw, "hc")["delivered"] == sink_stats(sw, "f")["delivered"]
                     and sink_stats(sw, "f")["delivered"] > 0, 60, "all delivered")
            check(sw.stop() == 0, "clean stop")
            canon = lines_of(sw.path("f.ndjson"))
        check(0.3 * n < len(canon) < 0.7 * n, f"about half kept: {len(canon)}")
        got = []
        for r in rx.on("/1/batch/checkout"):
            check(r["headers"]["X-Honeycomb-Team"] == "hc-key", "the team key from the env")
            check(r["headers"]["Content-Type"] == "application/json", "json")
            got.append(r["body"])
        want = []
        for l in canon:
            ev = json.loads(l)
            check(ev["sample_rate"] == 0.5, f"sample_rate recorded: {ev}")
            want.append(b'{"data":%s,"samplerate":2,"time":"%s"}' % (l, ev["timestamp"].encode()))
        check(b"".join(b[1:-1] + b"," for b in got) == b",".join(want) + b",",
              "honeycomb bodies: the events in order, samplerate 2, time")
        entries = 0
        import gzip as gz
        for r in rx.on("/api/v2/logs"):
            check(r["headers"]["DD-API-KEY"] == "dd-key"
                  and r["headers"]["Content-Encoding"] == "gzip", f"headers: {r['headers']}")
            body = gz.decompress(r["body"])
            check(len(body) <= 5000000, f"a request of {len(body)} bytes: over 5 MB")
            arr = json.loads(body)
            check(1 <= len(arr) <= 1000, f"a request of {len(arr)} entries")
            for e in arr:
                i = e["seq"]
                check(list(e)[:5] == ["ddsource", "ddtags", "hostname", "status", "timestamp"]
                      and e["ddsource"] == "app" and e["ddtags"] == "env:test,team:pay"
                      and e["hostname"] == "h%d" % (i % 3) and e["status"] == "INFO"
                      and e["service"] == "svc" and e["message"].startswith("big %d " % i)
                      and e["timestamp"] == fixed_ts(i)[0] and "host" not in e
                      and e["source"] == "app" and e["trace_id"] == "%08x" % i,
                      f"datadog entry: {str(e)[:300]}")
                check(i == entries, f"in order: {i} at {entries}")
                entries += 1
        check(entries == n, f"every event sent to datadog once: {entries}")
        check(len(rx.on("/api/v2/logs")) >= 3, "the 5 MB and 1,000 entry limits split batches")
    finally:
        rx.close()


# ---- TLS --------------------------------------------------------------------------------------

def make_certs(d):
    """A CA and a server certificate for 127.0.0.1 signed by it, with the openssl CLI."""
    def ossl(*args):
        r = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, f"openssl {args[0]}: {r.stderr}")
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=spillway test CA", "-keyout", "ca.key", "-out", "ca.pem",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", "server.key", "-out", "server.csr")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")


def test_http_tls():
    """HTTPS with a private CA: tls_ca_file delivers; without it the certificate is refused and
    the sink retries, delivering nothing; tls_verify: false delivers."""
    if not shutil.which("openssl"):
        print("  skip: the openssl CLI is not installed (needed to make the certificates)")
        return
    sinks = ("  - {name: ca, type: http, url: 'https://127.0.0.1:PORT/ca', "
             "tls_ca_file: ./ca.pem, batch_timeout: 10ms}\n"
             "  - {name: noca, type: http, url: 'https://127.0.0.1:PORT/noca', "
             "batch_timeout: 10ms}\n"
             "  - {name: noverify, type: http, url: 'https://127.0.0.1:PORT/noverify', "
             "tls_verify: false, batch_timeout: 10ms}\n")
    conf = config(sinks, "  - {name: r, sinks: [ca, noca, noverify]}\n").replace(
        "shutdown_timeout: 20s", "shutdown_timeout: 2s")
    with Spillway(conf) as sw:
        make_certs(sw.dir)
        rx = Receiver(tls=(sw.path("server.pem"), sw.path("server.key")))
        try:
            with open(sw.config_path) as f:
                text = f.read().replace("PORT", str(rx.port))
            with open(sw.config_path, "w") as f:
                f.write(text)
            sw.start()
            send(sw, 20)
            wait_for(lambda: sink_stats(sw, "ca")["delivered"] == 20
                     and sink_stats(sw, "noverify")["delivered"] == 20, 30, "TLS delivery")
            wait_for(lambda: sink_stats(sw, "noca")["retries"] >= 2, 30, "noca retrying")
            st = sink_stats(sw, "noca")
            check(st["state"] == "retrying" and st["delivered"] == 0 and st["failed"] == 0
                  and st["queued"] == 20, f"without the CA: retrying, nothing delivered: {st}")
            check(re.search("certificate|SSL", st["last_error"], re.I),
                  f"the error says why: {st['last_error']}")
            check(not rx.on("/noca"), "no request got through without the CA")
            for p in ("/ca", "/noverify"):
                got = [json.loads(l)["seq"] for r in rx.on(p) for l in r["body"].splitlines()]
                check(got == list(range(20)), f"{p}: {got}")
            check(sw.stop() == 1, "exit 1: noca's events undelivered")
            check('"undelivered":20' in sw.log(), "and it says how many")
        finally:
            rx.close()


if __name__ == "__main__":
    main([test_file_rotates_by_age, test_file_keeps_n_rotated_files, test_file_fsync_batch,
          test_file_drops_what_it_wrote_from_the_page_cache, test_file_reopens_on_sighup, test_stdout_ndjson_is_the_canonical_event,
          test_null_counts_and_discards, test_tcp_and_unix_feed_another_spillway,
          test_drop_newest_sink_beside_a_blocking_one, test_http_exact_bodies, test_hec_time_before_1970,
          test_honeycomb_and_datadog_exact_bodies, test_http_tls])
