"""`--gate BASELINE.json`: compare this run's figures with a saved run's, on ratios to direct; pure.

Latency and throughput are compared as ratios to the direct call measured in the same run (absolute times
drift between machines and hours; the ratio of llmgate to the double beside it much less):

  overhead p95   regression when llmgate's p95 / direct's p95 grew by more than `tolerance` (10%) of the
  (and p50)      baseline's ratio AND the growth, in today's milliseconds (ratio growth x direct's p95 now), is
                 more than `floor_us` (50 µs): small absolute changes on a tiny latency are not regressions.
                 p50 is gated the same way: on a shared machine p95 also holds other tenants' preemptions (a
                 few ms at c=1), which hide a 1 ms regression that p50 shows plainly
  throughput     regression when llmgate's rps / direct's rps fell by more than `tolerance`
  memory         RSS of the tree after load grew by more than `memory_tolerance` and `memory_floor_mb`
  start-up       time to the first 200 grew by more than `startup_tolerance` and `startup_floor_ms`
  CPU (paced)    paced streams: the gateway's CPU per request / the double's grew by more than `cpu_tolerance`

Only figures present in both documents are compared; a target or case missing on either side is listed,
not failed. A latency or throughput figure whose every pair of runs was disturbed by other load on the machine
(summary.vs_direct) is `inconclusive`: over its limit it is reported, not failed, since no measurement on a core
another process keeps busy tells a 10% regression from the neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.lab.scenarios import DIRECT


@dataclass(frozen=True)
class Tolerances:
    tolerance: float = 0.10
    floor_us: float = 50.0
    memory_tolerance: float = 0.10
    memory_floor_mb: float = 5.0
    startup_tolerance: float = 0.25
    startup_floor_ms: float = 100.0
    cpu_tolerance: float = 0.25
    """Paced streams: their rps and latency follow the double's pacing, not the gateway's cost; CPU per request
    (as a ratio to the double's) is what a per-chunk regression moves."""


@dataclass(frozen=True)
class Comparison:
    """One figure compared: `failed` when it regressed past its tolerance."""

    figure: str
    baseline: float
    current: float
    limit: float
    unit: str
    failed: bool
    inconclusive: bool = False
    """Over its limit, but measured only while the machine was busy with other work: not counted as failed."""

    def describe(self) -> str:
        verdict = "REGRESSION" if self.failed else "BUSY" if self.inconclusive else "ok"
        return (f"{verdict:<10} {self.figure}: {self.current:.3f}{self.unit} "
                f"(baseline {self.baseline:.3f}{self.unit}, limit {self.limit:.3f}{self.unit})")


def _latency(figure: str, pct: str, base: dict[str, Any], cur: dict[str, Any], direct_ms: float,
             tol: Tolerances) -> Comparison:
    """`pct` ("p50", "p95"): the ratio to direct against its limit; `direct_ms` is direct's latency now."""
    b, c = base[f"{pct}_ratio"], cur[f"{pct}_ratio"]
    growth_us = (c - b) * direct_ms * 1000.0
    limit = max(b * (1.0 + tol.tolerance), b + tol.floor_us / 1000.0 / direct_ms)  # the floor, as a ratio today
    over = c > b * (1.0 + tol.tolerance) and growth_us > tol.floor_us
    busy = bool(cur.get("disturbed"))
    return Comparison(f"{figure} overhead {pct} (ratio to direct)", b, c, limit, "x", over and not busy, over and busy)


def _throughput(figure: str, base: dict[str, Any], cur: dict[str, Any], tol: Tolerances) -> Comparison:
    b, c = base["rps_ratio"], cur["rps_ratio"]
    limit = b * (1.0 - tol.tolerance)
    busy = bool(cur.get("disturbed"))
    return Comparison(f"{figure} throughput (ratio to direct)", b, c, limit, "x", c < limit and not busy,
                      c < limit and busy)


_MIN_CPU_PCT = 10.0
"""CPU is compared only where the baseline's gateway used this much of a core: below it, a second's run is a few
clock ticks of CPU, too coarse to tell a 25% change (paced streams at c=1)."""


def _cpu(figure: str, base: dict[str, Any], cur: dict[str, Any], tol: Tolerances) -> Comparison:
    """CPU per request, as a ratio to the double's alone in the same round (a per-chunk cost that grew)."""
    b, c = base["cpu_ratio"], cur["cpu_ratio"]
    limit = b * (1.0 + tol.cpu_tolerance)
    busy = bool(cur.get("disturbed"))
    return Comparison(f"{figure} CPU per request (ratio to the double's)", b, c, limit, "x", c > limit and not busy,
                      c > limit and busy)


def compare_cases(baseline: dict[str, Any], current: dict[str, Any], tol: Tolerances) -> tuple[list[Comparison],
                                                                                            list[str]]:
    comparisons: list[Comparison] = []
    missing: list[str] = []
    for case, base_rows in baseline.get("cases", {}).items():
        cur_rows = current.get("cases", {}).get(case)
        if cur_rows is None:
            missing.append(f"case {case} not in this run")
            continue
        direct = cur_rows.get(DIRECT)
        for target, base_row in base_rows.items():
            if target == DIRECT:
                continue
            cur_row = cur_rows.get(target)
            b, c = base_row.get("vs_direct"), (cur_row or {}).get("vs_direct")
            if not b or not c or direct is None:
                missing.append(f"{case} {target}: no ratio to direct on one side")
                continue
            figure = f"{case} {target}"
            comparisons.append(_latency(figure, "p50", b, c, direct["p50_ms"], tol))
            comparisons.append(_latency(figure, "p95", b, c, direct["p95_ms"], tol))
            comparisons.append(_throughput(figure, b, c, tol))
            if case.startswith("paced") and "cpu_ratio" in b and "cpu_ratio" in c \
                    and (base_row.get("gw_cpu_pct") or 0) >= _MIN_CPU_PCT:
                comparisons.append(_cpu(figure, b, c, tol))
    return comparisons, missing


def compare_gateways(baseline: dict[str, Any], current: dict[str, Any], tol: Tolerances) -> list[Comparison]:
    out = []
    for target, b in baseline.get("gateways", {}).items():
        c = current.get("gateways", {}).get(target)
        if not c:
            continue
        if b.get("rss_mb") is not None and c.get("rss_mb") is not None:
            limit = max(b["rss_mb"] * (1 + tol.memory_tolerance), b["rss_mb"] + tol.memory_floor_mb)
            out.append(Comparison(f"{target} RSS after load", b["rss_mb"], c["rss_mb"], limit, " MB",
                                  c["rss_mb"] > limit))
        limit = max(b["startup_ms"] * (1 + tol.startup_tolerance), b["startup_ms"] + tol.startup_floor_ms)
        out.append(Comparison(f"{target} start-up to first 200", b["startup_ms"], c["startup_ms"], limit, " ms",
                              c["startup_ms"] > limit))
    return out


def compare(baseline: dict[str, Any], current: dict[str, Any], tol: Tolerances) -> tuple[list[Comparison],
                                                                                       list[str]]:
    """Every figure compared (failed ones flagged) and what could not be compared."""
    cases, missing = compare_cases(baseline, current, tol)
    return cases + compare_gateways(baseline, current, tol), missing


def persistent(first: list[Comparison], second: list[Comparison]) -> list[Comparison]:
    """The figures that failed in both the run and its re-measurement: the regressions declared."""
    failed_again = {c.figure: c for c in second if c.failed}
    return [failed_again[c.figure] for c in first if c.failed and c.figure in failed_again]
