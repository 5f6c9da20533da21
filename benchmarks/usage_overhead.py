"""What the usage log costs: llmgate with `LLMGATE_USAGE_LOG=1` (store sink on SQLite) vs off, side by side.

    uv run python benchmarks/usage_overhead.py [--rounds 5] [--duration 8] [--connections 32] [--together]

Two gateways run at once (each pinned to CPU 0 with `taskset`; only the one under load is busy), the upstream
double and wrk on CPU 1. Each round measures off and on, non-streaming and streaming chat (benchmarks/wrk/
chat.lua, stream.lua; the double's default 20 chunks), in rotating order. Per run: throughput, and the gateway
process tree's CPU time per request (utime+stime / requests: steadier than throughput on a shared machine,
since the gateway is CPU-bound on its core). Ratios on/off are paired within a round; medians are reported.
"other" is the machine's busy CPU that is neither the gateway, the double nor wrk (other tenants, steal),
in % of one core: a pair of runs where either had more than `--max-other` (20%) was disturbed, and the
medians are given over the undisturbed pairs (and over all of them). With `--together` both variants are
under load at once, on the same core, and only their CPU per request is compared (`measure_together`).
Target: on/off >= 0.90 (issue 6).
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
from functools import partial
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


def start_wrk(url: str, script: Path, duration: int, connections: int) -> subprocess.Popen[str]:
    return subprocess.Popen(["taskset", "-c", "1", "/usr/bin/wrk", "-t1", f"-c{connections}", f"-d{duration}s",
                             "-s", str(script), f"{url}/v1/chat/completions"], env={**os.environ, "WRK_KEY": MASTER},
                            stdout=subprocess.PIPE, text=True)


def wrk_result(proc: subprocess.Popen[str]) -> tuple[float, int]:
    """(rps, requests) of a finished wrk."""
    out, _ = proc.communicate()
    if proc.returncode != 0 or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors during the run:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, requests


def wrk(url: str, script: Path, duration: int, connections: int) -> tuple[float, int, float]:
    """(rps, requests, wrk's own CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    rps, requests = wrk_result(start_wrk(url, script, duration, connections))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return rps, requests, own


Series = dict[tuple[str, str], list[float]]


def other_pct(busy0: int, wall: float, accounted_s: float) -> float:
    """The machine's busy CPU since `busy0` that the gateways, the double and wrk (`accounted_s`) did not use, in %
    of one core."""
    return float(max(0.0, (machine_busy_ticks() - busy0) / CLK_TCK - accounted_s) / wall * 100)


def record(series: tuple[Series, Series, Series], key: tuple[str, str], *values: float) -> None:
    """Append one run's CPU µs per request, rps and other CPU to their series."""
    for one, value in zip(series, values, strict=True):
        one.setdefault(key, []).append(value)


def measure_rounds(urls: dict[str, str], pids: dict[str, int], double_pid: int, args: argparse.Namespace,
                   label: str = "") -> tuple[Series, Series, Series]:
    """Each round: every case on every variant (order alternating by round). CPU µs per request of the gateway's
    process tree, its throughput and the rest of the machine's busy CPU (% of a core), by (case, variant);
    prints each run."""
    series: tuple[Series, Series, Series] = ({}, {}, {})
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
                other = other_pct(busy0, wall, gw_s + dbl_s + wrk_s)
                us = gw_s / requests * 1e6
                record(series, (case, name), us, r, other)
                others.append(other)
                print(f"round {round_ + 1} {case:6} {label}{name:8} {r:8.1f} rps  {us:6.1f} us CPU/request  "
                      f"gateway {gw_s / wall * 100:5.1f}%  other {other:5.1f}%", flush=True)
    print(f"\nload average at the end: {Path('/proc/loadavg').read_text().split()[:3]}; "
          f"other CPU per run: median {statistics.median(others):.1f}%, max {max(others):.1f}% of one core")
    return series


def measure_together(urls: dict[str, str], pids: dict[str, int], double_pid: int,
                     args: argparse.Namespace) -> tuple[Series, Series, Series]:
    """`--together`: each round, both variants under load at the same time (half the connections each, two wrk
    on CPU 1), sharing CPU 0. Whatever slows the machine down during a run (a neighbour, the host) slows both
    alike, so their CPU per request is compared under the same conditions; run after run, the machine's speed
    moved the figures of one variant measured alone by up to 50% here. Their throughputs are not compared: the
    scheduler shares the core between threads, and the usage writer's thread gives the "on" gateway a larger
    share while it runs. The same series as `measure_rounds`."""
    series: tuple[Series, Series, Series] = ({}, {}, {})
    for round_ in range(args.rounds):
        for case, script in CASES.items():
            before = {name: ticks(pid) for name, pid in pids.items()}
            dbl0, busy0, t0 = ticks(double_pid), machine_busy_ticks(), time.monotonic()
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            procs = {name: start_wrk(url, script, args.duration, args.connections // 2) for name, url in urls.items()}
            results = {name: wrk_result(proc) for name, proc in procs.items()}
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall = time.monotonic() - t0
            wrk_s = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
            gw_s = {name: (ticks(pid) - before[name]) / CLK_TCK for name, pid in pids.items()}
            dbl_s = (ticks(double_pid) - dbl0) / CLK_TCK
            other = other_pct(busy0, wall, sum(gw_s.values()) + dbl_s + wrk_s)
            line = []
            for name, (r, requests) in results.items():
                us = gw_s[name] / requests * 1e6
                record(series, (case, name), us, r, other)
                line.append(f"{name} {r:7.1f} rps {us:6.1f} us CPU/request {gw_s[name] / wall * 100:5.1f}%")
            print(f"round {round_ + 1} {case:6} together: {'; '.join(line)}; other {other:5.1f}%", flush=True)
    return series


def paired_medians(off: list[float], on: list[float], quiet: list[bool]) -> tuple[float, float | None]:
    """The median of the on/off ratios of all pairs, and of the quiet pairs alone (None when none was)."""
    ratios = [b / a for a, b in zip(off, on, strict=True)]
    calm = [ratio for ratio, ok in zip(ratios, quiet, strict=True) if ok]
    return statistics.median(ratios), statistics.median(calm) if calm else None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--max-other", type=float, default=20.0,
                        help="%% of a core other processes may use during a run before its pair is disturbed (20)")
    parser.add_argument("--together", action="store_true",
                        help="load both gateways at once, sharing CPU 0, and compare their CPU per request")
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
        measure = measure_together if args.together else partial(measure_rounds, label="usage ")
        cpu, rps, busy = measure(urls, pids, double_pid, args)
        for case in CASES:
            on_cpu, off_cpu = cpu[(case, "on")], cpu[(case, "off")]
            quiet = [max(a, b) <= args.max_other for a, b in zip(busy[(case, "off")], busy[(case, "on")], strict=True)]
            # CPU per request is inverted: a throughput-equivalent ratio is off's CPU over on's
            cpu_all, cpu_quiet = paired_medians([1 / us for us in off_cpu], [1 / us for us in on_cpu], quiet)
            rps_all, rps_quiet = paired_medians(rps[(case, "off")], rps[(case, "on")], quiet)
            calm = f"{sum(quiet)} quiet pair(s) of {len(quiet)}: " + (
                f"CPU {cpu_quiet:.3f}, rps {rps_quiet:.3f}" if cpu_quiet is not None and rps_quiet is not None
                else "none")
            print(f"{case:6}: off {statistics.median(off_cpu):6.1f} us/request, on {statistics.median(on_cpu):6.1f} "
                  f"us/request (+{statistics.median(on_cpu) - statistics.median(off_cpu):.1f}); on/off "
                  f"throughput-equivalent {cpu_all:.3f} (CPU, paired), measured rps ratio {rps_all:.3f}; {calm}")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    # after the gateways stopped: the "on" one writes what its usage bus still holds before it exits
    with sqlite3.connect(Path(data["on"]) / "llmgate.db") as db:
        rows, missing = db.execute("SELECT COUNT(*), SUM(total_tokens IS NULL) FROM usage").fetchone()
    print(f"usage rows written by the 'on' gateway: {rows} ({missing} without tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
