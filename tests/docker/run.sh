#!/bin/bash
# make test-docker: the real Dockerfile and docker-compose.yml, for real, without a registry and
# without a bridge network.
#
#  1. A Docker engine: the running one, or `dockerd --bridge=none --iptables=false` started
#     here (installing docker.io, debootstrap and docker-compose when missing) and stopped at
#     the end. No engine: the test says why and skips (exit 0).
#  2. Base images made from Debian's packages (no registry is reachable): debootstrap
#     --variant=minbase bookworm, imported as debian:bookworm and tagged debian:bookworm-slim,
#     so the Dockerfile builds unchanged. Skipped when the images exist (the cache).
#  3. docker build --network host of the real Dockerfile.
#  4. The image on the host network, on 127.0.0.1 and free ports, with a mounted data
#     directory: events sent with curl, nc and logger are found in the mounted output; the
#     HEALTHCHECK turns healthy; `spillway ctl stats` works through docker exec; `docker stop`
#     drains a burst and the container exits 0.
#  4b. Docker's fluentd, gelf and syslog log drivers send a container's output to the image's
#     forward, GELF and syslog inputs: the events carry the container's fields.
#  5. docker-compose.yml with tests/docker/compose.host.yml (every service on the host network)
#     and the side-by-side profile (the kafka profile is left out: its image cannot be fetched
#     here): the load generator's events reach the file sink, the shadow sink reaches the
#     receiver, `spillway ctl compare` runs; stopped (exit 0) and removed.
#
# Every wait is bounded. Ends with "test-docker: N passed, N failed" (", 1 skipped" when skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=$PWD

IMAGE=${SPILLWAY_IMAGE:-spillway:latest}
WORK=$(mktemp -d /tmp/spillway-docker-test.XXXXXX)
NAME=spillway-test-$$
PROJECT=spillwaytest$$
STARTED_DOCKERD=""
COMPOSE_UP=""
passed=0
failed=0
skipped=0

log() { echo "test-docker: $*"; }
skip() {
    log "SKIPPED: $*"
    skipped=1
    exit 0
}
ok() {
    passed=$((passed + 1))
    log "ok   $*"
}
fail() {
    failed=$((failed + 1))
    log "FAIL $*"
    diagnostics
    exit 1
}

diagnostics() {
    if docker inspect "$NAME" >/dev/null 2>&1; then
        log "--- docker logs $NAME (last 30 lines)"
        docker logs "$NAME" 2>&1 | tail -n 30 || true
    fi
    if [ -n "$COMPOSE_UP" ]; then
        log "--- docker-compose ps and logs (last 40 lines)"
        compose ps || true
        compose logs --no-color 2>&1 | tail -n 40 || true
    fi
}

cleanup() {
    set +e
    docker rm -f -v "$NAME" >/dev/null 2>&1
    [ -n "$COMPOSE_UP" ] && compose down -v -t 5 >/dev/null 2>&1
    if [ -n "$STARTED_DOCKERD" ]; then
        log "stopping the dockerd this test started (pid $STARTED_DOCKERD)"
        kill "$STARTED_DOCKERD" 2>/dev/null
        for _ in $(seq 150); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -rf "$WORK"
    # Last, so it is the closing line of the output.
    if [ "$skipped" = 1 ]; then
        echo "test-docker: $passed passed, $failed failed, 1 skipped"
    else
        echo "test-docker: $passed passed, $failed failed"
    fi
}
trap cleanup EXIT

# wait_until SECONDS WHAT COMMAND...: runs COMMAND every 0.2 s until it succeeds; fails the
# test with WHAT after SECONDS.
wait_until() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for $what"
        sleep 0.2
    done
}

# free_ports N: N port numbers free for both TCP and UDP on 127.0.0.1.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks, ports = [], []
while len(ports) < int(sys.argv[1]):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close()
        continue
    socks += [t, u]
    ports.append(port)
print(" ".join(map(str, ports)))
EOF
}

