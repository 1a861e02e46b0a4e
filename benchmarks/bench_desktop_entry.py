"""How long each desktop entry takes from start to the ``initialize`` answer, online and offline.

    python3 benchmarks/bench_desktop_entry.py [--starts 5] [--clone PATH]

Candidates, each started as a desktop client starts it (a fresh process, stdio, no shell):

- ``uvx --from <clone> customerio-mcp``: the try-it line; uv re-resolves the project's dependencies
  against the index at every start (a directory source is never taken as fresh).
- ``uvx --offline --from <clone> customerio-mcp``: the same from uv's cache, after one online start.
- ``uv tool install <clone>`` once, then the installed command by its absolute path: no uv at start
  (its first start compiles the bytecode; ``--compile-bytecode`` does that at install instead).

Everything lives in a temporary directory: its own ``UV_CACHE_DIR``, ``UV_TOOL_DIR`` and
``UV_TOOL_BIN_DIR``, so nothing already cached on this machine helps. "No network" is a proxy that
refuses every connection (``HTTPS_PROXY``/``HTTP_PROXY`` ``http://127.0.0.1:9``: nothing listens on
port 9 here, so reaching PyPI fails at once instead of waiting); "offline" adds ``UV_OFFLINE=1``.
The index URL is left alone: uv's cache is keyed by it, so pointing it elsewhere would empty the
cache rather than cut the network.
Reported: the median and spread of the starts, or why the entry did not start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import INITIALIZE  # noqa: E402

DEAD = "http://127.0.0.1:9"
NO_NETWORK = {"HTTPS_PROXY": DEAD, "HTTP_PROXY": DEAD, "https_proxy": DEAD, "http_proxy": DEAD, "NO_PROXY": ""}
OFFLINE = {"UV_OFFLINE": "1", **NO_NETWORK}


def start_once(argv: list[str], env: dict[str, str], timeout: float = 300) -> float | str:
    """Seconds from spawning ``argv`` to its ``initialize`` answer, or the last line it wrote to stderr."""
    began = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(json.dumps(INITIALIZE) + "\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - began
    try:  # closes stdin: the server ends
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
    if not line:
        return (stderr.strip().splitlines() or ["no output"])[-1]
    assert json.loads(line)["result"]["serverInfo"]["name"] == "customerio-mcp"
    return elapsed


def measure(label: str, argv: list[str], env: dict[str, str], starts: int) -> None:
    times: list[float] = []
    for _ in range(starts):
        outcome = start_once(argv, env)
        if isinstance(outcome, str):
            print(f"{label:<58} does not start: {outcome[:160]}")
            return
        times.append(outcome)
    print(f"{label:<58} median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--clone", type=Path, default=ROOT, help="the checkout the entries start (default: this one)")
    args = parser.parse_args()
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    uvx = shutil.which("uvx", path=str(Path(sys.executable).parent)) or shutil.which("uvx")
    assert uv, "uv is a test dependency: pip install -e '.[test]'"
    assert uvx
    clone = str(args.clone.resolve())
    with tempfile.TemporaryDirectory() as temporary:
        home = Path(temporary)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTOMERIO_", "UV_", "VIRTUAL_ENV"))}
        base |= {
            "UV_CACHE_DIR": str(home / "cache"),
            "UV_TOOL_DIR": str(home / "tools"),
            "UV_TOOL_BIN_DIR": str(home / "bin"),
            "UV_PYTHON_DOWNLOADS": "never",
        }
        print(f"uv {subprocess.run([uv, '--version'], capture_output=True, text=True).stdout.split()[1]}, "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, {args.starts} starts each")  # fmt: skip
        from_clone = [uvx, "--from", clone, "customerio-mcp"]
        measure("uvx --from <clone>: first start, empty cache", from_clone, base, 1)
        measure("uvx --from <clone>: online, warm cache", from_clone, base, args.starts)
        measure("uvx --from <clone>: no network (dead proxy)", from_clone, base | NO_NETWORK, 1)
        measure("uvx --offline --from <clone>: offline", [uvx, "--offline", "--from", clone, "customerio-mcp"],
                base | OFFLINE, args.starts)  # fmt: skip
        for label, extra in (("uv tool install <clone>", []), ("uv tool install --compile-bytecode <clone>",
                             ["--compile-bytecode"])):  # fmt: skip
            tools = {"UV_TOOL_DIR": str(home / f"tools{len(extra)}"), "UV_TOOL_BIN_DIR": str(home / f"bin{len(extra)}")}
            began = time.perf_counter()
            subprocess.run([uv, "tool", "install", *extra, clone], env=base | tools, check=True, capture_output=True)
            print(f"{label + ' (once, online, warm cache)':<58} {time.perf_counter() - began:.2f} s")
            installed = [str(home / f"bin{len(extra)}" / "customerio-mcp")]
            measure("  its command by absolute path: first start, offline", installed, base | OFFLINE, 1)
            measure("  its command by absolute path: offline", installed, base | OFFLINE, args.starts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
