"""The container files hold together without a Docker engine: docker-compose accepts
docker-compose.yml (with every profile, and with the host-network override of make
test-docker), the Dockerfile keeps its promises (exec form, non-root, healthcheck, volumes,
ports), every config in docker/ passes `spillway check`, and the container config really serves
on the ports its environment gives it. tests/docker/run.sh (make test-docker) runs the image and
the compose file for real; conf/examples/ is checked by test_examples.py. The metrics profile's
Prometheus image cannot be fetched here: its configs pass promtool and run, without Docker, with
Debian's Prometheus."""
import glob
import json
import os
import re
import shutil
import socket
import subprocess

from spillway_test import (BIN, SRC, KafkaMock, Spillway, check, check_configs, count_lines,
                           free_port, main, read_ndjson, run, wait_for)

COMPOSE = os.path.join(SRC, "docker-compose.yml")
HOST_OVERRIDE = os.path.join(SRC, "tests", "docker", "compose.host.yml")
SERVICES = {"spillway", "loadgen", "kafka", "kafka-init", "spillway-sbs", "receiver",
            "loadgen-sbs", "spillway-metrics", "prometheus", "loadgen-metrics"}
PROFILES = {"kafka": "kafka", "kafka-init": "kafka", "spillway-sbs": "side-by-side",
            "receiver": "side-by-side", "loadgen-sbs": "side-by-side",
            "spillway-metrics": "metrics", "prometheus": "metrics", "loadgen-metrics": "metrics"}
ALL = ["--profile", "kafka", "--profile", "side-by-side", "--profile", "metrics"]
HOST_ENV = {v: str(20000 + i) for i, v in enumerate(
    ["T_SPILLWAY_TCP", "T_SPILLWAY_SYSLOG", "T_SPILLWAY_HTTP", "T_SPILLWAY_ADMIN", "T_SBS_TCP",
     "T_SBS_SYSLOG", "T_SBS_HTTP", "T_SBS_ADMIN", "T_RECEIVER_HTTP", "T_RECEIVER_ADMIN",
     "T_SPILLWAY_GRPC"])}


def compose(*args, env=None):
    return run(["docker-compose", "-f", COMPOSE, *args], cwd=SRC,
               env=dict(os.environ, **(env or {})))


