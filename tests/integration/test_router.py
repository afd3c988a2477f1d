"""Issue 5: Lua routes with hot reload, sampling, the runtime dial through the admin socket,
and routing state kept in SQLite across restarts."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

from spillway_test import (BIN, SRC, Spillway, check, count_lines, main, read_ndjson, run,
                           socat_send, wait_for)

CONFIG = """
data_dir: ./data
shutdown_timeout: 30s
admin: {socket: ./run/admin.sock, http: ""}
inputs:
  - {name: app, type: tcp, listen: "127.0.0.1:{tcp}"}
pipeline: {partitions: 2, memory_limit: 16MiB}
router: {scripts: ./scripts}
routes:
  - {name: main, script: main.lua, sample_rate: RATE, sinks: [events]}
sinks:
  - {name: events,     type: file, path: ./data/out/events.ndjson}
  - {name: deadletter, type: file, path: ./data/out/dead-letter.ndjson}
dead_letter: deadletter
"""

KEEP_ALL = "function process(ev)\n  ev.v = {v}\n  return true\nend\n"
SAMPLE = "function process(ev)\n  return spillway.sample(ev.trace_id)\nend\n"


def config(rate=1.0):
    return CONFIG.replace("RATE", str(rate))


def ctl(sw, *args):
    r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", *args])
    check(r.stdout.strip(), f"ctl {args}: no output: {r.stderr}")
    return json.loads(r.stdout)


def route(sw, name="main"):
    for r in ctl(sw, "routes")["routes"]:
        if r["name"] == name:
            return r
    raise AssertionError(f"no route {name}")


def events_ndjson(seqs, traces=None):
    out = []
    for s in seqs:
        t = traces(s) if traces else s % 64
        out.append(json.dumps({"seq": s, "trace_id": "%016x" % t, "msg": "m"}).encode())
    return b"\n".join(out) + b"\n"


def write_script(sw, text):
    path = sw.path("scripts/main.lua")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)  # as editors save: a new file renamed over the old


def test_reload_under_load_loses_and_duplicates_nothing():
    total = 200_000
    with Spillway(config(), extra_files={"scripts/main.lua": KEEP_ALL.format(v=1)}) as sw:
        sw.start()
        sock = socket.create_connection(("127.0.0.1", sw.ports["tcp"]))
        stop_at = {}

        def sender():
            # Paced: 200,000 events over about 6 seconds, so the saves land mid-stream.
            step = 2000
            for start in range(0, total, step):
                sock.sendall(events_ndjson(range(start, start + step)))
                time.sleep(0.06)
            stop_at["t"] = time.monotonic()
            sock.close()

        th = threading.Thread(target=sender)
        th.start()
        out = sw.path("data/out/events.ndjson")
        wait_for(lambda: count_lines(out) > 20_000, 60, "events before the first save")
        write_script(sw, KEEP_ALL.format(v=2))
        wait_for(lambda: route(sw)["reloads"] >= 1, 30, "first reload")
        wait_for(lambda: count_lines(out) > 110_000, 60, "events before the second save")
        write_script(sw, KEEP_ALL.format(v=3))
        wait_for(lambda: route(sw)["reloads"] >= 2, 30, "second reload")
        th.join(120)
        check("t" in stop_at, "sender finished")
        check(sw.stop() == 0, "clean stop")
        events = read_ndjson(out)
        seqs = [e["seq"] for e in events]
        check(len(seqs) == total and len(set(seqs)) == total,
              f"{len(seqs)} events, {len(set(seqs))} distinct; expected {total} exactly once")
        versions = {e["v"] for e in events}
        check(versions == {1, 2, 3}, f"all three versions ran: {versions}")
        # Within one trace (one partition, in order), the version never goes back.
        last = {}
        for e in sorted(events, key=lambda e: e["seq"]):
            t = e["trace_id"]
            check(e["v"] >= last.get(t, 0), f"version went back for trace {t}: {e}")
            last[t] = e["v"]
        check(all(v == 3 for v in last.values()), "the last events ran the last version")


def test_syntax_error_keeps_the_old_script():
    with Spillway(config(), extra_files={"scripts/main.lua": KEEP_ALL.format(v=1)}) as sw:
        sw.start()
        write_script(sw, "function process(ev)\n  ev.v = \nend\n")
        wait_for(lambda: "main.lua:3:" in route(sw)["script_error"], 30,
                 "the error to show in ctl routes")
        r = ctl(sw, "reload")
        check(r["ok"] is False and "main.lua:3:" in r["error"], f"reload reports it: {r}")
        socat_send(events_ndjson(range(100)), f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: count_lines(sw.path("data/out/events.ndjson")) == 100, 30, "delivery")
        check(all(e["v"] == 1 for e in read_ndjson(sw.path("data/out/events.ndjson"))),
              "old version still running")
        log = sw.log_records()
        check(any(l["msg"].startswith("script reload failed") and "main.lua:3:" in l["error"]
                  for l in log), "the error is logged with file:line")
        write_script(sw, KEEP_ALL.format(v=5))
        wait_for(lambda: route(sw)["script_error"] == "" and route(sw)["reloads"] == 1, 30,
                 "a fixed script loads")
        check(sw.stop() == 0, "clean stop")


def test_sampling_is_accurate_and_keeps_traces_whole():
    total = 200_000
    with Spillway(config(0.1), extra_files={"scripts/main.lua": SAMPLE}) as sw:
        sw.start()
        # 100,000 traces of two spans each.
        data = events_ndjson(range(total), traces=lambda s: (s // 2) * 7919 + 1)
        socat_send(data, f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: route(sw)["counters"]["in"] == total, 60, "every event routed")
        c = route(sw)["counters"]
        check(c["filtered"] == c["sampled_out"] == total - c["kept"] and c["errors"] == 0,
              f"what spillway.sample said no to counts as sampled out: {c}")
        check(sw.stop() == 0, "clean stop")
        events = read_ndjson(sw.path("data/out/events.ndjson"))
        n = len(events)
        check(abs(n - 20_000) <= 600, f"{n} kept, expected 20,000 +- 3%")
        per_trace = {}
        for e in events:
            per_trace[e["trace_id"]] = per_trace.get(e["trace_id"], 0) + 1
            check(e["sample_rate"] == 0.1, f"kept events carry sample_rate: {e}")
        check(all(c == 2 for c in per_trace.values()), "every trace kept or dropped whole")


def test_dial_reverts_and_survives_restart():
    with Spillway(config(0.0), extra_files={"scripts/main.lua": SAMPLE}) as sw:
        sw.start()
        out = sw.path("data/out/events.ndjson")
        addr = f"TCP:127.0.0.1:{sw.ports['tcp']}"
        r = ctl(sw, "sample", "main", "1.0", "--for", "2s")
        check(r["ok"] and r["rate"] == 1.0, f"dial accepted: {r}")
        rt = route(sw)
        check(rt["sample_rate"] == 1.0 and rt["sample_rate_origin"]["origin"] == "runtime"
              and "expires_at" in rt["sample_rate_origin"], f"routes shows the origin: {rt}")
        socat_send(events_ndjson(range(1000)), addr)
        wait_for(lambda: count_lines(out) == 1000, 30, "everything kept at 1.0")
        wait_for(lambda: route(sw)["sample_rate_origin"] == "config", 10, "the dial to revert")
        check(route(sw)["sample_rate"] == 0.0, "back to the configured 0.0")
        socat_send(events_ndjson(range(1000, 2000)), addr)
        time.sleep(0.5)  # nothing may arrive; give it the chance to (not a correctness wait)
        check(count_lines(out) == 1000, "nothing kept at 0.0")
        # A dial without expiry, and one that expires while spillway is down.
        check(ctl(sw, "sample", "main", "0.5")["ok"], "dial 0.5")
        audit = ctl(sw, "audit")["audit"]
        check(len(audit) == 2 and audit[0]["command"] == "sample"
              and audit[0]["uid"] == os.getuid() and audit[1]["new_value"] == "0.5",
              f"audit trail: {audit}")
        check(sw.stop() == 0, "clean stop")
        sw.start()
        rt = route(sw)
        check(rt["sample_rate"] == 0.5 and rt["sample_rate_origin"]["origin"] == "runtime",
              f"the dial survives a restart: {rt}")
        # Clearing overrides: back to the configured values, audited.
        r = ctl(sw, "sample", "main", "reset")
        check(r["ok"] and r["rate"] == 0.0 and r["reset"] is True, f"sample reset: {r}")
        rt = route(sw)
        check(rt["sample_rate"] == 0.0 and rt["sample_rate_origin"] == "config", f"reset: {rt}")
        check(ctl(sw, "route", "disable", "main")["ok"] and not route(sw)["enabled"], "disabled")
        r = ctl(sw, "route", "reset", "main")
        check(r["ok"] and r["enabled"] is True, f"route reset: {r}")
        rt = route(sw)
        check(rt["enabled"] and rt["enabled_origin"] == "config", f"enabled from config: {rt}")
        audit = ctl(sw, "audit")["audit"]
        check([a["command"] for a in audit[-3:]] == ["sample reset", "route disable",
                                                     "route reset"], f"audited: {audit}")
        check(ctl(sw, "sample", "main", "0.9", "--for", "1s")["ok"], "short dial")
        check(sw.stop() == 0, "clean stop")
        time.sleep(1.5)  # let the 1 s dial expire while spillway is down
        sw.start()
        rt = route(sw)
        check(rt["sample_rate"] == 0.0 and rt["sample_rate_origin"] == "config",
              f"an expired dial reverts at start: {rt}")
        check(sw.stop() == 0, "clean stop")


def test_script_errors_dead_letter_the_event():
    script = ("function process(ev)\n  if ev.seq % 2 == 0 then error('boom') end\n"
              "  if ev.seq == 7 then while true do end end\n  return true\nend\n")
    with Spillway(config(), extra_files={"scripts/main.lua": script}) as sw:
        sw.start()
        socat_send(events_ndjson(range(10)), f"TCP:127.0.0.1:{sw.ports['tcp']}")
        check(sw.stop() == 0, "clean stop")
        kept = sorted(e["seq"] for e in read_ndjson(sw.path("data/out/events.ndjson")))
        check(kept == [1, 3, 5, 9], f"odd events but 7 kept: {kept}")
        dead = read_ndjson(sw.path("data/out/dead-letter.ndjson"))
        check(len(dead) == 6, f"six dead letters: {dead}")
        errs = sorted(d["error"] for d in dead)
        check(sum("boom" in e for e in errs) == 5 and sum("instruction limit" in e for e in errs)
              == 1, f"errors: {errs}")
        check(all(d["source"] == "route:main" and "seq" in d["event"] for d in dead),
              "dead letters carry the route and the event")


# The route's script lives outside router.scripts, so inotify (which watches only that
# directory) never sees it change: only SIGHUP and `spillway ctl reload` reload it.
UNWATCHED = """
data_dir: ./data
shutdown_timeout: 30s
admin: {socket: ./run/admin.sock, http: ""}
inputs:
  - {name: app, type: tcp, listen: "127.0.0.1:{tcp}"}
