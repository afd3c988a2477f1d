"""Issue 4: the pipeline's promises — a memory ceiling under a flood into a stalled sink, block
losing nothing, drop_newest counting exactly, spill to Kafka and replay (exactly once, in
per-key order, with the broker going down and up), and Kafka mode surviving SIGKILL."""
import http.server
import json
import re
import os
import signal
import socket
import threading
import time
import types
import urllib.request

from spillway_test import (BIN, KafkaMock, Spillway, check, count_lines, free_port, main,
                           read_ndjson, rss_kib, run, socat_send, wait_for)


class Gate:
    """An HTTP receiver that answers 503 while closed, and records bodies while open."""

    def __init__(self, delay=0.0):
        self.open = threading.Event()
        self.events = []
        self.lock = threading.Lock()
        self.delay = delay
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not outer.open.is_set():
                    code = 503
                else:
                    if outer.delay:
                        time.sleep(outer.delay)
                    with outer.lock:
                        outer.events += [json.loads(l) for l in body.splitlines()]
                    code = 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self):
        with self.lock:
            return len(self.events)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def config(pipeline, sinks, extra=""):
    return f"""
data_dir: ./data
shutdown_timeout: 20s
log_level: info
admin: {{socket: ./run/admin.sock, http: ""}}
pipeline: {pipeline}
inputs: [{{name: app, type: tcp, listen: "127.0.0.1:{{tcp}}"}}]
routes: [{{name: r, sinks: [s]}}]
sinks:
{sinks}
{extra}"""


def payload(start, n, traces=64, pad=0):
    return "".join(json.dumps({"seq": i, "trace_id": "t%03d" % (i % traces), "msg": "x" * pad})
                   + "\n" for i in range(start, start + n)).encode()


def stats(sw):
    r = run([BIN, "ctl", "-s", sw.path("run/admin.sock"), "--json", "stats"])
    return json.loads(r.stdout)


def flood(port, seconds, senders=4, pad=200):
    """Senders as fast as TCP lets them (they block once spillway pushes back)."""
    stop = time.monotonic() + seconds
    chunk = payload(0, 2000, pad=pad)

    def one():
        try:
            s = socket.create_connection(("127.0.0.1", port))
            s.settimeout(1)
            while time.monotonic() < stop:
                try:
                    s.sendall(chunk)
                except socket.timeout:
                    pass  # pushed back: keep trying until the time is up
            s.close()
        except OSError:
            pass

    ts = [threading.Thread(target=one) for _ in range(senders)]
    [t.start() for t in ts]
    return ts


def flood_under_ceiling(pipeline_extra="", limit_mib=32, outside_kib=0):
    """Floods a spillway whose only sink is dead; returns (idle RSS, peak RSS, stats) in KiB."""
    dead = free_port()
    sinks = f"  - {{name: s, type: tcp, address: '127.0.0.1:{dead}', connect_timeout: 100ms}}"
    pipe = f"{{partitions: 2, memory_limit: {limit_mib}MiB{pipeline_extra}}}"
    with Spillway(config(pipe, sinks).replace("shutdown_timeout: 20s", "shutdown_timeout: 1s")) \
            as sw:
        sw.start()
        time.sleep(0.5)
        base = rss_kib(sw.proc.pid)
        ts = flood(sw.ports["tcp"], 8)
        peak = 0
        while any(t.is_alive() for t in ts):
            peak = max(peak, rss_kib(sw.proc.pid))
            time.sleep(0.05)
        peak = max(peak, rss_kib(sw.proc.pid))
        st = stats(sw)
        sw.stop()
    held = st["memory"]["held_bytes"]
    check(held > limit_mib * 1024 * 1024 * 0.6, f"the flood filled the pipeline: {held}")
    check(held <= limit_mib * 1024 * 1024, f"held_bytes within memory_limit: {held}")
    # Fixed overhead: what the process uses idle (code, libraries, Lua states, SQLite)
    # plus 16 MiB for read buffers and staging, and what the caller says is outside the limit;
    # see docs/pipeline.md.
    bound = base + limit_mib * 1024 + 16 * 1024 + outside_kib
    print(f"RSS idle {base} KiB, peak {peak} KiB, bound {bound} KiB, held {held} bytes")
    check(peak <= bound, f"RSS {peak} KiB over memory_limit + overhead ({bound} KiB)")
    return st


def test_memory_ceiling_with_a_stalled_sink():
    flood_under_ceiling()


