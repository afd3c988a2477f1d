"""A real Prometheus (Debian's prometheus package) and node exporter (prometheus-node-exporter)
for the integration tests: each started by the test itself from /usr/bin, on a free port, in a
temporary directory, never through their systemd services. A test that needs them fails saying
what to install; it never skips."""
import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request

from spillway_test import check, free_port, wait_for

PROMETHEUS = "/usr/bin/prometheus"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"


def _need(path, package):
    check(os.access(path, os.X_OK),
          f"{path} is missing: apt-get install {package} (tools/deps.sh installs it)")


class Prometheus:
    """Prometheus with the remote write receiver on, scraping what `scrape` lists
    ({job: [host:port, ...]}; "SELF" is Prometheus itself) every `interval`, remote-writing to
    `remote_write` (a URL) when given. Use as a context manager."""

    def __init__(self, scrape=None, interval="1s", remote_write=None, extra_args=None,
                 config=None):
        """config: a whole prometheus.yml instead (SELF replaced by its own address)."""
        _need(PROMETHEUS, "prometheus")
        self.dir = tempfile.mkdtemp(prefix="spillway-prom-")
        self.port = free_port()
        lines = ["global:", f"  scrape_interval: {interval}", f"  evaluation_interval: {interval}"]
        if scrape:
            lines.append("scrape_configs:")
            for job, targets in scrape.items():
                lines += [f"  - job_name: {job}", "    static_configs:",
                          "      - targets: [" + ", ".join(
                              repr(t.replace("SELF", f"127.0.0.1:{self.port}")) for t in targets)
                          + "]"]
        if remote_write:
            lines += ["remote_write:", f"  - url: {remote_write}",
                      "    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, "
                      "max_backoff: 1s}",
                      "    metadata_config: {send_interval: 2s}"]
        text = "\n".join(lines) + "\n"
        if config is not None:
            text = config.replace("SELF", f"127.0.0.1:{self.port}")
        with open(os.path.join(self.dir, "prometheus.yml"), "w") as f:
            f.write(text)
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.dir}/prometheus.yml",
             f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--web.enable-remote-write-receiver", *(extra_args or [])],
            cwd=self.dir, stdout=self.logf, stderr=self.logf)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: self.proc.poll() is not None or self._ready(), 60, "prometheus ready")
        check(self.proc.poll() is None, f"prometheus exited at start:\n{self.log()}")

    def _ready(self):
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def api(self, path, **params):
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{q}", timeout=10) as r:
            doc = json.loads(r.read())
        check(doc.get("status") == "success", f"{path} {params}: {doc}")
        return doc["data"]

    def query(self, expr):
        """{frozenset(labels.items()): value} of an instant query's vector."""
        out = {}
        for r in self.api("/api/v1/query", query=expr)["result"]:
            out[frozenset(r["metric"].items())] = r["value"][1]
        return out

    def series(self, match, end=None):
        """The series matching `match`, those with samples up to `end` (a Unix time) if given."""
        args = {"match[]": match}
        if end is not None:
            args["end"] = f"{end:.3f}"
        return self.api("/api/v1/series", **args)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        self.close()
        if et is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print(f"test failed; prometheus dir kept: {self.dir}\n{self.log()[-3000:]}")
        return False


class NodeExporter:
    """prometheus-node-exporter on a free port (its default collectors)."""

    def __init__(self):
        _need(NODE_EXPORTER, "prometheus-node-exporter")
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address={self.addr}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                with urllib.request.urlopen(f"http://{self.addr}/metrics", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_for(lambda: self.proc.poll() is not None or up(), 30, "node exporter ready")
        check(self.proc.poll() is None, "prometheus-node-exporter exited at start")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