pipeline: {partitions: 2, memory_limit: 16MiB}
router: {scripts: ./scripts, lua_memory: LUA_MEMORY}
routes:
  - {name: main, script: "{dir}/live/main.lua", sinks: [events]}
sinks:
  - {name: events,     type: file, path: ./data/out/events.ndjson}
  - {name: deadletter, type: file, path: ./data/out/dead-letter.ndjson}
dead_letter: deadletter
"""


def unwatched(script, lua_memory="64MiB"):
    return Spillway(UNWATCHED.replace("LUA_MEMORY", lua_memory),
                    extra_files={"live/main.lua": script, "scripts/README": "not watched\n"})


def write_live(sw, text):
    with open(sw.path("live/main.lua"), "w") as f:
        f.write(text)


def stats(sw):
    return ctl(sw, "stats")


def send_and_read(sw, seqs):
    """Sends events with these seqs and returns them as delivered (waits for all)."""
    out = sw.path("data/out/events.ndjson")
    before = count_lines(out)
    socat_send(events_ndjson(seqs), f"TCP:127.0.0.1:{sw.ports['tcp']}")
    wait_for(lambda: count_lines(out) >= before + len(seqs), 30, f"{len(seqs)} events delivered")
    return read_ndjson(out)[before:]


def test_sighup_and_admin_reload():
    with unwatched(KEEP_ALL.format(v=1)) as sw:
        sw.start()
        check({e["v"] for e in send_and_read(sw, range(50))} == {1}, "version 1 runs")
        write_live(sw, KEEP_ALL.format(v=2))
        time.sleep(0.5)  # give inotify the chance to see it (it must not): not a correctness wait
        check(route(sw)["reloads"] == 0, "a change outside router.scripts is not watched")
        check({e["v"] for e in send_and_read(sw, range(50, 100))} == {1}, "still version 1")

        sw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: route(sw)["reloads"] == 1, 30, "SIGHUP to reload the script")
        check(any(l["msg"] == "scripts checked" and l.get("trigger") == "signal"
                  and l.get("reloaded") == 1 for l in sw.log_records()), "SIGHUP logged")
        check({e["v"] for e in send_and_read(sw, range(100, 200))} == {2},
              "after SIGHUP every worker runs version 2")

        write_live(sw, KEEP_ALL.format(v=3))
        r = ctl(sw, "reload")
        check(r["ok"] is True and r["reloaded"] == 1, f"ctl reload reports one script: {r}")
        rt = route(sw)
        check(rt["reloads"] == 2 and rt["script_error"] == "", f"the route shows it: {rt}")
        router = stats(sw)["router"]
        check(router["reloads"] == 2 and router["reload_errors"] == 0, f"counters: {router}")
        # The reply comes after every worker swapped it in: no event after it runs version 2.
        check({e["v"] for e in send_and_read(sw, range(200, 300))} == {3},
              "after ctl reload every worker runs version 3")
        r = ctl(sw, "reload")
        check(r["ok"] is True and r["reloaded"] == 0, f"nothing changed, nothing reloaded: {r}")
        audit = [a for a in ctl(sw, "audit")["audit"] if a["command"] == "reload"]
        check([a["new_value"] for a in audit] == ["1 reloaded", "0 reloaded"],
              f"admin reloads audited: {audit}")
        check(sw.stop() == 0, "clean stop")


# Version 1 can hold memory in one worker's Lua state; version 2 needs about 1.6 MB at load.
# A fresh state (where the router checks a script first) and the worker that holds nothing
# load version 2; the worker holding about 2.8 MB of its 4 MiB cannot.
HOLDER = """local hold = {}
function process(ev)
  if ev.grow then
    for i = 1, ev.grow do hold[#hold + 1] = string.rep("x", 1000) .. i end
  end
  ev.v = 1
  return true
end
"""
PADDED = """local pad = {}
for i = 1, 1500 do pad[i] = string.rep("y", 1000) .. i end
function process(ev)
  ev.v = 2
  ev.pad = #pad
  return true
end
"""


def test_reload_is_committed_only_when_every_worker_loads_it():
    with unwatched(HOLDER, lua_memory="4MiB") as sw:
        sw.start()
        out = sw.path("data/out/events.ndjson")
        grow = json.dumps({"grow": 2500, "trace_id": "grow", "seq": -1}).encode() + b"\n"
        socat_send(grow, f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: count_lines(out) == 1, 30, "the event that fills one worker's state")
        check(route(sw)["counters"]["errors"] == 0, "filling the state fits in its limit")

        write_live(sw, PADDED)
        r = ctl(sw, "reload")
        check(r["ok"] is False and "(worker " in r["error"] and "memory" in r["error"],
              f"the reload fails, naming the worker that could not load it: {r}")
        rt = route(sw)
        check(rt["reloads"] == 0 and "(worker " in rt["script_error"],
              f"ctl routes shows the worker's error, no reload counted: {rt}")
        router = stats(sw)["router"]
        check(router["reloads"] == 0 and router["reload_errors"] == 1, f"counters: {router}")
        check(any(l["msg"].startswith("worker could not load a reloaded script")
                  for l in sw.log_records()), "the worker's failure is logged")
        # Neither worker swapped it in: every event (both partitions) still runs version 1.
        check({e["v"] for e in send_and_read(sw, range(200))} == {1},
              "no worker runs the version one worker could not load")

        write_live(sw, KEEP_ALL.format(v=3))
        r = ctl(sw, "reload")
        check(r["ok"] is True and r["reloaded"] == 1, f"a version every worker loads: {r}")
        rt = route(sw)
        check(rt["reloads"] == 1 and rt["script_error"] == "", f"the error is cleared: {rt}")
        check({e["v"] for e in send_and_read(sw, range(200, 400))} == {3}, "version 3 runs")
        check(sw.stop() == 0, "clean stop")


BLOCKED = """
data_dir: ./data
shutdown_timeout: 30s
admin: {socket: ./run/admin.sock, http: ""}
inputs:
  - {name: app, type: tcp, listen: "127.0.0.1:{tcp}"}
pipeline: {partitions: 2, memory_limit: 1MiB}
router: {scripts: ./scripts}
routes:
  - {name: main, script: "{dir}/live/main.lua", sinks: [peer]}
sinks:
  - {name: peer, type: unix, path: ./peer.sock}
"""


def test_reload_waits_for_a_blocked_worker():
    """A worker blocked on a full sink cannot load a new version: ctl reload says so after its
    2 s wait instead of claiming success, and the version is committed (and runs everywhere)
    once that worker has loaded it."""
    with Spillway(BLOCKED, extra_files={"live/main.lua": KEEP_ALL.format(v=1),
                                        "scripts/README": "not watched\n"}) as sw:
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(sw.path("peer.sock"))
        srv.listen(1)
        drain, received = threading.Event(), bytearray()

        def peer():  # accepts, reads nothing until told to, then everything
            conn, _ = srv.accept()
            drain.wait(120)
            while True:
                b = conn.recv(1 << 16)
                if not b:
                    break
                received.extend(b)

        threading.Thread(target=peer, daemon=True).start()
        sw.start()
        # 20,000 events of one trace: one partition, more than the socket and the sink's queue
        # hold, so that partition's worker blocks on the full queue; the other stays idle.
        total = 20_000
        data = events_ndjson(range(total), traces=lambda s: 7)
        sock = socket.create_connection(("127.0.0.1", sw.ports["tcp"]))
        threading.Thread(target=lambda: (sock.sendall(data), sock.close()), daemon=True).start()

        def blocked():
            p = [x for x in ctl(sw, "stats")["partitions"] if x["held"]]
            time.sleep(0.3)
            q = [x for x in ctl(sw, "stats")["partitions"] if x["held"]]
            return len(p) == 1 and p == q
        wait_for(blocked, 30, "one worker blocked on the full sink")

        write_live(sw, KEEP_ALL.format(v=2))
        r = ctl(sw, "reload")
        check(r["ok"] is False and "1 of 2 workers have not loaded" in r["error"],
              f"the reply says a worker has not loaded it: {r}")
        rt = route(sw)
        check(rt["reloads"] == 0 and rt["script_error"] == "",
              f"not committed, not an error either: {rt}")
        check(stats(sw)["router"]["reload_errors"] == 0, "no reload error counted")

        drain.set()
        wait_for(lambda: route(sw)["reloads"] == 1, 60, "the commit once the worker loads it")
        check(any(l["msg"] == "script reloaded" for l in sw.log_records()), "the commit is logged")
        more = events_ndjson(range(total, total + 200))
        socat_send(more, f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: route(sw)["counters"]["in"] == total + 200, 60, "every event routed")
        check(sw.stop() == 0, "clean stop")
        events = [json.loads(l) for l in bytes(received).decode().splitlines()]
        check(len(events) == total + 200, f"{len(events)} delivered, {total + 200} sent")
        # The blocked worker's backlog runs version 1 up to the commit, then version 2 (it
        # swaps between two chunks); events sent after the commit all run version 2.
        vs = [e["v"] for e in sorted(events, key=lambda e: e["seq"])]
        check(vs == sorted(vs) and vs[0] == 1 and vs[total:] == [2] * 200,
              f"version 1 until the commit, version 2 after it: {vs.count(1)} ran version 1")


def doc_example():
    """docs/routes.md's worked example: (config, events sent, {file: events shown},
    [(route, in, kept, filtered, errors)] from the first `ctl routes` shown)."""
    with open(os.path.join(SRC, "docs", "routes.md")) as f:
        doc = f.read()
    cfg = doc[doc.index("# routes-demo.yaml"):]
    cfg = cfg[:cfg.index("```")]
    sent = doc[doc.index("spillway run -c routes-demo.yaml &\nsocat"):]
    sent = sent[sent.index("<<'EOF'\n") + 8:]
    sent = sent[:sent.index("\nEOF\n") + 1]
    shown = doc[doc.index("== data/out/audit.ndjson"):]
    shown = shown[:shown.index("```")]
    files, current = {}, None
    for line in shown.splitlines():
        if line.startswith("== data/out/"):
            current = line[len("== data/out/"):]
            files[current] = []
        elif line.strip():
            files[current].append(json.loads(line))
    listing = doc[doc.index("$ spillway ctl routes\n"):]
    listing = listing[:listing.index("```")]
    counters = [(m[0], int(m[1]), int(m[2]), int(m[3]), int(m[4])) for m in re.findall(
        r"^(\S+) .*\n.*\n  in (\d+)  kept (\d+)  filtered (\d+)  errors (\d+)", listing, re.M)]
    return cfg, sent.encode(), files, counters


def without_times(events):
    return [{k: v for k, v in e.items() if k not in ("timestamp", "received_at")} for e in events]


def test_route_semantics_match_the_doc_example():
    """stop, route order, enabled: false, unrouted and fallback, through docs/routes.md's
    worked example (so the doc's output is checked too), plus a disabled route ahead of the
    others that would take every event if it ran."""
    cfg, sent, files, counters = doc_example()
    check(sorted(files) == ["audit.ndjson", "candidate.ndjson", "dead-letter.ndjson",
                            "events.ndjson", "traces.ndjson", "unrouted.ndjson"]
          and [c[0] for c in counters] == ["audit", "checkout", "traces"],
          f"the doc example parsed: {sorted(files)} {counters}")
    cfg = (cfg.replace("127.0.0.1:5170", "127.0.0.1:{tcp}")
           .replace("./scripts/examples", os.path.join(SRC, "scripts", "examples"))
           .replace("routes:\n", "routes:\n  - {name: everything, sinks: [events], stop: true,"
                    " enabled: false}\n", 1))
    with Spillway(cfg) as sw:
        sw.start()
        socat_send(sent, f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: route(sw, "audit")["counters"]["in"] == 5, 30, "the five events routed")
        st = ctl(sw, "stats")
        check(st["router"]["unrouted"] == 1, f"one event no route kept: {st['router']}")
        rts = {r["name"]: r for r in st["routes"]}
        off = rts["everything"]
        check(not off["enabled"] and off["counters"]["in"] == 0,
              f"the disabled route saw nothing: {off}")
        for name, n_in, kept, filtered, errors in counters:
            c = rts[name]["counters"]
            check((c["in"], c["kept"], c["filtered"], c["errors"]) == (n_in, kept, filtered,
                                                                      errors),
                  f"route {name} counts as the doc shows: {c}")
        check(sw.stop() == 0, "clean stop")
        for name, want in files.items():
            got = read_ndjson(sw.path("data/out", name)) if os.path.exists(
                sw.path("data/out", name)) else []
            check(without_times(got) == without_times(want),
                  f"{name} holds exactly what docs/routes.md shows:\n{got}\n{want}")


ORDER_CONFIG = """
data_dir: ./data
admin: {socket: ./run/admin.sock, http: ""}
inputs:
  - {name: app, type: tcp, listen: "127.0.0.1:{tcp}"}
pipeline: {partitions: 1, memory_limit: 1MiB}
router: {scripts: ./scripts}
routes:
  - {name: some, script: some.lua, sinks: [events], shadow: [copy]}
  - {name: all, sinks: [events]}
sinks:
  - {name: events, type: file, path: ./data/out/events.ndjson}
  - {name: copy,   type: file, path: ./data/out/copy.ndjson}
"""
CHANGE_SOME = "function process(ev)\n  if ev.n % 3 == 0 then ev.changed = true end\n  return true\nend\n"


def test_unchanged_and_changed_events_keep_their_order():
    """A worker hands the sinks an event no route changed as the ring holds it (no copy) and
    writes a changed one anew: mixed in one sink, the two kinds keep the order the routes
    produced them in. Each event goes to `events` twice, as route `some` left it (changed when
    n is a multiple of 3) and then as route `all` got it (unchanged), and to `some`'s shadow
    once; enough of them that a chunk mixes more unchanged runs than are staged without a
    copy, and large enough that a chunk's records for `events` outgrow its queue (a quarter of
    the 1 MiB memory limit), so the worker waits for room in the middle of a stage."""
    n = 3000

    def pad(i):  # every tenth event 30 kB: a read of the socket is a few dozen events
        return 30000 if i % 10 == 5 else i % 300

    with Spillway(ORDER_CONFIG, extra_files={"scripts/some.lua": CHANGE_SOME}) as sw:
        sw.start()
        socat_send("".join(json.dumps({"n": i, "pad": "p" * pad(i)}) + "\n"
                           for i in range(n)).encode(), f"TCP:127.0.0.1:{sw.ports['tcp']}")
        def sinks():
            return {s["name"]: s for s in ctl(sw, "sinks")["sinks"]}

        wait_for(lambda: count_lines(sw.path("data/out/events.ndjson")) == 2 * n
                 and sinks()["copy"]["delivered"] + sinks()["copy"]["dropped"] == n, 60,
                 "every event")
        st = sinks()
        check(sw.stop() == 0, "clean stop")
        got = read_ndjson(sw.path("data/out/events.ndjson"))
        shadow = read_ndjson(sw.path("data/out/copy.ndjson"))
        want = []
        for i in range(n):
            want.append((i, i % 3 == 0))
            want.append((i, False))
        check([(e["n"], e.get("changed", False)) for e in got] == want,
              "events: each event as route some left it, then unchanged, in order")
        check(all(e["pad"] == "p" * pad(e["n"]) for e in got), "the events whole")
        check(st["events"]["dropped"] == 0 and st["copy"]["dropped"] + len(shadow) == n,
              f"nothing dropped but the shadow's, counted: {st}")
        check([(e["n"], e.get("changed", False)) for e in shadow] ==
              sorted((e["n"], e["n"] % 3 == 0) for e in shadow),
              "the shadow: route some's events, in order (a full shadow drops, never waits)")


def test_dial_takes_effect_for_every_event_after_the_reply():
    """The dial is an atomic the workers read for every event, so rather than "within 100 ms"
    it holds exactly: no event that reaches spillway after the dial's reply is sampled at an
    older rate, on any worker. Events stream without pause (64 traces over both partitions)
    while the rate is dialed through distinct values; a kept event's sample_rate says which
    rate sampled it. A batch begun after dial k's reply may carry rate k or a later one (it can
    still be in flight at the next dial), never an earlier one. This needs no timing bound, so
    a loaded machine cannot make it flaky or hide a slow worker."""
    rates = [0.5, 0.25, 0.375, 0.125, 0.625]  # dialed in this order; the config has 0.75
    with Spillway(config(0.75), extra_files={"scripts/main.lua": SAMPLE}) as sw:
        sw.start()
        sock = socket.create_connection(("127.0.0.1", sw.ports["tcp"]))
        phase = {"k": -1, "seq": 0}  # the last dial whose reply has come (-1: configured)
        batches = []  # (first seq, last seq, phase when begun)
        done = threading.Event()

        def sender():
            seq, step = 0, 200
            while not done.is_set():
                k = phase["k"]
                sock.sendall(events_ndjson(range(seq, seq + step)))
                batches.append((seq, seq + step - 1, k))
                seq += step
                phase["seq"] = seq
                time.sleep(0.005)
            sock.close()

        def routed():
            return sum(route(sw)["counters"][k] for k in ("kept", "filtered"))

        def settle():
            """Until 2,000 events sent after this point are routed: each rate samples some
            events, however far the pipeline lags behind the sender."""
            mark = phase["seq"] + 2000
            wait_for(lambda: routed() >= mark, 60, f"events past {mark} routed")

        th = threading.Thread(target=sender)
        th.start()
        for k, rate in enumerate(rates):
            settle()
            r = ctl(sw, "sample", "main", str(rate))
            check(r["ok"], f"dial {rate}: {r}")
            phase["k"] = k
        settle()
        done.set()
        th.join(30)
        sent = batches[-1][1] + 1
        wait_for(lambda: routed() == sent, 60, f"all {sent} events routed")
        check(sw.stop() == 0, "clean stop")
        order = {0.75: -1, **{rate: k for k, rate in enumerate(rates)}}
        begun = {}
        for first, last, k in batches:
            for s in range(first, last + 1):
                begun[s] = k
        seen, wrong = set(), []
        for e in read_ndjson(sw.path("data/out/events.ndjson")):
            k = order[e["sample_rate"]]
            seen.add((begun[e["seq"]], k))
            if k < begun[e["seq"]]:
                wrong.append(e)
        check(not wrong, f"{len(wrong)} events sampled at a rate older than the last reply "
                         f"before they were sent: {wrong[:3]}")
        check(all((k, k) in seen for k in range(-1, len(rates))),
              f"every rate sampled events sent after its reply: {sorted(seen)}")


def test_route_disable_survives_a_restart():
    with Spillway(config(), extra_files={"scripts/main.lua": KEEP_ALL.format(v=1)}) as sw:
        sw.start()
        addr = f"TCP:127.0.0.1:{sw.ports['tcp']}"
        out = sw.path("data/out/events.ndjson")
        r = ctl(sw, "route", "disable", "main")
        check(r["ok"] and r["enabled"] is False, f"disabled: {r}")
        check(sw.stop() == 0, "clean stop")
        sw.start()
        rt = route(sw)
        check(rt["enabled"] is False and rt["enabled_origin"]["origin"] == "runtime"
              and rt["enabled_origin"]["uid"] == os.getuid()
              and "expires_at" not in rt["enabled_origin"],
              f"still disabled after a restart, from a runtime change: {rt}")
        socat_send(events_ndjson(range(100)), addr)
        wait_for(lambda: ctl(sw, "stats")["router"]["unrouted"] == 100, 30,
                 "the events to go unrouted")
        check(route(sw)["counters"]["in"] == 0 and count_lines(out) == 0,
              "the disabled route saw nothing")
        r = ctl(sw, "route", "reset", "main")
        check(r["ok"] and r["enabled"] is True and r["reset"] is True, f"route reset: {r}")
        rt = route(sw)
        check(rt["enabled"] is True and rt["enabled_origin"] == "config", f"config again: {rt}")
        socat_send(events_ndjson(range(100, 200)), addr)
        wait_for(lambda: count_lines(out) == 100, 30, "the route to run again")
        check(sw.stop() == 0, "clean stop")
        sw.start()
        rt = route(sw)
        check(rt["enabled"] is True and rt["enabled_origin"] == "config",
              f"the reset is kept across a restart too: {rt}")
        check(sw.stop() == 0, "clean stop")


METRICS_CONFIG = """
data_dir: ./data
shutdown_timeout: 30s
admin: {socket: ./run/admin.sock, http: ""}
inputs:
  - {name: app, type: tcp, listen: "127.0.0.1:{tcp}"}
