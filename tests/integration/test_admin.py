"""Issue 7: the admin socket and `spillway ctl`, the HTTP admin (/metrics checked by promtool,
/health, /ready, token), permissions for another uid, bad requests, tap, audit, top."""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

from spillway_test import (BIN, Spillway, check, count_lines, main, read_ndjson, run, socat_send,
                           wait_for)

CONFIG = """
data_dir: ./data
shutdown_timeout: 10s
admin: {socket: ./run/admin.sock, http: "127.0.0.1:{admin_http}", http_token: "${TOKEN:-}",
        socket_mode: "SOCKMODE"}
pipeline: {partitions: 2, memory_limit: 16MiB}
inputs: [{name: app, type: tcp, listen: "127.0.0.1:{tcp}"}]
router: {scripts: ./scripts}
routes:
  - {name: main, script: main.lua, sample_rate: 1.0, sinks: [out]}
sinks:
  - {name: out, type: file, path: ./out.ndjson}
  - {name: dl, type: file, path: ./dead.ndjson}
dead_letter: dl
"""
SCRIPT = "function process(ev)\n  ev.routed = true\n  return true\nend\n"


def spill(mode="0600", env=None):
    return Spillway(CONFIG.replace("SOCKMODE", mode), extra_files={"scripts/main.lua": SCRIPT},
                    env=env)


def ctl(sw, *args, user=None):
    cmd = [BIN, "ctl", "-s", sw.path("run/admin.sock"), *args]
    if user:
        cmd = ["setpriv", "--reuid", user, "--regid", "nogroup", "--clear-groups"] + cmd
    return run(cmd)


def ctlj(sw, *args):
    r = ctl(sw, "--json", *args)
    check(r.stdout.strip(), f"ctl {args}: {r.stderr}")
    return json.loads(r.stdout)


