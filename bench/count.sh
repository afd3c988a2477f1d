#!/bin/sh
# Instructions per event of micro-benchmarks (bench/micro_event.c), counted by callgrind: unlike
# time, the count does not depend on what else a shared machine runs, so it is the figure to
# compare two versions of a hot path with. Runs each benchmark at 10,000 and 30,000 iterations
# and divides the difference (setup cancels out).
#   bench/count.sh [BUILD_DIR] [ID...]      IDs: F S4 R O0 O OJ A B D0 D1 D3 D2 C C2 (default: B D1 D3 C C2)
set -eu
B=${1:-build-release}
[ $# -gt 0 ] && shift
IDS=${*:-B D1 D3 C C2}
command -v valgrind >/dev/null || { echo "bench/count.sh needs valgrind (apt-get install valgrind)" >&2; exit 1; }
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$B/bench/micro_event" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : //p'
}
for id in $IDS; do
    a=$(count 10000 "$id")
    b=$(count 30000 "$id")
    echo "$id: $(( (b - a) / 20000 )) instructions/event"
done