pipeline: {partitions: 2, memory_limit: 16MiB}
router: {scripts: ./scripts}
routes:
  - {name: main, script: main.lua, sinks: [events],
     metrics: {interval: 1h, max_series: 20, route: metrics, buckets: [1, 10]}}
  - {name: metrics, enabled: false, sinks: [metrics], shadow: [copy]}
sinks:
  - {name: events,     type: file, path: ./data/out/events.ndjson}
  - {name: metrics,    type: file, path: ./data/out/metrics.ndjson}
  - {name: copy,       type: file, path: ./data/out/copy.ndjson}
  - {name: deadletter, type: file, path: ./data/out/dead-letter.ndjson}
dead_letter: deadletter
"""

METRICS_SCRIPT = """
function process(ev)
  if ev.bad then spillway.metric.count("x", {a = {}}) end          -- a table: fails the event
  spillway.metric.count("requests", {kind = ev.kind_of})
  spillway.metric.count("bytes", {kind = ev.kind_of}, ev.size)
  spillway.metric.observe("size", nil, ev.size)
  spillway.metric.gauge("last_seq", {worker_local = true}, ev.seq)
  ev.kept_user = spillway.metric.count("per_user", {user = ev.user})  -- high cardinality
  return false
end
"""


def test_logs_to_metrics():
    """spillway.metric.* per worker (two partitions), without a lock per event: the aggregates of
    both workers add up to what was sent, max_series caps the series a worker holds (overflow
    counted), the metrics route's sinks and shadows get the events, a failing call fails only its
    event, and a stop flushes what the hour-long interval had not."""
    with Spillway(METRICS_CONFIG, extra_files={"scripts/main.lua": METRICS_SCRIPT}) as sw:
        sw.start()
        n = 2000
        lines = [json.dumps({"seq": i, "trace_id": "%016x" % i, "kind_of": "ab"[i % 2],
                             "size": i % 20, "user": f"u{i % 100}"}) for i in range(n)]
        lines.append(json.dumps({"seq": n, "bad": True}))
        socat_send(("\n".join(lines) + "\n").encode(), f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: route(sw)["counters"]["in"] == n + 1, 30, "every event routed")
        check(count_lines(sw.path("data/out/metrics.ndjson")) == 0, "nothing before the interval")
        c = route(sw)["counters"]
        check(c["errors"] == 1 and c["filtered"] == n, f"route counters: {c}")
        check(sw.stop() == 0, "clean stop")
        ms = read_ndjson(sw.path("data/out/metrics.ndjson"))
        # The same events; two workers flush into the two sinks, each sink in its own order.
        def canon(evs):
            return sorted(json.dumps(e, sort_keys=True) for e in evs)
        check(canon(ms) == canon(read_ndjson(sw.path("data/out/copy.ndjson"))),
              "the shadow has the same")
        by = {}
        for m in ms:
            by.setdefault(m["name"], []).append(m)
        req = {}
        for m in by["requests"]:
            req[m["labels"]["kind"]] = req.get(m["labels"]["kind"], 0) + m["value"]
        check(req == {"a": n / 2, "b": n / 2}, f"requests: {req}")
        check(sum(m["value"] for m in by["bytes"]) == sum(i % 20 for i in range(n)), "bytes")
        size = {"count": 0, "le": [0, 0, 0]}
        for m in by["size"]:
            size["count"] += m["count"]
            size["le"] = [a + b for a, b in zip(size["le"], m["bucket_counts"])]
        check(size == {"count": n, "le": [sum(1 for i in range(n) if i % 20 <= 1),
                                          sum(1 for i in range(n) if 1 < i % 20 <= 10),
                                          sum(1 for i in range(n) if i % 20 > 10)]},
              f"size histogram: {size}")
        gauges = by["last_seq"]
        check(1 <= len(gauges) <= 2 and max(g["value"] for g in gauges) == n - 1
              and gauges[0]["labels"] == {"worker_local": "true"}, f"gauges: {gauges}")
        # 20 series per worker at most: requests(2) + bytes(2) + size + last_seq leave 14 for
        # per_user on each; the other users' additions are refused and counted.
        users = by.get("per_user", [])
        workers = len({m["labels"]["user"] for m in users})
        check(len(users) <= 28 and workers <= 28, f"per_user series: {len(users)}")
        refused = n - sum(m["value"] for m in users)
        dead = read_ndjson(sw.path("data/out/dead-letter.ndjson"))
        check(len(dead) == 1 and "label a: a string, a number or a boolean" in dead[0]["error"],
              f"dead letters: {dead}")
    # The counters before the stop showed what was refused so far; after it, none are lost: the
    # refused additions are exactly those not in any flushed per_user series.
    check(refused > 0, "max_series refused additions")


DECLARED_CONFIG = """
data_dir: ./data
admin: {socket: ./run/admin.sock, http: ""}
inputs:
  - {name: app, type: tcp, listen: "127.0.0.1:{tcp}"}
