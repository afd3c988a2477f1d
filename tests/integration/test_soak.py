"""Issue 10: a 60-second soak (bench/soak.py): mixed traffic through every kind of input
(tcp NDJSON, syslog over UDP and TCP, HTTP NDJSON and OTLP, statsd, a tailed file with
rotation), three routes and a flaky HTTP sink. RSS and open file descriptors must stay flat
after warm-up, and every input's and route's counters must balance. SOAK_SECONDS overrides the
duration."""
import os
import sys

from spillway_test import SRC, check, main

sys.path.insert(0, os.path.join(SRC, "bench"))
import soak  # noqa: E402


def test_soak_60s():
    ok, _ = soak.soak(int(os.environ.get("SOAK_SECONDS", "60")))
    check(ok, "flat RSS and fds, balanced counters (see the report above)")


if __name__ == "__main__":
    main([test_soak_60s])