# ---------------------------------------------------------------------------------------------
# 1. An engine.
need_install=""
command -v dockerd >/dev/null 2>&1 || need_install="$need_install docker.io"
command -v debootstrap >/dev/null 2>&1 || need_install="$need_install debootstrap"
command -v docker-compose >/dev/null 2>&1 || need_install="$need_install docker-compose"
command -v nc >/dev/null 2>&1 || need_install="$need_install netcat-openbsd"
if [ -n "$need_install" ]; then
    [ "$(id -u)" -eq 0 ] || skip "missing$need_install and not root to install them (sudo apt-get install -y$need_install)"
    log "installing$need_install"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -q $need_install >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $need_install >/dev/null 2>&1; }; } ||
        skip "apt-get install$need_install failed: no Docker engine can be had here"
fi

if docker info >/dev/null 2>&1; then
    log "using the running Docker engine"
else
    [ "$(id -u)" -eq 0 ] || skip "no Docker engine runs and starting dockerd needs root"
    # No bridge and no iptables: containers use the host network only (nothing leaves loopback).
    dockerd --bridge=none --iptables=false --ip6tables=false \
        --pidfile "$WORK/dockerd.pid" >"$WORK/dockerd.log" 2>&1 &
    STARTED_DOCKERD=$!
    log "started dockerd --bridge=none --iptables=false (pid $STARTED_DOCKERD)"
    deadline=$((SECONDS + 60))
    until docker info >/dev/null 2>&1; do
        if ! kill -0 "$STARTED_DOCKERD" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            tail -n 5 "$WORK/dockerd.log" | sed 's/^/  dockerd: /'
            STARTED_DOCKERD=""
            skip "dockerd could not start here (log above): no Docker engine"
        fi
        sleep 0.5
    done
fi
ok "Docker engine $(docker version -f '{{.Server.Version}}' 2>/dev/null)"

# ---------------------------------------------------------------------------------------------
# 2. Base images from Debian's packages.
mirror() {
    local m=""
    if [ -r /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" && $0 ~ /bookworm/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)
    fi
    if [ -z "$m" ]; then
        m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
            awk '/^URIs:/ { u = $2 } /^Suites:/ && / bookworm( |$)/ && u { print u; exit }')
    fi
    if [ -z "$m" ]; then
        m=$(cat /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }')
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

if docker image inspect debian:bookworm >/dev/null 2>&1 &&
    docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    log "base images debian:bookworm and debian:bookworm-slim exist (cached)"
else
    MIRROR=$(mirror)
    log "debootstrap --variant=minbase bookworm from $MIRROR"
    t0=$SECONDS
    debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
        tail -n 20 "$WORK/debootstrap.log"
        fail "debootstrap failed (log above)"
    }
    rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
    tar -C "$WORK/rootfs" -c . | docker import - debian:bookworm >/dev/null
    docker tag debian:bookworm debian:bookworm-slim
    rm -rf "$WORK/rootfs"
    ok "base images debian:bookworm and debian:bookworm-slim made in $((SECONDS - t0))s"
fi

# ---------------------------------------------------------------------------------------------
# 3. The real Dockerfile.
t0=$SECONDS
flock /tmp/spillway-build.lock docker build --network host -t "$IMAGE" . >"$WORK/build.log" 2>&1 || {
    tail -n 30 "$WORK/build.log"
    fail "docker build failed (log above)"
}
ok "docker build --network host -t $IMAGE . in $((SECONDS - t0))s"

# ---------------------------------------------------------------------------------------------
# 4. The image alone, on the host network.
read -r P_TCP P_SYSLOG P_HTTP P_ADMIN P_GRPC <<<"$(free_ports 5)"
mkdir -p "$WORK/data"
chown 10001:10001 "$WORK/data" 2>/dev/null || chmod 0777 "$WORK/data"
docker run -d --name "$NAME" --network host \
    -e SPILLWAY_BIND=127.0.0.1 -e SPILLWAY_TCP_PORT="$P_TCP" -e SPILLWAY_SYSLOG_PORT="$P_SYSLOG" \
    -e SPILLWAY_HTTP_PORT="$P_HTTP" -e SPILLWAY_ADMIN_PORT="$P_ADMIN" -e SPILLWAY_GRPC_PORT="$P_GRPC" \
    -v "$WORK/data:/var/lib/spillway/data" "$IMAGE" >/dev/null
