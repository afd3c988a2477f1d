# spillway as a container: built on Debian bookworm, run on bookworm-slim with only the
# runtime libraries. docs/operations.md explains the volumes, ports and environment.
#
#   docker build -t spillway .
#   docker run -d --name spillway -p 5170:5170 -p 5514:5514/udp -p 4318:4318 -p 4317:4317 \
#       -p 8686:8686 spillway
#   docker exec spillway spillway ctl stats

FROM debian:bookworm AS build
# The -dev packages of tools/deps.sh, without the test-only ones (cmocka, socat, kcat, ...).
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      build-essential cmake pkg-config libevent-dev librdkafka-dev libjansson-dev \
      liblua5.4-dev libsqlite3-dev libyaml-dev libjsmn-dev zlib1g-dev libssl-dev \
      libcurl4-openssl-dev libxxhash-dev protobuf-c-compiler libprotobuf-c-dev \
      libnghttp2-dev libmsgpack-dev libsystemd-dev libsnappy-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY tools/ tools/
COPY conf/ conf/
COPY scripts/ scripts/
COPY bench/ bench/
COPY proto/ proto/
COPY core/ core/
COPY pipeline/ pipeline/
COPY collector/ collector/
COPY router/ router/
COPY control/ control/
COPY ctl/ ctl/
COPY app/ app/
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPILLWAY_TESTS=OFF >/dev/null \
 && cmake --build /build -j2 --target spillway \
 && /build/spillway version

FROM debian:bookworm-slim
# Runtime libraries only; curl serves the HEALTHCHECK, ca-certificates the TLS sinks, the
# sqlite3 shell online backups of the state (docs/operations.md).
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      libevent-2.1-7 libevent-pthreads-2.1-7 librdkafka1 libjansson4 liblua5.4-0 \
      libsqlite3-0 libyaml-0-2 zlib1g libcurl4 libxxhash0 libprotobuf-c1 libnghttp2-14 \
      libmsgpackc2 libssl3 libsystemd0 libsnappy1v5 ca-certificates curl \
      sqlite3 \
 && rm -rf /var/lib/apt/lists/*
# A fixed uid so a bind-mounted data directory can be given to it (chown 10001).
RUN groupadd --system --gid 10001 spillway \
 && useradd --system --uid 10001 --gid spillway --home-dir /var/lib/spillway \
      --no-create-home --shell /usr/sbin/nologin spillway
COPY --from=build /build/spillway /usr/local/bin/spillway
COPY docker/*.yaml /etc/spillway/
COPY docker/loadgen.sh /usr/local/bin/spillway-loadgen
COPY scripts/ /var/lib/spillway/scripts/
WORKDIR /var/lib/spillway
RUN mkdir -p data run \
 && chown -R spillway:spillway /var/lib/spillway \
 && for c in /etc/spillway/*.yaml; do spillway check -c "$c" || exit 1; done
USER spillway
# `spillway ctl` (docker exec) finds the admin socket from anywhere.
ENV SPILLWAY_ADMIN_SOCKET=/var/lib/spillway/run/admin.sock
VOLUME ["/var/lib/spillway/data", "/var/lib/spillway/scripts"]
# NDJSON over TCP, syslog over UDP, HTTP (NDJSON and OTLP/HTTP JSON), admin HTTP.
EXPOSE 5170/tcp 5514/udp 4318/tcp 4317/tcp 8686/tcp
# docker stop sends SIGTERM to spillway itself (exec form, no shell in between): it drains
# to the sinks within shutdown_timeout (8s in docker/spillway.yaml, under docker's 10s).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["sh", "-c", "curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:${SPILLWAY_ADMIN_PORT:-8686}/health"]
ENTRYPOINT ["/usr/local/bin/spillway"]
CMD ["run", "-c", "/etc/spillway/spillway.yaml"]
