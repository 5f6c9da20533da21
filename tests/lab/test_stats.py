"""Percentiles, CDF points, medians."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.lab.stats import CDF_PERCENTS, cdf_points, median, percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99.9) == 100.0
    assert percentile(values, 0) == 1.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1))
def test_percentile_is_an_observed_value_and_monotonic(values: list[float]) -> None:
    ordered = sorted(values)
    points = cdf_points(ordered)
    assert [p for p, _ in points] == list(CDF_PERCENTS)
    assert all(v in ordered for _, v in points)
    assert [v for _, v in points] == sorted(v for _, v in points)


def test_median_ignores_missing() -> None:
    assert median([None, 3.0, 1.0, None, 2.0]) == 2.0
    assert median([None]) is None
