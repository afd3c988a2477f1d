"""Issue 2: NDJSON over TCP and the Unix socket -> canonical events -> partitioned rings ->
Lua route -> file sink; SIGTERM drains; a malformed line is dead-lettered and the connection
keeps working."""
import json
import os
import signal
import subprocess
import sys

from spillway_test import (SRC, Spillway, check, check_canonical, main, read_ndjson,
                           socat_send)

CONFIG = """
data_dir: ./data
shutdown_timeout: 30s
admin: {http: ""}
inputs:
  - {name: app,   type: tcp,  listen: "127.0.0.1:{tcp}"}
  - {name: local, type: unix, path: ./run/spillway.sock}
pipeline: {partitions: 2, memory_limit: 16MiB}
routes:
  - {name: default, script: default.lua, sinks: [events]}
sinks:
  - {name: events,     type: file, path: ./data/out/events.ndjson}
  - {name: deadletter, type: file, path: ./data/out/dead-letter.ndjson}
dead_letter: deadletter
"""

LEVELS = ["DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR"]


def default_script():
    with open(os.path.join(SRC, "scripts", "default.lua")) as f:
        return {"scripts/default.lua": f.read()}


def event(seq):
    return {"seq": seq, "trace_id": "%032X" % (seq * 2654435761 % (1 << 128)),
            "level": LEVELS[seq % len(LEVELS)], "service": "checkout",
            "msg": f"order {seq} placed", "user": {"id": seq % 997, "tags": ["a", "b"]},
            "latency_ms": seq % 300 + 0.5}


def payload(seqs):
    return b"".join(json.dumps(event(s)).encode() + b"\n" for s in seqs)


def test_hundred_thousand_events():
    total = 100_000
    with Spillway(CONFIG, extra_files=default_script()) as sw:
        sw.start()
        # Four concurrent senders: two TCP connections and two Unix socket connections.
        parts = [range(i, total, 4) for i in range(4)]
        addrs = [f"TCP:127.0.0.1:{sw.ports['tcp']}", f"TCP:127.0.0.1:{sw.ports['tcp']}",
                 f"UNIX-CONNECT:{sw.path('run/spillway.sock')}",
                 f"UNIX-CONNECT:{sw.path('run/spillway.sock')}"]
        procs = [subprocess.Popen(["socat", "-u", "-", a], stdin=subprocess.PIPE)
                 for a in addrs]
        for p, seqs in zip(procs, parts):
            p.stdin.write(payload(seqs))
            p.stdin.close()
        for p in procs:
            check(p.wait(120) == 0, "socat failed")
        rc = sw.stop(signal.SIGTERM)
        check(rc == 0, f"exit code {rc}")
        events = read_ndjson(sw.path("data/out/events.ndjson"))
        check(len(events) == total, f"{len(events)} events, expected {total}")
        seen = {}
        for ev in events:
            seq = ev["seq"]
            source = "app" if seq % 4 < 2 else "local"
            check_canonical(ev, source)
            exp = event(seq)
            check(ev["message"] == exp["msg"] and "msg" not in ev, f"alias msg: {ev}")
            check(ev["trace_id"] == exp["trace_id"].lower(), f"trace_id lowercased: {ev}")
            check(ev["user"] == exp["user"] and ev["latency_ms"] == exp["latency_ms"]
                  and ev["level"] == exp["level"], f"fields kept: {ev}")
            check(seq not in seen, f"duplicate seq {seq}")
            seen[seq] = True
        check(len(seen) == total, "missing events")
        check(not os.path.exists(sw.path("data/out/dead-letter.ndjson"))
              or os.path.getsize(sw.path("data/out/dead-letter.ndjson")) == 0,
              "nothing dead-lettered")
        check('"delivered":100000' in sw.log(), "stop reports the delivered count")


def test_malformed_line_is_dead_lettered_and_stream_continues():
    with Spillway(CONFIG, extra_files=default_script()) as sw:
        sw.start()
        data = (b'{"seq":1,"msg":"first"}\n'
                b'{"seq":2, this is not json}\n'
                b'\xff\xfe{"bad":"utf8"}\n'
                b'[1,2,3]\n'
                b'\n'
                b'{"seq":3,"msg":"after the bad lines"}\r\n')
        socat_send(data, f"TCP:127.0.0.1:{sw.ports['tcp']}")
        check(sw.stop() == 0, "clean stop")
        events = read_ndjson(sw.path("data/out/events.ndjson"))
        check(sorted(e["seq"] for e in events) == [1, 3], f"good lines arrive: {events}")
        dead = read_ndjson(sw.path("data/out/dead-letter.ndjson"))
        check(len(dead) == 3, f"three dead letters: {dead}")
        for d in dead:
            check(d["source"] == "app" and d["error"] and "raw" in d, f"dead letter shape: {d}")
        by_raw = {d["raw"]: d for d in dead}
        check('{"seq":2, this is not json}' in by_raw, f"raw text kept: {dead}")
        bad_utf8 = [d for d in dead if "raw_base64" in d]
        check(len(bad_utf8) == 1 and bad_utf8[0]["raw_base64"] == "//57ImJhZCI6InV0ZjgifQ==",
              f"invalid UTF-8 kept as base64: {dead}")
        check(by_raw["[1,2,3]"]["error"] == "not a JSON object", f"reason: {dead}")

def test_sigint_stops_quickly_and_cleanly():
    with Spillway(CONFIG, extra_files=default_script()) as sw:
        sw.start()
        socat_send(payload(range(1000)), f"UNIX-CONNECT:{sw.path('run/spillway.sock')}")
        check(sw.stop(signal.SIGINT, timeout=10) == 0, "SIGINT exits 0")
        check(len(read_ndjson(sw.path("data/out/events.ndjson"))) == 1000, "all delivered")
        check(not os.path.exists(sw.path("run/spillway.sock")), "socket removed on exit")


if __name__ == "__main__":
    main([test_hundred_thousand_events,
          test_malformed_line_is_dead_lettered_and_stream_continues,
          test_sigint_stops_quickly_and_cleanly])