def test_docker_compose_config():
    if not shutil.which("docker-compose"):
        print("skip test_docker_compose_config: docker-compose is not installed "
              "(apt-get install docker-compose to run this check)")
        return
    r = compose("config", "-q")
    check(r.returncode == 0, f"docker-compose config refuses docker-compose.yml:\n{r.stderr}")
    check("WARNING" not in r.stderr and "not set" not in r.stderr,
          f"docker-compose config warns:\n{r.stderr}")
    r = compose(*ALL, "config", "--services")
    check(r.returncode == 0, f"docker-compose config with every profile:\n{r.stderr}")
    check(set(r.stdout.split()) == SERVICES, f"services: {sorted(r.stdout.split())}")
    r = compose(*ALL, "config")
    text = r.stdout
    blocks = service_blocks(text)
    for name, b in blocks.items():
        want = PROFILES.get(name)
        got = re.search(r"\n    profiles:\n    - (\S+)", b)
        check((got and got.group(1)) == want, f"service {name}: profile {got and got.group(1)}, "
              f"want {want}")
    check("image: apache/kafka:" in text, "the kafka profile runs the official apache/kafka image")
    check("KAFKA_PROCESS_ROLES: broker,controller" in text, "Kafka in KRaft mode (no ZooKeeper)")
    check("zookeeper" not in text.lower(), "no ZooKeeper")
    kafka = blocks["kafka"]
    check("KAFKA_LOG_DIRS: /var/lib/kafka/data" in kafka
          and "kafka-data:/var/lib/kafka/data" in kafka,
          f"Kafka's log in an explicit directory on a named volume:\n{kafka}")
    check(env_of(blocks["spillway"]).get("SPILLWAY_WHEN_FULL") == "block",
          f"spillway blocks unless told to spill:\n{blocks['spillway']}")
    # The metrics profile: Prometheus (the official image) with its remote write receiver,
    # scraping spillway-metrics, which remote-writes to it.
    prom = blocks["prometheus"]
    check("image: prom/prometheus:" in prom and "--web.enable-remote-write-receiver" in prom
          and "./docker/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom.replace(
              os.path.join(SRC, "docker"), "./docker")
          and "prometheus-data:/prometheus" in prom, f"prometheus:\n{prom}")
    check(env_of(blocks["spillway-metrics"]).get("PROMETHEUS_URL")
          == "http://prometheus:9090/api/v1/write",
          f"spillway-metrics: {blocks['spillway-metrics']}")
    with open(os.path.join(SRC, "docker", "prometheus.yml")) as f:
        check('targets: ["spillway-metrics:8686"]' in f.read(),
              "docker/prometheus.yml scrapes spillway-metrics' /metrics")

    # The kafka profile with spill on: the appliance itself spills to the profile's broker.
    r = compose("config", env={"COMPOSE_PROFILES": "kafka", "SPILLWAY_WHEN_FULL": "spill"})
    check(r.returncode == 0, f"COMPOSE_PROFILES=kafka SPILLWAY_WHEN_FULL=spill:\n{r.stderr}")
    env = env_of(service_blocks(r.stdout)["spillway"])
    check(env.get("SPILLWAY_WHEN_FULL") == "spill" and env.get("KAFKA_BROKERS") == "kafka:9092",
          f"spillway spills to the kafka service: {env}")
    with open(os.path.join(SRC, "docker", "spillway.yaml")) as f:
        conf = f.read()
    check("when_full: ${SPILLWAY_WHEN_FULL:-block}" in conf
          and "${KAFKA_BROKERS:-kafka:9092}" in conf,
          "docker/spillway.yaml takes when_full and the brokers from that environment")

    # make test-docker's override puts every service on the host network (no bridge network).
    r = run(["docker-compose", "-f", COMPOSE, "-f", HOST_OVERRIDE, *ALL, "config"], cwd=SRC,
            env=dict(os.environ, **HOST_ENV))
    check(r.returncode == 0, f"docker-compose config with the host override:\n{r.stderr}")
    blocks = service_blocks(r.stdout)
    check(set(blocks) == SERVICES, f"the override covers every service: {sorted(blocks)}")
    for name, b in blocks.items():
        check("network_mode: host" in b, f"service {name} is not on the host network:\n{b}")
    # On the host network a service name does not resolve: with the kafka profile every
    # address is literal, and no two services listen on the same port.
    check(not re.search(r"(?<![\w/.-])kafka:\d", r.stdout),
          "a compose service name left in the host-network config:\n"
          + "\n".join(l for l in r.stdout.splitlines() if re.search(r"(?<![\w/.-])kafka:\d", l)))
    kenv = env_of(blocks["kafka"])
    check(kenv.get("KAFKA_ADVERTISED_LISTENERS") == "PLAINTEXT://127.0.0.1:19092"
          and kenv.get("KAFKA_CONTROLLER_QUORUM_VOTERS") == "1@127.0.0.1:19093"
          and "127.0.0.1:19092" in blocks["kafka"].split("healthcheck:", 1)[1],
          f"the broker on 127.0.0.1:19092, its controller on 19093:\n{blocks['kafka']}")
    check("- 127.0.0.1:19092" in blocks["kafka-init"], f"kafka-init: {blocks['kafka-init']}")
    check(env_of(blocks["spillway"]).get("KAFKA_BROKERS") == "127.0.0.1:19092",
          f"spillway spills to the host-network broker: {blocks['spillway']}")
    check(not re.search(r"(?<![\w/.-])(prometheus|spillway-metrics):\d", r.stdout),
          "a metrics service name left in the host-network config")
    check(env_of(blocks["spillway-metrics"]).get("PROMETHEUS_URL")
          == "http://127.0.0.1:19090/api/v1/write"
          and "--web.listen-address=127.0.0.1:19090" in blocks["prometheus"]
          and "prometheus.host.yml" in blocks["prometheus"], "the metrics profile on 127.0.0.1")
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", kenv["KAFKA_LISTENERS"])]
    ports.append(19090)  # Prometheus
    for name in ("spillway", "spillway-sbs", "receiver", "spillway-metrics"):
        ports += [int(v) for k, v in env_of(blocks[name]).items() if k.endswith("_PORT")]
    check(len(ports) == len(set(ports)), f"two services on one port: {sorted(ports)}")


