"""The load generators behind one call: wrk when installed, else the built-in async generator (asyncload.py).

Both measure the same thing: closed-loop load over `concurrency` keep-alive connections for `duration_s`,
the time to the whole answer at p50/p95/p99 and a CDF; the built-in one also times the first body byte of
streams (wrk cannot). Around each run the CPU used by the gateway's process tree, by the load side (generator
+ double) and by everything else on the machine ("other": other tenants) is recorded.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from benchmarks.lab.asyncload import run_load
from benchmarks.lab.processes import (
    CLK_TCK,
    BenchError,
    cpu_pct,
    machine_busy_ticks,
    pinned,
    tree_cpu_ticks,
)
from benchmarks.lab.stats import CDF_PERCENTS, cdf_points, percentile

WRK_DIR = Path(__file__).resolve().parent / "wrk"
CHAT_PATH = "/v1/chat/completions"
_PROMPT = [{"role": "user", "content": "Say hello in one short sentence please."}]
BODIES: dict[str, bytes] = {
    "nonstream": json.dumps({"model": "gpt-4o-mini", "messages": _PROMPT}).encode(),
    "stream": json.dumps({"model": "gpt-4o-mini", "stream": True, "messages": _PROMPT}).encode(),
    # The double paces a paced-* model's chunks (2 ms apart, each its own write): the cost of a chunk, not of a
    # stream whose chunks arrive in one or two reads.
    "paced": json.dumps({"model": "paced-gpt-4o-mini", "stream": True, "messages": _PROMPT}).encode(),
}
Kind = Literal["nonstream", "stream", "paced"]
KINDS: tuple[Kind, ...] = ("nonstream", "stream", "paced")
_WRK_SCRIPTS = {"nonstream": "chat.lua", "stream": "stream.lua", "paced": "stream_paced.lua"}


@dataclass
class LoadResult:
    """One load run against one target. Times in ms; CPU in % of one core."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    cdf_ms: list[tuple[float, float]] = field(default_factory=list)
    ttfb_p50_ms: float | None = None
    ttfb_p95_ms: float | None = None
    ttfb_p99_ms: float | None = None
    gw_cpu_pct: float | None = None
    load_cpu_pct: float = 0.0
    other_cpu_pct: float | None = None
    double_cpu_pct: float | None = None
    """The double's share of `load_cpu_pct`: its CPU per request normalises the gateway's for the host's speed."""


@dataclass
class CpuWatch:
    """CPU of the gateway tree, the double's tree and the whole machine between start() and stop()."""

    gateway_pid: int | None
    double_pid: int | None
    is_ours: bool = True
    """False for an external target: its CPU would land in "other", so "other" is not computed."""
    gw0: dict[int, int] = field(default_factory=dict)
    dbl0: dict[int, int] = field(default_factory=dict)
    busy0: int = 0
    t0: float = 0.0

    def start(self) -> None:
        self.gw0 = tree_cpu_ticks(self.gateway_pid) if self.gateway_pid else {}
        self.dbl0 = tree_cpu_ticks(self.double_pid) if self.double_pid else {}
        self.busy0, self.t0 = machine_busy_ticks(), time.monotonic()

    def stop(self, generator_cpu_s: float) -> tuple[float | None, float, float | None, float]:
        """(gateway %, load side %, other %, the double's %) given the generator's own CPU seconds over the run."""
        wall = time.monotonic() - self.t0
        busy = 100.0 * (machine_busy_ticks() - self.busy0) / CLK_TCK / wall
        gw = cpu_pct(self.gw0, tree_cpu_ticks(self.gateway_pid), wall) if self.gateway_pid else None
        dbl = cpu_pct(self.dbl0, tree_cpu_ticks(self.double_pid), wall) if self.double_pid else 0.0
        load = generator_cpu_s / wall * 100.0 + dbl
        other = max(0.0, busy - load - (gw or 0.0)) if self.is_ours else None
        return gw, load, other, dbl


def wrk_path() -> str | None:
    """The wrk executable, when installed."""
    return shutil.which("wrk")


def parse_wrk(output: str) -> dict[str, dict[str, float]]:
    """The RESULT, LATENCY_US and CDF_US lines printed by wrk/report.lua, by tag."""
    values: dict[str, dict[str, float]] = {}
    for line in output.splitlines():
        tag, _, rest = line.partition(" ")
        if tag in ("RESULT", "LATENCY_US", "CDF_US"):
            values[tag] = {k: float(v) for k, _, v in (pair.partition("=") for pair in rest.split())}
    if "RESULT" not in values or "LATENCY_US" not in values:
        raise BenchError(f"wrk printed no RESULT/LATENCY_US lines:\n{output[-2000:]}")
    return values


