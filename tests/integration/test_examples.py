"""The shipped examples work: every config in conf/examples/ (and conf/spillway.yaml) passes
`spillway check` from the repository root, every script in scripts/examples/ compiles through
a config that uses it, and a few example scripts do what docs/routes.md says when events go
through a running spillway."""
import glob
import json
import os
import re

from spillway_test import (BIN, SRC, Spillway, check, check_configs, count_lines, main, read_ndjson,
                           run, socat_send, wait_for)

EXAMPLES = os.path.join(SRC, "scripts", "examples")

# One route running one example script; everything it keeps goes to out.ndjson.
CONFIG = """
data_dir: ./data
shutdown_timeout: 30s
admin: {socket: ./run/admin.sock, http: ""}
inputs:
  - {name: app, type: tcp, listen: "127.0.0.1:{tcp}"}
pipeline: {partitions: 1}
router: {scripts: "EXAMPLES"}
routes:
  - {name: example, script: SCRIPT, sample_rate: RATE, sinks: [out]}
sinks:
  - {name: out,        type: file, path: ./out.ndjson}
  - {name: deadletter, type: file, path: ./dead-letter.ndjson}
  - {name: metrics,    type: file, path: ./metrics.ndjson}
  - {name: traces,     type: file, path: ./traces.ndjson}
dead_letter: deadletter
"""


def config(script, rate=1.0):
    return CONFIG.replace("EXAMPLES", EXAMPLES).replace("SCRIPT", script).replace("RATE", str(rate))


def env_for(path):
    """The environment a config needs: ${VAR} without a default gets a placeholder value."""
    with open(path) as f:
        text = f.read()
    env = dict(os.environ)
    for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text):
        env[name] = "127.0.0.1:9092" if "BROKER" in name else "example-value"
    return env


def test_example_configs_pass_check():
    configs = sorted(glob.glob(os.path.join(SRC, "conf", "examples", "*.yaml")))
    check(len(configs) >= 7, f"conf/examples/ holds the example configs: {configs}")
    configs.append(os.path.join(SRC, "conf", "spillway.yaml"))
    check_configs(configs, "example configs", env_for)


def test_example_scripts_compile():
    scripts = sorted(glob.glob(os.path.join(EXAMPLES, "*.lua")))
    check(len(scripts) >= 8, f"scripts/examples/ holds the example scripts: {scripts}")
    failures = []
    with Spillway() as sw:
        for path in scripts:
            name = os.path.basename(path)
            cfg = sw.path("check-" + name + ".yaml")
            with open(cfg, "w") as f:
                f.write(config(name).replace("{tcp}", str(sw.ports["tcp"])))
            r = run([BIN, "check", "-c", cfg], cwd=sw.dir)
            if r.returncode != 0:
                failures.append(f"{name}: exit {r.returncode}: {r.stderr.strip()}")
    check(not failures, "example scripts failing to load:\n  " + "\n  ".join(failures))


def test_example_scripts_are_documented():
    with open(os.path.join(SRC, "docs", "routes.md")) as f:
        doc = f.read()
    missing = [os.path.basename(p) for p in sorted(glob.glob(os.path.join(EXAMPLES, "*.lua")))
               if f"`{os.path.basename(p)}`" not in doc]
    check(not missing, f"scripts/examples/ not listed in docs/routes.md: {missing}")


def run_events(script, events, wait_lines, rate=1.0, sinks=False):
    """Runs spillway with one example script, sends events (dicts) over TCP with socat, stops
    it (draining) and returns (kept events, dead letters, the route's counters), and with
    sinks=True also {sink file: its events} for the metrics and traces sinks."""
    with Spillway(config(script, rate)) as sw:
        sw.start()
        data = "".join(json.dumps(e) + "\n" for e in events).encode()
        socat_send(data, f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= wait_lines, 30,
                 f"{wait_lines} events out of {script}")
        wait_for(lambda: route_counters(sw)["in"] == len(events), 30,
                 f"{script} to see all {len(events)} events")
        counters = route_counters(sw)
        check(sw.stop() == 0, "clean stop")
        got = (read_ndjson(sw.path("out.ndjson")), read_ndjson(sw.path("dead-letter.ndjson")),
               counters)
        if sinks:
            got += ({n: read_ndjson(sw.path(n)) for n in ("metrics.ndjson", "traces.ndjson")},)
        return got