def test_memory_ceiling_while_spilling():
    """The same flood with when_full: spill: librdkafka's producer queue is inside the limit
    (half of it), and what Kafka holds is not in the process. The broker answers after 100 ms,
    so that the producer queue fills as the rings and the sink queue do (held_bytes counts all
    three). A ring the router drained below half early in the flood starts a replay, whose
    read-ahead is outside the limit (up to 4 MiB per partition, docs/pipeline.md): seen once in
    CI, 64 MiB peak where 54 is usual."""
    mock = KafkaMock()
    try:
        mock.cmd("topic spill 2")
        mock.cmd("rtt 1 100")
        st = flood_under_ceiling(f", when_full: spill, kafka: {{brokers: '{mock.bootstrap}', "
                                 "topic: spill}", outside_kib=2 * 4 * 1024)
        spilled = sum(p["spilled"] for p in st["partitions"])
        check(spilled > 0, f"the flood spilled: {spilled}")
    finally:
        mock.close()


def test_block_loses_nothing_with_a_slow_sink():
    gate = Gate(delay=0.02)
    gate.open.set()
    try:
        sinks = (f"  - {{name: s, type: http, url: 'http://127.0.0.1:{gate.port}/', "
                 "batch_max_events: 500, batch_timeout: 10ms}")
        with Spillway(config("{partitions: 2, memory_limit: 2MiB, when_full: block}", sinks)) as sw:
            sw.start()
            total = 60000
            socat_send(payload(0, total, pad=100), f"TCP:127.0.0.1:{sw.ports['tcp']}")
            check(sw.stop() == 0, "clean stop")
            seqs = sorted(e["seq"] for e in gate.events)
            check(seqs == list(range(total)), f"count in == count out: {len(seqs)} of {total}")
    finally:
        gate.close()


def test_drop_newest_counts_exactly():
    gate = Gate(delay=0.05)
    gate.open.set()
    try:
        sinks = (f"  - {{name: s, type: http, url: 'http://127.0.0.1:{gate.port}/', "
                 "batch_max_events: 200, batch_timeout: 10ms}")
        with Spillway(config("{partitions: 2, memory_limit: 1MiB, when_full: drop_newest}",
                             sinks)) as sw:
            sw.start()
            total = 50000
            socat_send(payload(0, total, pad=200), f"TCP:127.0.0.1:{sw.ports['tcp']}")
            st = stats(sw)
            inp = st["inputs"][0]
            dropped = sum(p["dropped"] for p in st["partitions"])
            check(inp["received"] == total and dropped > 0 and inp["dropped"] == dropped,
                  f"drops counted per input and partition: {inp} {dropped}")
            check(sw.stop() == 0, "clean stop")
            delivered = gate.count()
            check(delivered + dropped == total,
                  f"delivered {delivered} + dropped {dropped} == {total}")
            check(len({e["seq"] for e in gate.events}) == delivered, "no duplicates")
    finally:
        gate.close()


def test_partition_key_and_round_robin():
    """partition_key hashes a field: every event of one key goes to one partition (so one worker
    keeps its order); an empty partition_key spreads events round robin."""
    for key, traces in (("trace_id", 1), ("trace_id", 64), ('""', 64)):
        pipe = f"{{partitions: 2, partition_key: {key}}}"
        with Spillway(config(pipe, "  - {name: s, type: file, path: ./out.ndjson}")) as sw:
            sw.start()
            total = 10000
            socat_send(payload(0, total, traces=traces), f"TCP:127.0.0.1:{sw.ports['tcp']}")
            wait_for(lambda: count_lines(sw.path("out.ndjson")) >= total, 60, "delivered")
            ins = [p["in"] for p in stats(sw)["partitions"]]
            check(sum(ins) == total, f"{key}: every event in one partition: {ins}")
            if traces == 1:
                check(sorted(ins) == [0, total], f"one key, one partition: {ins}")
                check_order(read_ndjson(sw.path("out.ndjson")))
            else:
                check(min(ins) > total // 4, f"{key}, {traces} keys: both partitions: {ins}")
            check(sw.stop() == 0, "clean stop")


def test_keyless_events_spread_by_message():
    """Events without the partition key follow their stream: one TCP connection's events all go
    to one partition, in order; but HTTP requests and UDP datagrams are messages, spread round
    robin by message (once, every keyless HTTP and UDP event went to one partition)."""
    inputs = ('inputs: [{name: app, type: tcp, listen: "127.0.0.1:{tcp}"}, '
              '{name: web, type: http, listen: "127.0.0.1:{http}"}, '
              '{name: dg, type: udp, listen: "127.0.0.1:{udp}", format: ndjson}]')
    conf = config("{partitions: 2}", "  - {name: s, type: file, path: ./out.ndjson}")
    conf = re.sub(r"^inputs: .*$", lambda _: inputs, conf, flags=re.M)
    with Spillway(conf) as sw:
        sw.start()

        def ins():
            return [p["in"] for p in stats(sw)["partitions"]]

        socat_send("".join(json.dumps({"seq": i, "src": "tcp"}) + "\n"
                           for i in range(1000)).encode(), f"TCP:127.0.0.1:{sw.ports['tcp']}")
        wait_for(lambda: sum(ins()) == 1000, 30, "the connection's events")
        after_tcp = ins()
        check(sorted(after_tcp) == [0, 1000], f"one connection, one partition: {after_tcp}")
        check_seq_order([e for e in read_ndjson(sw.path("out.ndjson")) if e["src"] == "tcp"])
        for r in range(20):
            body = "".join(json.dumps({"seq": i, "src": "http", "req": r}) + "\n"
                           for i in range(50)).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{sw.ports['http']}/v1/events",
                                         data=body, method="POST")
            urllib.request.urlopen(req, timeout=30).read()
        wait_for(lambda: sum(ins()) == 2000, 30, "the requests' events")
        http = [b - a for a, b in zip(after_tcp, ins())]
        check(min(http) >= 400, f"20 requests spread over both partitions: {http}")
        before = ins()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            for i in range(200):
                u.sendto(json.dumps({"seq": i, "src": "udp"}).encode(),
                         ("127.0.0.1", sw.ports["udp"]))
                if i % 50 == 49:
                    wait_for(lambda: sum(ins()) == 2001 + i, 30, "datagrams read")
        udp = [b - a for a, b in zip(before, ins())]
        check(min(udp) >= 80, f"200 datagrams spread over both partitions: {udp}")
        check(sw.stop() == 0, "clean stop")
        # A request's events stay together: one worker, in order.
        got = [e for e in read_ndjson(sw.path("out.ndjson")) if e["src"] == "http"]
        for r in range(20):
            check_seq_order([e for e in got if e["req"] == r])