wait_until 30 "/ready on the admin port" curl -fsS "http://127.0.0.1:$P_ADMIN/ready"
ok "container $NAME ready (tcp $P_TCP, udp $P_SYSLOG, http $P_HTTP, admin $P_ADMIN)"

OUT=$WORK/data/out/events.ndjson
mark=$$-$RANDOM
curl -fsS -X POST "http://127.0.0.1:$P_HTTP/v1/events" -d "{\"msg\":\"curl $mark\"}" >/dev/null ||
    fail "curl POST /v1/events"
echo "{\"msg\":\"nc $mark\"}" | nc -q0 127.0.0.1 "$P_TCP" || fail "nc to the tcp input"
logger -n 127.0.0.1 -P "$P_SYSLOG" -d -t dockertest "logger $mark"
for via in curl nc logger; do
    wait_until 30 "the $via event in the mounted $OUT" grep -q "\"$via $mark\"" "$OUT"
done
ok "events sent with curl, nc and logger are in the mounted data/out/events.ndjson"

health() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$1")" = healthy ]; }
wait_until 60 "the HEALTHCHECK to report healthy" health "$NAME"
ok "HEALTHCHECK healthy"

docker exec "$NAME" spillway ctl stats >"$WORK/stats.txt" 2>&1 || {
    cat "$WORK/stats.txt"
    fail "docker exec $NAME spillway ctl stats"
}
grep -Eq '^  app +received 1 ' "$WORK/stats.txt" || {
    cat "$WORK/stats.txt"
    fail "ctl stats shows the tcp input's event"
}
ok "docker exec spillway ctl stats"

docker exec "$NAME" sqlite3 data/spillway.db ".backup data/backup.db" ||
    fail "docker exec sqlite3 .backup of the running state"
[ "$(docker exec "$NAME" sqlite3 data/backup.db 'PRAGMA integrity_check;')" = ok ] ||
    fail "the online backup passes integrity_check"
ok "online backup of data/spillway.db with sqlite3 .backup through docker exec"

# A burst, then docker stop at once: every event of it must be in the file after exit 0.
burst=20000
python3 -c "
import sys
for i in range($burst):
    sys.stdout.write('{\"msg\":\"burst $mark %d\",\"trace_id\":\"%08x\"}\n' % (i, i))
" | nc -q0 127.0.0.1 "$P_TCP" || fail "nc burst"
docker stop -t 30 "$NAME" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || fail "docker stop: exit code $code, want 0"
got=$(grep -c "\"burst $mark " "$OUT" || true)
[ "$got" = "$burst" ] || fail "docker stop drained $got of $burst events"
docker logs "$NAME" 2>&1 | grep -q 'stopped: everything in flight was delivered' ||
    fail "the log says everything in flight was delivered"
ok "docker stop drained all $burst events of a burst and the container exited 0"
docker rm -v "$NAME" >/dev/null

# ---------------------------------------------------------------------------------------------
# 4b. Docker's own log drivers into the image (issue 18): fluentd (the forward protocol), gelf
# and syslog, from containers of the base image, all on the host network.
read -r P_FWD P_GELF P_SYS P_ADMIN2 <<<"$(free_ports 4)"
mkdir -p "$WORK/drivers"
chown 10001:10001 "$WORK/drivers" 2>/dev/null || chmod 0777 "$WORK/drivers"
cat >"$WORK/drivers.yaml" <<EOF
data_dir: ./data
admin: {socket: ./run/admin.sock, http: "127.0.0.1:$P_ADMIN2"}
inputs:
  - {name: fluentd, type: forward, listen: "127.0.0.1:$P_FWD"}
  - {name: gelf, type: udp, listen: "127.0.0.1:$P_GELF", format: gelf}
  - {name: syslog, type: udp, listen: "127.0.0.1:$P_SYS", format: syslog}