def raw(sw, data, read_all=True):
    """Sends raw bytes to the admin socket; returns the response lines."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(sw.path("run/admin.sock"))
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(10)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def send(sw, n, start=0):
    lines = "".join(json.dumps({"seq": i, "trace_id": "%06x" % i, "level": "INFO"}) + "\n"
                    for i in range(start, start + n))
    socat_send(lines.encode(), f"TCP:127.0.0.1:{sw.ports['tcp']}")


@contextlib.contextmanager
def loaded(sw, batch):
    """Events sent in batches for as long as the block runs."""
    stop = threading.Event()

    def load():
        i = 0
        while not stop.is_set():
            send(sw, batch, i)
            i += batch

    th = threading.Thread(target=load)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join()


def test_every_command():
    with spill() as sw:
        sw.start()
        send(sw, 100)
        wait_for(lambda: count_lines(sw.path("out.ndjson")) == 100, 30, "delivery")
        check(ctlj(sw, "version")["version"], "version")
        st = ctlj(sw, "stats")
        check(st["inputs"][0]["received"] == 100 and st["routes"][0]["counters"]["kept"] == 100
              and st["sinks"][0]["delivered"] == 100, f"stats: {st}")
        r = ctl(sw, "stats")
        check(r.returncode == 0 and "inputs" in r.stdout and "sinks" in r.stdout, r.stdout)
        check(ctlj(sw, "routes")["routes"][0]["name"] == "main", "routes")
        check(ctlj(sw, "sample", "main", "0.5", "--for", "10m")["rate"] == 0.5, "sample")
        check(ctlj(sw, "route", "disable", "main")["enabled"] is False, "disable")
        check(ctlj(sw, "route", "enable", "main")["enabled"] is True, "enable")
        check(ctlj(sw, "reload")["ok"], "reload")
        check(ctlj(sw, "sinks")["sinks"][0]["state"] == "up", "sinks")
        check(ctlj(sw, "compare", "out", "dl")["ok"], "compare")
        cfg = ctlj(sw, "config")["config"]
        check(cfg["routes"][0]["name"] == "main" and cfg["admin"]["http_token"] == "",
              f"config: {cfg['admin']}")
        audit = ctlj(sw, "audit", "-n", "10")["audit"]
        cmds = [a["command"] for a in audit]
        check(cmds == ["sample", "route disable", "route enable", "reload"], f"audit: {cmds}")
        check(all(a["uid"] == os.getuid() and a["pid"] > 0 and a["at"] for a in audit),
              f"who and when: {audit}")
        check(audit[0]["old_value"] == "1" and audit[0]["new_value"].startswith("0.5"),
              f"previous and new values: {audit[0]}")
        two = ctlj(sw, "audit", "-n", "2")["audit"]
        check([a["command"] for a in two] == ["route enable", "reload"], f"audit -n 2: {two}")
        # The human output, one line each.
        check(ctl(sw, "version").stdout.startswith("spillway "), "human version")
        check("rate 0.5" in ctl(sw, "routes").stdout, "human routes: the dialed rate")
        check(ctl(sw, "sample", "main", "0.25").stdout == "route main: sampling rate 0.25\n",
              "human sample")
        check(ctl(sw, "route", "disable", "main").stdout == "route main disabled\n",
              "human route")
        ctl(sw, "route", "enable", "main")
        check(ctl(sw, "reload").stdout == "reloaded 0 script(s)\n", "human reload")
        lines = ctl(sw, "audit", "-n", "2").stdout.splitlines()
        check(len(lines) == 2 and "route enable" in lines[0] and "reload" in lines[1]
              and f"uid {os.getuid()}" in lines[1], f"human audit: {lines}")
        check(ctl(sw, "sample", "nope", "0.1").returncode == 1, "unknown route: exit 1")
        check(ctl(sw, "sample", "main", "2").returncode == 1, "bad rate: exit 1")
        check(ctl(sw, "frobnicate").returncode == 2, "unknown command: exit 2")
        r = ctl(sw, "stats", "extra")
        check(r.returncode == 2 and "stats takes no arguments" in r.stderr, f"extra: {r.stderr}")
        check(sw.stop() == 0, "clean stop")


def test_bad_requests_never_hurt():
    with spill() as sw:
        sw.start()
        check(raw(sw, b"this is not json\n")[0]["ok"] is False, "malformed")
        check("cmd" in raw(sw, b'{"nocmd":1}\n')[0]["error"], "no cmd")
        check("unknown command" in raw(sw, b'{"cmd":"rm -rf"}\n')[0]["error"], "unknown")
        huge = raw(sw, b'{"cmd":"stats","pad":"' + b"x" * 200_000 + b'"}\n')
        check(huge and "too large" in huge[0]["error"], f"huge request: {huge[:1]}")
        many = raw(sw, b'{"cmd":"version"}\n' * 50)
        check(len(many) == 50 and all(m["ok"] for m in many), "pipelined requests")
        # A client that never reads: the process stays responsive to everyone else.
        s = socket.socket(socket.AF_UNIX)
        s.connect(sw.path("run/admin.sock"))
        s.sendall(b'{"cmd":"config"}\n' * 2000)
        check(ctlj(sw, "version")["ok"], "still serving")
        s.close()
        # Many clients at once.
        results = []
        ts = [threading.Thread(target=lambda: results.append(ctlj(sw, "stats")["ok"]))
              for _ in range(20)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        check(results == [True] * 20, "20 concurrent clients")
        check(sw.stop() == 0, "clean stop")


def test_permissions_for_another_uid():
    with spill(mode="0666") as sw:
        os.chmod(sw.dir, 0o755)  # let nobody reach the socket file
        sw.start()
        os.chmod(sw.path("run"), 0o755)
        r = ctl(sw, "version", user="nobody")
        check(r.returncode == 1 and "permission denied: uid 65534" in r.stderr,
              f"refused by peer uid: {r.returncode} {r.stdout} {r.stderr}")
        check(ctl(sw, "version").returncode == 0, "own uid allowed")
        check(sw.stop() == 0, "clean stop")
    with Spillway(CONFIG.replace('socket_mode: "SOCKMODE"',
                                 'socket_mode: "0666", allow_uids: [65534]'),
                  extra_files={"scripts/main.lua": SCRIPT}) as sw:
        os.chmod(sw.dir, 0o755)
        sw.start()
        os.chmod(sw.path("run"), 0o755)
        r = ctl(sw, "version", user="nobody")
        check(r.returncode == 0 and r.stdout.startswith("spillway "),
              f"allow_uids lets nobody in: {r.returncode} {r.stdout} {r.stderr}")
        check(ctl(sw, "version").returncode == 0, "own uid still allowed")
        check(sw.stop() == 0, "clean stop")
    with Spillway(CONFIG.replace('socket_mode: "SOCKMODE"', 'allow_uids: [65534, alice]'),
                  extra_files={"scripts/main.lua": SCRIPT}) as sw:
        r = run([BIN, "check", "-c", sw.config_path])
        check(r.returncode == 1 and "admin.allow_uids" in r.stderr + r.stdout
              and '"alice" is not a numeric user id' in r.stderr + r.stdout,
              f"a user name in allow_uids is refused (it used to mean uid 0): {r.stderr}")
    with spill() as sw:  # default 0600: another user cannot even connect
        os.chmod(sw.dir, 0o755)
        sw.start()
        os.chmod(sw.path("run"), 0o755)
        mode = os.stat(sw.path("run/admin.sock")).st_mode & 0o777
        check(mode == 0o600, f"socket mode {oct(mode)}")
        r = ctl(sw, "version", user="nobody")
        check(r.returncode == 2 and "Permission denied" in r.stderr, f"no access: {r.stderr}")
        check(sw.stop() == 0, "clean stop")


def http_get(sw, path, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{sw.ports['admin_http']}{path}")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_http_metrics_health_ready():
    with spill(env={"TOKEN": "s3cret"}) as sw:
        sw.start()
        with loaded(sw, 2000):
            wait_for(lambda: count_lines(sw.path("out.ndjson")) > 1000, 30, "load flowing")
            check(http_get(sw, "/health") == (200, '{"status":"ok"}\n'), "health")
            check(http_get(sw, "/ready")[0] == 200, "ready")
            check(http_get(sw, "/metrics")[0] == 401, "token required")
            check(http_get(sw, "/metrics", "wrong")[0] == 401, "wrong token")
            check(http_get(sw, "/metrics", "s3cre")[0] == 401, "a prefix of the token")
            check(http_get(sw, "/metrics", "s3cretx")[0] == 401, "the token and more")
            code, text = http_get(sw, "/metrics", "s3cret")  # scraped during load
        check(code == 200, f"metrics: {code}")
        for name in ("spillway_input_received_total{input=\"app\"}",
                     "spillway_route_kept_total{route=\"main\"}",
                     "spillway_sink_delivered_total{sink=\"out\"}",
                     "spillway_partition_held{partition=\"0\"}",
                     "spillway_route_sample_rate{route=\"main\"} 1",
                     "spillway_sink_delivery_latency_seconds_bucket{sink=\"out\",le=\"+Inf\"}",
                     "spillway_memory_limit_bytes 16777216"):
            check(name in text, f"{name} in /metrics")
        if shutil.which("promtool"):
            r = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                               capture_output=True)
            check(r.returncode == 0, f"promtool: {r.stdout} {r.stderr}")
        else:
            print("promtool not installed: skipping the exposition format check")
        check(ctlj(sw, "config")["config"]["admin"]["http_token"] == "<redacted>",
              "the token is redacted")
        check("s3cret" not in sw.log(), "the token never reaches the log")
        check(sw.stop() == 0, "clean stop")


def test_ready_is_503_while_draining():
    dead_port = socket.socket()
    dead_port.bind(("127.0.0.1", 0))  # never listening: the sink retries until the deadline
    config = CONFIG.replace('socket_mode: "SOCKMODE"', 'socket_mode: "0600"').replace(
        "shutdown_timeout: 10s", "shutdown_timeout: 6s").replace(
        "sinks: [out]}", "sinks: [web]}").replace(
        "  - {name: out, type: file, path: ./out.ndjson}",
        f"  - {{name: web, type: http, url: \"http://127.0.0.1:{dead_port.getsockname()[1]}/\"}}")
    with Spillway(config, extra_files={"scripts/main.lua": SCRIPT}) as sw:
        sw.start()
        check(http_get(sw, "/ready") == (200, '{"ready":true}\n'), "ready while running")
        send(sw, 10)
        wait_for(lambda: ctlj(sw, "stats")["sinks"][0]["retries"] > 0, 30, "the sink retrying")
        sw.proc.send_signal(signal.SIGTERM)
        seen = []

        def draining():
            try:
                seen.append(http_get(sw, "/ready"))
            except OSError:
                pass
            return seen and seen[-1][0] == 503
        wait_for(draining, 5, "/ready answering 503 while draining")
        check(seen[-1] == (503, '{"ready":false}\n'), f"not ready: {seen[-1]}")
        check(http_get(sw, "/health")[0] == 200, "still alive while draining")
        check(sw.proc.wait(30) == 1, "10 events undelivered at the deadline: exit 1")
        dead_port.close()


def test_tap_reports_what_a_slow_client_skipped():
    with spill() as sw:
        sw.start()
        s = socket.socket(socket.AF_UNIX)
        s.connect(sw.path("run/admin.sock"))
        s.sendall(b'{"cmd":"tap","route":"main"}\n')
        f = s.makefile("rb")
        check(json.loads(f.readline())["ok"], "tap started")
        total = 5000
        lines = "".join(json.dumps({"seq": i, "pad": "p" * 1000}) + "\n" for i in range(total))
        socat_send(lines.encode(), f"TCP:127.0.0.1:{sw.ports['tcp']}")
        # The client reads nothing until every event is delivered: far more than the 1 MiB a
        # client may leave unread.
        wait_for(lambda: count_lines(sw.path("out.ndjson")) == total, 60, "delivery")
        s.settimeout(30)
        events = skipped = 0
        while events + skipped < total:
            m = json.loads(f.readline())
            if "event" in m:
                events += 1
            elif "skipped" in m:
                skipped = m["skipped"]
        check(skipped > 0 and events > 0 and events + skipped == total,
              f"delivered {events} + skipped {skipped} == sent {total}")
        s.close()
        check(sw.stop() == 0, "clean stop")


def test_tap_on_a_busy_route():
    with spill() as sw:
        sw.start()
        tap = subprocess.Popen([BIN, "ctl", "-s", sw.path("run/admin.sock"), "tap", "main",
                                "-n", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        before = subprocess.Popen([BIN, "ctl", "-s", sw.path("run/admin.sock"), "tap", "main",
                                   "-n", "5", "--before"], stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)  # let the taps register (events sent before are simply not tapped)
        send(sw, 20000)
        out, err = tap.communicate(timeout=60)
        evs = [json.loads(l) for l in out.splitlines()]
        check(len(evs) == 50 and all(e["routed"] is True for e in evs),
              f"50 events after the transform: {len(evs)} {err}")
        evs = [json.loads(l) for l in before.communicate(timeout=60)[0].splitlines()]
        check(len(evs) == 5 and all("routed" not in e for e in evs), "before the transform")
        wait_for(lambda: count_lines(sw.path("out.ndjson")) == 20000, 30, "nothing lost")
        check(sw.stop() == 0, "clean stop")


def test_top_shows_live_numbers():
    if not shutil.which("script"):
        print("script(1) not installed: skipping the terminal test")
        return
    with spill() as sw:
        sw.start()
        with loaded(sw, 1000):
            # A real terminal (script allocates a pty): the full-screen view, three refreshes.
            cmd = f"{BIN} ctl -s {sw.path('run/admin.sock')} top -n 3"
            r = subprocess.run(["script", "-q", "-c", cmd, "/dev/null"], capture_output=True,
                               text=True, timeout=60)
        screen = r.stdout
        check("\x1b[H\x1b[2J" in screen and "spillway top" in screen, "full-screen view")
        rates = [l.split() for l in screen.splitlines() if l.startswith("app ")]
        check(rates and any(float(x[1]) > 0 for x in rates), f"live input rate: {rates}")
        # Not a terminal: plain periodic lines, no escape codes.
        r = ctl(sw, "top", "-n", "2")
        check(r.returncode == 0 and "\x1b" not in r.stdout and "INPUT" in r.stdout, r.stdout)
        check(sw.stop() == 0, "clean stop")


def sink_rows(screen):
    """The SINK table's names, in screen order (the last full screen in the text)."""
    table = screen.split("SINK")[-1].splitlines()[1:]
    return [l.split()[0] for l in table if l.strip() and not l.startswith("spillway")]