def check_seq_order(events):
    seqs = [e["seq"] for e in events]
    check(seqs == sorted(seqs) and len(seqs) == len(set(seqs)), f"in order: {seqs[:50]}...")


def check_order(events):
    """Per-key order of first deliveries (a duplicate from a fault comes again later)."""
    last, seen = {}, set()
    for i, e in enumerate(events):
        if e["seq"] in seen:
            continue
        seen.add(e["seq"])
        t = e["trace_id"]
        check(e["seq"] > last.get(t, -1),
              f"per-key order broken for {t}: seq {e['seq']} delivered {i}th, after "
              f"{last.get(t)}; around it: {[x['seq'] for x in events[max(0, i - 5):i + 5]]}")
        last[t] = e["seq"]


def check_exactly_once_in_order(events, total, starts=(0,)):
    """Every seq below total delivered once, each key in order. With several senders (each
    sent the seqs from its start to the next one's over its own connection), order is per
    sender: connections are not ordered with respect to each other."""
    seqs = [e["seq"] for e in events]
    check(sorted(seqs) == list(range(total)), f"exactly once: {len(seqs)} for {total}, "
          f"{len(set(seqs))} distinct")
    for lo, hi in zip(starts, list(starts[1:]) + [total]):
        check_order([e for e in events if lo <= e["seq"] < hi])


def spill_totals(sw):
    st = stats(sw)
    return {k: sum(p[k] for p in st["partitions"])
            for k in ("spilled", "replayed", "dropped", "spill_lost", "spill_refused",
                      "spill_duplicates", "spill_unacked")}


def check_all_replayed(sw):
    """Everything spilled came back, once; nothing dropped, nothing lost. Returns the totals."""
    t = spill_totals(sw)
    check(t["spilled"] > 0 and t["replayed"] == t["spilled"], f"replayed all, once: {t}")
    check(t["dropped"] == 0 and t["spill_lost"] == 0, f"nothing dropped or lost: {t}")
    check(t["spill_unacked"] == 0, f"every record spilled was acknowledged: {t}")
    return t


def spill_config(mock, gate, partitions=2, properties="", memory="4MiB"):
    """The mock broker keeps about 5 MiB per partition (then deletes the oldest records): tests
    that must lose nothing spill well under that (40,000 events of about 180 bytes into two
    partitions, most of them held in memory), copies included."""
    sinks = (f"  - {{name: s, type: http, url: 'http://127.0.0.1:{gate.port}/', "
             "batch_max_events: 1000, batch_timeout: 10ms}")
    props = f", properties: {{{properties}}}" if properties else ""
    pipe = (f"{{partitions: {partitions}, memory_limit: {memory}, when_full: spill, "
            f"kafka: {{brokers: '{mock.bootstrap}', topic: spill{props}}}}}")
    return config(pipe, sinks)


