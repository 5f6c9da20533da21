"""From rounds to the report's figures: medians across rounds, and ratios to direct paired within each round.

A ratio is taken between two targets measured in the same round (minutes apart at most), then the median of
those ratios across rounds is kept: drift of the machine between rounds cancels out, which a ratio of two
medians would not do. The JSON document written by `--json` and read by `--gate` is built here
(`SCHEMA` names its version).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Any

from benchmarks.lab.loadgen import LoadResult
from benchmarks.lab.runner import TargetRound
from benchmarks.lab.scenarios import DIRECT
from benchmarks.lab.stats import median

SCHEMA = "llmgate-bench/1"
_LATENCIES = ("p50", "p95", "p99")
MAX_OTHER_CPU_PCT = 15.0
"""A run during which something else on the machine used more than this (% of one core) is "disturbed"."""


def is_disturbed(r: LoadResult, max_other_cpu_pct: float = MAX_OTHER_CPU_PCT) -> bool:
    return r.other_cpu_pct is not None and r.other_cpu_pct > max_other_cpu_pct


def _paired(
    rounds: list[TargetRound], case: str, a: str, b: str
) -> list[tuple[LoadResult, LoadResult]]:
    """(a's result, b's result) for every round where both ran `case` without errors."""
    by_round: dict[int, dict[str, LoadResult]] = {}
    for tr in rounds:
        r = tr.cases.get(case)
        if r is not None and not r.errors:
            by_round.setdefault(tr.round, {})[tr.target] = r
    return [(got[a], got[b]) for got in by_round.values() if a in got and b in got]


def vs_direct(rounds: list[TargetRound], case: str, target: str,
              max_other_cpu_pct: float = MAX_OTHER_CPU_PCT) -> dict[str, Any] | None:
    """Medians of the paired ratios and differences to direct, over the pairs neither of whose runs was disturbed
    by other load on the machine (all pairs, flagged `disturbed`, when every one was); None when no round has both.
    Another tenant busy on the gateway's core slows llmgate and not the double: no ratio cancels that."""
    every = _paired(rounds, case, target, DIRECT)
    if not every:
        return None
    quiet = [(t, d) for t, d in every
             if not is_disturbed(t, max_other_cpu_pct) and not is_disturbed(d, max_other_cpu_pct)]
    pairs = quiet or every
    out: dict[str, Any] = {"rps_ratio": statistics.median(t.rps / d.rps for t, d in pairs)}
    for p in _LATENCIES:
        out[f"{p}_ratio"] = statistics.median(getattr(t, f"{p}_ms") / getattr(d, f"{p}_ms") for t, d in pairs)
        out[f"overhead_{p}_ms"] = statistics.median(getattr(t, f"{p}_ms") - getattr(d, f"{p}_ms") for t, d in pairs)
    cpu = [t_us / d_us for t, d in pairs
           if (t_us := cpu_us(t, t.gw_cpu_pct)) is not None and (d_us := cpu_us(d, d.double_cpu_pct))]
    if cpu:
        # The gateway's CPU per request over the double's (alone) in the same round: the host's speed, which
        # moves both, cancels out; a per-chunk cost that grew does not.
        out["cpu_ratio"] = statistics.median(cpu)
    out["pairs"] = len(pairs)
    out["disturbed_pairs"] = len(every) - len(quiet)
    out["disturbed"] = not quiet
    return out


def cpu_us(r: LoadResult, pct: float | None) -> float | None:
    """CPU µs per request of a process tree that used `pct` % of a core during run `r`."""
    return pct * 1e4 / r.rps if pct is not None and r.rps else None


def rps_vs(rounds: list[TargetRound], case: str, target: str, other: str) -> float | None:
    pairs = _paired(rounds, case, target, other)
    return statistics.median(t.rps / o.rps for t, o in pairs) if pairs else None


def _cdf(results: list[LoadResult]) -> list[tuple[float, float]]:
    """Pointwise median of the rounds' CDFs (they share their percentiles)."""
    if not results or not results[0].cdf_ms:
        return []
    points: dict[float, list[float]] = {}
    for r in results:
        for pct, ms in r.cdf_ms:
            points.setdefault(pct, []).append(ms)
    return [(pct, statistics.median(v)) for pct, v in sorted(points.items())]


