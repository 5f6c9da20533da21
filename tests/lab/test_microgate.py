"""The pytest-benchmark gate's arithmetic."""

from __future__ import annotations

from typing import Any

from benchmarks.lab.microgate import compare_micro, median_document, persistent_micro, ratios_of_session

NAME = "benchmarks/bench_hot_path.py::test_auth_master_key"


def session_json(ratio: float, p95_ns: float = 500.0) -> dict[str, Any]:
    return {"benchmarks": [
        {"fullname": "benchmarks/bench_hot_path.py::test_full_json_parse_reference[2KB]",
         "extra_info": {"p95_ns": 5000.0}},
        {"fullname": NAME, "extra_info": {"p95_ns": p95_ns, "p95_ratio_to_json_loads_2KB": ratio}},
        {"fullname": "benchmarks/other.py::test_without_extra_info", "extra_info": {}},
    ]}


def test_a_session_yields_ratios_and_references() -> None:
    ratios = ratios_of_session(session_json(0.1))
    assert ratios[NAME] == {"p95_ns": 500.0, "reference": "json_loads_2KB", "p95_ratio": 0.1}
    assert "p95_ratio" not in ratios["benchmarks/bench_hot_path.py::test_full_json_parse_reference[2KB]"]
    assert len(ratios) == 2


def test_medians_across_sessions() -> None:
    doc = median_document([ratios_of_session(session_json(r)) for r in (0.1, 0.3, 0.12)], {"cores": 2})
    entry = doc["benchmarks"][NAME]
    assert entry["p95_ratio"] == 0.12 and entry["p95_ratio_sessions"] == [0.1, 0.3, 0.12]
    assert doc["sessions"] == 3 and doc["machine"] == {"cores": 2}


def docs(base: float, now: float, p95_ns: float) -> tuple[dict[str, Any], dict[str, Any]]:
    return (median_document([ratios_of_session(session_json(base, p95_ns * base / now))], {}),
            median_document([ratios_of_session(session_json(now, p95_ns))], {}))


def test_growth_past_tolerance_and_floor_fails() -> None:
    # reference p95 now = 10,000 ns; 0.10 → 0.13 is +30% and +300 ns
    (c,), missing = compare_micro(*docs(0.10, 0.13, 1300.0), tolerance=0.10, floor_ns=200.0)
    assert c.failed and missing == []
    assert c.growth_ns == 300.0
    assert "REGRESSION" in c.describe() and NAME in c.describe()


def test_growth_under_floor_or_tolerance_passes() -> None:
    (c,), _ = compare_micro(*docs(0.10, 0.13, 1300.0), tolerance=0.10, floor_ns=400.0)
    assert not c.failed
    (c,), _ = compare_micro(*docs(0.10, 0.105, 1050.0), tolerance=0.10, floor_ns=0.0)
    assert not c.failed


def test_missing_benchmarks_are_listed() -> None:
    base, _ = docs(0.1, 0.1, 500.0)
    _, missing = compare_micro(base, {"benchmarks": {}}, 0.1, 0.0)
    assert missing == [NAME]


def test_declared_only_when_failed_twice() -> None:
    (first,), _ = compare_micro(*docs(0.10, 0.13, 1300.0), tolerance=0.10, floor_ns=0.0)
    (second,), _ = compare_micro(*docs(0.10, 0.105, 1050.0), tolerance=0.10, floor_ns=0.0)
    assert persistent_micro([first], [second]) == []
    assert persistent_micro([first], [first]) == [first]