# The first burst of the outage tests: the 4 MiB hold about 19,000 of these events (the sink's
# queue 11,000, the rings the rest, how many each depending on which partition the workers fed
# the sink from), so a burst of 20,000 spilled anywhere from about 2,000 down to under the 1,000
# the tests wait for, and then nothing more came (the flake of issue 19). 26,000 spill 7,000 at
# least.
FIRST = 26000


def test_spill_and_replay_exactly_once_in_order():
    """Normal operation: a paused sink makes both partitions spill; once it is back the
    backlog comes back exactly once, each key in order."""
    mock, gate = KafkaMock(), Gate()
    try:
        mock.cmd("topic spill 2")
        with Spillway(spill_config(mock, gate)) as sw:
            sw.start()
            total = 40000
            socat_send(payload(0, total, pad=20), f"TCP:127.0.0.1:{sw.ports['tcp']}")
            wait_for(lambda: spill_totals(sw)["spilled"] > 5000, 60, "spilling")
            gate.open.set()
            wait_for(lambda: gate.count() >= total, 120, "everything delivered")
            check_all_replayed(sw)
            check(sw.stop() == 0, "clean stop")
        check_exactly_once_in_order(gate.events, total)
    finally:
        gate.close()
        mock.close()


def test_spill_through_a_broker_outage_loses_nothing():
    """The broker goes away mid-spill, and again mid-replay: the inputs block (counted, logged
    once per outage), nothing is dropped, and once it is back every event is delivered exactly
    once (copies Kafka kept of retried produces are skipped on replay) in per-key order."""
    mock, gate = KafkaMock(), Gate()
    try:
        mock.cmd("topic spill 2")
        with Spillway(spill_config(mock, gate)) as sw:
            sw.start()
            total = 40000
            addr = f"TCP:127.0.0.1:{sw.ports['tcp']}"
            socat_send(payload(0, FIRST, pad=20), addr)  # the sink is paused (503)
            wait_for(lambda: spill_totals(sw)["spilled"] > 1000, 60, "spilling")
            mock.cmd("down -1")
            sender = threading.Thread(target=socat_send,
                                      args=(payload(FIRST, total - FIRST, pad=20), addr))
            sender.start()
            wait_for(lambda: spill_totals(sw)["spill_refused"] > 0, 60, "Kafka refusing")
            t = spill_totals(sw)  # refused: librdkafka's queue is full of records not acked
            check(t["spill_unacked"] > 0, f"the records waiting for Kafka are shown: {t}")
            time.sleep(1)  # the outage goes on a while (what is checked never depends on it)
            mock.cmd("up -1")
            sender.join(120)
            gate.open.set()
            wait_for(lambda: gate.count() > 1000, 60, "replay under way")
            mock.cmd("down -1")  # and once more while the backlog is replayed
            time.sleep(1)
            mock.cmd("up -1")
            wait_for(lambda: len({e["seq"] for e in list(gate.events)}) >= total, 120,
                     "everything delivered")
            t = check_all_replayed(sw)
            check(sw.stop() == 0, "clean stop")
            # Counted at every refusal, said once per episode and partition (a burst, two
            # outages, two partitions: at most 6 lines, where every refusal would be thousands).
            said = sw.log().count("Kafka cannot take more")
            check(1 <= said <= 6, f"the fallback to block is logged once per episode: {said}, "
                  f"refused {t['spill_refused']} times")
        check_exactly_once_in_order(gate.events, total, starts=(0, FIRST))
    finally:
        gate.close()
        mock.close()


def test_spill_replay_skips_copies_kafka_kept():
    """A broker that keeps a retried record twice: the spill is slowed past the producer's
    request timeout, so requests Kafka wrote are sent again (whether the mock keeps copies of
    them depends on timing: a run under load kept none), and then the last messages of each
    partition are appended again as they were, so that copies are there whatever the timing.
    The replay recognises the copies by their key, counts them (spill_duplicates), and delivers
    every event exactly once, in order."""
    mock, gate = KafkaMock(), Gate()
    try:
        mock.cmd("topic spill 2")
        with Spillway(spill_config(mock, gate, properties="socket.timeout.ms: '400'")) as sw:
            sw.start()
            total = 40000
            addr = f"TCP:127.0.0.1:{sw.ports['tcp']}"
            socat_send(payload(0, FIRST, pad=20), addr)  # the sink is paused (503)
            wait_for(lambda: spill_totals(sw)["spilled"] > 1000, 60, "spilling")
            mock.cmd("rtt 1 700")  # answers come after the producer gave up on them
            sender = threading.Thread(target=socat_send,
                                      args=(payload(FIRST, total - FIRST, pad=20), addr))
            sender.start()
            time.sleep(3)  # retries pile up copies (what is checked never depends on it)
            mock.cmd("rtt 1 0")
            sender.join(120)
            wait_for(lambda: stats(sw)["inputs"][0]["received"] == total, 60, "all received")
            # Records go several to a message (2 KiB at most): 100 make 3 messages at least.
            wait_for(lambda: min(p["spilled"] - p["spill_unacked"]
                                 for p in stats(sw)["partitions"]) >= 100, 60,
                     "each partition's spill in Kafka")
            mock.cmd("copy spill 0 3")
            mock.cmd("copy spill 1 3")
            gate.open.set()
            wait_for(lambda: len({e["seq"] for e in list(gate.events)}) >= total, 120,
                     "everything delivered")
            t = check_all_replayed(sw)
            check(t["spill_duplicates"] > 0, f"Kafka kept copies, recognised: {t}")
            check(sw.stop() == 0, "clean stop")
        check_exactly_once_in_order(gate.events, total, starts=(0, FIRST))
    finally:
        gate.close()
        mock.close()


