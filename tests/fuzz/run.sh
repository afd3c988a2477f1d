#!/bin/sh
# Runs every libFuzzer target (or those named) for FUZZ_SECONDS each, seeded from its committed
# corpus tests/fuzz/corpus/<target>. New inputs and crash artifacts go to a scratch directory
# (FUZZ_SCRATCH, default BUILD/findings/<target>), never into the committed corpus. Every
# target runs even after one fails; the exit status is 1 when any crashed, leaked, hung or
# broke an invariant. Used by `make fuzz` after it built BUILD with -DSPILLWAY_FUZZ=ON.
# Usage: tests/fuzz/run.sh BUILD [target...]
set -u
build=${1:?usage: tests/fuzz/run.sh BUILD [target...]}
shift
seconds=${FUZZ_SECONDS:-60}
scratch=${FUZZ_SCRATCH:-$build/findings}
src=$(cd "$(dirname "$0")" && pwd)
targets="$*"
[ -n "$targets" ] || targets=$(cd "$src" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')
failed=""
for t in $targets; do
    bin=$build/tests/fuzz/fuzz_$t
    out=$scratch/$t
    mkdir -p "$out/new" "$out/artifacts"
    printf 'fuzz_%s: %ss ... ' "$t" "$seconds"
    # msgpack-c allocates a container's slots when it reads its header, so the forward decoder
    # meets allocations no memory can hold (a 2 GB map): they must fail and be handled, not
    # stop the fuzzer (fuzz_forward.c lets ASan return NULL for them).
    extra=""
    [ "$t" = forward ] && extra="-malloc_limit_mb=1048576"
    # The first corpus directory receives what libFuzzer finds; the committed one is only read.
    "$bin" $extra -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/" "$out/new" "$src/corpus/$t" >"$out/log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "ok, ${execs:-?} runs"
    else
        echo "FAILED (exit $rc): $out/log"
        grep -E 'ERROR|runtime error|fuzz invariant failed|SUMMARY|Test unit written' "$out/log" | head -8 |
            sed 's/^/    /'
        failed="$failed $t"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed (reproduce with $build/tests/fuzz/fuzz_<target> FILE)"
    exit 1
fi
echo "fuzz: every target ran ${seconds}s without a failure"
