"""The pytest-benchmark gate's arithmetic (benchmarks/gate.py runs it): runs → medians → comparison; pure.

Each benchmark records in `extra_info` its p95 (`p95_ns`) and its p95 divided by a reference operation's p95
measured in the same session (`p95_ratio_to_<reference>`). Several sessions are reduced to the median of each
ratio; a benchmark regressed when its median ratio grew past `tolerance` of the baseline's AND the growth, in
today's nanoseconds (ratio growth x the reference's p95 now), is more than `floor_ns`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

SCHEMA = "llmgate-microbench/1"
_PREFIX = "p95_ratio_to_"


@dataclass(frozen=True)
class MicroComparison:
    name: str
    reference: str
    baseline: float
    current: float
    limit: float
    growth_ns: float
    failed: bool

    def describe(self) -> str:
        verdict = "REGRESSION" if self.failed else "ok"
        return (f"{verdict:<10} {self.name}: p95 {self.current:.3f}x {self.reference} (baseline {self.baseline:.3f}x, "
                f"limit {self.limit:.3f}x, {self.growth_ns:+.0f} ns)")


def ratios_of_session(pytest_benchmark_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{benchmark: {reference, p95_ratio, p95_ns}} from one `--benchmark-json` file (benchmarks without a ratio,
    the references themselves, are kept with p95_ns only)."""
    out: dict[str, dict[str, Any]] = {}
    for bench in pytest_benchmark_json.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if "p95_ns" not in info:
            continue
        row: dict[str, Any] = {"p95_ns": info["p95_ns"]}
        for key, value in info.items():
            if key.startswith(_PREFIX):
                row["reference"], row["p95_ratio"] = key[len(_PREFIX):], value
        out[bench["fullname"]] = row
    return out


def median_document(sessions: list[dict[str, dict[str, Any]]], machine: dict[str, Any]) -> dict[str, Any]:
    """Medians across sessions of each benchmark's p95 and ratio; the per-session values are kept."""
    names = dict.fromkeys(name for s in sessions for name in s)
    benchmarks: dict[str, dict[str, Any]] = {}
    for name in names:
        rows = [s[name] for s in sessions if name in s]
        entry: dict[str, Any] = {"p95_ns": statistics.median(r["p95_ns"] for r in rows),
                                 "p95_ns_sessions": [r["p95_ns"] for r in rows]}
        ratios = [r["p95_ratio"] for r in rows if "p95_ratio" in r]
        if ratios:
            entry.update(reference=rows[0]["reference"], p95_ratio=statistics.median(ratios), p95_ratio_sessions=ratios)
        benchmarks[name] = entry
    return {"schema": SCHEMA, "machine": machine, "sessions": len(sessions), "benchmarks": benchmarks}


def compare_micro(baseline: dict[str, Any], current: dict[str, Any], tolerance: float,
                  floor_ns: float) -> tuple[list[MicroComparison], list[str]]:
    """Every benchmark with a ratio on both sides, compared; names found on one side only are listed."""
    comparisons, missing = [], []
    for name, base in baseline.get("benchmarks", {}).items():
        if "p95_ratio" not in base:
            continue
        cur = current.get("benchmarks", {}).get(name)
        if not cur or "p95_ratio" not in cur:
            missing.append(name)
            continue
        b, c = base["p95_ratio"], cur["p95_ratio"]
        ref_ns = cur["p95_ns"] / c  # the reference's p95 in this run
        growth_ns = (c - b) * ref_ns
        limit = max(b * (1 + tolerance), b + floor_ns / ref_ns)
        comparisons.append(MicroComparison(name, cur["reference"], b, c, limit, growth_ns,
                                           c > b * (1 + tolerance) and growth_ns > floor_ns))
    return comparisons, missing


def persistent_micro(first: list[MicroComparison], second: list[MicroComparison]) -> list[MicroComparison]:
    """Failed in the run and again in its re-measurement."""
    again = {c.name: c for c in second if c.failed}
    return [again[c.name] for c in first if c.failed and c.name in again]
