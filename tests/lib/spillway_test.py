"""Integration-test helpers: run the real spillway binary in a temporary directory on free
ports, feed it with the clients a user has (socat, curl, logger), and wait on conditions with
generous bounds (never fixed sleeps for correctness)."""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("SPILLWAY_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "spillway")
SRC = os.environ.get("SPILLWAY_SRC") or os.path.join(os.path.dirname(__file__), "..", "..")
KAFKA_MOCK = os.environ.get("KAFKA_MOCK") or os.path.join(
    os.path.dirname(BIN), "tests", "kafka_mock")

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

# Sanitizer builds (make test-sanitize, docs/testing.md): every process a test starts writes its
# sanitizer reports to SANITIZER_DIR/report.<pid> rather than to its stderr, so main() fails the
# test on a report from any child, whether or not the test reads that child's stderr or exit code.
SANITIZER_VARS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS")
SANITIZER_DIR = None
if any(v in os.environ for v in SANITIZER_VARS):
    SANITIZER_DIR = tempfile.mkdtemp(prefix="spillway-sanitizer-")
    for v in SANITIZER_VARS:
        opts = os.environ.get(v, "")
        os.environ[v] = (opts + ":" if opts else "") + f"log_path={SANITIZER_DIR}/report"


class HelperProcess:
    """A helper in a process of its own, driven line by line over its stdin and stdout. ok()
    sends a command and checks that it answered "ok"; close() ends its input and waits for it to
    exit (killed after 10 s). A context manager."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ok(self, line, what):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        r = self.p.stdout.readline().strip()
        check(r == "ok", f"{what} {line}: {r}")

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class KafkaMock(HelperProcess):
    """A Kafka cluster on 127.0.0.1: librdkafka's mock cluster, run by tests/tools/kafka_mock in
    its own process. bootstrap is its address; cmd() sends one of that tool's commands (topic,
    down, up, rtt, topic_error, copy) and checks the answer. A context manager, or close() it."""

    def __init__(self, brokers=1):
        super().__init__([KAFKA_MOCK, str(brokers)])
        self.bootstrap = self.p.stdout.readline().split()[1]

    def cmd(self, line):
        self.ok(line, "mock")


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_EPHEMERAL_LOW = _ephemeral_low()
_handed_out = set()


def free_port(kind=socket.SOCK_STREAM):
    """A port nothing is bound to, below the kernel's ephemeral range: a port the kernel hands
    out (bind to 0) is one it may give next to any client's outgoing connection (socat, curl,
    spillway's sinks, another test running in parallel), which then takes it before spillway
    binds it ("Address already in use"). Never the same port twice in one test process."""
    low = max(1024, min(10000, _EPHEMERAL_LOW - 2000))
    for _ in range(1000):
        port = random.randrange(low, _EPHEMERAL_LOW)
        if port in _handed_out:
            continue
        try:
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        _handed_out.add(port)
        return port
    raise AssertionError("no free port below the ephemeral range")


def rss_kib(pid):
    """The resident memory of process pid in KiB, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_for(cond, timeout=30.0, what="condition", interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def read_ndjson(path):
    """Every line of an NDJSON file as parsed JSON; a line that does not parse fails."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            check(line.endswith(b"\n"), f"{path}:{n}: line not terminated")
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise AssertionError(f"{path}:{n}: not JSON ({e}): {line[:200]!r}")
    return out


def count_lines(path):
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def check_canonical(ev, source=None):
    """A canonical event: timestamp, kind, source, received_at (ARCHITECTURE.md)."""
    check(isinstance(ev, dict), f"not an object: {ev!r}")
    check(TS_RE.match(ev.get("timestamp", "")), f"bad timestamp: {ev!r}")
    check(TS_RE.match(ev.get("received_at", "")), f"bad received_at: {ev!r}")
    check(ev.get("kind") in ("log", "metric", "trace", "event"), f"bad kind: {ev!r}")
    if source is not None:
        check(ev.get("source") == source, f"source {ev.get('source')!r} != {source!r}")


class Spillway:
    """One spillway process in its own temporary directory.

    config: YAML text; {tcp}, {udp}, {http}, {grpc}, {admin_http}, {dir} are replaced by free
    ports and the directory. Use as a context manager; the directory is removed unless the test
    failed (then its path is printed for inspection)."""

    def __init__(self, config=None, extra_files=None, env=None, args=None):
        self.dir = tempfile.mkdtemp(prefix="spillway-test-")
        self.ports = {"tcp": free_port(), "udp": free_port(socket.SOCK_DGRAM),
                      "http": free_port(), "grpc": free_port(), "admin_http": free_port()}
        self.config_path = None
        if config is not None:
            text = config
            for k, v in self.ports.items():
                text = text.replace("{" + k + "}", str(v))
            text = text.replace("{dir}", self.dir)
            self.config_path = os.path.join(self.dir, "spillway.yaml")
            with open(self.config_path, "w") as f:
                f.write(text)
        for name, content in (extra_files or {}).items():
            p = os.path.join(self.dir, name)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(content)
        self.env = dict(os.environ, **(env or {}))
        self.args = args
        self.proc = None
        self.log_path = os.path.join(self.dir, "spillway.log")
        self.failed = False

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def start(self, wait_ready=True):
        cmd = [BIN, "run"]
        if self.config_path:
            cmd += ["-c", self.config_path]
        cmd += self.args or []
        self.logf = open(self.log_path, "ab")
        since = os.path.getsize(self.log_path)  # a restart appends: look at the new part
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdout=subprocess.DEVNULL,
                                     stderr=self.logf, env=self.env)
        if wait_ready:
            wait_for(lambda: self.proc.poll() is not None
                     or '"msg":"ready"' in self.log()[since:], 20, "spillway to be ready")
            check(self.proc.poll() is None, f"spillway exited at start:\n{self.log()}")
        return self

    def log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def log_records(self):
        out = []
        for line in self.log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"spillway did not stop within {timeout}s:\n{self.log()[-4000:]}")

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if self.proc and self.proc.poll() is None:
            if sanitizer_report_of(self.proc.pid):  # let it finish writing the report
                try:
                    self.proc.wait(60)
                except subprocess.TimeoutExpired:
                    pass
            self.proc.kill()
            self.proc.wait()
        if getattr(self, "logf", None):
            self.logf.close()
        if et is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print(f"test failed; spillway dir kept: {self.dir}", file=sys.stderr)
            try:
                print(self.log()[-6000:], file=sys.stderr)
            except OSError:
                pass
        return False


class OtlpProtobuf:
    """OTLP protobuf bodies made and read by Google's protobuf library, not by spillway's code:
    tests/lib/otlp_pb.py run by /usr/bin/python3 (Debian's python3-protobuf), with message
    classes protoc (protobuf-compiler) generates from proto/ into a temporary directory. A test
    that needs this fails when those are missing, saying what to install; it never skips."""

    PYTHON = "/usr/bin/python3"
    HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "otlp_pb.py")

    def __init__(self):
        need = ("(apt-get install python3 python3-protobuf python3-snappy protobuf-compiler, or "
                "tools/deps.sh)")
        check(os.path.exists(self.PYTHON), f"{self.PYTHON} not found {need}")
        r = subprocess.run([self.PYTHON, "-c", "import google.protobuf"], capture_output=True)
        check(r.returncode == 0, f"{self.PYTHON} has no google.protobuf {need}")
        protoc = shutil.which("protoc")
        check(protoc, f"protoc not found {need}")
        self.dir = tempfile.mkdtemp(prefix="spillway-otlp-pb-")
        root = os.path.join(SRC, "proto")
        # google/protobuf/*.proto come with python3-protobuf; generating them again would shadow
        # nothing (that package wins) but is not needed.
        protos = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                  if f.endswith(".proto") and "google/protobuf" not in d]
        r = subprocess.run([protoc, f"--python_out={self.dir}", f"-I{root}"] + sorted(protos),
                           capture_output=True, text=True)
        check(r.returncode == 0, f"protoc --python_out failed: {r.stderr}")

    def _run(self, what, kind, data):
        r = subprocess.run([self.PYTHON, self.HELPER, self.dir, what, kind], input=data,
                           capture_output=True, timeout=60)
        check(r.returncode == 0, f"otlp_pb.py {what} {kind}: {r.stderr.decode(errors='replace')}")
        return r.stdout

    def encode(self, kind, doc):
        """The ExportLogs/Trace/MetricsServiceRequest (kind logs, traces, metrics) that the OTLP/JSON
        document doc (a dict) describes, as protobuf bytes."""
        return self._run("encode", kind, json.dumps(doc).encode())

    def decode(self, kind, data):
        """A protobuf Export*ServiceResponse (kind logs, traces, metrics) or google.rpc.Status
        (kind status) as proto3 JSON (a dict; int64 values as strings)."""
        return json.loads(self._run("decode", kind, data))

    def snappy(self, data):
        """data compressed in snappy's block format by python3-snappy."""
        return self._run("snappy", "-", data)

    def unsnappy(self, data):
        return self._run("unsnappy", "-", data)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class OtlpGrpcClient:
    """OTLP/gRPC calls made by Debian's python3-grpcio (tests/lib/otlp_grpc_client.py run by
    /usr/bin/python3), with the message classes of pb (an OtlpProtobuf). A test that needs it
    fails when python3-grpcio is missing, saying so; it never skips."""

    HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "otlp_grpc_client.py")

    def __init__(self, pb):
        r = subprocess.run([OtlpProtobuf.PYTHON, "-c", "import grpc"], capture_output=True)
        check(r.returncode == 0, f"{OtlpProtobuf.PYTHON} has no grpc (apt-get install "
              "python3-grpcio, or tools/deps.sh)")
        self.pb = pb

    def export(self, port, signal, doc=None, raw=None, gzip=False, path=None, timeout=30,
               repeat=1):
        """Calls signal's Export on 127.0.0.1:port with doc (an OTLP/JSON dict) or the raw bytes;
        returns {"code", "message", "response" (OK), "retry_s" (RetryInfo)}. With repeat, the
        same call is made up to that many times on one channel, until one is not OK: "calls_ok"
        says how many were."""
        args = [OtlpProtobuf.PYTHON, self.HELPER, self.pb.dir, f"127.0.0.1:{port}", signal,
                "--timeout", str(timeout), "--repeat", str(repeat)]
        args += ["--gzip"] if gzip else []
        args += ["--raw"] if raw is not None else []
        args += ["--path", path] if path else []
        data = raw if raw is not None else json.dumps(doc).encode()
        r = subprocess.run(args, input=data, capture_output=True, timeout=timeout + 30)
        check(r.returncode == 0, f"otlp_grpc_client: {r.stderr.decode(errors='replace')}")
        return json.loads(r.stdout)


class H2Raw(HelperProcess):
    """A raw HTTP/2 client in a process of its own (tests/lib/h2_client.py run by /usr/bin/python3
    with python3-h2's frame and header layers), for what no gRPC library sends. cmd(op, **args)
    runs one of its commands and returns its answer (a dict), failing the test when the command
    failed. A test that needs it fails when python3-h2 is missing, saying so; it never skips."""

    HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "h2_client.py")

    def __init__(self, port=None):
        r = subprocess.run([OtlpProtobuf.PYTHON, "-c", "import h2, hpack, hyperframe"],
                           capture_output=True)
        check(r.returncode == 0, f"{OtlpProtobuf.PYTHON} has no h2 (apt-get install python3-h2, "
              "or tools/deps.sh)")
        super().__init__([OtlpProtobuf.PYTHON, self.HELPER])
        if port is not None:
            self.cmd("connect", port=port)
            self.cmd("preface")

    def cmd(self, op, **args):
        self.p.stdin.write(json.dumps(dict(args, op=op)) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        check(line, f"h2_client exited during {op}")
        r = json.loads(line)
        check(r.pop("ok"), f"h2_client {op}: {r.get('error')}")
        return r

    def answer(self, stream, timeout=30):
        """Reads until stream is answered or reset; returns its state (headers, trailers, data
        (base64), reset)."""
        r = self.cmd("read", until=f"end:{stream}", timeout=timeout)
        check(r["met"], f"stream {stream} not answered within {timeout}s: {r['state']}")
        return r["state"]["streams"][str(stream)]


class OtlpGrpcReceiver(HelperProcess):
    """An OTLP/gRPC receiver in a process of its own: tests/lib/otlp_grpc_receiver.py run by
    /usr/bin/python3 (Debian's python3-grpcio), with the message classes of pb (an OtlpProtobuf).
    port is where it listens (h2c); answer() queues scripted answers (OK, UNAVAILABLE with a
    RetryInfo, INVALID_ARGUMENT, a partial success...); forward() sends every request it answers
    OK on to another spillway's http input; requests() lists what it got. A test that needs it
    fails when python3-grpcio is missing, saying so; it never skips."""

    HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "otlp_grpc_receiver.py")

    def __init__(self, pb, tls=None):
        """tls: (certificate, key) PEM files to serve over TLS instead of h2c."""
        r = subprocess.run([OtlpProtobuf.PYTHON, "-c", "import grpc"], capture_output=True)
        check(r.returncode == 0, f"{OtlpProtobuf.PYTHON} has no grpc (apt-get install "
              "python3-grpcio, or tools/deps.sh)")
        self.log = os.path.join(pb.dir, "grpc-requests.ndjson")
        super().__init__([OtlpProtobuf.PYTHON, self.HELPER, pb.dir, self.log, *(tls or ())])
        line = self.p.stdout.readline().split()
        check(line[:1] == ["listening"], f"otlp_grpc_receiver did not start: {line}")
        self.port = int(line[1])

    def _cmd(self, line):
        self.ok(line, "otlp_grpc_receiver")

    def answer(self, code, retry_ms=0, rejected=0, message=""):
        words = [code] + ([f"retry_ms={retry_ms}"] if retry_ms else []) + \
                ([f"rejected={rejected}"] if rejected else []) + \
                ([f"message={message}"] if message else [])
        self._cmd("answer " + " ".join(words))

    def forward(self, url):
        self._cmd(f"forward {url}")

    def requests(self):
        out = []
        if os.path.exists(self.log):
            with open(self.log) as f:
                out = [json.loads(line) for line in f if line.endswith("\n")]
        return out