def test_top_keys_sort_and_quit():
    if not shutil.which("tmux"):
        print("tmux not installed: skipping the keys test")
        return
    with spill() as sw:
        sw.start()
        with loaded(sw, 1000):
            server = f"spillway-test-{os.getpid()}"
            tmux = ["tmux", "-L", server, "-f", "/dev/null"]
            try:
                cmd = f"{BIN} ctl -s {sw.path('run/admin.sock')} top; echo TOP-EXITED $?; sleep 60"
                run(tmux + ["new-session", "-d", "-x", "160", "-y", "50", cmd])

                def screen():
                    return run(tmux + ["capture-pane", "-p"]).stdout

                # By name first: dl before out; once rates exist, `s` sorts by rate: out (busy) first.
                wait_for(lambda: "sort: by name" in screen() and sink_rows(screen()) == ["dl", "out"]
                         and any(l.startswith("out ") and float(l.split()[2]) > 0
                                 for l in screen().splitlines()), 30, "top by name with rates")
                run(tmux + ["send-keys", "s"])
                wait_for(lambda: "sort: by rate" in screen(), 10, "the sort key changes")
                check(sink_rows(screen()) == ["out", "dl"], f"sorted by rate:\n{screen()}")
                run(tmux + ["send-keys", "q"])
                wait_for(lambda: "TOP-EXITED 0" in screen(), 10, "q quits with status 0")
                # The terminal goes away under a top that ignores SIGHUP: its input is at its end
                # for good. No more keys, but it must neither spin nor stop refreshing.
                run(tmux + ["kill-server"])
                tmux[2] += "-hup"  # a new server: the old one may still be going away
                cmd = f"trap '' HUP; exec {BIN} ctl -s {sw.path('run/admin.sock')} top"
                run(tmux + ["new-session", "-d", "-x", "160", "-y", "50", cmd])
                wait_for(lambda: "spillway top" in screen(), 10, "top on the terminal")
                pid = int(run(tmux + ["list-panes", "-F", "#{pane_pid}"]).stdout.split()[0])
                run(tmux + ["kill-server"])
                try:
                    cpu = lambda: sum(int(x) for x in open(f"/proc/{pid}/stat").read()
                                      .rsplit(")", 1)[1].split()[11:13]) / os.sysconf("SC_CLK_TCK")
                    time.sleep(0.5)
                    c0, t0 = cpu(), time.monotonic()
                    time.sleep(3)
                    used = cpu() - c0
                    check(used < 0.3 * (time.monotonic() - t0),
                          f"top after its terminal closed: {used:.2f} CPU s in 3 s (a busy loop)")
                finally:
                    os.kill(pid, 9)
            finally:
                run(tmux + ["kill-server"])
        check(sw.stop() == 0, "clean stop")


