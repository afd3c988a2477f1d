#!/bin/sh
# The benchmark harness: a Release build, the scenarios of issue 9 (bench/run.py), then the
# micro-benchmarks of the hot path. Usage: bench/run.sh [scenario ...]
# BENCH_EVENTS (default 2000000), BENCH_RUNS (3), BENCH_PARTITIONS (2), BENCH_BEFORE (the build
# directory of another version to run beside this one, docs/performance.md), FLUENT_BIT.
set -eu
cd "$(dirname "$0")/.."
B=build-release
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build $B -j "$(nproc)" --target spillway loadgen grpcload micro_event kafka_mock >/dev/null
python3 bench/run.py $B "$@"
echo
echo "micro-benchmarks (ns per event, one core):"
$B/bench/micro_event 1000000
