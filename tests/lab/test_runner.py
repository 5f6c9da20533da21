"""Interleaving: the order of targets rotates every round; the cases."""

from __future__ import annotations

from benchmarks.lab.runner import Case, build_cases, rotated
from benchmarks.lab.scenarios import Target


def test_each_target_takes_each_position_once_over_n_rounds() -> None:
    targets = [Target(n, "spawn", "k") for n in "abc"]
    orders = ["".join(t.name for t in rotated(targets, r)) for r in (1, 2, 3, 4)]
    assert orders == ["abc", "bca", "cab", "abc"]
    assert rotated([], 2) == []  # no target came up: nothing to run (it used to divide by zero)


def test_cases_cover_kind_times_concurrency() -> None:
    cases = build_cases(["nonstream", "stream"], [1, 32])
    assert [c.name for c in cases] == ["nonstream-c1", "nonstream-c32", "stream-c1", "stream-c32"]
    assert Case("stream", 8).name == "stream-c8"