def summarize_case(rounds: list[TargetRound], case: str, target: str, others: list[str],
                   max_other_cpu_pct: float = MAX_OTHER_CPU_PCT) -> dict[str, Any] | None:
    """Medians of one target's figures in one case, with its ratios to direct and to every other target."""
    results = [tr.cases[case] for tr in rounds if tr.target == target and case in tr.cases]
    if not results:
        return None
    valid = [r for r in results if not r.errors] or results
    row: dict[str, Any] = {
        "rounds": len(results),
        "errors": sum(r.errors for r in results),
        "rps": statistics.median(r.rps for r in valid),
        **{f"{p}_ms": statistics.median(getattr(r, f"{p}_ms") for r in valid) for p in _LATENCIES},
        **{f"ttfb_{p}_ms": median(getattr(r, f"ttfb_{p}_ms") for r in valid) for p in _LATENCIES},
        "gw_cpu_pct": median(r.gw_cpu_pct for r in valid),
        "gw_cpu_us": median(cpu_us(r, r.gw_cpu_pct) for r in valid),
        "double_cpu_us": median(cpu_us(r, r.double_cpu_pct) for r in valid),
        "load_cpu_pct": statistics.median(r.load_cpu_pct for r in valid),
        "other_cpu_pct": median(r.other_cpu_pct for r in valid),
        "cdf_ms": _cdf(valid),
    }
    if target != DIRECT:
        row["vs_direct"] = vs_direct(rounds, case, target, max_other_cpu_pct)
        row["rps_vs"] = {o: rps_vs(rounds, case, target, o) for o in others if o not in (target, DIRECT)}
    return row


def summarize_gateways(rounds: list[TargetRound]) -> dict[str, dict[str, Any]]:
    """Per spawned target: median start-up over rounds; memory and idle CPU after its last round."""
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(tr.target for tr in rounds):
        starts = [tr.startup_ms for tr in rounds if tr.target == name and tr.startup_ms is not None]
        stats = [tr.stats for tr in rounds if tr.target == name and tr.stats is not None]
        if not starts:
            continue
        row: dict[str, Any] = {"startup_ms": statistics.median(starts), "startup_samples": len(starts)}
        if stats:
            row.update(asdict(stats[-1]))
        out[name] = row
    return out


def build_document(
    rounds: list[TargetRound], targets: list[str], cases: list[str], meta: dict[str, Any],
    max_other_cpu_pct: float = MAX_OTHER_CPU_PCT,
) -> dict[str, Any]:
    """Everything measured, for machines to read: `meta` (machine, config, load generator, footprint) + figures."""
    table = {
        case: {t: row for t in targets
               if (row := summarize_case(rounds, case, t, targets, max_other_cpu_pct)) is not None}
        for case in cases
    }
    failures = [{"target": tr.target, "round": tr.round, "error": tr.error} for tr in rounds if tr.error]
    invalid = [{"target": tr.target, "round": tr.round, "case": c, "errors": r.errors}
               for tr in rounds for c, r in tr.cases.items() if r.errors]
    return {
        "schema": SCHEMA,
        **meta,
        "valid": not failures and not invalid,
        "failures": failures,
        "invalid": invalid,
        "cases": table,
        "gateways": summarize_gateways(rounds),
        "rounds": [
            {"target": tr.target, "round": tr.round, "startup_ms": tr.startup_ms, "error": tr.error,
             "stats": asdict(tr.stats) if tr.stats else None,
             "cases": {c: asdict(r) for c, r in tr.cases.items()}}
            for tr in rounds
        ],
    }


def ceiling_check(doc: dict[str, Any]) -> list[str]:
    """Warnings when a target came within 3x of the load side's own ceiling (direct at the same case)."""
    warnings = []
    for case, rows in doc["cases"].items():
        direct = rows.get(DIRECT)
        if direct is None:
            continue
        for name, row in rows.items():
            if name != DIRECT and row["rps"] * 3 > direct["rps"]:
                warnings.append(
                    f"{case}: {name} at {row['rps']:.0f} rps is within 3x of the load side's ceiling "
                    f"({direct['rps']:.0f} rps against the double directly): the generator or the double may "
                    "limit it"
                )
    return warnings
