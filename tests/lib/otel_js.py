"""The OpenTelemetry JS SDK for the integration tests: the exact versions tests/tools/otel-js/
package.json and package-lock.json pin, installed by `npm ci` from the npm registry into a cache
directory of the build tree (OTEL_JS_CACHE, set by tests/CMakeLists.txt; else build/otel-js),
one tree per lock file (named by the hash of both files), reused while the lock is unchanged.
ctest runs the install as a test of its own (tools.otel_js_install, a fixture test_otlp_grpc
requires), so it is out of the way of the other tests; a test calls ensure() again, which finds
the tree at once. Missing node or npm, or a failed install, fails the test saying so.

    otel_js.py install      installs (or finds) the tree and prints its path
"""
import hashlib
import os
import shutil
import subprocess
import sys
import time

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "otel-js")
FILES = ("package.json", "package-lock.json")


def cache_root():
    env = os.environ.get("OTEL_JS_CACHE")
    if env:
        return env
    bin_ = os.environ.get("SPILLWAY_BIN") or os.path.join(TOOLS, "..", "..", "..", "build",
                                                          "spillway")
    return os.path.join(os.path.dirname(os.path.abspath(bin_)), "otel-js")


def ensure():
    """The directory holding node_modules and export.js; installs it first when needed."""
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            raise AssertionError(f"{tool} not found: the OpenTelemetry JS SDK test needs Node.js "
                                 "and npm (apt-get install nodejs npm)")
    h = hashlib.sha256()
    for name in FILES:
        with open(os.path.join(TOOLS, name), "rb") as f:
            h.update(f.read())
    root = cache_root()
    dest = os.path.join(root, "tree-" + h.hexdigest()[:16])
    marker = os.path.join(dest, "node_modules", ".spillway-installed")
    if not os.path.exists(marker):
        os.makedirs(root, exist_ok=True)
        tmp = f"{dest}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        for name in FILES:
            shutil.copy(os.path.join(TOOLS, name), tmp)
        t0 = time.monotonic()
        # Scripts are not run: the packages need none (protobufjs's postinstall only checks
        # versions), and a test install should run no code of the registry's at install time.
        r = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund",
                            "--cache", os.path.join(root, "npm-cache")],
                           cwd=tmp, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise AssertionError(f"npm ci of tests/tools/otel-js failed (exit {r.returncode}; "
                                 f"the npm registry must be reachable):\n{r.stdout}\n{r.stderr}")
        with open(os.path.join(tmp, "node_modules", ".spillway-installed"), "w") as f:
            f.write(f"{time.monotonic() - t0:.1f} s\n")
        try:
            os.rename(tmp, dest)
        except OSError:  # installed meanwhile by another process
            shutil.rmtree(tmp, ignore_errors=True)
    shutil.copy(os.path.join(TOOLS, "export.js"), dest)
    return dest


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: otel_js.py install")
    t0 = time.monotonic()
    print(ensure(), f"({time.monotonic() - t0:.1f} s)")