routes: [{name: all, sinks: [out]}]
sinks: [{name: out, type: file, path: ./data/out/drivers.ndjson}]
EOF
chmod 0644 "$WORK/drivers.yaml"
docker run -d --name "$NAME" --network host -v "$WORK/drivers.yaml:/etc/spillway/drivers.yaml:ro" \
    -v "$WORK/drivers:/var/lib/spillway/data" "$IMAGE" run -c /etc/spillway/drivers.yaml >/dev/null
wait_until 30 "/ready of the log drivers' spillway" curl -fsS "http://127.0.0.1:$P_ADMIN2/ready"
mark=drivers-$$-$RANDOM
docker run --rm --network host --name "drv-fluentd-$$" --log-driver fluentd \
    --log-opt "fluentd-address=tcp://127.0.0.1:$P_FWD" --log-opt "tag=docker.{{.Name}}" \
    debian:bookworm echo "fluentd $mark" >/dev/null || fail "a container with --log-driver fluentd"
docker run --rm --network host --name "drv-gelf-$$" --log-driver gelf \
    --log-opt "gelf-address=udp://127.0.0.1:$P_GELF" \
    debian:bookworm echo "gelf $mark" >/dev/null || fail "a container with --log-driver gelf"
docker run --rm --network host --name "drv-syslog-$$" --log-driver syslog \
    --log-opt "syslog-address=udp://127.0.0.1:$P_SYS" --log-opt syslog-format=rfc5424 \
    --log-opt tag=drvtest debian:bookworm echo "syslog $mark" >/dev/null ||
    fail "a container with --log-driver syslog"
DRV=$WORK/drivers/out/drivers.ndjson
for via in fluentd gelf syslog; do
    wait_until 30 "the $via driver's line in $DRV" grep -q "\"$via $mark\"" "$DRV"
done
python3 - "$DRV" "$mark" "$$" <<'EOF' || fail "the log drivers' events (above)"
import json, sys
path, mark, pid = sys.argv[1], sys.argv[2], sys.argv[3]
ev = {e["message"].split()[0]: e for e in map(json.loads, open(path))
      if e.get("message", "").endswith(mark)}
f, g, s = ev["fluentd"], ev["gelf"], ev["syslog"]
problems = []
if not (f["source"] == "fluentd" and f["tag"] == f"docker.drv-fluentd-{pid}"
        and f["container_name"] == f"/drv-fluentd-{pid}" and len(f["container_id"]) == 64
        and f["stream"] == "stdout"):
    problems.append(f"fluentd: {f}")
if not (g["source"] == "gelf" and g["container_name"] == f"drv-gelf-{pid}"
        and g["image_name"] == "debian:bookworm" and g["level"] == "INFO" and g.get("host")):
    problems.append(f"gelf: {g}")
if not (s["source"] == "syslog" and s["service"] == "drvtest"):
    problems.append(f"syslog: {s}")
if problems:
    print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
ok "Docker's fluentd, gelf and syslog log drivers: events with their container fields"
docker rm -f -v "$NAME" >/dev/null

# ---------------------------------------------------------------------------------------------
# 5. docker-compose, host network, side-by-side profile.
read -r T_SPILLWAY_TCP T_SPILLWAY_SYSLOG T_SPILLWAY_HTTP T_SPILLWAY_ADMIN T_SPILLWAY_GRPC \
    T_SBS_TCP T_SBS_SYSLOG T_SBS_HTTP T_SBS_ADMIN T_RECEIVER_HTTP T_RECEIVER_ADMIN <<<"$(free_ports 11)"
export T_SPILLWAY_TCP T_SPILLWAY_SYSLOG T_SPILLWAY_HTTP T_SPILLWAY_ADMIN T_SPILLWAY_GRPC \
    T_SBS_TCP T_SBS_SYSLOG T_SBS_HTTP T_SBS_ADMIN T_RECEIVER_HTTP T_RECEIVER_ADMIN

