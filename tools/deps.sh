#!/bin/sh
# Installs the Debian packages spillway needs to build and test, when they are missing.
# As root it runs apt-get; otherwise it prints the exact command to run.
# `tools/deps.sh fuzz` (what `make fuzz` runs) also wants clang and libFuzzer. The GELF, forward
# and gRPC tests install clients from npm at run time: Debian's nodejs and npm are added when
# there is no `npm` command (one from elsewhere, such as NodeSource's nodejs, is kept).
set -eu
PKGS="build-essential cmake pkg-config libevent-dev librdkafka-dev libjansson-dev liblua5.4-dev
libsqlite3-dev libyaml-dev libcmocka-dev libjsmn-dev zlib1g-dev libssl-dev libcurl4-openssl-dev
libxxhash-dev protobuf-c-compiler libprotobuf-c-dev libnghttp2-dev libmsgpack-dev libsystemd-dev
libsnappy-dev python3 curl socat netcat-openbsd bsdutils tmux kcat protobuf-compiler python3-protobuf
python3-grpcio python3-fluent-logger python3-msgpack systemd-journal-remote python3-h2 python3-snappy
prometheus prometheus-node-exporter"
FUZZ_PKGS="clang libclang-rt-dev"
[ "${1:-}" = fuzz ] && PKGS="$PKGS $FUZZ_PKGS"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "spillway needs these Debian packages; run:" >&2
    echo "  sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $missing >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null; }
