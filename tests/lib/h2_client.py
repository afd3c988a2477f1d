"""A raw HTTP/2 client for the integration tests of the otlp_grpc input, to send what no gRPC
library sends: frames written one by one with python3-h2's frame and header layers (hyperframe,
hpack; Debian's python3-h2 brings both), so a test can cut a message short, reset a stream in the
middle of one, announce a 100 MB message, send the rest of a call after a GOAWAY, or never read
its answers. h2's own connection object is not used: it refuses every frame after a GOAWAY,
which is what the graceful stop must be tested with. Run by /usr/bin/python3;
spillway_test.H2Raw drives it.

    h2_client.py

takes one JSON command per line on stdin and answers each with one JSON line on stdout
({"ok": true, ...} or {"ok": false, "error": ...}):

    {"op": "connect", "port": P [, "rcvbuf": BYTES]}   a TCP connection to 127.0.0.1:P
    {"op": "preface" [, "settings": {ID: VALUE}]}
                                       the client preface and a SETTINGS frame (IDs as numbers:
                                       4 is INITIAL_WINDOW_SIZE)
    {"op": "raw", "b64": ...}          bytes as they are
    {"op": "headers", "stream": N, "headers": [[name, value], ...], "end": bool}
    {"op": "call", "stream": N, "path": P, "msg_b64": M [, "length": L] [, "flag": F]
                   [, "ctype": C] [, "method": M] [, "gzip": bool] [, "cut": K]
                   [, "end": bool]}
                                       a gRPC request: HEADERS, then one DATA frame holding the
                                       5-byte prefix (flag F, length L: those of M unless given)
                                       and M (its first K bytes with cut); END_STREAM unless
                                       end is false
    {"op": "data", "stream": N, "b64": ..., "end": bool}
    {"op": "rst", "stream": N, "code": C}
    {"op": "ping", "hex": 16 hex digits}
    {"op": "flood", "count": N, "first": STREAM, "seconds": S}
                                       N calls of unknown methods (a different path each, so
                                       every answer is new bytes), written without reading
                                       anything, for at most S seconds: answers how many calls
                                       and bytes went out before the socket stopped taking them
                                       (for a second), or the connection was cut off
    {"op": "read", "until": WHAT, "timeout": S}
                                       reads frames (SETTINGS are acknowledged, DATA gets its
                                       WINDOW_UPDATE) until WHAT: "end:N" (stream N answered
                                       or reset), "goaway", "ping_ack", "closed", "settings"
                                       or "none" (what comes within S seconds); answers
                                       {"met": bool, "state": ...}
    {"op": "state"}                    streams (headers, trailers, data, reset code, ended),
                                       goaway, ping_acks, closed, settings
    {"op": "close"}
"""
import base64
import gzip
import json
import select
import socket
import sys
import time