def socat_send(data, address, timeout=120):
    """Sends bytes with socat (-u: one way) and waits for it to finish."""
    r = subprocess.run(["socat", "-u", "-", address], input=data, timeout=timeout,
                       capture_output=True)
    check(r.returncode == 0, f"socat {address} failed: {r.stderr.decode(errors='replace')}")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 60), **kw)


def check_configs(paths, what, env_for=lambda path: None):
    """Every config file in paths passes `spillway check` (run from the source tree, with the
    environment env_for(path) gives) and starts with a header comment."""
    failures = []
    for path in paths:
        rel = os.path.relpath(path, SRC)
        r = run([BIN, "check", "-c", rel], cwd=SRC, env=env_for(path))
        if r.returncode != 0 or "ok:" not in r.stdout:
            failures.append(f"{rel}: exit {r.returncode}: {r.stderr.strip() or r.stdout.strip()}")
        with open(path) as f:
            if not f.readline().startswith("#"):
                failures.append(f"{rel}: does not start with a header comment")
    check(not failures, f"{what} failing spillway check:\n  " + "\n  ".join(failures))


def sanitizer_report_of(pid):
    return SANITIZER_DIR and os.path.exists(os.path.join(SANITIZER_DIR, f"report.{pid}"))


def sanitizer_reports():
    """Prints and removes the sanitizer reports written so far; returns how many there were."""
    if not SANITIZER_DIR:
        return 0
    names = sorted(os.listdir(SANITIZER_DIR))
    for name in names:
        p = os.path.join(SANITIZER_DIR, name)
        with open(p, errors="replace") as f:
            print(f"sanitizer report {name}:\n{f.read()}", file=sys.stderr)
        os.unlink(p)
    return len(names)


