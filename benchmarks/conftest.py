"""pytest-benchmark helpers: every benchmark records its p95 and its ratio to a reference measured in-session.

Run: `uv run pytest benchmarks --benchmark-enable` (the test suite runs them once each, disabled, as a smoke check).
Ratios survive a change of machine; absolute times do not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

_REFERENCE_P95_NS: dict[str, float] = {}


def p95_ns(benchmark: Any) -> float | None:
    """The 95th percentile of the rounds pytest-benchmark kept, in ns (None when benchmarks are disabled)."""
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return None
    data = sorted(stats.stats.data)
    return data[min(len(data) - 1, int(0.95 * len(data)))] * 1e9


@pytest.fixture
def record(benchmark: Any) -> Callable[..., None]:
    """Run `fn(*args)` under the benchmark; store p95 and, for non-references, p95 / reference p95."""

    def run(fn: Callable[..., Any], *args: Any, reference: str | None = None, is_reference: str | None = None) -> None:
        benchmark(fn, *args)
        p95 = p95_ns(benchmark)
        if p95 is None:
            return
        benchmark.extra_info["p95_ns"] = round(p95, 1)
        if is_reference:
            _REFERENCE_P95_NS[is_reference] = p95
        if reference and reference in _REFERENCE_P95_NS:
            benchmark.extra_info[f"p95_ratio_to_{reference}"] = round(p95 / _REFERENCE_P95_NS[reference], 3)

    return run
