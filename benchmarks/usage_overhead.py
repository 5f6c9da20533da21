"""What the usage log costs: llmgate with `LLMGATE_USAGE_LOG=1` (store sink on SQLite) vs off, side by side.

    uv run python benchmarks/usage_overhead.py [--rounds 5] [--duration 8] [--connections 32]

Two gateways run at once (each pinned to CPU 0 with `taskset`; only the one under load is busy), the upstream
double and wrk on CPU 1. Each round measures off and on, non-streaming and streaming chat (benchmarks/wrk/
chat.lua, stream.lua; the double's default 20 chunks), in rotating order. Per run: throughput, and the gateway
process tree's CPU time per request (utime+stime / requests: steadier than throughput on a shared machine,
since the gateway is CPU-bound on its core). Ratios on/off are paired within a round; medians are reported.
"other" is the machine's busy CPU that is neither the gateway, the double nor wrk (other tenants, steal),
in % of one core: above ~20% a round was disturbed. Target: on/off >= 0.90 (issue 6).
Needs `wrk` (Debian package).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tokens_vs_master import wait

from llmgate.bench.loadgen import WRK_DIR
from llmgate.bench.processes import CLK_TCK, machine_busy_ticks, tree_cpu_ticks
from llmgate.upstream_double import free_port

MASTER = "sk-bench-master-0123456789"
CASES = {"chat": WRK_DIR / "chat.lua", "stream": WRK_DIR / "stream.lua"}


def ticks(pid: int) -> int:
    return sum(tree_cpu_ticks(pid).values())


def wrk(url: str, script: Path, duration: int, connections: int) -> tuple[float, int, float]:
    """(rps, requests, wrk's own CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["taskset", "-c", "1", "/usr/bin/wrk", "-t1", f"-c{connections}", f"-d{duration}s",
                          "-s", str(script), f"{url}/v1/chat/completions"], env={**os.environ, "WRK_KEY": MASTER},
                         capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors during the run:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    own = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return rps, requests, own


Series = dict[tuple[str, str], list[float]]


def measure_rounds(urls: dict[str, str], pids: dict[str, int], double_pid: int, args: argparse.Namespace,
                   label: str = "") -> tuple[Series, Series]:
    """Each round: every case on every variant (order alternating by round). CPU µs per request of the gateway's
    process tree and its throughput, by (case, variant); prints each run and how busy the rest of the machine was."""
    cpu: Series = {}
    rps: Series = {}
    others: list[float] = []
    names = list(urls)
    for round_ in range(args.rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        for case, script in CASES.items():
            for name in order:
                gw0, dbl0, busy0, t0 = ticks(pids[name]), ticks(double_pid), machine_busy_ticks(), time.monotonic()
                r, requests, wrk_s = wrk(urls[name], script, args.duration, args.connections)
                wall = time.monotonic() - t0
                gw_s = (ticks(pids[name]) - gw0) / CLK_TCK
                dbl_s = (ticks(double_pid) - dbl0) / CLK_TCK
                other = max(0.0, (machine_busy_ticks() - busy0) / CLK_TCK - gw_s - dbl_s - wrk_s) / wall * 100
                us = gw_s / requests * 1e6
                cpu.setdefault((case, name), []).append(us)
                rps.setdefault((case, name), []).append(r)
                others.append(other)
                print(f"round {round_ + 1} {case:6} {label}{name:8} {r:8.1f} rps  {us:6.1f} us CPU/request  "
                      f"gateway {gw_s / wall * 100:5.1f}%  other {other:5.1f}%", flush=True)
    print(f"\nload average at the end: {Path('/proc/loadavg').read_text().split()[:3]}; "
          f"other CPU per run: median {statistics.median(others):.1f}%, max {max(others):.1f}% of one core")
    return cpu, rps


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    up_port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LLMGATE_", "OPENAI_"))}
    base |= {"OPENAI_BASE_URL": f"http://127.0.0.1:{up_port}/v1", "OPENAI_API_KEY": "sk-up",
             "LLMGATE_MASTER_KEY": MASTER, "LLMGATE_LOG_LEVEL": "WARNING"}
    data = {name: tempfile.mkdtemp(prefix=f"llmgate-usage-{name}-") for name in ("off", "on")}
    variants = {"off": {"LLMGATE_USAGE_LOG": "0"}, "on": {"LLMGATE_USAGE_LOG": "1"}}
    procs = [subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "llmgate.upstream_double", "--host",
                               "127.0.0.1", "--port", str(up_port)], env=base)]
    urls: dict[str, str] = {}
    pids: dict[str, int] = {}
    try:
        for name, extra in variants.items():
            port = free_port()
            proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-m", "llmgate", "serve", "--port",
                                     str(port)], env={**base, **extra, "LLMGATE_DATA_DIR": data[name]})
            procs.append(proc)
            urls[name], pids[name] = f"http://127.0.0.1:{port}", proc.pid
        wait(f"http://127.0.0.1:{up_port}/_seen")
        for url in urls.values():
            wait(f"{url}/health")
            for script in CASES.values():
                wrk(url, script, 2, args.connections)  # warm-up
        double_pid = procs[0].pid
        cpu, rps = measure_rounds(urls, pids, double_pid, args, "usage ")
        for case in CASES:
            on_cpu, off_cpu = cpu[(case, "on")], cpu[(case, "off")]
            cpu_ratio = statistics.median(off / on for off, on in zip(off_cpu, on_cpu, strict=True))
            rps_ratio = statistics.median(on / off for off, on in zip(rps[(case, "off")], rps[(case, "on")],
                                                                      strict=True))
            print(f"{case:6}: off {statistics.median(off_cpu):6.1f} us/request, on {statistics.median(on_cpu):6.1f} "
                  f"us/request (+{statistics.median(on_cpu) - statistics.median(off_cpu):.1f}); "
                  f"on/off throughput-equivalent {cpu_ratio:.3f} (CPU, paired), measured rps ratio {rps_ratio:.3f}")
        with sqlite3.connect(Path(data["on"]) / "llmgate.db") as db:
            rows, missing = db.execute("SELECT COUNT(*), SUM(total_tokens IS NULL) FROM usage").fetchone()
        print(f"usage rows written by the 'on' gateway: {rows} ({missing} without tokens)")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
