"""Issue 10: security. Input limits on every listener, secrets never printed (config dumps,
`spillway check`, logs), no shell anywhere in the code. The admin socket's permissions and peer
uid checks and the HTTP admin token are tested in test_admin.py; the Lua sandbox in
tests/unit/test_script.c. docs/security.md maps each threat to its defence and test."""
import http.client
import json
import os
import re
import socket
import stat

from spillway_test import (BIN, SRC, Spillway, check, count_lines, main, read_ndjson, run,
                           socat_send, wait_for)

LIMITS = """
data_dir: ./data
admin: {socket: ./run/admin.sock, http: ""}
pipeline: {partitions: 2, memory_limit: 16MiB}
inputs:
  - {name: tcp, type: tcp, listen: "127.0.0.1:{tcp}", max_event_size: 1KiB, max_connections: 3}
  - {name: unix, type: unix, path: ./run/in.sock, max_event_size: 1KiB, max_connections: 3}
  - {name: udp, type: udp, listen: "127.0.0.1:{udp}", max_event_size: 1KiB, format: json}
  - {name: dgram, type: unix_dgram, path: ./run/dgram.sock, max_event_size: 1KiB, format: json}
  - {name: statsd, type: statsd, listen: "127.0.0.1:STATSD", max_event_size: 1KiB}
  - {name: web, type: http, listen: "127.0.0.1:{http}", max_event_size: 1KiB, max_body: 64KiB,
     max_connections: 3}
  - {name: tail, type: tail, path: ./logs/*.log, max_event_size: 1KiB, poll_interval: 50ms}
routes: [{name: r, sinks: [out]}]
sinks:
  - {name: out, type: file, path: ./out.ndjson}
  - {name: dl, type: file, path: ./dead.ndjson}
dead_letter: dl
"""


def stats(sw):
    r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", "stats"])
    return {i["name"]: i for i in json.loads(r.stdout)["inputs"]}


