"""pytest-benchmark helpers: every benchmark records its p95 and its ratio to a reference measured beside it.

Run: `uv run pytest benchmarks --benchmark-enable` (the test suite runs them once each, disabled, as a smoke check).
Ratios survive a change of machine; absolute times do not. The perf gate (`python -m benchmarks.gate`) compares
the ratios.

How the ratio is measured: after pytest-benchmark's own rounds (whose p95 is `p95_ns`), the benchmark and its
reference run again in alternating rounds (A, R, A, R, ...), and the ratio is p95(A) / p95(R) per call. A reference
timed once at the start of the file would see a different machine from a benchmark timed later on a shared host;
interleaved, both see the same interruptions. The reference is called as many times per round as make its round as
long as the benchmark's: a longer round catches a neighbour's preemption proportionally more often, so unequal
rounds skew the ratio on a busy machine (benchmarks/README.md, "The perf gate", has the figures).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

_REFERENCES: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {}
PAIRED_ROUNDS = 400


def p95_ns(benchmark: Any) -> float | None:
    """The 95th percentile of the rounds pytest-benchmark kept, in ns (None when benchmarks are disabled)."""
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return None
    data = sorted(stats.stats.data)
    return data[min(len(data) - 1, int(0.95 * len(data)))] * 1e9


def _p95(values: list[float]) -> float:
    values.sort()
    return values[min(len(values) - 1, int(0.95 * len(values)))]


def _per_call_ns(fn: Callable[[], Any], calls: int) -> float:
    samples = []
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - t0) / calls)
    return sorted(samples)[2]


def paired_p95_ratio(fn: Callable[[], Any], ref: Callable[[], Any], iterations: int, rounds: int) -> float:
    """p95 per call of fn / of ref, over alternating timed rounds of equal length (`iterations` calls of fn,
    as many calls of ref as take as long)."""
    ref_calls = max(1, round(iterations * _per_call_ns(fn, iterations) / _per_call_ns(ref, iterations)))
    clock = time.perf_counter_ns
    a: list[float] = []
    r: list[float] = []
    for _ in range(rounds):
        t0 = clock()
        for _ in range(iterations):
            fn()
        t1 = clock()
        for _ in range(ref_calls):
            ref()
        t2 = clock()
        a.append((t1 - t0) / iterations)
        r.append((t2 - t1) / ref_calls)
    return _p95(a) / _p95(r)


@pytest.fixture
def record(benchmark: Any) -> Callable[..., None]:
    """Run `fn(*args)` under the benchmark; store p95 and, for non-references, the interleaved p95 ratio."""

    def run(fn: Callable[..., Any], *args: Any, reference: str | None = None, is_reference: str | None = None) -> None:
        if is_reference:
            _REFERENCES[is_reference] = (fn, args)
        benchmark(fn, *args)
        p95 = p95_ns(benchmark)
        if p95 is None:
            return
        benchmark.extra_info["p95_ns"] = round(p95, 1)
        if reference and reference in _REFERENCES:
            ref_fn, ref_args = _REFERENCES[reference]
            iterations = max(1, int(benchmark.stats.iterations))
            ratio = paired_p95_ratio(lambda: fn(*args), lambda: ref_fn(*ref_args), iterations, PAIRED_ROUNDS)
            benchmark.extra_info[f"p95_ratio_to_{reference}"] = round(ratio, 3)

    return run
