"""Issue 18: the forward input (Fluent forward protocol v1) fed by real clients: Debian's
python3-fluent-logger (Message mode, integer and EventTime times) and fluent-logger from npm
(Message, PackedForward and CompressedPackedForward, acks, shared-key auth, over TCP and a Unix
socket); acks come only for records in the pipeline, and a restart in the middle of a stream
loses nothing that was acknowledged; bad input is dead-lettered or counted with the reason and
costs nothing else."""
import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time

from spillway_test import (BIN, Spillway, check, check_canonical, count_lines, free_port, main,
                           read_ndjson, run, wait_for)

HEAD = """
data_dir: ./data
admin: {{socket: ./run/admin.sock, http: ""}}
pipeline: {{partitions: 2, memory_limit: 16MiB{pipeline}}}
routes: [{{name: all, sinks: [out]}}]
sinks:
  - {{name: out, type: file, path: ./out.ndjson}}
  - {{name: dl,  type: file, path: ./dead.ndjson}}
dead_letter: dl
inputs:
  - {{name: fw, type: forward, listen: "127.0.0.1:{{tcp}}", path: ./run/fw.sock{opts}}}
"""

# The clients: python3-fluent-logger and python3-msgpack are Debian packages, importable by the
# system's python (not the one the tests run under); fluent-logger for Node.js comes from npm,
# installed once into the build tree.
SYS_PY = "/usr/bin/python3"
FLUENT_NODE = "fluent-logger@3.4.1"
NPM_DIR = os.path.join(os.path.dirname(os.path.abspath(BIN)), "npm-clients")


def config(opts="", pipeline=""):
    return HEAD.format(opts=opts, pipeline=pipeline)


def syspy(script, *args, timeout=60):
    r = subprocess.run([SYS_PY, "-c", script, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    check(r.returncode == 0, f"client script failed: {r.stderr[-3000:]}")
    return r.stdout


def npm_modules():
    if not os.path.isdir(os.path.join(NPM_DIR, "node_modules", "fluent-logger")):
        r = run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NPM_DIR, FLUENT_NODE],
                timeout=300)
        check(r.returncode == 0, f"npm install {FLUENT_NODE} failed (npm and its registry are "
              f"needed for this test): {r.stderr[-2000:]}")
    return os.path.join(NPM_DIR, "node_modules")


NODE_SENDER = """
const logger = require('fluent-logger');
const [where, mode, n, key] = process.argv.slice(1);
const opts = {timeout: 5.0, requireAckResponse: true, ackResponseTimeout: 10000,
              eventMode: mode, reconnectInterval: 600000};
if (where.startsWith('/')) opts.path = where; else { opts.host = '127.0.0.1'; opts.port = +where; }
if (key) opts.security = {clientHostname: 'node-client', sharedKey: key};
const s = logger.createFluentSender('node', opts);
s.on('error', (e) => { console.error('error: ' + e); process.exit(2); });
let acked = 0;
for (let i = 0; i < +n; i++)
  s.emit('ev', {message: mode + ' ' + i, seq: i, level: 'info'}, (err) => {
    if (err) { console.error('error: ' + err); process.exit(3); }
    if (++acked === +n) { s.end(); process.exit(0); }
  });
"""


def node_send(where, mode, n, key=None, expect_ok=True):
    args = ["node", "-e", NODE_SENDER, str(where), mode, str(n)] + ([key] if key else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, NODE_PATH=npm_modules()))
    if expect_ok:
        check(r.returncode == 0, f"fluent-logger {mode} to {where}: {r.stderr[-2000:]}")
    return r


def stats(sw):
    r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", "stats"])
    return {i["name"]: i for i in json.loads(r.stdout)["inputs"]}


def test_python_fluent_logger():
    with Spillway(config()) as sw:
        sw.start()
        syspy("""
import sys
from fluent import sender
port = int(sys.argv[1])
s = sender.FluentSender('docker', host='127.0.0.1', port=port)
assert s.emit_with_time('web', 1700000000, {'log': 'GET / 200', 'container_id': 'c0ffee',
                        'container_name': '/web', 'source': 'stdout'}), s.last_error
n = sender.FluentSender('app', host='127.0.0.1', port=port, nanosecond_precision=True)
assert n.emit_with_time('nano', 1700000000.123456789, {'message': 'precise', 'msg': 'x',
                        'severity': 'warn'}), n.last_error
s.close(); n.close()
""", sw.ports["tcp"])
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 2, 30, "2 events")
        check(sw.stop() == 0, "clean stop")
        by_tag = {e["tag"]: e for e in read_ndjson(sw.path("out.ndjson"))}
        e = by_tag["docker.web"]
        check_canonical(e, "fw")
        check(e["timestamp"] == "2023-11-14T22:13:20.000000Z" and e["message"] == "GET / 200"
              and e["container_id"] == "c0ffee" and e["container_name"] == "/web"
              and e["stream"] == "stdout" and "log" not in e, f"docker record: {e}")
        e = by_tag["app.nano"]
        check(e["timestamp"].startswith("2023-11-14T22:13:20.123456") and e["message"] == "precise"
              and e["msg"] == "x" and e["level"] == "warn", f"EventTime, aliases: {e}")


