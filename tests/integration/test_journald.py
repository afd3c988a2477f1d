"""Issue 18: the journald input, without a journald: journal files are made from the journal's
export format by systemd-journal-remote (Debian's systemd-journal-remote package), as a
directory the input reads like journalctl -D. Fields mapped, matches, the cursor saved in the
store so a restart resumes exactly, files appearing while it runs, a corrupt file counted and
logged while the input carries on."""
import json
import os
import shutil
import subprocess
import tempfile
import time

from spillway_test import (BIN, Spillway, check, check_canonical, count_lines, main, read_ndjson,
                           run, wait_for)

REMOTE = "/lib/systemd/systemd-journal-remote"

HEAD = """
data_dir: ./data
admin: {socket: ./run/admin.sock, http: ""}
pipeline: {partitions: 2, memory_limit: 16MiB}
routes: [{name: all, sinks: [out]}]
sinks:
  - {name: out, type: file, path: ./out.ndjson}
inputs:
  - {name: journal, type: journald, path: ./journal, poll_interval: 50ms}
  - {name: nginx, type: journald, path: ./journal, poll_interval: 50ms,
     matches: ["_SYSTEMD_UNIT=nginx.service"]}
"""


def export(entries, first=0):
    """The journal export format of entries (dicts of field: value), from sequence number
    first on."""
    out = []
    for i, e in enumerate(entries, first):
        out.append(f"__CURSOR=s=0;i={i}\n__REALTIME_TIMESTAMP={1700000000000000 + i * 1000}\n"
                   f"__MONOTONIC_TIMESTAMP={1000 + i}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n")
        out += [f"{k}={v}\n" for k, v in e.items()]
        out.append("\n")
    return "".join(out)


def journal_file(dest, entries, first=0):
    """Writes a journal file of entries with systemd-journal-remote, then moves it to dest (a
    reader never sees it half written)."""
    check(os.access(REMOTE, os.X_OK), f"{REMOTE} is missing: apt-get install "
          "systemd-journal-remote (tools/deps.sh)")
    d = tempfile.mkdtemp(prefix="spillway-journal-")
    try:
        src, tmp = os.path.join(d, "export.txt"), os.path.join(d, "out.journal")
        with open(src, "w") as f:
            f.write(export(entries, first))
        r = subprocess.run([REMOTE, "-o", tmp, src], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, f"systemd-journal-remote: {r.stderr}")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.move(tmp, dest)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def app(i):
    return {"MESSAGE": f"entry {i}", "PRIORITY": str(i % 8), "_HOSTNAME": "web-1",
            "SYSLOG_IDENTIFIER": "app", "_SYSTEMD_UNIT": "app.service", "_PID": str(100 + i),
            "CODE_FILE": "main.c"}


def nginx(i):
    return {"MESSAGE": f"entry {i}", "PRIORITY": "6", "_HOSTNAME": "web-2",
            "_SYSTEMD_UNIT": "nginx.service"}


def stats(sw):
    r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", "stats"])
    return {i["name"]: i for i in json.loads(r.stdout)["inputs"]}


def by_source(sw):
    out = {}
    for e in read_ndjson(sw.path("out.ndjson")):
        out.setdefault(e["source"], []).append(e)
    return out


def test_fields_and_matches():
    with Spillway(HEAD) as sw:
        journal_file(sw.path("journal", "a.journal"),
                     [app(0), nginx(1), app(2), nginx(3)])
        sw.start()
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 6, 30, "6 events")
        check(sw.stop() == 0, "clean stop")
        got = by_source(sw)
        check(len(got["journal"]) == 4 and len(got["nginx"]) == 2, f"counts: "
              f"{ {k: len(v) for k, v in got.items()} }")
        e = got["journal"][0]
        check_canonical(e, "journal")
        check(e["timestamp"] == "2023-11-14T22:13:20.000000Z" and e["message"] == "entry 0"
              and e["level"] == "EMERGENCY" and e["severity"] == 0 and e["host"] == "web-1"
              and e["service"] == "app" and e["_SYSTEMD_UNIT"] == "app.service"
              and e["_PID"] == "100" and e["CODE_FILE"] == "main.c"
              and "MESSAGE" not in e and "PRIORITY" not in e and "_HOSTNAME" not in e,
              f"mapped: {e}")
        e = got["journal"][1]
        check(e["service"] == "nginx.service" and e["level"] == "INFO"
              and "_SYSTEMD_UNIT" not in e, f"the unit as the service: {e}")
        check([x["message"] for x in got["nginx"]] == ["entry 1", "entry 3"], "the match")


def test_restart_resumes_exactly():
    with Spillway(HEAD) as sw:
        journal_file(sw.path("journal", "a.journal"), [app(i) for i in range(500)])
        sw.start()
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 500, 30, "500 events")
        # A file appearing while it runs is read.
        journal_file(sw.path("journal", "b.journal"), [app(i) for i in range(500, 700)], 500)
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 700, 30, "700 events")
        check(sw.stop() == 0, "clean stop")
        # While stopped: more entries. A restart reads them, and nothing twice.
        journal_file(sw.path("journal", "c.journal"), [app(i) for i in range(700, 1000)], 700)
        sw.start()
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 1000, 30, "1000 events")
        check(sw.stop() == 0, "clean stop")
        sw.start()  # nothing new: nothing read again
        wait_for(lambda: sw.log().count("resuming after the saved cursor") == 2, 10,
                 "the third start resumes (nginx matched nothing: no cursor)")
        time.sleep(0.5)  # ten polls: what would be read again would be by now
        check(stats(sw)["journal"]["received"] == 0, "nothing read again")
        check(sw.stop() == 0, "clean stop")
        msgs = [e["message"] for e in by_source(sw)["journal"]]
        check(sorted(msgs) == sorted(f"entry {i}" for i in range(1000)),
              f"every entry once across the restarts: {len(msgs)} events, "
              f"{len(set(msgs))} distinct")
        check(msgs == [f"entry {i}" for i in range(1000)], "in the journal's order")


def test_corrupt_journal_file():
    with Spillway(HEAD.replace("  - {name: nginx", "  - {name: unused")) as sw:
        journal_file(sw.path("journal", "good.journal"), [app(i) for i in range(10)])
        journal_file(sw.path("journal", "bad.journal"), [app(i) for i in range(10, 20)], 10)
        with open(sw.path("journal", "bad.journal"), "r+b") as f:
            f.write(b"NOTAJOURNAL")  # the header's signature
        sw.start()
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 10, 30, "the good file")
        wait_for(lambda: stats(sw)["journal"]["read_errors"] >= 1, 10, "the bad file counted")
        journal_file(sw.path("journal", "later.journal"), [app(i) for i in range(20, 25)], 20)
        wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 15, 30, "a later file read")
        st = stats(sw)["journal"]
        check(sw.stop() == 0, "clean stop")
        msgs = sorted(int(e["message"].split()[1]) for e in by_source(sw)["journal"])
        check(msgs == list(range(10)) + list(range(20, 25)), f"the readable entries: {msgs}")
        check(st["read_errors"] == 1, f"one corrupt file counted: {st}")
        check("bad.journal" in sw.log() and "cannot be read" in sw.log(), "and logged")


if __name__ == "__main__":
    main([test_fields_and_matches, test_restart_resumes_exactly, test_corrupt_journal_file])