def route_counters(sw):
    r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", "routes"])
    check(r.returncode == 0, f"ctl routes: {r.stderr}")
    return json.loads(r.stdout)["routes"][0]["counters"]


def test_drop_debug():
    sent = [{"msg": "a", "level": "DEBUG"}, {"msg": "b", "level": "INFO"},
            {"msg": "c", "level": "debug"}, {"msg": "d"}, {"msg": "e", "level": "TRACE"},
            {"msg": "f", "level": "ERROR"}]
    out, dead, c = run_events("drop_debug.lua", sent, 3)
    check([e["message"] for e in out] == ["b", "d", "f"], f"debug and trace dropped: {out}")
    check(all(e["source"] == "app" for e in out), "events otherwise as they came")
    check(not dead, f"no dead letters: {dead}")
    check(c["in"] == 6 and c["kept"] == 3 and c["filtered"] == 3 and c["errors"] == 0,
          f"route counters balance: {c}")


def test_mask_pii():
    sent = [{"msg": "signup from jane.doe@example.com", "email": "jane.doe@example.com"},
            {"msg": "card 4111 1111 1111 1111 declined, order 12345"},
            {"msg": "nothing to hide"}]
    out, dead, c = run_events("mask_pii.lua", sent, 3)
    check(len(out) == 3 and not dead, f"all kept: {out} {dead}")
    check(out[0]["email"] == "j***@example.com", f"email field masked: {out[0]}")
    check("jane" not in out[0]["message"] and out[0]["message"].startswith("signup from *"),
          f"address in the message masked: {out[0]}")
    check(out[1]["message"] == "card " + "*" * 19 + " declined, order 12345",
          f"card number masked, other digits kept: {out[1]}")
    check(out[2]["message"] == "nothing to hide" and "email" not in out[2],
          f"untouched without PII, no email field added: {out[2]}")
    check(c["kept"] == 3 and c["errors"] == 0, f"counters: {c}")


def test_enrich_static():
    sent = [{"msg": "a", "service": "checkout", "order": "o-1"}, {"msg": "b", "service": "search"},
            {"msg": "c", "service": "mystery"}, {"msg": "d"}]
    out, dead, _ = run_events("enrich_static.lua", sent, 4)
    check([e.get("team") for e in out] == ["payments", "discovery", "unowned", "unowned"],
          f"team from the static table: {out}")
    check(all(e["env"] == "prod" for e in out), "env added to every event")
    check(out[0]["order"] == "o-1" and out[0]["service"] == "checkout", "other fields kept")
    check(not dead, f"no dead letters: {dead}")


def test_dedup_messages():
    sent = [{"service": "db", "msg": "connection refused", "seq": 1},
            {"service": "db", "msg": "connection refused", "seq": 2},
            {"service": "api", "msg": "connection refused", "seq": 3},
            {"service": "db", "msg": "connection refused", "seq": 4},
            {"service": "db", "msg": "pool exhausted", "seq": 5},
            {"service": "api", "msg": "connection refused", "seq": 6}]
    out, dead, c = run_events("dedup_messages.lua", sent, 3)
    check([e["seq"] for e in out] == [1, 3, 5], f"one per service and message: {out}")
    check(not dead and c["kept"] == 3 and c["filtered"] == 3, f"counters: {c}")


def test_route_by_kind():
    sent = [{"kind": "log", "msg": "a", "seq": 1},
            {"kind": "metric", "name": "requests", "metric_type": "counter", "value": 3, "seq": 2},
            {"kind": "trace", "name": "GET /", "trace_id": "4bf92f3577b34da6", "seq": 3},
            {"msg": "no kind: a log", "seq": 4},
            {"kind": "event", "msg": "deploy", "seq": 5},
            {"kind": "metric", "name": "latency", "metric_type": "gauge", "value": 1.5, "seq": 6}]
    out, dead, c, sinks = run_events("route_by_kind.lua", sent, 3, sinks=True)
    check([e["seq"] for e in out] == [1, 4, 5], f"logs and events stay on the route: {out}")
    check([e["seq"] for e in sinks["metrics.ndjson"]] == [2, 6]
          and all(e["kind"] == "metric" for e in sinks["metrics.ndjson"]),
          f"metrics to the metrics sink: {sinks['metrics.ndjson']}")
    check([e["seq"] for e in sinks["traces.ndjson"]] == [3]
          and sinks["traces.ndjson"][0]["trace_id"] == "4bf92f3577b34da6",
          f"spans to the traces sink: {sinks['traces.ndjson']}")
    check(not dead and c["kept"] == 3 and c["filtered"] == 3 and c["errors"] == 0,
          f"emitted events count as filtered on the route: {c} {dead}")


