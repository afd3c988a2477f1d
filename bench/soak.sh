#!/bin/sh
# Soak test: mixed traffic through every kind of input, several routes and a flaky HTTP sink for
# SOAK_SECONDS (default 600; or the first argument), then events in/out/dropped with reasons,
# RSS and open fds over time. Exits 1 when RSS or fds grow or the counters do not balance.
#   bench/soak.sh 3600         # an hour
#   SOAK_RSS_GROWTH=0.05 bench/soak.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
export SPILLWAY_BIN="${SPILLWAY_BIN:-$root/build/spillway}"
export SPILLWAY_SRC="$root"
export PYTHONDONTWRITEBYTECODE=1
exec python3 "$here/soak.py" "${1:-${SOAK_SECONDS:-600}}"
