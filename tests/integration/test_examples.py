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
  - {name: example, script: SCRIPT, sinks: [out]}
sinks:
  - {name: out,        type: file, path: ./out.ndjson}
  - {name: deadletter, type: file, path: ./dead-letter.ndjson}
  - {name: metrics,    type: file, path: ./metrics.ndjson}
  - {name: traces,     type: file, path: ./traces.ndjson}
dead_letter: deadletter
"""


def config(script):
    return CONFIG.replace("EXAMPLES", EXAMPLES).replace("SCRIPT", script)


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


def run_events(script, events, wait_lines):
    """Runs spillway with one example script, sends events (dicts) over TCP with socat, stops
    it (draining) and returns (kept events, dead letters, the route's counters)."""
    with Spillway(config(script)) as sw:
        sw.start()
        data = "".join(json.dumps(e) + "\n" for e in events).encode()
        socat_send(data, f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= wait_lines, 30,
                 f"{wait_lines} events out of {script}")
        wait_for(lambda: route_counters(sw)["in"] == len(events), 30,
                 f"{script} to see all {len(events)} events")
        counters = route_counters(sw)
        check(sw.stop() == 0, "clean stop")
        return read_ndjson(sw.path("out.ndjson")), read_ndjson(sw.path("dead-letter.ndjson")), counters


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


if __name__ == "__main__":
    main([test_example_configs_pass_check, test_example_scripts_compile,
          test_example_scripts_are_documented, test_drop_debug, test_mask_pii,
          test_enrich_static, test_dedup_messages])
