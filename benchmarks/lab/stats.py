"""Percentiles, CDF points and medians: the pure arithmetic of the bench."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

CDF_PERCENTS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.9)
"""The percentiles kept for a latency CDF (the same points wrk's report.lua prints)."""


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """The `pct`-th percentile (0-100) of already sorted values, nearest rank (as wrk and HdrHistogram report:
    a value that was actually observed). ValueError on an empty sequence."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"percentile {pct} outside 0-100")
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def cdf_points(sorted_values: Sequence[float], percents: Iterable[float] = CDF_PERCENTS) -> list[tuple[float, float]]:
    """[(percent, value)] at each of `percents`: a CDF small enough to keep in a JSON report."""
    return [(p, percentile(sorted_values, p)) for p in percents]


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