def test_spill_properties_cannot_change_what_its_guarantees_rest_on():
    """pipeline.kafka.properties may tune the spill's clients (socket.timeout.ms above), but not
    the settings exactly-once replay rests on: such an entry is refused at start, saying which,
    before any Kafka client is made (so no broker is needed, and the test runs under TSan)."""
    nowhere = types.SimpleNamespace(bootstrap=f"127.0.0.1:{free_port()}", port=free_port())
    for prop in ("acks: '1'", "enable.idempotence: 'false'"):
        with Spillway(spill_config(nowhere, nowhere, properties=prop)) as sw:
            r = run([BIN, "run", "-c", sw.config_path], cwd=sw.dir, timeout=30)
            name = prop.split(":")[0]
            check(r.returncode != 0 and f"properties: {name} is fixed by spillway" in r.stderr,
                  f"{prop} refused: rc {r.returncode}, {r.stderr}")


def test_spill_backlog_survives_a_restart():
    """Stopped while a backlog waits in Kafka: what was in memory is delivered, the replay
    offsets are saved, and the next start replays the rest first: exactly once, in order."""
    mock, gate = KafkaMock(), Gate()
    try:
        mock.cmd("topic spill 2")
        sw = Spillway(spill_config(mock, gate))
        with sw:
            sw.start()
            total = 40000
            socat_send(payload(0, total, pad=20), f"TCP:127.0.0.1:{sw.ports['tcp']}")
            wait_for(lambda: spill_totals(sw)["spilled"] > 10000, 60, "spilling")
            wait_for(lambda: stats(sw)["inputs"][0]["received"] == total, 60, "all received")
            gate.open.set()
            check(sw.stop() == 0, "what was in memory is delivered at stop")
            first = gate.count()
            check(first < total, f"a backlog is left in Kafka: {first} of {total} delivered")
            sw.start()
            check("backlog from a previous run" in sw.log(), "the restart finds the backlog")
            wait_for(lambda: gate.count() >= total, 120, "the backlog delivered after restart")
            check(sw.stop() == 0, "clean stop")
        check_exactly_once_in_order(gate.events, total)
    finally:
        gate.close()
        mock.close()


def test_spill_restart_in_the_middle_of_a_replay():
    """Stopped while the backlog is coming back into rings a slow sink empties: records travel
    several to a Kafka message, and rings this small (1 MiB over 8 partitions) take a replayed
    message's records as they fit, so the stop falls inside a message (in 2 runs of 3 here: the
    log's "skipped" at the restart says so). What of it was in the ring is saved with the
    offset and not replayed again after the restart: every event delivered exactly once, in
    order."""
    mock, gate = KafkaMock(), Gate(delay=0.05)
    try:
        mock.cmd("topic spill 8")
        sw = Spillway(spill_config(mock, gate, partitions=8, memory="1MiB"))
        with sw:
            sw.start()
            total = 40000
            socat_send(payload(0, total, pad=20), f"TCP:127.0.0.1:{sw.ports['tcp']}")
            wait_for(lambda: stats(sw)["inputs"][0]["received"] == total, 60, "all received")
            spilled = spill_totals(sw)["spilled"]
            check(spilled > 20000, f"a backlog in Kafka: {spilled}")
            gate.open.set()
            wait_for(lambda: spill_totals(sw)["replayed"] > 5000, 60, "replaying")
            check(sw.stop() == 0, "clean stop")
            check(gate.count() < total, "a backlog is left in Kafka")
            sw.start()
            wait_for(lambda: gate.count() >= total, 120, "the backlog delivered after restart")
            check(sw.stop() == 0, "clean stop")
        check_exactly_once_in_order(gate.events, total)
    finally:
        gate.close()
        mock.close()