def test_node_fluent_logger_every_mode_with_acks():
    with Spillway(config()) as sw:
        sw.start()
        for mode in ("Message", "PackedForward", "CompressedPackedForward"):
            node_send(sw.ports["tcp"], mode, 300)
        node_send(sw.path("run/fw.sock"), "PackedForward", 50)
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 950, 30, "950 events")
        st = stats(sw)["fw"]
        check(sw.stop() == 0, "clean stop")
        evs = read_ndjson(sw.path("out.ndjson"))
        msgs = {e["message"] for e in evs}
        for mode in ("Message", "PackedForward", "CompressedPackedForward"):
            check(all(f"{mode} {i}" in msgs for i in range(300)), f"every {mode} record")
        check(len(evs) == 950 and all(e["tag"] == "node.ev" and e["source"] == "fw"
                                      for e in evs), "950 events, tagged")
        check(st["received"] == 950 and st["dead_letter"] == 0 and st["protocol_errors"] == 0,
              f"counted: {st}")


def test_shared_key():
    with Spillway(config(opts=", shared_key: s3cret")) as sw:
        sw.start()
        node_send(sw.ports["tcp"], "PackedForward", 20, key="s3cret")
        r = node_send(sw.ports["tcp"], "PackedForward", 20, key="wrong", expect_ok=False)
        check(r.returncode != 0 and "shared_key mismatch" in r.stderr,
              f"a wrong key is refused with the reason: {r.stderr[-500:]}")
        # Without the handshake: records before a PING are refused, the connection closed.
        syspy("""
import socket, sys, msgpack
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.recv(1000)  # the HELO
s.sendall(msgpack.packb(['sneaky', 1700000000, {'message': 'no auth'}]))
s.settimeout(10)
assert s.recv(1000) == b''  # closed
""", sw.ports["tcp"])
        wait_for(lambda: stats(sw)["fw"]["protocol_errors"] == 2, 10, "2 protocol errors")
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 20, 30, "20 events")
        check(sw.stop() == 0, "clean stop")
        evs = read_ndjson(sw.path("out.ndjson"))
        check(len(evs) == 20 and all(e["message"].startswith("PackedForward") for e in evs),
              f"only the authenticated sender's records: {len(evs)}")
        check("authentication failed" in sw.log(), "the refusal is logged")


# A sender that waits for every ack, as Fluent Bit (require_ack_response) and Fluentd do: it
# sends each chunk of records with a chunk id, waits for its ack, and sends a chunk again on a new
# connection when the connection breaks before the ack. It prints the ids acknowledged.
ACK_SENDER = """
import socket, sys, time, msgpack, os
port, chunks, per = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
acked = []
def connect():
    for _ in range(600):
        try:
            return socket.create_connection(('127.0.0.1', port), timeout=10)
        except OSError:
            time.sleep(0.05)
    raise SystemExit('cannot connect')
s = connect()
c = 0
while c < chunks:
    entries = b''.join(msgpack.packb([1700000000 + c, {'message': f'r{c}-{i}', 'chunk_no': c}])
                       for i in range(per))
    cid = f'chunk-{c}'
    try:
        s.sendall(msgpack.packb(['restart', entries, {'chunk': cid, 'size': per}]))
        u = msgpack.Unpacker()
        while True:
            d = s.recv(4096)
            if not d:
                raise OSError('closed')
            u.feed(d)
            got = next(iter(u), None)
            if got is not None:
                break
        assert got == {'ack': cid}, got
        acked.append(c)
        c += 1
        time.sleep(0.01)
    except (OSError, socket.timeout):
        s.close()
        s = connect()  # the chunk goes again
print(' '.join(map(str, acked)))
"""


def test_restart_mid_stream_loses_nothing_acked():
    with Spillway(config()) as sw:
        sw.start()
        p = subprocess.Popen([SYS_PY, "-c", ACK_SENDER, str(sw.ports["tcp"]), "300", "20"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 1000, 30, "a third of the stream")
        check(sw.stop() == 0, "clean stop in the middle of the stream")
        sw.start()
        out, err = p.communicate(timeout=120)
        check(p.returncode == 0, f"the sender: {err[-2000:]}")
        acked = set(map(int, out.split()))
        check(acked == set(range(300)), "every chunk acknowledged in the end")
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 6000, 30, "every record")
        check(sw.stop() == 0, "clean stop")
        msgs = {e["message"] for e in read_ndjson(sw.path("out.ndjson"))}
        missing = [f"r{c}-{i}" for c in acked for i in range(20) if f"r{c}-{i}" not in msgs]
        check(not missing, f"acknowledged records lost across the restart: {missing[:10]}")