def test_input_limits_on_every_listener():
    """Each listener takes a small record, dead-letters one over max_event_size as "too large"
    (the stream ones resynchronize and keep reading), and the connection-oriented ones refuse
    and count connections over max_connections; HTTP answers 413 over max_body."""
    statsd_port = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    statsd_port.bind(("127.0.0.1", 0))
    sport = statsd_port.getsockname()[1]
    statsd_port.close()
    big = json.dumps({"msg": "x" * 2000}).encode()
    small = json.dumps({"msg": "small"}).encode()
    with Spillway(LIMITS.replace("STATSD", str(sport)), extra_files={"logs/a.log": ""}) as sw:
        sw.start()
        # Streams: a big record between two small ones.
        for addr in (f"TCP:127.0.0.1:{sw.ports['tcp']}", f"UNIX-CONNECT:{sw.path('run/in.sock')}"):
            socat_send(small + b"\n" + big + b"\n" + small + b"\n", addr)
        with open(sw.path("logs/a.log"), "ab") as f:
            f.write(small + b"\n" + big + b"\n" + small + b"\n")
        # Datagrams: one small, one big each.
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for d in (small, big):
            u.sendto(d, ("127.0.0.1", sw.ports["udp"]))
            u.sendto(b"a.b:1|c|#t:" + (b"x" * 2000 if d is big else b"y"), ("127.0.0.1", sport))
        x = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        for d in (small, big):
            x.sendto(d, sw.path("run/dgram.sock"))
        # HTTP: a record over max_event_size in a body under max_body, and a body over max_body.
        c = http.client.HTTPConnection("127.0.0.1", sw.ports["http"], timeout=10)
        c.request("POST", "/v1/events", small + b"\n" + big + b"\n" + small + b"\n")
        r = c.getresponse()
        body = json.loads(r.read())
        check(r.status == 200 and body == {"accepted": 2, "dead_letter": 1},
              f"http: the big record dead-lettered: {r.status} {body}")
        # The same for an element of a JSON array, and for a body that is one object.
        c.request("POST", "/v1/events", b"[" + small + b"," + big + b"," + small + b"]")
        r = c.getresponse()
        body = json.loads(r.read())
        check(r.status == 200 and body == {"accepted": 2, "dead_letter": 1},
              f"http: the big array element dead-lettered: {r.status} {body}")
        c.request("POST", "/v1/events", big)
        r = c.getresponse()
        body = json.loads(r.read())
        check(r.status == 200 and body == {"accepted": 0, "dead_letter": 1},
              f"http: the big single object dead-lettered: {r.status} {body}")
        # OTLP: a log record whose event is over max_event_size, beside a small one: the big one
        # is dead-lettered and the answer says so (partialSuccess), as OTLP receivers do.
        recs = [{"body": {"stringValue": m}} for m in ("small", "x" * 2000)]
        otlp = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": recs}]}]}).encode()
        c.request("POST", "/v1/logs", otlp, {"Content-Type": "application/json"})
        r = c.getresponse()
        body = json.loads(r.read())
        ps = body.get("partialSuccess", {})
        check(r.status == 200 and ps.get("rejectedLogRecords") == 1
              and "max_event_size" in ps.get("errorMessage", ""),
              f"otlp: the big record dead-lettered, partial success: {r.status} {body}")
        c.request("POST", "/v1/events", small * 5000)
        r = c.getresponse()
        r.read()
        check(r.status == 413, f"http: over max_body: {r.status}")
        c.close()
        want = {"tcp": 2, "unix": 2, "tail": 2, "udp": 1, "dgram": 1, "statsd": 1, "web": 5}
        wait_for(lambda: all(stats(sw)[k]["accepted"] - stats(sw)[k]["dead_letter"] >= v
                             for k, v in want.items())
                 and count_lines(sw.path("dead.ndjson")) >= 10, 20, "every listener's records")
        st = stats(sw)
        for name in want:
            n = 4 if name == "web" else 1
            check(st[name]["dead_letter"] == n, f"{name}: {n} record(s) too large: {st[name]}")
        dead = read_ndjson(sw.path("dead.ndjson"))
        check(all("too large" in d["error"] for d in dead), f"all as too large: {dead}")
        check(all(len(d.get("raw", "")) <= 4096 for d in dead), "raw text is cut")
        web = [d for d in dead if d["source"] == "web"]
        events = [d for d in web if d["raw"] == big[:1024].decode()]
        check(len(web) == 4 and len(events) == 3,
              f"http: each with its first max_event_size bytes: {[d['raw'][:40] for d in web]}")
        built = [d for d in web if d not in events][0]  # the OTLP record's event
        size = built.get("raw_bytes", len(built["raw"]))
        check(size > 1024 and len(built["raw"]) == min(size, 4096) and '"xxxx' in built["raw"],
              f"otlp: its event, its start kept and its size: {size} {built['raw'][:80]}")
        mode = stat.S_IMODE(os.stat(sw.path("run/in.sock")).st_mode)
        check(mode == 0o660, f"the unix socket's mode is 0660 by default: {oct(mode)}")
        # Connections over max_connections: refused and counted; those held keep working.
        for name, fam, addr in (("tcp", socket.AF_INET, ("127.0.0.1", sw.ports["tcp"])),
                                ("unix", socket.AF_UNIX, sw.path("run/in.sock"))):
            held = []
            for _ in range(3):
                s = socket.socket(fam)
                s.connect(addr)
                held.append(s)
            wait_for(lambda: stats(sw)[name]["connections"] == 3, 10, f"{name}: 3 held")
            s = socket.socket(fam)
            s.connect(addr)
            s.settimeout(10)
            check(s.recv(1) == b"", f"{name}: the 4th connection is closed")
            s.close()
            check(stats(sw)[name]["refused"] == 1, f"{name}: refused counted")
            held[0].sendall(small + b"\n")
            for h in held:
                h.close()
        conns = []
        for _ in range(3):
            h = http.client.HTTPConnection("127.0.0.1", sw.ports["http"], timeout=10)
            h.request("POST", "/v1/events", small)
            check(h.getresponse().read() and True, "served")
            conns.append(h)
        check(stats(sw)["web"]["connections"] == 3, f"http: 3 held: {stats(sw)['web']}")
        s = socket.create_connection(("127.0.0.1", sw.ports["http"]))
        s.settimeout(10)
        check(s.recv(1) == b"", "http: the 4th connection is closed at once")
        s.close()
        check(stats(sw)["web"]["refused"] == 1, f"and counted: {stats(sw)['web']}")
        # A closed connection makes room for a new one.
        conns.pop().close()
        wait_for(lambda: stats(sw)["web"]["connections"] == 2, 10, "http: one let go")
        h = http.client.HTTPConnection("127.0.0.1", sw.ports["http"], timeout=10)
        h.request("POST", "/v1/events", small)
        check(h.getresponse().status == 200, "http: a new connection is served")
        conns.append(h)
        for h in conns:
            h.close()
        wait_for(lambda: stats(sw)["web"]["connections"] == 0, 10, "http: all let go")
        check(sw.stop() == 0, "clean stop")


SECRETS = {"HEADER_TOKEN": "hdr-secret-4711", "ADMIN_TOKEN": "admin-secret-4712",
           "SASL_PASSWORD": "sasl-secret-4713", "SPILL_PASSWORD": "spill-secret-4714",
           "URL_PASSWORD": "url-secret-4715"}
