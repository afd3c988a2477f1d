"""`spillway run` without -c in an empty directory: the embedded default config (the one
`make run` starts) writes scripts/default.lua and delivers what arrives on 127.0.0.1:5170 and
run/spillway.sock to data/out/events.ndjson."""
import os

from spillway_test import Spillway, check, check_canonical, main, read_ndjson, socat_send


def test_embedded_default():
    with Spillway() as sw:
        sw.start()
        check(os.path.exists(sw.path("scripts/default.lua")), "default script written")
        socat_send(b'{"msg":"tcp","trace_id":"AA"}\n', "TCP:127.0.0.1:5170")
        socat_send(b'{"msg":"unix"}\n', f"UNIX-CONNECT:{sw.path('run/spillway.sock')}")
        check(sw.stop() == 0, "clean stop")
        events = read_ndjson(sw.path("data/out/events.ndjson"))
        check(sorted(e["message"] for e in events) == ["tcp", "unix"], f"events: {events}")
        for e in events:
            check_canonical(e, "app" if e["message"] == "tcp" else "local")


if __name__ == "__main__":
    main([test_embedded_default])