def test_spill_waits_for_an_unreachable_kafka():
    """Kafka down when spillway starts: it starts anyway, a full partition blocks the inputs
    (counted, said once) instead of spilling, and once Kafka is reachable spilling works and
    everything is delivered exactly once, in order."""
    mock, gate = KafkaMock(), Gate()
    try:
        mock.cmd("topic spill 2")
        mock.cmd("down -1")
        with Spillway(spill_config(mock, gate)) as sw:
            sw.start()
            check("Kafka cannot be reached" in sw.log(), f"says so: {sw.log()[-1500:]}")
            total = 40000
            addr = f"TCP:127.0.0.1:{sw.ports['tcp']}"
            sender = threading.Thread(target=socat_send, args=(payload(0, total, pad=20), addr))
            sender.start()
            wait_for(lambda: spill_totals(sw)["spill_refused"] > 0, 60, "blocking, counted")
            check(spill_totals(sw)["spilled"] == 0, "nothing spilled without Kafka")
            mock.cmd("up -1")
            wait_for(lambda: "Kafka reached" in sw.log(), 60, "Kafka reached")
            sender.join(120)
            wait_for(lambda: spill_totals(sw)["spilled"] > 0, 60, "spilling once it can")
            gate.open.set()
            wait_for(lambda: gate.count() >= total, 120, "everything delivered")
            t = spill_totals(sw)
            check(t["dropped"] == 0 and t["spill_lost"] == 0, f"nothing dropped or lost: {t}")
            check(sw.stop() == 0, "clean stop")
        check_exactly_once_in_order(gate.events, total)
    finally:
        gate.close()
        mock.close()


