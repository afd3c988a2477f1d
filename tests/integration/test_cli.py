"""The command line: version, --help for each command, check on good and bad configs."""
import os

from spillway_test import BIN, SRC, Spillway, check, main, run

GOOD = """
inputs:
  - {name: app, type: tcp, listen: "127.0.0.1:5999"}
routes:
  - {name: r, sinks: [out]}
sinks:
  - {name: out, type: file, path: ./out.ndjson}
"""


def write(d, name, text):
    p = os.path.join(d, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)
    return p


def test_version_and_help():
    r = run([BIN, "version"])
    check(r.returncode == 0 and r.stdout.startswith("spillway "), r.stdout)
    for cmd in ("run", "check", "version"):
        r = run([BIN, cmd, "--help"])
        check(r.returncode == 0 and "usage: spillway " + cmd in r.stdout, f"{cmd} --help")
    r = run([BIN])
    check(r.returncode == 2 and "usage" in r.stderr, "no command: usage, exit 2")
    r = run([BIN, "frobnicate"])
    check(r.returncode == 2 and "unknown command" in r.stderr, "unknown command")


def test_check_good_and_shipped_configs():
    with Spillway() as sw:
        p = write(sw.dir, "good.yaml", GOOD)
        r = run([BIN, "check", "-c", p])
        check(r.returncode == 0 and "ok:" in r.stdout and r.stdout.count("\n") == 1,
              f"one-line summary: {r.stdout!r} {r.stderr!r}")
    r = run([BIN, "check", "-c", os.path.join(SRC, "conf", "spillway.yaml")], cwd=SRC)
    check(r.returncode == 0, f"shipped config passes: {r.stderr}")
    check(r.stderr == "", f"no warnings for the shipped config: {r.stderr}")


def test_check_warns_about_unused_sections():
    with Spillway() as sw:
        p = write(sw.dir, "collector.yaml", GOOD + "pipeline:\n  mode: kafka\n  role: collector\n"
                  "  kafka: {brokers: '127.0.0.1:9', topic: t, group: g}\n")
        r = run([BIN, "check", "-c", p])
        check(r.returncode == 0 and "ok:" in r.stdout, f"still valid: {r.stdout} {r.stderr}")
        check(f"warning: {p}:10: pipeline.role: collector: the 1 routes and 1 sinks here are "
              "not used" in r.stderr, f"warning with FILE:LINE: {r.stderr!r}")


def test_check_reports_file_line_key():
    cases = [
        ("pipeline:\n  when_full: sometimes\n", 2, "pipeline.when_full",
         "block, drop_newest, spill"),
        ("pipeline:\n  memory_limit: lots\n", 2, "pipeline.memory_limit", "size"),
        ("colour: blue\n", 1, "colour", "valid keys"),
        ("inputs:\n  - {name: a, type: carrier_pigeon}\n", 2, "inputs[0].type", "tcp, unix"),
        ("inputs:\n  - {name: a, type: tcp}\n", 2, "inputs[0].listen", "required"),
        ("routes:\n  - {name: r, sinks: [nowhere]}\n", 2, "routes[0].sinks", "nowhere"),
        ("data_dir: ${SPILLWAY_TEST_UNSET_VAR}\n", 1, "data_dir", "SPILLWAY_TEST_UNSET_VAR"),
        ("inputs: [\n", 2, "yaml", ""),
    ]
    with Spillway() as sw:
        for text, line, key, hint in cases:
            p = write(sw.dir, "bad.yaml", text)
            r = run([BIN, "check", "-c", p])
            check(r.returncode == 1, f"exit 1 for {text!r}: {r.returncode}")
            want = f"{p}:{line}: {key}: "
            check(want in r.stderr and hint in r.stderr, f"{want!r}+{hint!r} in {r.stderr!r}")
        r = run([BIN, "check", "-c", os.path.join(sw.dir, "missing.yaml")])
        check(r.returncode == 1 and "cannot read" in r.stderr, "missing file")


def test_check_reports_script_errors():
    with Spillway() as sw:
        write(sw.dir, "scripts/broken.lua", "function process(ev)\n  return ev.x ==\nend\n")
        p = write(sw.dir, "c.yaml", GOOD.replace("{name: r, sinks: [out]}",
                  "{name: r, script: broken.lua, sinks: [out]}") + "router: {scripts: "
                  + os.path.join(sw.dir, "scripts") + "}\n")
        r = run([BIN, "check", "-c", p])
        check(r.returncode == 1 and "broken.lua:3:" in r.stderr, f"script file:line: {r.stderr}")


def test_run_with_bad_config_exits_2():
    with Spillway() as sw:
        p = write(sw.dir, "bad.yaml", "log_level: chatty\n")
        r = run([BIN, "run", "-c", p])
        check(r.returncode == 2 and f"{p}:1: log_level:" in r.stderr, r.stderr)


if __name__ == "__main__":
    main([test_version_and_help, test_check_good_and_shipped_configs,
          test_check_warns_about_unused_sections,
          test_check_reports_file_line_key, test_check_reports_script_errors,
          test_run_with_bad_config_exits_2])