def test_prometheus_configs():
    """docker/prometheus.yml and its host-network twin pass promtool (Debian's prometheus
    package) and scrape the same jobs."""
    configs = [os.path.join(SRC, "docker", "prometheus.yml"),
               os.path.join(SRC, "tests", "docker", "prometheus.host.yml")]
    check(shutil.which("promtool"), "promtool is missing: apt-get install prometheus "
          "(tools/deps.sh installs it)")
    for c in configs:
        r = run(["promtool", "check", "config", c])
        check(r.returncode == 0, f"promtool check config {c}:\n{r.stdout}{r.stderr}")
    jobs = [re.findall(r"job_name: (\S+)", open(c).read()) for c in configs]
    check(jobs[0] == jobs[1] == ["spillway", "prometheus"], f"jobs: {jobs}")


def test_metrics_profile_without_docker():
    """The metrics profile's two configs run as compose runs them, without Docker: spillway with
    docker/spillway-metrics.yaml and a real Prometheus with docker/prometheus.yml (the scrape
    target and interval moved to the test's). Prometheus scrapes spillway's /metrics, and the
    request counts spillway makes of loadgen's access logs reach it through remote write."""
    from prom_test import Prometheus
    with open(os.path.join(SRC, "docker", "prometheus.yml")) as f:
        pconf = f.read().replace("15s", "1s")
    env = {"SPILLWAY_BIND": "127.0.0.1", "SPILLWAY_TCP_PORT": str(free_port()),
           "SPILLWAY_STATSD_PORT": str(free_port(socket.SOCK_DGRAM)),
           "SPILLWAY_HTTP_PORT": str(free_port()), "SPILLWAY_ADMIN_PORT": str(free_port())}
    pconf = pconf.replace("spillway-metrics:8686", f"127.0.0.1:{env['SPILLWAY_ADMIN_PORT']}")
    pconf = pconf.replace("localhost:9090", "SELF")
    with Prometheus(config=pconf) as prom:
        env["PROMETHEUS_URL"] = prom.url + "/api/v1/write"
        conf = os.path.join(SRC, "docker", "spillway-metrics.yaml")
        with open(conf) as f:
            text = f.read().replace("interval: 10s", "interval: 500ms")
        with Spillway(text, env=env,
                      extra_files={"scripts/examples/" + n: open(os.path.join(
                          SRC, "scripts", "examples", n)).read()
                          for n in ("metrics_only.lua", "access_metrics.lua")}) as sw:
            sw.start()
            body = "".join(json.dumps({"msg": "demo", "service": "cart", "level": "INFO",
                                       "status": 200, "duration_ms": 12,
                                       "trace_id": "%032x" % i}) + "\n" for i in range(50))
            r = run(["curl", "-fsS", "-X", "POST", "--data-binary", body,
                     f"http://127.0.0.1:{env['SPILLWAY_HTTP_PORT']}/v1/events"])
            check(r.returncode == 0, f"POST: {r.stderr}")
            subprocess.run(["socat", "-u", "-", f"UDP:127.0.0.1:{env['SPILLWAY_STATSD_PORT']}"],
                           input=b"deploys:1|c|#env:demo\n", timeout=30, check=True)

            def have(expr):
                return prom.query(expr)
            wait_for(lambda: have('http_requests_total{service="cart",status="200"}'), 60,
                     "the access route's counts in Prometheus", interval=0.5)
            wait_for(lambda: have('spillway_input_received_total{job="spillway",input="otlp"}'),
                     60, "spillway's /metrics scraped", interval=0.5)
            wait_for(lambda: have('deploys_total{env="demo"}'), 60, "statsd in Prometheus",
                     interval=0.5)
            v = list(have('http_requests_total{service="cart",status="200"}').values())
            check(v == ["50"], f"50 requests counted: {v}")
            check(sw.stop() == 0, "clean stop")