def main(tests):
    """Runs test functions in order, stopping at the first failure (exit 1). Names given on the
    command line select a subset; SPILLWAY_TEST_SKIP lists <script>.<test> names to skip (the
    sanitizer builds, tests/CMakeLists.txt says why). In a sanitizer build, a report from any
    process a test started fails that test."""
    only = set(sys.argv[1:])
    unknown = only - {t.__name__ for t in tests}
    if unknown:
        sys.exit(f"no such test: {' '.join(sorted(unknown))}")
    script = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    skip = set(os.environ.get("SPILLWAY_TEST_SKIP", "").split())
    for t in tests:
        if only and t.__name__ not in only:
            continue
        if f"{script}.{t.__name__}" in skip:
            print(f"skip {t.__name__} (SPILLWAY_TEST_SKIP)")
            continue
        t0 = time.monotonic()
        try:
            t()
            n = sanitizer_reports()
            check(n == 0, f"{n} sanitizer report(s) from processes this test started")
        except Exception:
            sanitizer_reports()
            print(f"FAIL {t.__name__}", file=sys.stderr)
            raise
        print(f"ok   {t.__name__} ({time.monotonic() - t0:.1f}s)")
    if SANITIZER_DIR:
        shutil.rmtree(SANITIZER_DIR, ignore_errors=True)