def test_trace_sampling():
    # 3,000 traces of three spans each, the spans of a trace far apart in the stream.
    traces = ["%016x" % (0x4bf92f3577b00000 + t * 7919) for t in range(3000)]
    sent = [{"trace_id": traces[t], "span": s, "seq": s * 3000 + t}
            for s in range(3) for t in range(3000)]
    out, dead, c = run_events("trace_sampling.lua", sent, 1, rate=0.3)
    spans = {}
    for e in out:
        spans.setdefault(e["trace_id"], []).append(e["span"])
        check(e["sample_rate"] == 0.3, f"kept events carry the rate: {e}")
    check(all(sorted(v) == [0, 1, 2] for v in spans.values()),
          f"every trace kept or dropped whole: {[k for k, v in spans.items() if len(v) != 3][:5]}")
    check(abs(len(spans) - 900) <= 90, f"{len(spans)} of 3000 traces kept, expected 900 +- 10%")
    check(not dead and c["sampled_out"] == c["filtered"] == 9000 - len(out),
          f"what was dropped counts as sampled out: {c}")


def test_sample_traces_only():
    # 1,000 traces of two spans each, and a log of each trace: at rate 0.5 whole traces go, and
    # every log stays, unsampled.
    traces = ["%016x" % (0x4bf92f3577b00000 + t * 7919) for t in range(1000)]
    sent = [{"kind": "trace", "trace_id": traces[t], "span": s} for s in range(2)
            for t in range(1000)] + [{"kind": "log", "trace_id": t, "msg": "x"} for t in traces]
    out, dead, c = run_events("sample_traces_only.lua", sent, 1000, rate=0.5)
    logs = [e for e in out if e["kind"] == "log"]
    check(len(logs) == 1000 and not any("sample_rate" in e for e in logs), "every log kept")
    spans = {}
    for e in out:
        if e["kind"] == "trace":
            spans.setdefault(e["trace_id"], []).append(e["span"])
    check(all(sorted(v) == [0, 1] for v in spans.values()), "every trace kept or dropped whole")
    check(abs(len(spans) - 500) <= 75, f"{len(spans)} of 1000 traces kept, expected 500 +- 15%")
    check(not dead and c["sampled_out"] == 3000 - len(out), f"counters: {c}")


def test_errors_and_dynamic():
    # A chatty service (2,000 INFO lines in a burst) with warnings and errors mixed in, and a
    # quiet one: every warning and error is kept, the quiet service whole, the chatty thinned.
    sent = []
    for i in range(2000):
        sent.append({"service": "chatty", "level": "INFO", "msg": "poll", "seq": i})
        if i % 100 == 0:
            sent.append({"service": "chatty", "level": "ERROR" if i % 200 else "WARN",
                         "msg": "failed", "seq": 10_000 + i})
        if i % 500 == 0:
            sent.append({"service": "quiet", "level": "INFO", "msg": "tick", "seq": 20_000 + i})
    sent.append({"service": "chatty", "level": "FATAL", "msg": "down", "seq": 30_000})
    out, dead, c = run_events("errors_and_dynamic.lua", sent, 25)
    by_level = {}
    for e in out:
        by_level.setdefault((e["service"], e["level"]), []).append(e)
    check(len(by_level.get(("chatty", "ERROR"), [])) == 10
          and len(by_level.get(("chatty", "WARN"), [])) == 10
          and len(by_level.get(("chatty", "FATAL"), [])) == 1,
          f"every warning, error and fatal kept: { {k: len(v) for k, v in by_level.items()} }")
    check(len(by_level.get(("quiet", "INFO"), [])) == 4, "the quiet service kept whole")
    chatty = by_level.get(("chatty", "INFO"), [])
    check(50 <= len(chatty) <= 1000, f"the chatty service thinned: {len(chatty)} of 2000 kept")
    check(all(0 < e["sample_rate"] < 1 for e in chatty if "sample_rate" in e)
          and any("sample_rate" in e for e in chatty), "thinned events carry sample_rate")
    check(not any("sample_rate" in e for e in out if e["level"] != "INFO"),
          "events kept without sampling carry no sample_rate")
    check(not dead and c["errors"] == 0 and c["kept"] == len(out), f"counters: {c}")