# docker-compose 1.29 refuses published ports with network_mode: host, and an override cannot
# remove a list: the merged config (docker-compose.yml + the override) is resolved and its
# `ports:` dropped. Everything else is the repository's file as users run it.
docker-compose -f docker-compose.yml -f tests/docker/compose.host.yml config >"$WORK/merged.yml" ||
    fail "docker-compose config with the host-network override"
python3 - "$WORK/merged.yml" <<'EOF' || fail "dropping ports from the merged compose file"
import sys, yaml
path = sys.argv[1]
with open(path) as f:
    c = yaml.safe_load(f)
for name, s in c["services"].items():
    assert s.get("network_mode") == "host", f"service {name} is not on the host network"
    s.pop("ports", None)
with open(path, "w") as f:
    yaml.safe_dump(c, f, sort_keys=False)
EOF
compose() { docker-compose -p "$PROJECT" -f "$WORK/merged.yml" --profile side-by-side "$@"; }
networks_before=$(docker network ls -q | sort)
COMPOSE_UP=1
compose up -d --no-build >"$WORK/compose-up.log" 2>&1 || {
    cat "$WORK/compose-up.log"
    fail "docker-compose up"
}
[ "$(docker network ls -q | sort)" = "$networks_before" ] || fail "docker-compose created a network"
ok "docker-compose up (spillway, loadgen, spillway-sbs, receiver, loadgen-sbs) on the host network"

# stat SERVICE PYTHON-EXPRESSION: true when the expression over `spillway ctl --json CMD`'s
# answer (s) holds; CMD is stats unless STAT_CMD says otherwise.
stat() {
    compose exec -T "$1" spillway ctl --json "${STAT_CMD:-stats}" 2>/dev/null |
        python3 -c "import json, sys; s = json.load(sys.stdin); sys.exit(0 if ($2) else 1)"
}
sink() { echo "next(x for x in s['sinks'] if x['name'] == '$1')"; }
input() { echo "next(x for x in s['inputs'] if x['name'] == '$1')"; }
wait_until 60 "the load generator's events in spillway's file sink" \
    stat spillway "$(input otlp)['accepted'] >= 100 and $(sink events)['delivered'] >= 100"
compose exec -T spillway sh -c 'tail -n 1 data/out/events.ndjson' | grep -q '"loadgen":true' ||
    fail "the load generator's events in the appliance's data/out/events.ndjson"
ok "load generator -> spillway -> data/out/events.ndjson"

wait_until 60 "the shadow sink delivering to the receiver" \
    stat spillway-sbs "$(sink events)['delivered'] >= 100 and $(sink candidate)['delivered'] >= 100"
wait_until 30 "the receiver to accept the shadow copies" \
    stat receiver "$(input shadowed)['accepted'] >= 100"
compose exec -T spillway-sbs spillway ctl compare events candidate --settle 0 >"$WORK/compare.txt" 2>&1 || {
    cat "$WORK/compare.txt"
    fail "spillway ctl compare events candidate"
}
sed 's/^/  /' "$WORK/compare.txt" | head -n 12
ok "side by side: events (file) and candidate (http -> receiver) both deliver; ctl compare runs"

cid=$(compose ps -q spillway)
wait_until 60 "the compose spillway's HEALTHCHECK to report healthy" health "$cid"
ok "compose spillway healthy"

compose stop -t 20 >/dev/null 2>&1 || fail "docker-compose stop"
for svc in spillway spillway-sbs receiver; do
    c=$(docker inspect -f '{{.State.ExitCode}}' "$(compose ps -q "$svc")")
    [ "$c" = 0 ] || fail "docker-compose stop: $svc exited $c, want 0"
done
compose down -v -t 5 >/dev/null 2>&1 || fail "docker-compose down"
COMPOSE_UP=""
ok "docker-compose stop (every spillway exited 0) and down"