BALANCE_CONFIG = """
data_dir: ./data
shutdown_timeout: 2s
admin: {socket: ./run/admin.sock, http: ""}
pipeline: {partitions: 2, memory_limit: 1MiB, when_full: drop_newest}
inputs: [{name: app, type: tcp, listen: "127.0.0.1:{tcp}"}]
router: {scripts: ./scripts}
routes:
  - {name: main, script: main.lua, sinks: [out, web], shadow: [candidate]}
  - {name: sampled, sample_rate: 0.5, sinks: [out]}
sinks:
  - {name: out, type: file, path: ./out.ndjson}
  - {name: web, type: http, url: "http://127.0.0.1:{dead_port}/", when_full: drop_newest}
  - {name: candidate, type: http, url: "http://127.0.0.1:{dead_port}/"}
  - {name: dl, type: file, path: ./dead.ndjson}
dead_letter: dl
"""
FAILING_SCRIPT = ("function process(ev)\n  if ev.fail then error('boom') end\n"
                  "  ev.routed = true\n  return true\nend\n")


def check_balance(st, quiescent=True):
    """Every identity of the stats document, recomputed here from its counters."""
    b = st["balance"]
    if not quiescent:
        check(b["state"] in ("balanced", "in_flight"), f"never unbalanced under load: {b}")
        return
    check(b["state"] == "balanced" and all(c["difference"] == 0 for c in b["checks"]),
          f"balanced at rest: {b}")
    for i in st["inputs"]:
        check(i["received"] == i["accepted"] + i["dropped"], f"input {i}")
    parts = st["partitions"]
    check(sum(i["accepted"] for i in st["inputs"])
          == sum(p["in"] for p in parts) + st["collector"]["staged"], f"inputs -> partitions")
    for p in parts:
        check(p["in"] == p["out"] + p["held"], f"partition {p}")
    errors = 0
    for r in st["routes"]:
        c = r["counters"]
        check(c["in"] == c["kept"] + c["filtered"] + c["errors"], f"route {r['name']}: {c}")
        errors += c["errors"]
    rt = st["router"]
    check(sum(p["dead_letters"] for p in parts) + errors
          == rt["dead_letter"] + rt["dead_letter_unsunk"], f"dead letters: {rt} {parts}")
    for s in st["sinks"]:
        check(s["dropped"] == s["dropped_queue_full"] + s["dropped_shadow"]
              + s["dropped_shutdown"], f"sink drops by reason: {s}")
        check(s["in"] == s["delivered"] + s["failed"] + s["dropped_shutdown"] + s["queued"],
              f"sink {s['name']}: {s}")
    names = {c["stage"] for c in b["checks"]}
    check({"input app", "inputs -> partitions", "partition 0", "partition 1", "route main",
           "route sampled", "dead letters", "sink out", "sink web", "sink candidate",
           "sink dl"} <= names, f"every stage checked: {names}")


