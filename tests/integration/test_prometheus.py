"""Issue 17: metrics that reach a time-series database. Against a real Prometheus (Debian's
prometheus package, started by the test in a temporary directory with the remote write receiver
on) and a real node exporter:

- the prometheus_remote_write sink: statsd, OTLP and NDJSON metric events written through spillway
  are read back through Prometheus' query API with the values sent (deltas made cumulative, names
  and labels as the OpenTelemetry specification's Prometheus rules say); out-of-order and
  duplicate samples are answered 400 by Prometheus, counted and dead-lettered with the answer;
  a receiver answering 503 or 429 is retried, 4xx dead-letters the request with the answer;
  events with no Prometheus form are dead-lettered with the reason; the requests decode with
  Google's protobuf library and python3-snappy, series sorted, samples in time order;
- the remote write input (POST /api/v1/write on the http input): a real Prometheus scraping
  itself and remote-writing into spillway delivers its samples as metric events (typed once its
  metadata came); spillway to spillway gives the same series; a body that is not snappy, not a
  WriteRequest, or 100 MB is refused with a clear error and counted, and nothing else is lost;
- the prometheus_scrape input: a real node exporter, spillway's own /metrics and misbehaving
  targets scraped every second: samples with job and instance, up per target, a target that hangs
  or serves garbage counted and logged without holding the others back, a page with a 1 MB line,
  a series twice, NaN and infinities and a family without TYPE: bad lines dead-lettered with the
  reason, the rest delivered, and all of it through the sink into Prometheus;
- logs to metrics: access_metrics.lua's aggregates, flushed by two workers, summed by the sink into
  the counts Prometheus shows."""
import http.server
import json
import os
import threading
import time
import urllib.error
import urllib.request

from prom_test import NodeExporter, Prometheus
from spillway_test import (BIN, SRC, OtlpProtobuf, Spillway, check, count_lines, main,
                           read_ndjson, run, socat_send, wait_for)

SINK = """
data_dir: ./data
admin: {socket: ./run/admin.sock, http: ""}
pipeline: {partitions: 2, memory_limit: 16MiB}
inputs:
  - {name: app, type: tcp, listen: "127.0.0.1:{tcp}"}
  - {name: st, type: udp, listen: "127.0.0.1:{udp}", format: statsd}
  - {name: otlp, type: http, listen: "127.0.0.1:{http}"}
routes: [{name: metrics, sinks: [prom]}]
sinks:
  - {name: prom, type: prometheus_remote_write, url: "@URL@", batch_timeout: 100ms,
     external_labels: {cluster: test}, @OPTS@}
  - {name: dl, type: file, path: ./dead.ndjson}
dead_letter: dl
"""


def sink_config(url, opts="buckets: [10, 100]"):
    return SINK.replace("@URL@", url).replace("@OPTS@", opts)


def ctl(sw, *args):
    r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", *args])
    check(r.returncode == 0, f"ctl {args}: {r.stderr}")
    return json.loads(r.stdout)


def sink_stats(sw, name="prom"):
    return next(s for s in ctl(sw, "stats")["sinks"] if s["name"] == name)


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def now_rfc3339(offset=0.0):
    return rfc3339(time.time() + offset)


def post_json(port, path, doc):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(doc).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


OTLP_METRICS = {"resourceMetrics": [{
    "resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "checkout"}},
        {"key": "service.namespace", "value": {"stringValue": "shop"}},
        {"key": "service.instance.id", "value": {"stringValue": "pod-1"}}]},
    "scopeMetrics": [{"metrics": [
        {"name": "http.server.request.duration", "unit": "s", "histogram": {
            "aggregationTemporality": 2, "dataPoints": [{
                "timeUnixNano": "@NS@", "count": "5", "sum": 1.75,
                "bucketCounts": ["2", "2", "1"], "explicitBounds": [0.1, 0.5],
                "attributes": [{"key": "http.route", "value": {"stringValue": "/cart"}}]}]}},
        {"name": "orders.placed", "unit": "{order}", "sum": {
            "aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [
                {"timeUnixNano": "@NS@", "asInt": "3"}]}},
        {"name": "queue.fill", "unit": "1", "gauge": {"dataPoints": [
            {"timeUnixNano": "@NS@", "asDouble": 0.25}]}},
        {"name": "rpc.latency", "summary": {"dataPoints": [{
            "timeUnixNano": "@NS@", "count": "4", "sum": 2.0,
            "quantileValues": [{"quantile": 0.5, "value": 0.4},
                               {"quantile": 0.99, "value": 0.9}]}]}},
    ]}]}]}