SECRET_CONFIG = """
data_dir: ./data
shutdown_timeout: 1s
admin: {socket: ./run/admin.sock, http: "127.0.0.1:{admin_http}", http_token: "${ADMIN_TOKEN}"}
pipeline:
  partitions: 2
  kafka: {brokers: "127.0.0.1:1", properties: {sasl.username: u, sasl.password: "${SPILL_PASSWORD}"}}
inputs: [{name: app, type: tcp, listen: "127.0.0.1:{tcp}"}]
routes: [{name: r, sinks: [web, kafka, basic]}]
sinks:
  - {name: web, type: http, url: "http://127.0.0.1:1/", headers: {Authorization: "Bearer ${HEADER_TOKEN}"}}
  - {name: basic, type: http, url: "http://ingest:${URL_PASSWORD}@127.0.0.1:1/_bulk"}
  - {name: kafka, type: kafka, brokers: "127.0.0.1:1", topic: t, message_timeout: 1s,
     properties: {security.protocol: sasl_plaintext, sasl.mechanisms: PLAIN, sasl.username: u,
                  sasl.password: "${SASL_PASSWORD}"}}
"""


def test_secrets_never_printed():
    """Tokens and passwords (http sink headers, a password in a sink's URL, the admin HTTP token,
    kafka sasl.password in a sink's and in the pipeline's properties) appear in no config dump
    (ctl config, --json or not), not in `spillway check`, and not in the log, even while the
    sinks fail and retry."""
    with Spillway(SECRET_CONFIG, env=SECRETS) as sw:
        sw.start()
        socat_send(b'{"msg":"hello"}\n' * 10, f"TCP:127.0.0.1:{sw.ports['tcp']}")
        sock = sw.path("run/admin.sock")
        wait_for(lambda: "retrying" in run([BIN, "ctl", "-s", sock, "sinks"]).stdout, 30,
                 "the sinks failing (their errors are logged)")
        outs = [run([BIN, "ctl", "-s", sock, "--json", "config"]).stdout,
                run([BIN, "ctl", "-s", sock, "config"]).stdout,
                run([BIN, "ctl", "-s", sock, "--json", "sinks"]).stdout,
                run([BIN, "ctl", "-s", sock, "--json", "stats"]).stdout]
        cfg = json.loads(outs[0])["config"]
        check(cfg["admin"]["http_token"] == "<redacted>", f"admin token: {cfg['admin']}")
        web = next(s for s in cfg["sinks"] if s["name"] == "web")
        kafka = next(s for s in cfg["sinks"] if s["name"] == "kafka")
        check(web["headers"] == "<redacted>" and kafka["properties"] == "<redacted>"
              and cfg["pipeline"]["kafka"]["properties"] == "<redacted>",
              f"headers and properties: {web} {kafka} {cfg['pipeline']['kafka']}")
        basic = next(s for s in cfg["sinks"] if s["name"] == "basic")
        check(basic["url"] == "http://ingest:<redacted>@127.0.0.1:1/_bulk",
              f"a URL's password is redacted, the rest kept: {basic['url']}")
        chk = run([BIN, "check", "-c", sw.config_path], env=dict(os.environ, **SECRETS))
        outs += [chk.stdout, chk.stderr]
        check(sw.stop() in (0, 1), "stops")
        outs.append(sw.log())
        for name, secret in SECRETS.items():
            for i, text in enumerate(outs):
                check(secret not in text, f"{name} printed in output {i}: "
                      f"{text[max(0, text.find(secret) - 200):text.find(secret) + 50]}")


def test_no_shell_anywhere():
    """spillway never runs a program: no system(), popen(), exec*() or posix_spawn() in its
    code, and the Lua sandbox has no os.execute or io.popen (test_script.c checks that)."""
    calls = re.compile(r"\b(system|popen|execl|execlp|execle|execv|execvp|execvpe|execve|"
                       r"posix_spawn|posix_spawnp|fork|vfork)\s*\(")
    found = []
    for d in ("core", "collector", "pipeline", "router"):
        for root, _, files in os.walk(os.path.join(SRC, d)):
            for f in files:
                if f.endswith((".c", ".h")):
                    p = os.path.join(root, f)
                    with open(p, errors="replace") as fh:
                        for n, line in enumerate(fh, 1):
                            if calls.search(line) and not line.lstrip().startswith(("*", "/")):
                                found.append(f"{p}:{n}: {line.strip()}")
    check(not found, "a way to run programs: " + "\n".join(found))


if __name__ == "__main__":
    main([test_input_limits_on_every_listener, test_secrets_never_printed,
          test_no_shell_anywhere])
