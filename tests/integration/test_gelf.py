"""Issue 18: the gelf format on udp and tcp, fed by a real GELF client (gelf-pro from npm, over
UDP with its deflate compression and chunking, and over TCP with NUL frames) and by raw
datagrams from Python (uncompressed, zlib, gzip, chunked in any order); bad GELF is
dead-lettered or counted with the reason and costs nothing else."""
import gzip
import json
import os
import socket
import subprocess
import zlib

from spillway_test import (BIN, Spillway, check, check_canonical, count_lines, free_port, main,
                           read_ndjson, run, wait_for)

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
  - {name: gelf, type: udp, listen: "127.0.0.1:{udp}", format: gelf}
  - {name: gelf_tcp, type: tcp, listen: "127.0.0.1:{tcp}", format: gelf}
"""

# gelf-pro, a GELF client for Node.js, installed once into the build tree (npm's registry is
# reachable from the project's machines and CI); a missing npm or a failed install fails.
GELF_PRO = "gelf-pro@1.4.0"
NPM_DIR = os.path.join(os.path.dirname(os.path.abspath(BIN)), "npm-clients")


def npm_client(pkg, module):
    if not os.path.isdir(os.path.join(NPM_DIR, "node_modules", module)):
        r = run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NPM_DIR, pkg],
                timeout=300)
        check(r.returncode == 0, f"npm install {pkg} failed (npm and its registry are needed "
              f"for this test): {r.stderr[-2000:]}")
    return os.path.join(NPM_DIR, "node_modules")


def stats(sw):
    r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", "stats"])
    return {i["name"]: i for i in json.loads(r.stdout)["inputs"]}


def chunks(payload, size, msg_id):
    parts = [payload[i:i + size] for i in range(0, len(payload), size)]
    return [b"\x1e\x0f" + msg_id + bytes([i, len(parts)]) + p for i, p in enumerate(parts)]


def test_gelf_pro_over_udp_and_tcp():
    modules = npm_client(GELF_PRO, "gelf-pro")
    with Spillway(HEAD) as sw:
        sw.start()
        script = """
const log = require('gelf-pro');
const [proto, port] = process.argv.slice(1);
log.setConfig({adapterName: proto, adapterOptions: {host: '127.0.0.1', port: +port},
               fields: {facility: 'billing', env: 'prod'}});
