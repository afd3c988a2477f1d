#!/bin/sh
# Regenerates docs/config.md from the config key tables in the code
# (tests/integration/test_docs.py fails when the two differ).
set -eu
BIN=${1:-build/spillway}
OUT=docs/config.md
{
    cat <<'HEAD'
# Configuration reference

spillway reads one YAML file (`spillway run -c FILE`; without `-c`, the embedded default,
which is `conf/spillway.yaml`). `spillway check -c FILE` validates a file and its scripts.

- `${VAR}` in any value is replaced by the environment variable VAR (an unset variable is an
  error, so a missing secret is caught at start); `${VAR:-default}` falls back to default;
  `$$` is a literal `$`.
- Sizes: `512`, `64KiB`, `64MiB`, `1GiB` (also `KB`, `MB`, `GB` in powers of ten).
  Durations: `500ms`, `10s`, `15m`, `1h`, `2d` (a bare number is seconds).
- Relative paths resolve against the working directory.
- Every problem is reported as `FILE:LINE: key: message`, with the valid choices.

The tables below are generated from the code (`spillway config-reference`;
`tools/gen-config-doc.sh` rewrites this file) and a test checks that they match.

HEAD
    "$BIN" config-reference
} > "$OUT"
