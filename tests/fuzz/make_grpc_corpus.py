#!/usr/bin/python3
"""Writes the seed corpus of fuzz_grpc (tests/fuzz/corpus/grpc/): what an HTTP/2 client sends on
one connection, made with python3-h2's frame and header layers (hyperframe, hpack), behind the
target's first byte (the size of the reads and whether the session is paused; fuzz_grpc.c). The
OTLP messages are the otlp_pb target's seeds. Run once by hand when the seeds change:

    /usr/bin/python3 tests/fuzz/make_grpc_corpus.py
"""
import gzip
import os

from hpack import Encoder
from hyperframe.frame import (ContinuationFrame, DataFrame, HeadersFrame, PingFrame,
                              PriorityFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "grpc")
PB = os.path.join(HERE, "corpus", "otlp_pb")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
METHOD = {"logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
          "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
          "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"}


def body(name):
    with open(os.path.join(PB, name), "rb") as f:
        return f.read()


class Conn:
    def __init__(self):
        self.enc = Encoder()
        self.out = PREFACE + SettingsFrame(0).serialize() + \
            SettingsFrame(0, flags=["ACK"]).serialize()

    def headers(self, sid, path, ctype="application/grpc", method="POST", extra=(), end=False,
                split=False):
        hs = [(":method", method), (":scheme", "http"), (":path", path),
              (":authority", "127.0.0.1:4317"), ("content-type", ctype), ("te", "trailers"),
              *extra]
        block = self.enc.encode(hs)
        f = HeadersFrame(sid, block if not split else block[:5])
        if not split:
            f.flags.add("END_HEADERS")
        if end:
            f.flags.add("END_STREAM")
        self.out += f.serialize()
        if split:
            self.out += ContinuationFrame(sid, block[5:], flags=["END_HEADERS"]).serialize()
        return self

    def data(self, sid, data, end=True):
        f = DataFrame(sid, data)
        if end:
            f.flags.add("END_STREAM")
        self.out += f.serialize()
        return self

    def call(self, sid, signal, msg, flag=0, length=None, **kw):
        extra = (("grpc-encoding", "gzip"),) if flag == 1 else ()
        self.headers(sid, METHOD[signal], extra=extra, **kw)
        n = len(msg) if length is None else length
        return self.data(sid, bytes([flag]) + n.to_bytes(4, "big") + msg)

    def raw(self, b):
        self.out += b
        return self


def write(name, first, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([first]) + data)


def main():
    os.makedirs(OUT, exist_ok=True)
    logs, traces, metrics = body("logs"), body("traces"), body("metrics")
    write("logs", 0x0e, Conn().call(1, "logs", logs).out)
    write("traces", 0x0b, Conn().call(1, "traces", traces).out)
    write("metrics", 0x25, Conn().call(1, "metrics", metrics).out)
    write("gzip", 0x0e, Conn().call(1, "logs", gzip.compress(logs), flag=1).out)
    write("three-calls-and-ping", 0x08,
          Conn().call(1, "logs", logs).call(3, "traces", traces).call(5, "metrics", metrics)
          .raw(PingFrame(0, b"12345678").serialize()).out)
    write("paused", 0x1c, Conn().call(1, "logs", logs).call(3, "logs", logs).out)
    write("continuation", 0x0e, Conn().call(1, "logs", logs, split=True).out)
    write("huge-prefix", 0x0e, Conn().call(1, "logs", b"\x0a" * 40, length=100_000_000).out)
    write("cut-short", 0x0e, Conn().call(1, "logs", logs[:50], length=len(logs)).out)
    write("two-messages", 0x0e,
          Conn().headers(1, METHOD["logs"]).data(1, b"\x00\x00\x00\x00\x00" * 2).out)
    write("compressed-not-gzip", 0x0e,
          Conn().headers(1, METHOD["logs"]).data(1, b"\x01\x00\x00\x00\x02ab").out)
    write("bad-flag", 0x0e, Conn().headers(1, METHOD["logs"]).data(1, b"\x07\x00\x00\x00\x00").out)
    write("gzip-not-gzip", 0x0e, Conn().call(1, "logs", b"not gzip", flag=1).out)
    write("not-grpc", 0x0e, Conn().headers(1, METHOD["logs"], ctype="application/json")
          .data(1, b"{}").out)
    write("get", 0x0e, Conn().headers(1, METHOD["logs"], method="GET", end=True).out)
    write("unknown-method", 0x0e, Conn().headers(1, "/x.Y/Z").data(1, b"\x00" * 5).out)
    write("rst-mid-message", 0x07,
          Conn().headers(1, METHOD["logs"]).data(1, b"\x00\x00\x00\x01\x00" + logs[:30], False)
          .raw(RstStreamFrame(1, 8).serialize()).call(3, "logs", logs).out)
    write("window-priority", 0x0e,
          Conn().raw(WindowUpdateFrame(0, 1 << 20).serialize() +
                     PriorityFrame(1, depends_on=0, stream_weight=15).serialize())
          .call(1, "traces", traces).raw(WindowUpdateFrame(1, 100).serialize()).out)
    write("no-message", 0x0e, Conn().headers(1, METHOD["logs"], end=True).out)
    write("not-http2", 0x0e, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    write("over-streams", 0x0e, b"".join(
        [Conn().out] + [Conn().headers(2 * i + 1, METHOD["logs"]).out[len(Conn().out):]
                        for i in range(12)]))
    write("empty-request", 0x01, Conn().call(1, "logs", b"").out)


if __name__ == "__main__":
    main()