// gelf-pro cuts a field at 32k: four random ones make a message of about 60 KB deflated,
// which it sends as about fifty chunks over UDP.
const crypto = require('crypto');
const big = {};
for (let i = 0; i < 4; i++) big['blob' + i] = crypto.randomBytes(15000).toString('hex');
let left = 3;
const done = (err) => { if (err) { console.error(err); process.exit(1); } if (--left === 0) process.exit(0); };
log.error('charge failed ' + proto, {order_id: 42, trace_id: 'ABCDEF0123'}, done);
log.info('a big one ' + proto, big, done);
log.debug('third ' + proto, done);
"""
        for proto, port in (("udp", sw.ports["udp"]), ("tcp", sw.ports["tcp"])):
            r = subprocess.run(["node", "-e", script, proto, str(port)], capture_output=True,
                               text=True, timeout=60, env=dict(os.environ, NODE_PATH=modules))
            check(r.returncode == 0, f"gelf-pro {proto}: {r.stderr}")
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 6, 30, "gelf-pro events")
        st = stats(sw)
        check(sw.stop() == 0, "clean stop")
        by_msg = {e["message"]: e for e in read_ndjson(sw.path("out.ndjson"))}
        for proto, source in (("udp", "gelf"), ("tcp", "gelf_tcp")):
            e = by_msg[f"charge failed {proto}"]
            check_canonical(e, source)
            check(e["level"] == "ERROR" and e["severity"] == 3 and e["host"]
                  and e["order_id"] == 42 and e["trace_id"] == "abcdef0123"
                  and e["env"] == "prod" and e["facility"] == "billing", f"{proto}: {e}")
            e = by_msg[f"a big one {proto}"]
            check(all(len(e[f"blob{i}"]) == 30000 for i in range(4)),
                  f"{proto}: the big message whole")
            check(by_msg[f"third {proto}"]["level"] == "DEBUG", f"{proto}: debug")
        check(st["gelf"]["dead_letter"] == 0 and st["gelf"]["gelf_refused"] == 0,
              f"nothing refused: {st['gelf']}")
        check(not read_ndjson(sw.path("dead.ndjson")), "no dead letters")


def test_gelf_datagrams_compressed_and_chunked():
    with Spillway(HEAD) as sw:
        sw.start()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        addr = ("127.0.0.1", sw.ports["udp"])
        m = {"version": "1.1", "host": "web-1", "short_message": "plain", "level": 6,
             "timestamp": 1385053862.3072, "full_message": "full\ntext", "_user_id": 9001,
             "_id": "a1", "_host": "other", "kind": "x"}
        s.sendto(json.dumps(m).encode() + b"\0", addr)
        s.sendto(zlib.compress(json.dumps(dict(m, short_message="zlib")).encode()), addr)
        s.sendto(gzip.compress(json.dumps(dict(m, short_message="gzip")).encode()), addr)
        big = zlib.compress(json.dumps(dict(m, short_message="chunked",
                                            _pad=os.urandom(30000).hex())).encode())
        parts = chunks(big, 1000, os.urandom(8))
        for p in reversed(parts):  # any order
            s.sendto(p, addr)
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 4, 30, "4 events")
        check(sw.stop() == 0, "clean stop")
        by_msg = {e["message"]: e for e in read_ndjson(sw.path("out.ndjson"))}
        e = by_msg["plain"]
        check_canonical(e, "gelf")
        check(e["timestamp"] == "2013-11-21T17:11:02.307200Z" and e["level"] == "INFO"
              and e["host"] == "web-1" and e["full_message"] == "full\ntext"
              and e["user_id"] == 9001 and e["id"] == "a1" and e["_host"] == "other"
              and e["kind"] == "log" and e["version"] == "1.1", f"mapped: {e}")
        for name in ("zlib", "gzip", "chunked"):
            check(name in by_msg, f"{name} message delivered")
        check(len(by_msg["chunked"]["pad"]) == 60000, "chunked: whole")


def test_bad_gelf_is_dead_lettered_or_counted():
    with Spillway(HEAD) as sw:
        sw.start()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        addr = ("127.0.0.1", sw.ports["udp"])
        payload = zlib.compress(json.dumps({"short_message": "four chunks",
                                            "_pad": os.urandom(3000).hex()}).encode())
        four = chunks(payload, len(payload) // 4 + 1, b"INCOMPLT")
        check(len(four) == 4, "four chunks")
        for p in four[:3]:
            s.sendto(p, addr)  # the last never comes: expires after 5 s
        dup = chunks(zlib.compress(b'{"short_message":"dup ok"}'), 10, b"DUPLICAT")
        s.sendto(dup[0], addr)
        s.sendto(dup[0], addr)  # a duplicate: refused, counted; the message still completes
        for p in dup[1:]:
            s.sendto(p, addr)
        s.sendto(b"\x1e\x0f" + b"TOOMANYC" + bytes([0, 129]) + b"{", addr)
        s.sendto(gzip.compress(b"{" + b" " * (64 << 20) + b"}"), addr)  # a gzip bomb
        s.sendto(b"\x78\x9c garbage", addr)
        s.sendto(b"not json", addr)
        s.sendto(json.dumps({"short_message": "still fine"}).encode(), addr)
        with socket.create_connection(("127.0.0.1", sw.ports["tcp"])) as t:
            t.sendall(b'{"short_message":"tcp a"}\0{broken\0{"short_message":"tcp b"}\0')
        wait_for(lambda: count_lines(sw.path("dead.ndjson")) >= 6, 30, "6 dead letters")
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 4, 30, "4 events")
        st = stats(sw)
        check(sw.stop() == 0, "clean stop")
        msgs = sorted(e["message"] for e in read_ndjson(sw.path("out.ndjson")))
        check(msgs == ["dup ok", "still fine", "tcp a", "tcp b"], f"the good ones: {msgs}")
        errors = sorted(d["error"] for d in read_ndjson(sw.path("dead.ndjson")))
        for want in ("incomplete after 5 s (3 of 4 chunks)", "over 128", "compression bomb",
                     "does not inflate", "not"):
            check(any(want in e for e in errors), f"a dead letter says {want!r}: {errors}")
        g = st["gelf"]
        check(g["gelf_expired"] == 1 and g["gelf_refused"] == 2 and g["dead_letter"] == 5
              and g["received"] == 7 and g["accepted"] == 7, f"counted: {g}")
        check(st["gelf_tcp"]["dead_letter"] == 1 and st["gelf_tcp"]["received"] == 3,
              f"tcp: {st['gelf_tcp']}")


if __name__ == "__main__":
    main([test_gelf_pro_over_udp_and_tcp, test_gelf_datagrams_compressed_and_chunked,
          test_bad_gelf_is_dead_lettered_or_counted])