def otlp_body():
    return json.loads(json.dumps(OTLP_METRICS).replace("@NS@", str(time.time_ns())))


def values(prom, expr):
    """{sorted label text: float} of an instant query."""
    return {",".join(f"{k}={v}" for k, v in sorted(m)): float(v)
            for m, v in prom.query(expr).items()}


def lab(name, labels, **more):
    """A series as values() names it."""
    d = dict(labels, __name__=name, **more)
    return ",".join(f"{k}={v}" for k, v in sorted(d.items()))


def wait_value(prom, expr, labels, want, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        got = values(prom, expr)
        if got.get(labels) == want:
            return
        check(time.monotonic() < deadline, f"{expr} {{{labels}}} == {want} within {timeout}s: "
                                           f"have {got}")
        time.sleep(0.3)


def test_sink_to_prometheus():
    with Prometheus() as prom, \
            Spillway(sink_config(prom.url + "/api/v1/write")) as sw:
        sw.start()
        udp = f"UDP:127.0.0.1:{sw.ports['udp']}"
        # statsd: counters are deltas, summed per series (a sampled one counts 1 / rate); timers
        # are observations counted into the sink's buckets; "+N" moves the gauge a line set.
        socat_send(b"api.requests:1|c|#env:prod\napi.requests:1|c|#env:prod\n"
                   b"api.requests:2|c|@0.5|#env:prod\napi.requests:5|c|#env:dev\n"
                   b"lat:12|ms\nlat:300|ms\nlat:5|ms\nqueue:10|g\n", udp)
        time.sleep(0.3)
        socat_send(b"queue:+3|g\nqueue:-1|g\nusers:bob|s\n", udp)
        wait_value(prom, "api_requests_total", "__name__=api_requests_total,cluster=test,env=prod",
                   6.0)
        wait_value(prom, "api_requests_total", "__name__=api_requests_total,cluster=test,env=dev",
                   5.0)
        lat = "lat_milliseconds_bucket"
        wait_value(prom, lat, f"__name__={lat},cluster=test,le=+Inf", 3.0)
        check(values(prom, lat) == {f"__name__={lat},cluster=test,le=10": 1.0,
                                    f"__name__={lat},cluster=test,le=100": 2.0,
                                    f"__name__={lat},cluster=test,le=+Inf": 3.0},
              f"timer buckets: {values(prom, lat)}")
        check(values(prom, "lat_milliseconds_sum") ==
              {"__name__=lat_milliseconds_sum,cluster=test": 317.0}, "timer sum")
        wait_value(prom, "queue", "__name__=queue,cluster=test", 12.0)
        # OTLP: names get their unit and _total, job and instance come from the resource, the
        # attributes are labels (sanitized).
        check(post_json(sw.ports["http"], "/v1/metrics", otlp_body()) == 200, "OTLP accepted")
        base = {"cluster": "test", "instance": "pod-1", "job": "shop/checkout"}
        dur = "http_server_request_duration_seconds"
        route = dict(base, http_route="/cart")
        wait_value(prom, f"{dur}_count", lab(f"{dur}_count", route), 5.0)
        check(values(prom, f"{dur}_bucket") == {
            lab(f"{dur}_bucket", route, le="0.1"): 2.0,
            lab(f"{dur}_bucket", route, le="0.5"): 4.0,
            lab(f"{dur}_bucket", route, le="+Inf"): 5.0},
            f"histogram: {values(prom, dur + '_bucket')}")
        check(values(prom, f"{dur}_sum") == {lab(f"{dur}_sum", route): 1.75}, "histogram sum")
        check(values(prom, "orders_placed_total") == {lab("orders_placed_total", base): 3.0},
              f"delta sum: {values(prom, 'orders_placed_total')}")
        check(values(prom, "queue_fill_ratio") == {lab("queue_fill_ratio", base): 0.25},
              "gauge of unit 1")
        check(values(prom, "rpc_latency") == {lab("rpc_latency", base, quantile="0.5"): 0.4,
                                              lab("rpc_latency", base, quantile="0.99"): 0.9},
              f"summary: {values(prom, 'rpc_latency')}")
        # NDJSON metric events of the model, and events with no Prometheus form.
        ts = now_rfc3339()
        lines = [
            {"timestamp": ts, "kind": "metric", "name": "disk.free", "unit": "By",
             "metric_type": "gauge", "value": 1234, "labels": {"dev.name": "sda", "9": "x"}},
            {"timestamp": ts, "kind": "log", "message": "not a metric"},
            {"timestamp": ts, "kind": "metric", "name": "e", "metric_type": "exponential_histogram",
             "temporality": "cumulative", "count": 1,
             "negative": {"offset": 0, "bucket_counts": [1]}},
        ]
        socat_send("".join(json.dumps(x) + "\n" for x in lines).encode(),
                   f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_value(prom, "disk_free_bytes", "__name__=disk_free_bytes,cluster=test,dev_name=sda,"
                   "key_9=x", 1234.0)
        wait_for(lambda: len(read_ndjson(sw.path("dead.ndjson"))) == 3, 10, "dead letters")
        errors = sorted(d["error"] for d in read_ndjson(sw.path("dead.ndjson")))
        check(errors == [
            "prometheus: a statsd set has no Prometheus form (counting its distinct members "
            "needs an aggregation this sink does not do)",
            "prometheus: an exponential histogram with negative observations has no classic "
            "Prometheus histogram form",
            "prometheus: not a metric event (kind is not \"metric\")"], f"dead letters: {errors}")
        # Out of order and duplicate samples: Prometheus refuses the request (400), which the
        # sink counts and dead-letters with the answer.
        old = {"timestamp": now_rfc3339(-120), "kind": "metric", "name": "disk.free",
               "unit": "By", "metric_type": "gauge", "value": 1,
               "labels": {"dev.name": "sda", "9": "x"}}
        socat_send((json.dumps(old) + "\n").encode(), f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: sink_stats(sw)["out_of_order"] == 1, 15, "out of order counted")
        dup = dict(lines[0], value=999)
        socat_send((json.dumps(dup) + "\n").encode(), f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: sink_stats(sw)["duplicate"] == 1, 15, "duplicate counted")
        dead = read_ndjson(sw.path("dead.ndjson"))[3:]
        check([d["error"] for d in dead] == ["HTTP 400: out of order sample",
                                             "HTTP 400: duplicate sample for timestamp"],
              f"refused samples: {dead}")
        st = sink_stats(sw)
        check(st["failed"] == 5 and st["delivered"] == st["in"] - 5 and st["retries"] == 0,
              f"sink counters: {st}")
        check(sw.stop() == 0, "clean stop")


class Receiver(http.server.ThreadingHTTPServer):
    """A remote write receiver that answers what the test lines up, then 204."""

    def __init__(self):
        self.answers, self.requests = [], []

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(h):
                body = h.rfile.read(int(h.headers["Content-Length"]))
                self.requests.append({"headers": dict(h.headers), "body": body})
                code, extra, text = self.answers.pop(0) if self.answers else (204, {}, "")
                h.send_response(code)
                for k, v in extra.items():
                    h.send_header(k, v)
                h.send_header("Content-Length", str(len(text)))
                h.end_headers()
                h.wfile.write(text.encode())

            def log_message(h, *a):
                pass
        super().__init__(("127.0.0.1", 0), H)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/api/v1/write"


def test_sink_answers():
    recv = Receiver()
    try:
        with Spillway(sink_config(recv.url, "circuit_after: 0s")) as sw:
            sw.start()
            tcp = f"TCP:127.0.0.1:{sw.ports['tcp']}"
            ev = {"timestamp": now_rfc3339(), "kind": "metric", "name": "g",
                  "metric_type": "gauge", "value": 1, "labels": {}}
            # 503 with Retry-After, then 429: retried, the same request, then accepted.
            recv.answers += [(503, {"Retry-After": "1"}, "busy\n"), (429, {}, "slow down\n")]
            t0 = time.monotonic()
            socat_send((json.dumps(ev) + "\n").encode(), tcp)
            wait_for(lambda: sink_stats(sw)["delivered"] == 1, 20, "delivered after retries")
            check(time.monotonic() - t0 >= 1.0, "Retry-After believed")
            check(len(recv.requests) == 3 and recv.requests[0]["body"] == recv.requests[2]["body"],
                  "the same request sent again")
            h = recv.requests[0]["headers"]
            check(h.get("Content-Encoding") == "snappy"
                  and h.get("Content-Type") == "application/x-protobuf"
                  and h.get("X-Prometheus-Remote-Write-Version") == "0.1.0"
                  and h.get("User-Agent", "").startswith("spillway/"), f"headers: {h}")
            check(sink_stats(sw)["retries"] == 2, f"retries: {sink_stats(sw)}")
            # The request, read by Google's protobuf library: series sorted by their labels,
            # each one's samples in time order, one per timestamp.
            recv.answers.clear()
            n0 = len(recv.requests)
            t = time.time()
            lines = [{"timestamp": rfc3339(t + d), "kind": "metric", "name": n,
                      "metric_type": "gauge", "value": v, "labels": {"k": k}}
                     for d, n, v, k in ((-3, "b", 1, "x"), (-1, "a", 2, "y"), (-2, "a", 3, "y"),
                                        (-2, "a", 4, "y"), (-3, "a", 5, "x"))]
            socat_send("".join(json.dumps(x) + "\n" for x in lines).encode(), tcp)
            wait_for(lambda: sink_stats(sw)["delivered"] == 6, 20, "delivered")
            check(len(recv.requests) == n0 + 1, "one request")
            pb = OtlpProtobuf()
            try:
                req = pb.decode("write", pb.unsnappy(recv.requests[n0]["body"]))
            finally:
                pb.close()
            got = [([(la["name"], la["value"]) for la in ts["labels"]],
                    [(int(x["timestamp"]) - int(t * 1000) // 1000 * 1000, x["value"])
                     for x in ts["samples"]]) for ts in req["timeseries"]]
            check([g[0] for g in got] == [
                [("__name__", "a"), ("cluster", "test"), ("k", "x")],
                [("__name__", "a"), ("cluster", "test"), ("k", "y")],
                [("__name__", "b"), ("cluster", "test"), ("k", "x")]], f"series: {got}")
            check([x[1] for x in got[1][1]] == [4, 2] and got[1][1][0][0] < got[1][1][1][0],
                  f"samples of a: {got[1]}")
            # 400: dead-lettered with the answer, not retried.
            recv.answers.append((400, {}, "bad labels\n"))
            socat_send((json.dumps(dict(ev, value=2)) + "\n").encode(), tcp)
            wait_for(lambda: sink_stats(sw)["failed"] == 1, 20, "refused")
            recv_n = len(recv.requests)
            dead = read_ndjson(sw.path("dead.ndjson"))
            check(len(dead) == 1 and dead[0]["error"] == "HTTP 400: bad labels"
                  and dead[0]["event"]["value"] == 2, f"dead letter: {dead}")
            time.sleep(0.5)
            check(len(recv.requests) == recv_n, "a 400 is not retried")
            check(sw.stop() == 0, "clean stop")
    finally:
        recv.shutdown()


RW_INPUT = """
data_dir: ./data
admin: {socket: ./run/admin.sock, http: ""}
pipeline: {partitions: 2, memory_limit: 32MiB}
inputs: [{name: rw, type: http, listen: "127.0.0.1:{http}"}]
routes: [{name: all, sinks: [out]}]
sinks:
  - {name: out, type: file, path: ./out.ndjson}
  - {name: dl, type: file, path: ./dead.ndjson}
dead_letter: dl
"""


def input_stats(sw, name="rw"):
    return next(i for i in ctl(sw, "stats")["inputs"] if i["name"] == name)


def test_remote_write_from_prometheus():
    with Spillway(RW_INPUT) as sw:
        sw.start()
        url = f"http://127.0.0.1:{sw.ports['http']}/api/v1/write"
        with Prometheus(scrape={"self": ["SELF"]}, remote_write=url) as prom:
            instance = f"127.0.0.1:{prom.port}"

            def typed():
                evs = read_ndjson(sw.path("out.ndjson"))
                return [e for e in evs if e["name"] == "prometheus_http_requests_total"
                        and e["metric_type"] == "counter"]
            wait_for(lambda: typed(), 60, "a counter typed by Prometheus' metadata", interval=0.5)
            evs = read_ndjson(sw.path("out.ndjson"))
            up = [e for e in evs if e["name"] == "up"]
            check(up and all(e["value"] == 1 and e["labels"] == {"job": "self",
                                                                 "instance": instance}
                             and e["kind"] == "metric" and e["source"] == "rw" for e in up),
                  f"up: {up[:3]}")
            c = typed()[0]
            check(c["temporality"] == "cumulative" and c["labels"]["job"] == "self"
                  and "handler" in c["labels"] and c["value"] >= 0, f"counter: {c}")
            # Every series of the scrapes is there: what Prometheus stored up to now comes in,
            # remote write trailing its scrapes by a batch or two.
            want = {x["__name__"] for x in prom.series('{job="self"}', end=time.time())}

            def missing():
                names = {e["name"] for e in read_ndjson(sw.path("out.ndjson"))}
                return sorted(want - names - {"scrape_series_added"})
            deadline = time.monotonic() + 60
            while missing() and time.monotonic() < deadline:
                time.sleep(0.5)
            check(not missing(), f"names Prometheus has and spillway does not: {missing()[:10]}")
            check(len(want) > 100, f"Prometheus' own series: {len(want)}")
            evs = read_ndjson(sw.path("out.ndjson"))
            buckets = [e for e in evs if e["name"].endswith("_bucket")]
            check(buckets and all(e["metric_type"] == "unknown" and "le" in e["labels"]
                                  for e in buckets), f"histogram series: {buckets[:2]}")
        st = input_stats(sw)
        check(st["received"] == st["accepted"] and st["dead_letter"] == 0 and st["rejected"] == 0,
              f"input counters: {st}")
        check(sw.stop() == 0, "clean stop")


def test_remote_write_spillway_to_spillway():
    with Spillway(RW_INPUT) as b:
        b.start()
        url = f"http://127.0.0.1:{b.ports['http']}/api/v1/write"
        with Spillway(sink_config(url)) as a:
            a.start()
            ts = now_rfc3339()[:23] + "000Z"  # remote write carries milliseconds
            sent = [{"timestamp": ts, "kind": "metric", "name": f"m_{i % 7}", "metric_type":
                     "gauge", "value": i * 0.5, "labels": {"i": str(i), "host": "h"}}
                    for i in range(500)]
            sent.append({"timestamp": ts, "kind": "metric", "name": "n", "metric_type": "gauge",
                         "value": "NaN", "labels": {}})
            sent.append({"timestamp": ts, "kind": "metric", "name": "inf", "metric_type": "gauge",
                         "value": "-Inf", "labels": {}})
            socat_send("".join(json.dumps(x) + "\n" for x in sent).encode(),
                       f"TCP:127.0.0.1:{a.ports['tcp']}")
            wait_for(lambda: count_lines(b.path("out.ndjson")) == len(sent), 30, "all in B")
            check(a.stop() == 0, "A stops clean")
        got = read_ndjson(b.path("out.ndjson"))
        for e in got:
            check(e["labels"].pop("cluster") == "test" and e["source"] == "rw"
                  and e["metric_type"] == "unknown", f"B's event: {e}")
        key = lambda e: (e["name"], json.dumps(e["labels"], sort_keys=True))  # noqa: E731
        want = {key(e): (e["timestamp"], e["value"]) for e in sent}
        have = {key(e): (e["timestamp"], e["value"]) for e in got}
        check(have == want, "B has A's samples: "
              f"{[(k, have.get(k), v) for k, v in want.items() if have.get(k) != v][:5]}")
        check(b.stop() == 0, "B stops clean")


def post_raw(port, body, headers=None, path="/api/v1/write"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", body, headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (ConnectionError, urllib.error.URLError) as e:
        return 0, str(e)


def test_remote_write_bad_input():
    pb = OtlpProtobuf()
    try:
        with Spillway(RW_INPUT) as sw:
            sw.start()
            port = sw.ports["http"]
            ms = int(time.time() * 1000)
            good = pb.snappy(pb.encode("write", {"timeseries": [
                {"labels": [{"name": "__name__", "value": "ok"}, {"name": "a", "value": "1"}],
                 "samples": [{"value": 1, "timestamp": str(ms)}]}]}))
            # Not snappy; snappy of what is not a WriteRequest; a body over max_body (8 MiB) as
            # sent, and one whose snappy header says it decompresses past it; another encoding.
            cases = [
                (b"plain text, not snappy", {}, 400, "not snappy-compressed"),
                (pb.snappy(b"\xff\xff\xff\xff not protobuf"), {}, 400,
                 "not a protobuf WriteRequest"),
                (b"\x80\x80\x80\x30" + b"\x00" * 16, {}, 413, "decompresses to 100663296 bytes"),
                (good, {"Content-Encoding": "gzip"}, 415, "must be snappy"),
            ]
            for i, (body, hdr, code, text) in enumerate(cases):
                status, answer = post_raw(port, body, hdr)
                check(status == code and text in answer, f"case {i}: {status} {answer!r}")
            big = b"\x00" * (100 * 1000 * 1000)
            status, answer = post_raw(port, big, {"Content-Encoding": "snappy"})
            check(status in (413, 0), f"100 MB: {status} {answer[:200]!r}")
            wait_for(lambda: input_stats(sw)["rejected"] == 5, 10, "every refusal counted")
            # A request with a series without __name__ and a native histogram: those are
            # dead-lettered with the reason, its other samples delivered.
            mixed = pb.snappy(pb.encode("write", {"timeseries": [
                {"labels": [{"name": "job", "value": "x"}],
                 "samples": [{"value": 1, "timestamp": str(ms)}]},
                {"labels": [{"name": "__name__", "value": "h"}],
                 "histograms": [{"countInt": "1", "sum": 1.0, "timestamp": str(ms)}]},
                {"labels": [{"name": "__name__", "value": "fine"}],
                 "samples": [{"value": 2, "timestamp": str(ms)},
                             {"value": 3, "timestamp": str(ms + 1000)}]}]}))
            for body in (good, mixed):
                status, answer = post_raw(port, body, {"Content-Type": "application/x-protobuf",
                                                       "Content-Encoding": "snappy"})
                check(status == 204 and answer == "", f"accepted: {status} {answer!r}")
            wait_for(lambda: count_lines(sw.path("out.ndjson")) == 3
                     and count_lines(sw.path("dead.ndjson")) == 2, 10, "delivered")
            dead = sorted(d["error"] for d in read_ndjson(sw.path("dead.ndjson")))
            check(dead[0].startswith("remote write: a series without a __name__ label")
                  and dead[1].startswith("remote write: native histograms are not taken"),
                  f"dead letters: {dead}")
            out = read_ndjson(sw.path("out.ndjson"))
            check([(e["name"], e["value"]) for e in out] == [("ok", 1), ("fine", 2), ("fine", 3)],
                  f"delivered: {out}")
            st = input_stats(sw)
            check(st["received"] == 5 and st["accepted"] == 5 and st["dead_letter"] == 2
                  and st["rejected"] == 5, f"counters: {st}")
            check(sw.stop() == 0, "clean stop")
    finally:
        pb.close()


SCRAPE = """
data_dir: ./data
admin: {socket: ./run/admin.sock, http: "127.0.0.1:{admin_http}"}
pipeline: {partitions: 2, memory_limit: 64MiB}
inputs:
  - {name: scrape, type: prometheus_scrape, interval: 1s, timeout: 500ms, max_line: 64KiB,
     labels: {env: test}, targets: [@TARGETS@]}
routes: [{name: all, sinks: [out, prom]}]
sinks:
  - {name: out, type: file, path: ./out.ndjson}
  - {name: prom, type: prometheus_remote_write, url: "@URL@", batch_timeout: 200ms}
  - {name: dl, type: file, path: ./dead.ndjson}
dead_letter: dl
"""

BAD_PAGE = ("# TYPE ok_counter counter\nok_counter{a=\"1\"} 5\n"
            "huge{v=\"" + "x" * 1_000_000 + "\"} 1\n"
            "dup{a=\"1\",b=\"2\"} 1\ndup{b=\"2\",a=\"1\"} 2\n"
            "no_type_here 3\n"
            "nan_value NaN\npos_inf +Inf\nneg_inf -Inf\n"
            "job_label{job=\"mine\"} 7\n")


class Pages(http.server.ThreadingHTTPServer):
    """A target that misbehaves, as `what` says: "garbage" answers HTML, "bad" a page of bad
    lines among good ones, "hang" never answers. Each its own host:port (its own instance)."""

    def __init__(self, what):
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(h):
                if what == "hang":
                    time.sleep(5)
                    return
                body = (b"<html><body>this is not metrics</body></html>\n" if what == "garbage"
                        else BAD_PAGE.encode())
                h.send_response(200)
                h.send_header("Content-Type", "text/html" if what == "garbage"
                              else "text/plain; version=0.0.4")
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)

            def log_message(h, *a):
                pass
        super().__init__(("127.0.0.1", 0), H)
        self.daemon_threads = True
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.server_address[1]}"

    @property
    def url(self):
        return f"http://{self.addr}/metrics"


def test_scrape():
    hang_t, garbage_t, bad_t = Pages("hang"), Pages("garbage"), Pages("bad")
    try:
        with NodeExporter() as node, Prometheus() as prom:
            targets = [node.addr, "127.0.0.1:{admin_http}", hang_t.url, garbage_t.url, bad_t.url]
            cfg = SCRAPE.replace("@TARGETS@", ", ".join(f'"{t}"' for t in targets)).replace(
                "@URL@", prom.url + "/api/v1/write")
            with Spillway(cfg) as sw:
                sw.start()
                me = f"127.0.0.1:{sw.ports['admin_http']}"
                hang, garbage, bad = hang_t.addr, garbage_t.addr, bad_t.addr

                def ups(instance):
                    return [e["value"] for e in read_ndjson(sw.path("out.ndjson"))
                            if e["name"] == "up" and e["labels"]["instance"] == instance]
                # The hanging target never holds the others: they are scraped every second.
                wait_for(lambda: len(ups(node.addr)) >= 4 and len(ups(hang)) >= 2, 20,
                         "scrapes every second", interval=0.3)
                check(set(ups(node.addr)) == {1} and set(ups(me)) == {1}
                      and set(ups(hang)) == {0},
                      f"up per target: {ups(node.addr)} {ups(me)} {ups(hang)}")
                evs = read_ndjson(sw.path("out.ndjson"))
                by = {}
                for e in evs:
                    by.setdefault((e["name"], e["labels"]["instance"]), []).append(e)
                cpu = by[("node_cpu_seconds_total", node.addr)][0]
                check(cpu["metric_type"] == "counter" and cpu["temporality"] == "cumulative"
                      and cpu["labels"]["job"] == "scrape" and cpu["labels"]["env"] == "test"
                      and "mode" in cpu["labels"] and cpu["kind"] == "metric", f"node: {cpu}")
                own = by[("spillway_input_received_total", me)][0]
                check(own["metric_type"] == "counter" and own["labels"]["input"] == "scrape",
                      f"spillway's own /metrics: {own}")
                # The bad page: its bad lines dead-lettered with the reason, the rest delivered
                # (NaN and the infinities as the model's strings, a family without TYPE as
                # unknown, a scraped job label as exported_job).
                page = {e["name"]: e for e in evs if e["labels"]["instance"] == bad}
                check(page["ok_counter"]["value"] == 5 and page["no_type_here"]["metric_type"]
                      == "unknown" and page["nan_value"]["value"] == "NaN"
                      and page["pos_inf"]["value"] == "+Inf" and page["neg_inf"]["value"] == "-Inf"
                      and page["dup"]["value"] == 1
                      and page["job_label"]["labels"] == {"exported_job": "mine", "job": "scrape",
                                                          "instance": bad, "env": "test"},
                      f"bad page's good lines: {sorted(page)}")
                dead = read_ndjson(sw.path("dead.ndjson"))
                reasons = {d["error"].split(" (target")[0] for d in dead}
                check(reasons == {"a line longer than max_line",
                                  "a series already on the page (the first one is kept)",
                                  "not a sample (a metric name first), a comment or a blank "
                                  "line"}, f"dead letters: {reasons}")
                check(all(len(d["raw"]) <= 4096 for d in dead), "dead letters keep 4 KiB")
                # Garbage and a hang: up 0, counted, logged.
                check(set(ups(garbage)) == {0}, "garbage: up 0")
                logs = [r for r in sw.log_records() if r.get("msg") == "scrape failed"]
                errors = {r["target"]: r["error"] for r in logs}
                check("timed out" in errors.get(hang_t.url, "")
                      and "not the text exposition format" in errors.get(garbage_t.url, ""),
                      f"logged: {errors}")
                st = input_stats(sw, "scrape")
                check(st["scrapes"] >= 10 and st["scrape_failed"] >= 4
                      and st["received"] == st["accepted"], f"counters: {st}")
                # Through the prometheus_remote_write sink into a real Prometheus.
                wait_value(prom, f'up{{instance="{node.addr}"}}',
                           lab("up", {"env": "test", "instance": node.addr, "job": "scrape"}), 1.0)
                check(len(prom.series('node_cpu_seconds_total{job="scrape"}')) > 0,
                      "node_cpu_seconds_total in Prometheus")
                check(sw.stop() == 0, "clean stop")
    finally:
        for p in (hang_t, garbage_t, bad_t):
            p.shutdown()


LOGS_TO_METRICS = """
data_dir: ./data
admin: {socket: ./run/admin.sock, http: ""}
inputs: [{name: access, type: tcp, listen: "127.0.0.1:{tcp}"}]
pipeline: {partitions: 2}
router: {scripts: "EXAMPLES"}
routes:
  - {name: access, script: access_metrics.lua, sample_rate: 0.01, sinks: [],
     metrics: {interval: 300ms, route: metrics}}
  - {name: metrics, enabled: false, sinks: [prom]}
sinks:
  - {name: prom, type: prometheus_remote_write, url: "@URL@", batch_timeout: 100ms}
"""


def test_logs_to_metrics_in_prometheus():
    """access_metrics.lua's deltas, flushed by two workers, made cumulative by the sink: what
    Prometheus shows is what was sent."""
    examples = os.path.join(SRC, "scripts", "examples")
    with Prometheus() as prom, Spillway(LOGS_TO_METRICS.replace("EXAMPLES", examples).replace(
            "@URL@", prom.url + "/api/v1/write")) as sw:
        sw.start()
        tcp = f"TCP:127.0.0.1:{sw.ports['tcp']}"
        want = {}
        for rnd in range(3):  # three rounds, so several flushes add up
            lines = []
            for i in range(600):
                svc, status = ["cart", "search"][i % 2], [200, 500, 200][i % 3]
                lines.append(json.dumps({"service": svc, "status": status, "latency_ms": i % 700,
                                         "trace_id": f"{rnd:04x}{i:012x}"}))
                want[(svc, str(status))] = want.get((svc, str(status)), 0) + 1
            socat_send(("\n".join(lines) + "\n").encode(), tcp)
            time.sleep(0.4)
        for (svc, status), n in want.items():
            wait_value(prom, "http_requests_total",
                       lab("http_requests_total", {"service": svc, "status": status}), float(n))
            wait_value(prom, "http_request_duration_seconds_count",
                       lab("http_request_duration_seconds_count",
                           {"service": svc, "status": status}), float(n))
        check(sw.stop() == 0, "clean stop")


if __name__ == "__main__":
    main([test_sink_to_prometheus, test_sink_answers, test_remote_write_from_prometheus,
          test_remote_write_spillway_to_spillway, test_remote_write_bad_input, test_scrape,
          test_logs_to_metrics_in_prometheus])