def test_spill_lost_to_retention_is_counted():
    """The mock broker keeps about 5 MiB per partition: spilling more than that while the sink
    is paused loses the oldest spilled records to retention. They are counted (spill_lost)
    and logged, and everything else is delivered: delivered + lost == sent."""
    mock, gate = KafkaMock(), Gate()
    try:
        mock.cmd("topic spill 1")
        with Spillway(spill_config(mock, gate, partitions=1)) as sw:
            sw.start()
            total = 30000  # about 12 MiB
            socat_send(payload(0, total, pad=400), f"TCP:127.0.0.1:{sw.ports['tcp']}")
            wait_for(lambda: spill_totals(sw)["spilled"] > total // 2, 60, "spilling")
            gate.open.set()
            wait_for(lambda: gate.count() + spill_totals(sw)["spill_lost"] >= total, 120,
                     "delivered or counted lost")
            t = spill_totals(sw)
            check(t["spill_lost"] > 0, f"retention took some: {t}")
            check(gate.count() + t["spill_lost"] == total, f"{gate.count()} delivered, {t}")
            check(sw.stop() == 0, "clean stop")
            check("retention" in sw.log() or "lost" in sw.log(), "and the log says so")
        seqs = [e["seq"] for e in gate.events]
        check(len(seqs) == len(set(seqs)), "no duplicates")
        check_order(gate.events)
    finally:
        gate.close()
        mock.close()


def kafka_mode(mock):
    """pipeline.kafka for the Kafka-mode tests: topic events, group routers, and a short session
    so that a router's partitions go to the next one in seconds (the mock broker lets a member
    go only when its session ends)."""
    return (f"kafka: {{brokers: '{mock.bootstrap}', topic: events, group: routers, "
            "properties: {session.timeout.ms: '6000', heartbeat.interval.ms: '500'}}")


def test_kafka_mode_router_killed_loses_nothing():
    mock = KafkaMock()
    try:
        mock.cmd("topic events 4")
        kafka = kafka_mode(mock)
        col = Spillway(config(f"{{mode: kafka, role: collector, {kafka}}}",
                              "  - {name: s, type: null}"))
        rtr_conf = config(f"{{mode: kafka, role: router, partitions: 2, {kafka}}}",
                          "  - {name: s, type: file, path: ./out.ndjson}")
        rtr = Spillway(rtr_conf)
        with col, rtr:
            col.start()
            rtr.start()
            total = 30000
            socat_send(payload(0, total // 2), f"TCP:127.0.0.1:{col.ports['tcp']}")
            wait_for(lambda: count_lines(rtr.path("out.ndjson")) > 1000, 60, "routing")
            rtr.proc.send_signal(signal.SIGKILL)  # mid-stream: nothing committed is lost
            rtr.proc.wait(10)
            socat_send(payload(total // 2, total // 2), f"TCP:127.0.0.1:{col.ports['tcp']}")
            rtr.start()
            wait_for(lambda: len({e["seq"] for e in read_ndjson_tolerant(rtr.path("out.ndjson"))})
                     >= total, 120, "every event routed after the restart")
            check(rtr.stop() == 0 and col.stop() == 0, "clean stops")
            m = re.search(r'"consumed":(\d+)', rtr.log())
            check(m and int(m.group(1)) > 0, f"the router's stop says what it consumed: "
                  f"{rtr.log()[-800:]}")
            seqs = [e["seq"] for e in read_ndjson_tolerant(rtr.path("out.ndjson"))]
            check(set(seqs) == set(range(total)), f"nothing lost: {len(set(seqs))} of {total}")
            print(f"duplicates after SIGKILL (at-least-once): {len(seqs) - total}")
    finally:
        mock.close()


def test_kafka_mode_router_stopped_with_a_dead_sink_loses_nothing():
    """A router stopped (SIGTERM) while its sink refuses everything gives up on those records
    at shutdown_timeout and must not commit their offsets: restarted with the sink back, it
    consumes and delivers them again."""
    mock, gate = KafkaMock(), Gate()
    try:
        mock.cmd("topic events 2")
        kafka = kafka_mode(mock)
        col = Spillway(config(f"{{mode: kafka, role: collector, {kafka}}}",
                              "  - {name: s, type: null}"))
        sink = (f"  - {{name: s, type: http, url: 'http://127.0.0.1:{gate.port}/', "
                "batch_max_events: 500, batch_timeout: 10ms}")
        rtr = Spillway(config(f"{{mode: kafka, role: router, partitions: 2, {kafka}}}", sink)
                       .replace("shutdown_timeout: 20s", "shutdown_timeout: 2s"))
        with col, rtr:
            col.start()
            rtr.start()
            total = 5000
            socat_send(payload(0, total), f"TCP:127.0.0.1:{col.ports['tcp']}")
            wait_for(lambda: stats(rtr)["kafka"]["consumed"] >= total, 60, "all consumed")
            check(stats(rtr)["kafka"]["committed"] == 0, "nothing committed while the sink "
                  f"refuses: {stats(rtr)['kafka']}")
            check(rtr.stop() == 0, "the router stops within shutdown_timeout")
            check("not committing" in rtr.log(), f"it says why it does not commit: "
                  f"{rtr.log()[-1500:]}")
            gate.open.set()
            rtr.start()
            wait_for(lambda: len({e["seq"] for e in list(gate.events)}) >= total, 60,
                     "every event delivered after the restart")
            check(rtr.stop() == 0 and col.stop() == 0, "clean stops")
        seqs = {e["seq"] for e in gate.events}
        check(seqs == set(range(total)), f"nothing lost: {len(seqs)} of {total}")
    finally:
        gate.close()
        mock.close()


def test_kafka_mode_retention_losses_are_counted():
    """Kafka deletes records a router's group had not consumed yet (the mock broker keeps about
    5 MiB per partition): the router counts them (kafka.lost) and says so, and delivers all the
    rest; its group's first start, with no offset yet, takes the topic from its start and counts
    nothing lost."""
    mock = KafkaMock()
    try:
        mock.cmd("topic events 1")
        kafka = kafka_mode(mock)
        col = Spillway(config(f"{{mode: kafka, role: collector, {kafka}}}",
                              "  - {name: s, type: null}"))
        rtr = Spillway(config(f"{{mode: kafka, role: router, partitions: 1, {kafka}}}",
                              "  - {name: s, type: file, path: ./out.ndjson}"))
        with col, rtr:
            col.start()
            socat_send(payload(0, 100), f"TCP:127.0.0.1:{col.ports['tcp']}")
            wait_for(lambda: stats(col)["kafka"]["produced"] >= 100, 30, "the first records")
            rtr.start()
            wait_for(lambda: stats(rtr)["kafka"]["committed"] >= 100, 60, "the first committed")
            check(stats(rtr)["kafka"]["lost"] == 0, f"a new group loses nothing: "
                  f"{stats(rtr)['kafka']}")
            check(rtr.stop() == 0, "the router stops")
            total = 30000  # about 12 MiB more while the router is away
            socat_send(payload(100, total, pad=400), f"TCP:127.0.0.1:{col.ports['tcp']}")
            wait_for(lambda: stats(col)["kafka"]["produced"] >= 100 + total, 60, "produced")
            check(col.stop() == 0, "the collector stops (every record acknowledged)")
            rtr.start()

            def seqs():
                return {e["seq"] for e in read_ndjson(rtr.path("out.ndjson"))}
            wait_for(lambda: stats(rtr)["kafka"]["lost"] > 0
                     and len(seqs()) + stats(rtr)["kafka"]["lost"] >= 100 + total, 60,
                     "delivered or counted lost")
            lost = stats(rtr)["kafka"]["lost"]
            got = seqs()
            check(len(got) + lost == 100 + total and set(range(100)) <= got
                  and max(got) == 100 + total - 1, f"{len(got)} delivered, {lost} lost")
            check("retention" in rtr.log(), "and the log says so")
            check(rtr.stop() == 0, "clean stop")
    finally:
        mock.close()


def test_kafka_mode_two_routers_share_the_topic():
    """Scale-out: a collector and two routers in one consumer group share the topic's
    partitions: each router delivers part of the stream, together everything (a rebalance may
    repeat what a router had not committed yet: at-least-once). A process with role all does
    both jobs alone, through the topic, once each."""
    mock = KafkaMock()
    try:
        mock.cmd("topic events 4")
        kafka = kafka_mode(mock)
        col = Spillway(config(f"{{mode: kafka, role: collector, {kafka}}}",
                              "  - {name: s, type: null}"))
        rtrs = [Spillway(config(f"{{mode: kafka, role: router, partitions: 2, {kafka}}}",
                                "  - {name: s, type: file, path: ./out.ndjson}"))
                for _ in range(2)]
        with col, rtrs[0], rtrs[1]:
            col.start()
            for r in rtrs:
                r.start()
            # Keep the stream going until the group has settled with both routers working.
            sent, deadline = 0, time.monotonic() + 90
            while not all(count_lines(r.path("out.ndjson")) > 0 for r in rtrs):
                check(time.monotonic() < deadline, "both routers get partitions")
                socat_send(payload(sent, 1000), f"TCP:127.0.0.1:{col.ports['tcp']}")
                sent += 1000
                time.sleep(0.2)
            socat_send(payload(sent, 5000), f"TCP:127.0.0.1:{col.ports['tcp']}")
            sent += 5000

            def seqs():
                return [e["seq"] for r in rtrs for e in read_ndjson(r.path("out.ndjson"))]
            wait_for(lambda: len(set(seqs())) >= sent, 120, "everything routed")
            for r in rtrs:
                check(r.stop() == 0, "clean stop")
            check(col.stop() == 0, "clean stop")
            got = seqs()
            check(set(got) == set(range(sent)), f"together everything: {len(set(got))} of {sent}")
            print(f"{sent} events: {[count_lines(r.path('out.ndjson')) for r in rtrs]} per "
                  f"router, {len(got) - sent} repeated by the rebalance")
        # role all: one process collects and routes through the same topic.
        mock.cmd("topic solo 2")
        solo = f"kafka: {{brokers: '{mock.bootstrap}', topic: solo, group: solo}}"
        with Spillway(config(f"{{mode: kafka, role: all, {solo}}}",
                             "  - {name: s, type: file, path: ./out.ndjson}")) as sw:
            sw.start()
            socat_send(payload(0, 5000), f"TCP:127.0.0.1:{sw.ports['tcp']}")
            wait_for(lambda: count_lines(sw.path("out.ndjson")) >= 5000, 60, "role all routes")
            k = stats(sw)["kafka"]
            check(k["produced"] == 5000 and k["consumed"] == 5000, f"through Kafka: {k}")
            check(sw.stop() == 0, "clean stop")
            got = sorted(e["seq"] for e in read_ndjson(sw.path("out.ndjson")))
            check(got == list(range(5000)), "once each")
    finally:
        mock.close()


def read_ndjson_tolerant(path):
    """SIGKILL may cut one line of the file sink; the restarted sink ends it with a newline, so
    the line after it is whole. Skips the cut line (at most one per kill) and a partial last
    line."""
    out, cut = [], 0
    if not os.path.exists(path):
        return out
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                cut += 1
    check(cut <= 1, f"{cut} unreadable lines in {path}")
    return out


if __name__ == "__main__":
    main([test_memory_ceiling_with_a_stalled_sink, test_memory_ceiling_while_spilling,
          test_block_loses_nothing_with_a_slow_sink,
          test_drop_newest_counts_exactly, test_partition_key_and_round_robin,
          test_keyless_events_spread_by_message,
          test_spill_and_replay_exactly_once_in_order,
          test_spill_through_a_broker_outage_loses_nothing,
          test_spill_replay_skips_copies_kafka_kept,
          test_spill_properties_cannot_change_what_its_guarantees_rest_on,
          test_spill_backlog_survives_a_restart,
          test_spill_restart_in_the_middle_of_a_replay,
          test_spill_waits_for_an_unreachable_kafka, test_spill_lost_to_retention_is_counted,
          test_kafka_mode_router_killed_loses_nothing,
          test_kafka_mode_router_stopped_with_a_dead_sink_loses_nothing,
          test_kafka_mode_retention_losses_are_counted,
          test_kafka_mode_two_routers_share_the_topic])
