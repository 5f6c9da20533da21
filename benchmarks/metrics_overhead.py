"""What observability costs per request: this tree (metrics sink always on, request-id contextvar, shedding
check) against a baseline commit without them, side by side, usage log off in both.

    uv run python benchmarks/metrics_overhead.py [--baseline REV] [--rounds 6] [--duration 6] [--connections 32]

The baseline (default: where this branch left main, `git merge-base HEAD main`) is checked out in a temporary
git worktree and run from its own src/ (PYTHONPATH) with this environment's packages. Both gateways run at once,
each pinned to CPU 0 (`taskset`; only the one under load is busy), the upstream double and wrk on CPU 1.
Each round measures both, non-streaming and streaming chat (benchmarks/wrk/chat.lua, stream.lua), in
alternating order. Per run: throughput and the gateway tree's CPU time per request (utime+stime / requests,
steadier than throughput on a shared machine); ratios are paired within a round, medians reported. "other" is
the machine's busy CPU that is neither gateway, double nor wrk, in % of one core (above ~20%: disturbed).
Needs `wrk` (Debian package).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tokens_vs_master import wait
from usage_overhead import CASES, MASTER, measure_rounds, wrk

from llmgate.upstream_double import free_port

REPO = Path(__file__).resolve().parents[1]


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default="")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    rev = args.baseline or git("merge-base", "HEAD", "main")
    checkout = tempfile.mkdtemp(prefix="llmgate-baseline-")
    git("worktree", "add", "--detach", checkout, rev)
    up_port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LLMGATE_", "OPENAI_", "PROMETHEUS_"))}
    base |= {"OPENAI_BASE_URL": f"http://127.0.0.1:{up_port}/v1", "OPENAI_API_KEY": "sk-up",
             "LLMGATE_MASTER_KEY": MASTER, "LLMGATE_LOG_LEVEL": "WARNING"}
    variants = {"base": {"PYTHONPATH": f"{checkout}/src"}, "observed": {}}
    procs = [subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "llmgate.upstream_double", "--host",
                               "127.0.0.1", "--port", str(up_port)], env=base)]
    urls: dict[str, str] = {}
    pids: dict[str, int] = {}
    try:
        for name, extra in variants.items():
            port = free_port()
            proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-m", "llmgate", "serve", "--port",
                                     str(port)], env={**base, **extra, "LLMGATE_DATA_DIR": tempfile.mkdtemp()})
            procs.append(proc)
            urls[name], pids[name] = f"http://127.0.0.1:{port}", proc.pid
        wait(f"http://127.0.0.1:{up_port}/_seen")
        for url in urls.values():
            wait(f"{url}/health")
        import httpx

        has_metrics = {name: httpx.get(f"{url}/metrics").status_code == 200 for name, url in urls.items()}
        print(f"baseline {rev[:10]} from {checkout}; /metrics served: {has_metrics}")
        assert has_metrics == {"base": False, "observed": True}, "the baseline must be the code without metrics"
        for url in urls.values():
            for script in CASES.values():
                wrk(url, script, 2, args.connections)  # warm-up
        double_pid = procs[0].pid
        cpu, rps = measure_rounds(urls, pids, double_pid, args)
        for case in CASES:
            before, after = cpu[(case, "base")], cpu[(case, "observed")]
            cpu_ratio = statistics.median(b / a for b, a in zip(before, after, strict=True))
            rps_ratio = statistics.median(a / b for b, a in zip(rps[(case, "base")], rps[(case, "observed")],
                                                                strict=True))
            added = statistics.median(after) - statistics.median(before)
            print(f"{case:6}: base {statistics.median(before):6.1f} us/request, observed "
                  f"{statistics.median(after):6.1f} us/request ({added:+.1f}); observed/base throughput-equivalent "
                  f"{cpu_ratio:.3f} (CPU, paired), measured rps ratio {rps_ratio:.3f}")
        metrics = httpx.get(f"{urls['observed']}/metrics").text
        counted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                      if line.startswith("llmgate_requests_total{"))
        print(f"requests counted by the observed gateway's /metrics: {counted:.0f}")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        git("worktree", "remove", "--force", checkout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