def test_stats_balance_with_drops_dead_letters_and_a_failing_sink():
    dead_port = socket.socket()
    dead_port.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    config = BALANCE_CONFIG.replace("{dead_port}", str(dead_port.getsockname()[1]))
    with Spillway(config, extra_files={"scripts/main.lua": FAILING_SCRIPT}) as sw:
        sw.start()
        total, lines = 60_000, []
        for i in range(total):
            if i % 1000 == 7:
                lines.append("this is {not json\n")
            else:
                ev = {"seq": i, "trace_id": "%08x" % i, "message": "x" * 100}
                if i % 1000 == 11:
                    ev["fail"] = True
                lines.append(json.dumps(ev) + "\n")
        data = "".join(lines).encode()
        senders = [threading.Thread(target=socat_send,
                                    args=(data[k::1] if k == 0 else data,
                                          f"TCP:127.0.0.1:{sw.ports['tcp']}"))
                   for k in range(1)]
        [t.start() for t in senders]
        during = []
        while any(t.is_alive() for t in senders):
            during.append(ctlj(sw, "stats"))
        [t.join() for t in senders]
        for st in during:
            check_balance(st, quiescent=False)

        def settled():
            st = ctlj(sw, "stats")
            return st if st["inputs"][0]["received"] == total and \
                st["balance"]["state"] == "balanced" else None
        wait_for(settled, 60, "the counters to settle")
        st = ctlj(sw, "stats")
        check_balance(st)
        inp = st["inputs"][0]
        check(inp["dead_letter"] == 60 and inp["dropped"] > 0
              and inp["dropped"] == sum(p["dropped"] for p in st["partitions"]),
              f"60 malformed lines, drops by the full partitions: {inp}")
        sinks = {s["name"]: s for s in st["sinks"]}
        check(sinks["web"]["dropped_queue_full"] > 0 and sinks["web"]["delivered"] == 0,
              f"the unreachable sink drops: {sinks['web']}")
        check(sinks["candidate"]["dropped_shadow"] > 0, f"shadow drops: {sinks['candidate']}")
        main_route = [r for r in st["routes"] if r["name"] == "main"][0]["counters"]
        check(main_route["errors"] > 0, f"script errors dead-lettered: {main_route}")
        wait_for(lambda: count_lines(sw.path("dead.ndjson")) == sinks["dl"]["in"], 30,
                 "dead letters written")
        check(count_lines(sw.path("dead.ndjson")) == st["router"]["dead_letter"]
              - sinks["dl"]["dropped_queue_full"], "every dead letter the router sent is there")
        human = ctl(sw, "stats").stdout
        check("balance: balanced (" in human, f"human balance line: {human}")
        # A short shutdown: what the unreachable sinks still queue is given up on and reported.
        queued = sum(s["queued"] for s in st["sinks"])
        check(sw.stop() == 1, "undelivered events: exit 1")
        dead_port.close()
        rec = [r for r in sw.log_records() if r.get("undelivered") is not None]
        check(rec and rec[-1]["undelivered"] == queued,
              f"the stop reports the {queued} queued events as undelivered: {rec}")


if __name__ == "__main__":
    main([test_every_command, test_bad_requests_never_hurt, test_permissions_for_another_uid,
          test_http_metrics_health_ready, test_tap_on_a_busy_route, test_top_shows_live_numbers,
          test_top_keys_sort_and_quit, test_stats_balance_with_drops_dead_letters_and_a_failing_sink,
          test_ready_is_503_while_draining, test_tap_reports_what_a_slow_client_skipped])