def test_dropped_records_are_not_acked():
    # drop_newest with a tiny pipeline: what the pipeline drops is never acknowledged.
    cfg = config(pipeline=", when_full: drop_newest").replace("memory_limit: 16MiB",
                                                               "memory_limit: 1MiB")
    cfg = cfg.replace("routes: [{name: all, sinks: [out]}]",
                      "routes: [{name: all, sinks: [slow]}]")
    cfg = cfg.replace("sinks:\n", "sinks:\n  - {name: slow, type: http, url: "
                      "\"http://127.0.0.1:9/\", request_timeout: 60s}\n")
    with Spillway(cfg) as sw:
        sw.start()
        out = syspy("""
import socket, sys, msgpack
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.settimeout(3)
entries = b''.join(msgpack.packb([1700000000, {'message': 'x' * 200, 'i': i}]) for i in range(2000))
acks = 0
for c in range(20):
    s.sendall(msgpack.packb(['drop', entries, {'chunk': f'c{c}'}]))
try:
    u = msgpack.Unpacker()
    while True:
        d = s.recv(4096)
        if not d:
            break
        u.feed(d)
        acks += sum(1 for _ in u)
except socket.timeout:
    pass
print(acks)
""", sw.ports["tcp"])
        st = stats(sw)["fw"]
        check(st["dropped"] > 0, f"the pipeline dropped records: {st}")
        check(int(out) < 20, f"chunks with dropped records are not acknowledged: {out} acks")


def test_acks_wait_while_the_pipeline_is_full():
    """Under when_full: block, a chunk whose records the pipeline cannot take yet (the only sink
    stalled, the rings full) gets its ack only once they are in: not while they wait."""
    hold = threading.Event()

    class Stalled(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hold.wait(120)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Stalled)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cfg = config(pipeline=", when_full: block").replace("memory_limit: 16MiB",
                                                         "memory_limit: 1MiB")
    cfg = cfg.replace("routes: [{name: all, sinks: [out]}]", "routes: [{name: all, sinks: [h]}]")
    cfg = cfg.replace("sinks:\n", f"sinks:\n  - {{name: h, type: http, url: "
                      f"'http://127.0.0.1:{port}/', batch_max_events: 100}}\n")
    p = None
    try:
        with Spillway(cfg) as sw:
            sw.start()
            p = subprocess.Popen([SYS_PY, "-c", """
import socket, sys, msgpack
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
# Chunks of 50 KB: each fits the socket's buffers whole, so a send never waits on a paused
# spillway and only the ack can be missing.
entries = b''.join(msgpack.packb([1700000000, {'message': 'y' * 500, 'i': i}]) for i in range(100))
u = msgpack.Unpacker()
def ack(timeout):
    s.settimeout(timeout)
    while True:
        d = s.recv(4096)
        if not d:
            raise SystemExit('connection closed')
        u.feed(d)
        got = next(iter(u), None)
        if got is not None:
            return got
for c in range(2000):
    s.settimeout(None)
    s.sendall(msgpack.packb(['full', entries, {'chunk': f'c{c}'}]))
    try:
        ack(3)
    except socket.timeout:
        print(f'waiting c{c}', flush=True)  # no ack: the pipeline is full
        print(f'acked {ack(120)["ack"]}', flush=True)
        break
""", str(sw.ports["tcp"])], stdout=subprocess.PIPE, text=True)
            line = p.stdout.readline().strip()
            check(line.startswith("waiting c"), f"a chunk left waiting for its ack: {line!r}")
            c = line.split()[1]
            st = json.loads(run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json",
                                 "stats"]).stdout)
            check(st["collector"]["staged"] > 0, f"its records wait in the collector: {st}")
            hold.set()  # the sink answers: the pipeline drains, the records go in, the ack comes
            line = p.stdout.readline().strip()
            check(line == f"acked {c}", f"the ack once the records are in: {line!r}")
            p.wait(30)
            check(sw.stop() == 0, "clean stop")
    finally:
        hold.set()
        if p and p.poll() is None:
            p.kill()
            p.wait()
        server.shutdown()
        server.server_close()


