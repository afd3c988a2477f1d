#!/bin/bash
# Demo load generator (docker-compose.yml's `loadgen` service): every LOADGEN_INTERVAL seconds
# it POSTs LOADGEN_BATCH NDJSON events to each URL in LOADGEN_TARGETS (space separated
# base URLs of spillway http inputs), from a few made-up services with trace ids, levels, an HTTP
# status and a duration (access logs for the metrics profile) and an email address to mask.
# Prints a summary line every 10 rounds; SIGTERM stops it at once.
set -u
targets=${LOADGEN_TARGETS:-http://spillway:4318}
batch=${LOADGEN_BATCH:-20}
interval=${LOADGEN_INTERVAL:-1}
services=(checkout search payments frontend inventory)
levels=(DEBUG INFO INFO INFO INFO WARN ERROR)
trap 'echo "loadgen: stopped after $sent events"; exit 0' TERM INT

sent=0
round=0
declare -A status
while :; do
    body=""
    for ((i = 0; i < batch; i++)); do
        svc=${services[RANDOM % ${#services[@]}]}
        lvl=${levels[RANDOM % ${#levels[@]}]}
        trace=$(printf '%08x%08x%08x%08x' $RANDOM$RANDOM $RANDOM $RANDOM$RANDOM $RANDOM)
        code=200
        [ "$lvl" = ERROR ] && code=500
        ((RANDOM % 20 == 0)) && code=404
        body+="{\"msg\":\"demo request $round.$i\",\"service\":\"$svc\",\"level\":\"$lvl\","
        body+="\"status\":$code,"
        body+="\"trace_id\":\"$trace\",\"duration_ms\":$((RANDOM % 900 + 5)),"
        body+="\"user\":{\"email\":\"user$((RANDOM % 50))@example.com\"},\"loadgen\":true}"$'\n'
    done
    for t in $targets; do
        status[$t]=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
            -H 'Content-Type: application/x-ndjson' --data-binary "$body" "$t/v1/events")
    done
    sent=$((sent + batch))
    round=$((round + 1))
    if ((round % 10 == 1)); then
        line="loadgen: $sent events per target so far;"
        for t in $targets; do line+=" $t: HTTP ${status[$t]}"; done
        echo "$line"
    fi
    sleep "$interval" &
    wait $!
done
