"""docs/config.md is generated from the config key tables; it must match the binary, so no key
goes undocumented and no documented key is stale."""
import os

from spillway_test import BIN, SRC, check, main, run


def test_config_reference_matches_code():
    r = run([BIN, "config-reference"])
    check(r.returncode == 0 and "| `pipeline.memory_limit` |" in r.stdout, "reference output")
    with open(os.path.join(SRC, "docs", "config.md")) as f:
        doc = f.read()
    check(doc.endswith(r.stdout),
          "docs/config.md is out of date: run tools/gen-config-doc.sh build/spillway")


if __name__ == "__main__":
    main([test_config_reference_matches_code])