ACCESS = """
data_dir: ./data
shutdown_timeout: 30s
admin: {socket: ./run/admin.sock, http: ""}
inputs:
  - {name: access, type: tcp, listen: "127.0.0.1:{tcp}"}
pipeline: {partitions: 2}
router: {scripts: "EXAMPLES"}
routes:
  - {name: access, script: access_metrics.lua, sample_rate: 0.01, sinks: [logs],
     metrics: {interval: 500ms, route: metrics, buckets: [0.01, 0.1, 1]}}
  - {name: metrics, enabled: false, sinks: [metrics]}
sinks:
  - {name: logs, type: file, path: ./logs.ndjson}
  - {name: metrics, type: file, path: ./metrics.ndjson}
  - {name: deadletter, type: file, path: ./dead-letter.ndjson}
dead_letter: deadletter
"""


def test_access_metrics():
    """access_metrics.lua (conf/examples/access-metrics.yaml): every access log is counted and
    its latency observed per service and status, while the logs are kept at 1% (errors whole)."""
    import random
    rnd = random.Random(17)
    sent, want = [], {}
    for i in range(4000):
        svc, status = rnd.choice(["cart", "search"]), rnd.choice([200, 404, 500])
        ms = rnd.choice([5, 50, 500, 5000])
        sent.append({"service": svc, "status": status, "latency_ms": ms, "trace_id": f"{i:016x}",
                     "level": "ERROR" if status == 500 else "INFO"})
        c = want.setdefault((svc, str(status)), {"n": 0, "sum": 0.0, "le": [0, 0, 0, 0]})
        c["n"] += 1
        c["sum"] += ms / 1000
        c["le"][sum(1 for b in (0.01, 0.1, 1) if ms / 1000 > b)] += 1
    sent.append({"msg": "not an access log"})
    with Spillway(ACCESS.replace("EXAMPLES", EXAMPLES)) as sw:
        sw.start()
        socat_send("".join(json.dumps(e) + "\n" for e in sent).encode(),
                   f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: route_counters(sw)["in"] == len(sent), 30, "every event routed")
        check(sw.stop() == 0, "clean stop")  # flushes what was aggregated since the last flush
        got = {}
        for m in read_ndjson(sw.path("metrics.ndjson")):
            k = (m["labels"]["service"], m["labels"]["status"])
            c = got.setdefault(k, {"n": 0, "sum": 0.0, "le": [0, 0, 0, 0], "hist": 0})
            check(m["source"] == "route:access" and m["temporality"] == "delta"
                  and m["kind"] == "metric", f"metric event: {m}")
            if m["name"] == "http_requests":
                check(m["metric_type"] == "counter", f"count: {m}")
                c["n"] += m["value"]
            else:
                check(m["name"] == "http_request_duration_seconds" and
                      m["metric_type"] == "histogram" and m["explicit_bounds"] == [0.01, 0.1, 1],
                      f"histogram: {m}")
                c["hist"] += m["count"]
                c["sum"] += m["sum"]
                c["le"] = [a + b for a, b in zip(c["le"], m["bucket_counts"])]
        for k, w in want.items():
            g = got.get(k, {})
            check(g.get("n") == w["n"] and g.get("hist") == w["n"] and g.get("le") == w["le"]
                  and abs(g.get("sum", 0) - w["sum"]) < 1e-6, f"{k}: {g} != {w}")
        logs = read_ndjson(sw.path("logs.ndjson"))
        errors = sum(1 for e in sent if e.get("level") == "ERROR")
        info = len(logs) - errors
        check(all(e["level"] == "ERROR" or e.get("sample_rate") == 0.01 for e in logs)
              and 0 < info < 80, f"logs kept: {errors} errors and {info} of the rest (1% of "
                                 f"{len(sent) - 1 - errors})")
        check(count_lines(sw.path("dead-letter.ndjson")) == 0, "no dead letter")


if __name__ == "__main__":
    main([test_example_configs_pass_check, test_example_scripts_compile, test_access_metrics,
          test_example_scripts_are_documented, test_drop_debug, test_mask_pii,
          test_enrich_static, test_dedup_messages, test_route_by_kind, test_trace_sampling,
          test_sample_traces_only, test_errors_and_dynamic])