def test_a_2gb_map_closes_the_connection():
    """A map header of 2^31 entries: msgpack-c allocates its slots as it reads the header, no
    memory holds them, the connection is closed, counted and its bytes dead-lettered; the other
    connections and the process go on, and the memory is not taken. (Skipped under ASan, whose
    allocator aborts on such an allocation where glibc's returns NULL: tests/CMakeLists.txt.)"""
    with Spillway(config()) as sw:
        sw.start()
        out = syspy("""
import socket, sys, msgpack
port = int(sys.argv[1])
s = socket.create_connection(('127.0.0.1', port)); s.settimeout(10)
s.sendall(b'\\x93\\xa3app\\x01\\xdf\\x7f\\xff\\xff\\xff')
print(s.recv(100) == b'')
t = socket.create_connection(('127.0.0.1', port))
t.sendall(msgpack.packb(['app', 1, {'message': 'still here'}]))
t.close()
""", sw.ports["tcp"])
        check(out.strip() == "True", f"the connection closed: {out}")
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 1, 30, "the other connection")
        st = stats(sw)["fw"]
        rss = int(open(f"/proc/{sw.proc.pid}/status").read().split("VmRSS:")[1].split()[0])
        check(sw.stop() == 0, "clean stop")
        errors = [d["error"] for d in read_ndjson(sw.path("dead.ndjson"))]
        check(any("no memory can hold" in e for e in errors), f"dead-lettered: {errors}")
        check(st["protocol_errors"] == 1, f"counted: {st}")
        check(rss < 200 * 1024, f"the memory was not taken: RSS {rss} KiB")
        check("forward connection closed" in sw.log(), "logged")


def test_bad_forward_input():
    with Spillway(config()) as sw:
        sw.start()
        out = syspy("""
import socket, sys, gzip, msgpack
port = int(sys.argv[1])
def conn():
    s = socket.create_connection(('127.0.0.1', port)); s.settimeout(10); return s
def closed(s):
    try:
        return s.recv(100) == b''
    except OSError:
        return True
res = []
# Truncated msgpack, then the connection ends: the partial message is dead-lettered.
s = conn(); s.sendall(msgpack.packb(['app', 1, {'message': 'cut' * 50}])[:40]); s.close()
# A gzip bomb in CompressedPackedForward: dead-lettered, and the connection carries on.
s = conn()
bomb = gzip.compress(b'\\x00' * (64 << 20))
s.sendall(msgpack.packb(['app', bomb, {'compressed': 'gzip', 'chunk': 'bomb'}]))
s.sendall(msgpack.packb(['app', 1700000000, {'message': 'after the bomb'}, {'chunk': 'ok'}]))
u = msgpack.Unpacker(); acks = []
while len(acks) < 2:
    d = s.recv(1000)
    if not d: break
    u.feed(d); acks += [a['ack'] for a in u]
res.append(acks)
# Bytes that are not msgpack at all (0xc1 is never used): closed.
s = conn(); s.sendall(b'\\xc1\\xc1\\xc1'); res.append(closed(s))
# A message of no mode, a PackedForward whose entries are not [time, record], then a good one
# on the same connection.
s = conn()
s.sendall(msgpack.packb(['app', None, 3]) + msgpack.packb(['app', msgpack.packb([1, 2])])
          + msgpack.packb(['app', 1, {'message': 'fine'}]))
s.close()
print(res)
""", sw.ports["tcp"], timeout=120)
        check(out.strip() == "[['bomb', 'ok'], True]", f"the connections: {out}")
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 2, 30, "the good records")
        wait_for(lambda: count_lines(sw.path("dead.ndjson")) >= 5, 30, "5 dead letters")
        st = stats(sw)["fw"]
        rss = int(open(f"/proc/{sw.proc.pid}/status").read().split("VmRSS:")[1].split()[0])
        check(sw.stop() == 0, "clean stop")
        check(sorted(e["message"] for e in read_ndjson(sw.path("out.ndjson")))
              == ["after the bomb", "fine"], "the good records delivered")
        errors = [d["error"] for d in read_ndjson(sw.path("dead.ndjson"))]
        for want in ("truncated msgpack", "compression bomb", "cannot be read", "no mode",
                     "not [time, record]"):
            check(any(want in e for e in errors), f"a dead letter says {want!r}: {errors}")
        check(st["protocol_errors"] == 2, f"two connections closed on an error: {st}")
        check(rss < 200 * 1024, f"the bad input cost no memory: RSS {rss} KiB")


if __name__ == "__main__":
    main([test_python_fluent_logger, test_node_fluent_logger_every_mode_with_acks,
          test_shared_key, test_restart_mid_stream_loses_nothing_acked,
          test_dropped_records_are_not_acked, test_acks_wait_while_the_pipeline_is_full,
          test_a_2gb_map_closes_the_connection, test_bad_forward_input])