import h2.errors  # noqa: F401  (python3-h2: the package this helper needs)
from hpack import Decoder, Encoder
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Client:
    def __init__(self):
        self.sock = None
        self.enc = Encoder()
        self.dec = Decoder()
        self.dec.max_allowed_table_size = 65536
        self.buf = b""
        self.streams = {}
        self.goaway = None
        self.ping_acks = []
        self.closed = False
        self.settings = None
        self.block = None  # (stream, header block so far, end_stream) while CONTINUATIONs come

    def stream(self, sid):
        return self.streams.setdefault(str(sid), {"headers": None, "trailers": None, "data": b"",
                                                  "reset": None, "ended": False})

    def send(self, data):
        self.sock.sendall(data)

    def reply(self, data):
        """What reading answers (SETTINGS ACK, WINDOW_UPDATE, PING ACK): a connection the server
        already closed is noted, not an error."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def headers_frame(self, sid, headers, end):
        f = HeadersFrame(sid)
        f.data = self.enc.encode([(k.encode(), v.encode()) for k, v in headers])
        f.flags.add("END_HEADERS")
        if end:
            f.flags.add("END_STREAM")
        return f.serialize()

    def data_frames(self, sid, data, end):
        out = b""
        for off in range(0, max(len(data), 1), 16384):
            f = DataFrame(sid)
            f.data = data[off:off + 16384]
            if end and off + 16384 >= len(data):
                f.flags.add("END_STREAM")
            out += f.serialize()
        return out

    def call_bytes(self, c):
        msg = base64.b64decode(c.get("msg_b64", ""))
        headers = [(":method", c.get("method", "POST")), (":scheme", "http"),
                   (":path", c["path"]), (":authority", "127.0.0.1"),
                   ("content-type", c.get("ctype", "application/grpc")), ("te", "trailers")]
        flag = c.get("flag", 0)
        if c.get("gzip"):
            msg = gzip.compress(msg)
            headers.append(("grpc-encoding", "gzip"))
            flag = c.get("flag", 1)
        length = c.get("length", len(msg))
        body = bytes([flag]) + length.to_bytes(4, "big") + msg
        if "cut" in c:
            body = body[:5 + c["cut"]]
        end = c.get("end", True)
        return self.headers_frame(c["stream"], headers, False) + \
            self.data_frames(c["stream"], body, end)

    def on_frame(self, f):
        if isinstance(f, SettingsFrame):
            if "ACK" not in f.flags:
                self.settings = {str(k): v for k, v in f.settings.items()}
                self.reply(SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(f, PingFrame):
            if "ACK" in f.flags:
                self.ping_acks.append(f.opaque_data.hex())
            else:
                self.reply(PingFrame(0, f.opaque_data, flags=["ACK"]).serialize())
        elif isinstance(f, GoAwayFrame):
            self.goaway = {"last_stream": f.last_stream_id, "code": f.error_code,
                           "debug": f.additional_data.decode(errors="replace")}
        elif isinstance(f, RstStreamFrame):
            s = self.stream(f.stream_id)
            s["reset"] = f.error_code
            s["ended"] = True
        elif isinstance(f, DataFrame):
            s = self.stream(f.stream_id)
            s["data"] += f.data
            n = f.flow_controlled_length
            if n:
                self.reply(WindowUpdateFrame(0, n).serialize() +
                          WindowUpdateFrame(f.stream_id, n).serialize())
            if "END_STREAM" in f.flags:
                s["ended"] = True
        elif isinstance(f, (HeadersFrame, ContinuationFrame)):
            if isinstance(f, HeadersFrame):
                self.block = (f.stream_id, f.data, "END_STREAM" in f.flags)
            else:
                self.block = (self.block[0], self.block[1] + f.data, self.block[2])
            if "END_HEADERS" in f.flags:
                sid, block, end = self.block
                self.block = None
                hs = {k.decode() if isinstance(k, bytes) else k:
                      v.decode(errors="replace") if isinstance(v, bytes) else v
                      for k, v in self.dec.decode(block, raw=True)}
                s = self.stream(sid)
                if s["headers"] is None:
                    s["headers"] = hs
                    if "grpc-status" in hs:  # trailers-only
                        s["trailers"] = hs
                else:
                    s["trailers"] = hs
                if end:
                    s["ended"] = True

    def pump(self, timeout):
        """Reads what comes within timeout seconds (0: what is there) and handles whole frames."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return False
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        while len(self.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                break
            f.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            self.on_frame(f)
        return True

    def met(self, until):
        if until.startswith("end:"):
            return self.stream(until[4:])["ended"]
        return {"goaway": self.goaway is not None, "ping_ack": bool(self.ping_acks),
                "closed": self.closed, "settings": self.settings is not None,
                "none": False}[until]

    def state(self):
        streams = {k: dict(v, data=base64.b64encode(v["data"]).decode(), data_len=len(v["data"]))
                   for k, v in self.streams.items()}
        return {"streams": streams, "goaway": self.goaway, "ping_acks": self.ping_acks,
                "closed": self.closed, "settings": self.settings}

    def flood(self, c):
        """Calls written until the socket takes no more for c["seconds"] (never reading)."""
        self.sock.setblocking(False)
        sent_calls = sent_bytes = 0
        pending = b""
        sid = c["first"]
        deadline = time.monotonic() + c["seconds"]
        blocked_since = None
        while sent_calls < c["count"] or pending:
            if not pending:
                path = f"/flood.Service/Method{sid:09d}" + "x" * 120
                pending = self.call_bytes({"stream": sid, "path": path, "msg_b64": ""})
                sid += 2
                sent_calls += 1
            try:
                n = self.sock.send(pending)
                pending = pending[n:]
                sent_bytes += n
                blocked_since = None
            except BlockingIOError:
                now = time.monotonic()
                blocked_since = blocked_since or now
                if now - blocked_since > 1 or now > deadline:
                    break
                select.select([], [self.sock], [], 0.1)
            except OSError:  # reset: the server cut the connection off
                self.closed = True
                break
        self.sock.setblocking(True)
        return {"calls": sent_calls, "bytes": sent_bytes, "blocked": bool(pending),
                "next": sid, "closed": self.closed}

    def do(self, c):
        op = c["op"]
        out = {}
        if op == "connect":
            self.sock = socket.socket()
            if "rcvbuf" in c:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, c["rcvbuf"])
            self.sock.connect(("127.0.0.1", c["port"]))
        elif op == "preface":
            settings = {int(k): v for k, v in c.get("settings", {}).items()}
            self.send(PREFACE + SettingsFrame(0, settings=settings).serialize())
        elif op == "raw":
            self.send(base64.b64decode(c["b64"]))
        elif op == "headers":
            self.send(self.headers_frame(c["stream"], c["headers"], c.get("end", False)))
        elif op == "call":
            self.send(self.call_bytes(c))
        elif op == "data":
            self.send(self.data_frames(c["stream"], base64.b64decode(c["b64"]), c.get("end")))
        elif op == "rst":
            self.send(RstStreamFrame(c["stream"], error_code=c.get("code", 8)).serialize())
        elif op == "ping":
            self.send(PingFrame(0, bytes.fromhex(c["hex"])).serialize())
        elif op == "flood":
            out = self.flood(c)
        elif op == "read":
            deadline = time.monotonic() + c.get("timeout", 30)
            while not self.met(c["until"]) and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.pump(left)
            out = {"met": self.met(c["until"]), "state": self.state()}
        elif op == "state":
            out = {"state": self.state()}
        elif op == "close":
            self.sock.close()
        else:
            raise ValueError(f"unknown op {op}")
        return out


def main():
    cl = Client()
    for line in sys.stdin:
        try:
            out = dict(cl.do(json.loads(line)), ok=True)
        except Exception as e:  # the test reads what went wrong
            out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
