"""End-to-end throughput with a virtual token vs the master key (target: ratio >= 0.95).

    uv run python benchmarks/tokens_vs_master.py [--rounds 5] [--duration 10] [--connections 32]

Gateway pinned to CPU 0, the upstream double and wrk to CPU 1 (`taskset`), non-streaming chat
(shared/bench/chat.lua). Each round runs master / token / token-with-limits, in rotating order; the
ratios are taken within a round (paired) and their median reported, for throughput and for the gateway's
CPU time per request (steadier than throughput on a shared machine).
Needs `wrk` (Debian package) and shared/bench/ beside the repo.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LUA = ROOT.parent / "shared" / "bench" / "chat.lua"
MASTER, MT = "sk-bench-master-0123456789", "mt-bench-0123456789"


def wait(url: str) -> None:
    for _ in range(200):
        try:
            if httpx.get(url, timeout=0.5).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def cpu_s(root: int) -> float:
    """User + system CPU seconds of `root` and its descendants (granian runs its worker as a child)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


def wrk(url: str, key: str, duration: int, connections: int) -> tuple[float, int]:
    out = subprocess.run(["taskset", "-c", "1", "/usr/bin/wrk", "-t1", f"-c{connections}", f"-d{duration}s",
                          "-s", str(LUA), f"{url}/v1/chat/completions"], env={**os.environ, "WRK_KEY": key},
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"errors during the run:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, requests


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--gateway-env", action="append", default=[], metavar="VAR=VALUE",
                        help="an extra environment variable for the gateway (repeatable)")
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="llmgate-bench-")
    up_port, gw_port = 18181, 18182
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMGATE_", "OPENAI_"))}
    env |= {"OPENAI_BASE_URL": f"http://127.0.0.1:{up_port}/v1", "OPENAI_API_KEY": "sk-up",
            "LLMGATE_MASTER_KEY": MASTER, "LLMGATE_MANAGEMENT_TOKEN": MT, "LLMGATE_DATA_DIR": data,
            "LLMGATE_LOG_LEVEL": "WARNING"}
    env |= dict(item.split("=", 1) for item in args.gateway_env)
    procs = [subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "llmgate.upstream_double", "--host",
                               "127.0.0.1", "--port", str(up_port)], env=env)]
    procs.append(subprocess.Popen(["taskset", "-c", "0", sys.executable, "-m", "llmgate", "serve", "--port",
                                   str(gw_port)], env=env))
    url = f"http://127.0.0.1:{gw_port}"
    try:
        wait(f"http://127.0.0.1:{up_port}/_seen")
        wait(f"{url}/health")
        manage = {"authorization": f"Bearer {MT}"}
        project = httpx.post(f"{url}/manage/projects", json={"name": "bench"}, headers=manage).json()
        plain = httpx.post(f"{url}/manage/tokens", json={"project_id": project["id"]}, headers=manage).json()
        limited = httpx.post(f"{url}/manage/tokens", json={
            "project_id": project["id"], "rpm_limit": 10**9, "tpm_limit": 10**12, "max_requests": 10**12,
            "budget_tokens": 10**12}, headers=manage).json()
        keys = {"master": MASTER, "token": plain["secret"], "token+limits": limited["secret"]}
        wrk(url, MASTER, 3, args.connections)  # warm-up
        results: dict[str, list[float]] = {name: [] for name in keys}
        cpu: dict[str, list[float]] = {name: [] for name in keys}
        gateway_pid = procs[1].pid
        names = list(keys)
        for round_ in range(args.rounds):
            # Rotate the order (ABC, BCA, CAB, ...) so each variant runs in each position equally often: with
            # ABC/CBA alternation the middle variant was always measured right after another run, and came out
            # slower than a variant doing more work (plain token 0.91x, token with every limit 0.98x).
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                key = keys[name]
                before = cpu_s(gateway_pid)
                rps, requests = wrk(url, key, args.duration, args.connections)
                cpu_us = (cpu_s(gateway_pid) - before) / requests * 1e6
                results[name].append(rps)
                cpu[name].append(cpu_us)
                print(f"round {round_ + 1} {name:13} {rps:9.1f} rps  {cpu_us:6.1f} us CPU/request", flush=True)
        # Throughput is noisy on a shared machine; the gateway's CPU time per request is the steadier measure
        # (the gateway is CPU-bound on its core, so throughput ratio ~ inverse CPU-per-request ratio).
        # Ratios are taken within each round (paired), then the median across rounds.
        for name in keys:
            rps_ratio = statistics.median(t / m for t, m in zip(results[name], results["master"], strict=True))
            cpu_ratio = statistics.median(m / t for t, m in zip(cpu[name], cpu["master"], strict=True))
            print(f"median {name:13} {statistics.median(results[name]):9.1f} rps (paired ratio {rps_ratio:.3f})  "
                  f"{statistics.median(cpu[name]):6.1f} us CPU/request (paired ratio {cpu_ratio:.3f})")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