def result_from_wrk(values: dict[str, dict[str, float]]) -> LoadResult:
    res, lat = values["RESULT"], values["LATENCY_US"]
    duration_s = res["duration_us"] / 1e6
    errors = sum(int(res[k]) for k in ("connect", "read", "write", "timeout", "non2xx"))
    cdf = [(float(p), v / 1e3) for p, v in values.get("CDF_US", {}).items()]
    return LoadResult(
        requests=int(res["requests"]), duration_s=duration_s, rps=res["requests"] / duration_s,
        p50_ms=lat["p50"] / 1e3, p95_ms=lat["p95"] / 1e3, p99_ms=lat["p99"] / 1e3, errors=errors, cdf_ms=cdf,
    )


def result_from_samples(
    latencies_s: list[float], first_byte_s: list[float], errors: int, duration_s: float, stream: bool
) -> LoadResult:
    """A LoadResult from the built-in generator's samples (BenchError when nothing succeeded)."""
    if not latencies_s:
        raise BenchError(f"no successful request in {duration_s:.1f} s ({errors} errors)")
    lat = sorted(x * 1e3 for x in latencies_s)
    result = LoadResult(
        requests=len(lat), duration_s=duration_s, rps=len(lat) / duration_s, p50_ms=percentile(lat, 50),
        p95_ms=percentile(lat, 95), p99_ms=percentile(lat, 99), errors=errors, cdf_ms=cdf_points(lat, CDF_PERCENTS),
    )
    if stream and first_byte_s:
        first = sorted(x * 1e3 for x in first_byte_s)
        result.ttfb_p50_ms, result.ttfb_p95_ms, result.ttfb_p99_ms = (percentile(first, p) for p in (50, 95, 99))
    return result


@dataclass
class LoadGenerator:
    """Runs load the same way against every target. `tool` is "wrk" or "builtin"."""

    tool: Literal["wrk", "builtin"]
    load_cpus: str | None
    logdir: Path
    wrk: str = "wrk"
    timeout_s: int = 10

    def run(
        self, url: str, key: str, kind: Kind, concurrency: int, duration_s: float, watch: CpuWatch, label: str
    ) -> LoadResult:
        if self.tool == "wrk":
            return self._wrk(url, key, kind, concurrency, duration_s, watch, label)
        return self._builtin(url, key, kind, concurrency, duration_s, watch)

    def _wrk(
        self, url: str, key: str, kind: Kind, concurrency: int, duration_s: float, watch: CpuWatch, label: str
    ) -> LoadResult:
        script = WRK_DIR / _WRK_SCRIPTS[kind]
        seconds = max(1, round(duration_s))
        cmd = pinned(self.load_cpus, [
            self.wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", f"--timeout={self.timeout_s}s",
            "-s", str(script), url.rstrip("/") + CHAT_PATH,
        ])
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        watch.start()
        proc = subprocess.run(cmd, env={**os.environ, "WRK_KEY": key}, capture_output=True, text=True,
                              timeout=seconds + 60)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        gw, load, other, dbl = watch.stop(ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime)
        (self.logdir / f"{label}.wrk.txt").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise BenchError(f"wrk exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
        result = result_from_wrk(parse_wrk(proc.stdout))
        result.gw_cpu_pct, result.load_cpu_pct, result.other_cpu_pct, result.double_cpu_pct = gw, load, other, dbl
        return result

    def _builtin(
        self, url: str, key: str, kind: Kind, concurrency: int, duration_s: float, watch: CpuWatch
    ) -> LoadResult:
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        watch.start()
        raw = run_load(url, CHAT_PATH, BODIES[kind], key, concurrency, duration_s)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        gw, load, other, dbl = watch.stop(ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime)
        errors = raw.non_2xx + raw.connect_errors + raw.read_errors
        result = result_from_samples(raw.latencies_s, raw.first_byte_s, errors, raw.duration_s, kind != "nonstream")
        result.gw_cpu_pct, result.load_cpu_pct, result.other_cpu_pct, result.double_cpu_pct = gw, load, other, dbl
        return result
