"""The docs that describe what the binary exposes must match the binary: docs/config.md is
generated from the config key tables, so no key goes undocumented and no documented key is stale;
docs/operations.md's metric table names every metric family a running spillway serves on
/metrics, and none that it does not; docs/admin.md's `stats` row names every member of the stats
document. /metrics and the stats document are both derived from the counters' tables
(core/stats.c), so a counter added there and not documented fails here."""
import json
import os
import re
import urllib.request

from spillway_test import BIN, SRC, KafkaMock, Spillway, check, main, run

# Every kind of thing that has metrics of its own, so that each family is served: an input of
# each transport (syslog first: a family is served when the first input has its counter), a
# route with a shadow, file and HTTP sinks, a dead-letter sink, and the pipeline twice (PIPELINE
# below): with spill, and in Kafka mode, whose families exist only then. The HTTP sink points at
# a port nobody listens on; no event is sent.
METRICS_CONFIG = """
data_dir: ./data
shutdown_timeout: 5s
admin:
  socket: ./run/admin.sock
  http: 127.0.0.1:{admin_http}
inputs:
  - {name: syslog, type: udp, listen: "127.0.0.1:{udp}", format: syslog}
  - {name: app, type: tcp, listen: "127.0.0.1:{tcp}", format: ndjson}
  - {name: otlp, type: http, listen: "127.0.0.1:{http}"}
  - {name: local, type: unix, path: ./run/spillway.sock}
pipeline:
  partitions: 2
  memory_limit: 32MiB
  PIPELINE
router:
  scripts: ./scripts
routes:
  - {name: default, script: default.lua, sinks: [events], shadow: [candidate]}
sinks:
  - {name: events, type: file, path: ./data/out/events.ndjson}
  - {name: candidate, type: http, url: "http://127.0.0.1:9/v1/events"}
  - {name: deadletter, type: file, path: ./data/out/dead-letter.ndjson}
dead_letter: deadletter
"""
PIPELINES = {"spill": "when_full: spill\n  kafka: {brokers: \"BOOTSTRAP\", topic: spill}",
             "kafka": "mode: kafka\n  kafka: {brokers: \"BOOTSTRAP\", topic: pipe, group: g}"}


def test_config_reference_matches_code():
    r = run([BIN, "config-reference"])
    check(r.returncode == 0 and "| `pipeline.memory_limit` |" in r.stdout, "reference output")
    with open(os.path.join(SRC, "docs", "config.md")) as f:
        doc = f.read()
    check(doc.endswith(r.stdout),
          "docs/config.md is out of date: run tools/gen-config-doc.sh build/spillway")


LAYERS = ["core", "pipeline", "collector", "router", "control", "ctl", "app"]


def test_includes_name_their_folder():
    """The build checks the layers (each library sees only its own folder and those below), as
    long as every include names its folder: "core/buf.h", never "buf.h" or "../core/buf.h",
    which would find a file by the including file's own directory instead. The messages protoc-c
    generates from proto/ (spillway_proto) are named by their package's path, which starts with
    one of proto/'s folders ("opentelemetry/proto/...", "google/rpc/..."); proto/'s own
    headers are named "proto/<name>.h"."""
    roots = set(LAYERS) | set(os.listdir(os.path.join(SRC, "proto"))) | {"proto"}
    bad = []
    for layer in LAYERS:
        for root, _, files in os.walk(os.path.join(SRC, layer)):
            for name in files:
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.join(root, name)
                with open(path) as f:
                    for n, line in enumerate(f, 1):
                        m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                        if m and (m.group(1).startswith(".") or
                                  m.group(1).split("/")[0] not in roots):
                            bad.append(f"{os.path.relpath(path, SRC)}:{n}: {m.group(1)}")
    check(not bad, "includes that do not name their folder:\n  " + "\n  ".join(bad))


def documented_metrics():
    """The metric names in the first column of docs/operations.md's metric table."""
    with open(os.path.join(SRC, "docs", "operations.md")) as f:
        doc = f.read()
    section = doc.split("\n## What each metric means\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `spillway_"):
            names |= set(re.findall(r"`(spillway_[a-z0-9_]+)`", line.split("|")[1]))
    return names


def stats_members(st):
    """{stage: set of member names} of a stats document: every member an element (or a stage's
    one object) carries, the routes' counters included."""
    out = {}
    for stage, v in st.items():
        if stage == "balance" or not isinstance(v, (dict, list)):
            continue
        items = v if isinstance(v, list) else [v]
        names = set()
        for e in items:
            for k, x in e.items():
                names |= set(x) if k == "counters" else {k}
        out[stage] = names
    return out


def served_metrics(port):
    """{family: type} from the # TYPE lines of a running spillway's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M))


def test_metrics_table_matches_metrics():
    """Fails when a spillway_* family served on /metrics has no row in docs/operations.md's
    table, or the table names a family no longer served. Families that only some other
    configuration serves are not seen: add what they need to METRICS_CONFIG."""
    served, stats = {}, {}
    with KafkaMock() as mock:
        bootstrap = mock.bootstrap
        for topic in ("spill", "pipe"):
            mock.cmd(f"topic {topic} 2")
        with open(os.path.join(SRC, "scripts", "default.lua")) as f:
            script = f.read()
        for name, pipeline in PIPELINES.items():
            conf = METRICS_CONFIG.replace("PIPELINE", pipeline).replace("BOOTSTRAP", bootstrap)
            with Spillway(conf, extra_files={"scripts/default.lua": script}) as sw:
                sw.start()
                served.update(served_metrics(sw.ports["admin_http"]))
                r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", "stats"])
                for stage, names in stats_members(json.loads(r.stdout)).items():
                    stats.setdefault(stage, set()).update(names)
                check(sw.stop() == 0, f"clean stop ({name} pipeline)")
    check(len(served) >= 40 and "spillway_partition_spilled_total" in served
          and "spillway_kafka_produced_total" in served,
          f"the configs serve every kind of family: {sorted(served)}")
    documented = documented_metrics()
    missing = sorted(n for n in served if n.startswith("spillway_") and n not in documented)
    check(not missing, "metric families served on /metrics but missing from docs/operations.md "
          "(\"What each metric means\": one row each, full names):\n  " + "\n  ".join(
              f"{n} ({served[n]})" for n in missing))
    stale = sorted(documented - set(served))
    check(not stale, "docs/operations.md names metric families that /metrics does not serve:\n  "
          + "\n  ".join(stale))
    # docs/admin.md's `stats` row names every member of every stage of the stats document
    # (routes and sinks by reference to their own commands' rows).
    with open(os.path.join(SRC, "docs", "admin.md")) as f:
        row = "".join(l for l in f if l.startswith(("| `stats` |", "| `routes` |", "| `sinks` |")))
    undocumented = sorted(f"{stage}.{n}" for stage, names in stats.items() for n in names
                          if not re.search(rf"\b{re.escape(n)}\b", row))
    check(len(stats) >= 7 and not undocumented,
          "members of `spillway ctl stats --json` missing from docs/admin.md's `stats` row:\n  "
          + "\n  ".join(undocumented))


if __name__ == "__main__":
    main([test_config_reference_matches_code, test_metrics_table_matches_metrics,
          test_includes_name_their_folder])