def service_blocks(config):
    """{service name: its text} from `docker-compose config` output (standard library only)."""
    body = ("\n" + config).split("\nservices:\n", 1)[1]
    body = re.split(r"\n(?=[a-z])", body, 1)[0]
    parts = re.split(r"^  ([a-z][a-z0-9-]*):\n", body, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def env_of(block):
    """{NAME: value} of a service's environment in `docker-compose config` output."""
    m = re.search(r"(?:^|\n)    environment:\n((?:      .*\n)+)", block)
    pairs = re.findall(r"^      ([A-Z0-9_]+): (.*)$", m.group(1) if m else "", flags=re.M)
    return {k: v.strip("'\"") for k, v in pairs}


def dockerfile_instructions():
    """(INSTRUCTION, arguments) pairs of the Dockerfile, continuation lines joined."""
    with open(os.path.join(SRC, "Dockerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_promises():
    ins = dockerfile_instructions()
    froms = [a for i, a in ins if i == "FROM"]
    check(len(froms) == 2 and froms[0].startswith("debian:bookworm ")
          and froms[1] == "debian:bookworm-slim", f"multi-stage bookworm -> bookworm-slim: {froms}")
    runtime = ins[[n for n, (i, _) in enumerate(ins) if i == "FROM"][1]:]
    run_lines = " ".join(a for i, a in runtime if i == "RUN")
    check("-dev" not in run_lines and "build-essential" not in run_lines,
          "the runtime stage installs no -dev package and no compiler")
    last = {}
    for i, a in runtime:
        last[i] = a
    check(last.get("USER") not in (None, "root", "0"), f"runs as a non-root user: {last.get('USER')}")
    entry = json.loads(last["ENTRYPOINT"])
    cmd = json.loads(last["CMD"])
    check(entry + cmd == ["/usr/local/bin/spillway", "run", "-c", "/etc/spillway/spillway.yaml"],
          f"exec form, spillway run -c /etc/spillway/spillway.yaml: {entry + cmd}")
    check("/health" in last.get("HEALTHCHECK", ""), "HEALTHCHECK on the admin /health")
    volumes = json.loads(last["VOLUME"])
    check({"/var/lib/spillway/data", "/var/lib/spillway/scripts"} <= set(volumes),
          f"data/ and scripts/ are volumes: {volumes}")
    exposed = set(last["EXPOSE"].split())
    check({"5170/tcp", "5514/udp", "4318/tcp", "8686/tcp"} <= exposed, f"EXPOSE: {exposed}")
    with open(os.path.join(SRC, ".dockerignore")) as f:
        ignored = f.read().split()
    check(".git" in ignored and any(p.startswith("build") for p in ignored),
          f".dockerignore leaves out .git and build trees: {ignored}")


def test_docker_configs_pass_check():
    configs = sorted(glob.glob(os.path.join(SRC, "docker", "*.yaml")))
    check(len(configs) >= 3, f"docker/ holds the container configs: {configs}")
    check_configs(configs, "container configs")


def test_container_config_serves_on_its_environment():
    """docker/spillway.yaml as the image runs it (working directory with scripts/ and data/),
    moved to 127.0.0.1 and free ports by its environment, as make test-docker does."""
    with open(os.path.join(SRC, "scripts", "default.lua")) as f:
        script = f.read()
    env = {"SPILLWAY_BIND": "127.0.0.1", "SPILLWAY_TCP_PORT": str(free_port()),
           "SPILLWAY_SYSLOG_PORT": str(free_port(socket.SOCK_DGRAM)),
           "SPILLWAY_HTTP_PORT": str(free_port()), "SPILLWAY_ADMIN_PORT": str(free_port())}
    with Spillway(extra_files={"scripts/default.lua": script}, env=env,
                  args=["-c", os.path.join(SRC, "docker", "spillway.yaml")]) as sw:
        sw.start()
        admin = f"http://127.0.0.1:{env['SPILLWAY_ADMIN_PORT']}"
        r = run(["curl", "-fsS", admin + "/health"])
        check(r.returncode == 0 and "ok" in r.stdout, f"/health: {r.stdout} {r.stderr}")
        r = run(["curl", "-fsS", "-X", "POST", "-d", '{"msg":"via curl"}',
                 f"http://127.0.0.1:{env['SPILLWAY_HTTP_PORT']}/v1/events"])
        check(r.returncode == 0, f"POST /v1/events: {r.stderr}")
        subprocess.run(["nc", "-q0", "127.0.0.1", env["SPILLWAY_TCP_PORT"]],
                       input=b'{"msg":"via nc"}\n', timeout=30, check=True)
        out = sw.path("data", "out", "events.ndjson")
        wait_for(lambda: count_lines(out) >= 2, 30, "both events in data/out/events.ndjson")
        r = run([BIN, "ctl", "stats"], cwd=sw.dir)
        check(r.returncode == 0 and "app" in r.stdout, f"ctl stats from the working directory: "
              f"{r.stdout} {r.stderr}")
        r = run([BIN, "ctl", "--json", "stats"], cwd=sw.dir)
        parts = json.loads(r.stdout)["partitions"]
        check(not any("spilled" in p for p in parts), f"no spill without SPILLWAY_WHEN_FULL: {parts}")
        check(sw.stop() == 0, "clean stop")
        check(sorted(e["message"] for e in read_ndjson(out)) == ["via curl", "via nc"],
              f"events: {read_ndjson(out)}")


def test_spill_config_against_a_kafka_broker():
    """docker/spillway.yaml with SPILLWAY_WHEN_FULL=spill (the kafka profile's set-up) starts
    against a Kafka broker with its spill topic (librdkafka's mock cluster: the apache/kafka
    image cannot be fetched here), delivers, reports its spill counters, and stops cleanly."""
    with KafkaMock() as mock:
        bootstrap = mock.bootstrap
        mock.cmd("topic spillway-spill 2")
        with open(os.path.join(SRC, "scripts", "default.lua")) as f:
            script = f.read()
        env = {"SPILLWAY_WHEN_FULL": "spill", "KAFKA_BROKERS": bootstrap,
               "SPILLWAY_BIND": "127.0.0.1",
               "SPILLWAY_TCP_PORT": str(free_port()),
               "SPILLWAY_SYSLOG_PORT": str(free_port(socket.SOCK_DGRAM)),
               "SPILLWAY_HTTP_PORT": str(free_port()), "SPILLWAY_ADMIN_PORT": str(free_port())}
        with Spillway(extra_files={"scripts/default.lua": script}, env=env,
                      args=["-c", os.path.join(SRC, "docker", "spillway.yaml")]) as sw:
            sw.start()
            subprocess.run(["nc", "-q0", "127.0.0.1", env["SPILLWAY_TCP_PORT"]],
                           input=b'{"msg":"spill-ready appliance"}\n', timeout=30, check=True)
            out = sw.path("data", "out", "events.ndjson")
            wait_for(lambda: count_lines(out) >= 1, 30, "the event in data/out/events.ndjson")
            r = run([BIN, "ctl", "--json", "stats"], cwd=sw.dir)
            parts = json.loads(r.stdout)["partitions"]
            check(len(parts) == 2 and all("spilled" in p and p["spilling"] is False
                                          for p in parts), f"spill counters: {parts}")
            check(sw.stop() == 0, "clean stop")


if __name__ == "__main__":
    main([test_docker_compose_config, test_prometheus_configs, test_metrics_profile_without_docker,
          test_dockerfile_promises, test_docker_configs_pass_check,
          test_container_config_serves_on_its_environment, test_spill_config_against_a_kafka_broker])