pipeline: {partitions: 2, memory_limit: 16MiB}
routes:
  - name: main
    sample_rate: 0
    sinks: [events]
    metrics:
      interval: 1h
      buckets: [0.01, 0.04]
      declare:
        - {type: count, name: requests, labels: {kind: kind_of, status: http.status}}
        - {type: count, name: ms_total, field: ms}
        - {type: observe, name: latency_seconds, field: ms, scale: 0.001, labels: {kind: kind_of}}
        - {type: gauge, name: seq, field: seq}
sinks:
  - {name: events, type: file, path: ./data/out/events.ndjson}
"""


def test_declared_metrics():
    """metrics.declare, without a script: each event the route takes (all of them, though the
    route samples every one away) adds to the declared series on its worker, labels from nested
    fields and escaped strings, values from numbers and from strings that are numbers; a value
    that is no number is counted (metric_invalid), an event without the field adds nothing; a
    stop flushes the hour-long interval. A declaration without its field is refused by check."""
    with Spillway(DECLARED_CONFIG) as sw:
        sw.start()
        n = 1000
        evs = []
        for i in range(n):
            e = {"seq": i, "trace_id": "%016x" % i, "kind_of": ["a", "b", 'q"x'][i % 3],
                 "http": {"status": 200 if i % 4 else 503}}
            if i % 10 != 9:  # every tenth has no ms
                e["ms"] = i % 50 if i % 5 else f"{i % 50}.5"
            evs.append(e)
        bad = [{"seq": n + k, "kind_of": "a", "ms": "slow", "http": {"status": 200}}
               for k in range(3)]
        evs += bad
        socat_send(("\n".join(json.dumps(e) for e in evs) + "\n").encode(),
                   f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: route(sw)["counters"]["in"] == len(evs), 30, "every event routed")
        c = route(sw)["counters"]
        check(c["metric_invalid"] == 3 and c["kept"] == 0, f"route counters: {c}")
        check(sw.stop() == 0, "clean stop")
        ms = read_ndjson(sw.path("data/out/events.ndjson"))
        check(all(m["kind"] == "metric" and m["source"] == "route:main" for m in ms),
              f"only metric events: {ms[:3]}")
        got = {}
        for m in ms:
            key = (m["name"], json.dumps(m["labels"], sort_keys=True))
            if m["metric_type"] == "histogram":
                old = got.get(key, [0, 0.0, [0, 0, 0]])
                got[key] = [old[0] + m["count"], old[1] + m["sum"],
                            [a + b for a, b in zip(old[2], m["bucket_counts"])]]
            elif m["metric_type"] == "gauge":
                got[key] = max(got.get(key, -1), m["value"])
            else:
                got[key] = got.get(key, 0) + m["value"]
        want = {}

        def add(name, labels, v):
            key = (name, json.dumps(labels, sort_keys=True))
            want[key] = want.get(key, 0) + v
        hist = {}
        for e in evs:
            add("requests", {"kind": e["kind_of"], "status": str(e["http"]["status"])}, 1)
            if "ms" in e:
                v = e["ms"] if isinstance(e["ms"], int) else float(e["ms"]) \
                    if e["ms"] != "slow" else None
                add("ms_total", {}, 1 if v is None else v)
                if v is not None:
                    h = hist.setdefault(e["kind_of"], [0, 0.0, [0, 0, 0]])
                    s = v / 1000
                    h[0] += 1
                    h[1] += s
                    h[2][0 if s <= 0.01 else 1 if s <= 0.04 else 2] += 1
        for kind, h in hist.items():
            want[("latency_seconds", json.dumps({"kind": kind}))] = h
        want[("seq", "{}")] = n + 2
        for key in want:
            if key[0] == "latency_seconds":
                g, w = got.get(key), want[key]
                check(g and g[0] == w[0] and abs(g[1] - w[1]) < 1e-6 and g[2] == w[2],
                      f"{key}: {g} != {w}")
            else:
                check(abs(got.get(key, -1) - want[key]) < 1e-6, f"{key}: {got.get(key)} != "
                      f"{want[key]}")
        check(set(got) == set(want), f"series: {sorted(set(got) ^ set(want))}")
        p = os.path.join(sw.dir, "bad.yaml")
        with open(p, "w") as f:
            f.write(DECLARED_CONFIG.replace("{tcp}", "9").replace(
                "field: ms, scale", "scale"))
        r = run([BIN, "check", "-c", p])
        check(r.returncode == 1 and "metrics.declare[2] (observe latency_seconds).field: "
              "required" in r.stderr, f"check refuses it: {r.stderr}")


if __name__ == "__main__":
    main([test_logs_to_metrics,
          test_declared_metrics,
          test_script_errors_dead_letter_the_event,
          test_syntax_error_keeps_the_old_script,
          test_sampling_is_accurate_and_keeps_traces_whole,
          test_dial_reverts_and_survives_restart,
          test_reload_under_load_loses_and_duplicates_nothing,
          test_sighup_and_admin_reload,
          test_reload_is_committed_only_when_every_worker_loads_it,
          test_route_semantics_match_the_doc_example,
          test_unchanged_and_changed_events_keep_their_order,
          test_dial_takes_effect_for_every_event_after_the_reply,
          test_route_disable_survives_a_restart,
          test_reload_waits_for_a_blocked_worker])
