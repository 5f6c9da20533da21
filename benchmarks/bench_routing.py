"""End-to-end cost of routing: llmgate with routing on vs plain passthrough (and vs the pre-routing code).

    uv run python benchmarks/bench_routing.py [--runs 5] [--duration 8] [--base DIR]

Gateway pinned to CPU 0; the upstream (shared/bench/mock_upstream.js, node) and wrk pinned to CPU 1; c=32,
non-streaming and streaming (20 chunks). Variants, all one granian worker:
- `passthrough`: no config file (OPENAI_BASE_URL → the mock), every model passes through;
- `routed`: one alias (gpt-4o-mini, the model wrk asks for) over two deployments with three keys each;
- `base` (with --base DIR, a source tree of an older commit, e.g. `git archive 4ef1576 | tar -x -C DIR`): the
  same passthrough on the code before routing.
Reported per variant and case: median requests/s over the runs, and the median CPU time per request of the
gateway's process tree (utime+stime from /proc over the run ÷ requests), steadier than rps on a shared machine,
and the least CPU time per request of any run (contention only adds to it). Runs where wrk saw errors (socket
timeouts when the shared machine stalls) are printed but not counted.
Runs are interleaved (variant A, B, C, A, B, C, ...) so drifting load from other users hits each alike.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "bench"
KEY = "sk-bench-master-key-000000"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_port(port)
        time.sleep(0.5)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def tree_cpu_s(pid: int) -> float:
    """utime+stime of `pid` and its descendants (granian's worker is a child), in seconds."""
    total = 0
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    stack = [pid]
    while stack:
        current = stack.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        stack.extend(children.get(current, []))
    return total / TICKS


def wrk(port: int, script: str, duration_s: int, conc: int = 32) -> tuple[float, int, int]:
    """(requests/s, requests, non-2xx + socket errors)."""
    out = subprocess.run(["taskset", "-c", "1", "/usr/bin/wrk", "-t1", f"-c{conc}", f"-d{duration_s}s",
                          "-s", str(SHARED / script), f"http://127.0.0.1:{port}/v1/chat/completions"],
                         env={**os.environ, "WRK_KEY": KEY}, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return rps, requests, errors


ROUTED_CONFIG = """
[[providers]]
name = "first"
base_url = "{up}/v1"
api_keys = ["sk-first-1", "sk-first-2", "sk-first-3"]

[[providers]]
name = "second"
base_url = "{up}/second/v1"
api_keys = ["sk-second-1", "sk-second-2", "sk-second-3"]

[[models]]
name = "gpt-4o-mini"
deployments = [{{ provider = "first" }}, {{ provider = "second" }}]
"""


def gateway_cmd(variant: str, port: int, base: Path | None, config: Path) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMGATE_", "OPENAI_", "ANTHROPIC_"))}
    env.update(LLMGATE_MASTER_KEY=KEY, LLMGATE_LOG_LEVEL="WARNING")
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "llmgate", "serve", "--port", str(port)]
    if variant == "routed":
        cmd += ["--config", str(config)]
    if variant == "base":
        assert base is not None
        env["PYTHONPATH"] = str(base / "src")
    return cmd, env


def measure(variant: str, run: int, cmd: list[str], env: dict[str, str], port: int, duration_s: int,
            results: dict[tuple[str, str], list[tuple[float, float]]]) -> None:
    with process(cmd, env, port) as gw:
        wrk(port, "chat.lua", 2)  # warm-up
        for case, script in (("nonstream", "chat.lua"), ("stream", "stream.lua")):
            cpu0 = tree_cpu_s(gw.pid)
            rps, requests, errors = wrk(port, script, duration_s)
            cpu_us = (tree_cpu_s(gw.pid) - cpu0) / requests * 1e6
            print(f"run {run + 1} {variant:12} {case:10} {rps:8.0f} rps {cpu_us:7.1f} µs CPU/request"
                  f"{'  ERRORS ' + str(errors) + ' (run not counted)' if errors else ''}", flush=True)
            if not errors:
                results.setdefault((variant, case), []).append((rps, cpu_us))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--base", type=Path, help="source tree of the pre-routing code (adds the `base` variant)")
    args = parser.parse_args()
    variants = ["passthrough", "routed"] + (["base"] if args.base else [])
    mock_port = free_port()
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, process(
            ["taskset", "-c", "1", "node", str(SHARED / "mock_upstream.js")], {**os.environ, "PORT": str(mock_port)},
            mock_port):
        config = Path(tmp) / "routed.toml"
        config.write_text(ROUTED_CONFIG.format(up=f"http://127.0.0.1:{mock_port}"))
        for run in range(args.runs):
            for variant in variants:
                port = free_port()
                cmd, env = gateway_cmd(variant, port, args.base, config)
                env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{mock_port}/v1"
                env["OPENAI_API_KEY"] = "sk-upstream"
                try:
                    measure(variant, run, cmd, env, port, args.duration, results)
                except (RuntimeError, subprocess.CalledProcessError) as exc:  # a shared machine: skip the run
                    print(f"run {run + 1} {variant:12} skipped: {exc}", flush=True)
    print("\nmedians over", args.runs, "runs (c=32):")
    for case in ("nonstream", "stream"):
        ref = statistics.median(r for r, _ in results[("passthrough", case)])
        ref_cpu = statistics.median(c for _, c in results[("passthrough", case)])
        for variant in variants:
            rps = statistics.median(r for r, _ in results[(variant, case)])
            cpu = statistics.median(c for _, c in results[(variant, case)])
            best = min(c for _, c in results[(variant, case)])
            print(f"  {case:10} {variant:12} {rps:8.0f} rps ({rps / ref:.3f}x passthrough)   "
                  f"{cpu:6.1f} µs CPU/request ({cpu - ref_cpu:+.1f} µs), least {best:6.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
