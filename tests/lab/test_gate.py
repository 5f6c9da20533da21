"""The gate's comparison of a run with its baseline."""

from __future__ import annotations

from typing import Any

from benchmarks.lab.gate import Comparison, Tolerances, compare, persistent

GW = "llmgate/passthrough"


def doc(p50_ratio: float = 5.0, p95_ratio: float = 4.0, rps_ratio: float = 0.3, direct_p50_ms: float = 0.1,
        direct_p95_ms: float = 0.2, rss_mb: float = 100.0, startup_ms: float = 900.0) -> dict[str, Any]:
    return {
        "cases": {"nonstream-c1": {
            "direct": {"p50_ms": direct_p50_ms, "p95_ms": direct_p95_ms},
            GW: {"vs_direct": {"p50_ratio": p50_ratio, "p95_ratio": p95_ratio, "rps_ratio": rps_ratio}},
        }},
        "gateways": {GW: {"rss_mb": rss_mb, "startup_ms": startup_ms}},
    }


def failed(current: dict[str, Any], tol: Tolerances | None = None) -> list[str]:
    comparisons, _ = compare(doc(), current, tol or Tolerances())
    return [c.figure for c in comparisons if c.failed]


def test_same_figures_pass() -> None:
    comparisons, missing = compare(doc(), doc(), Tolerances())
    assert len(comparisons) == 5 and missing == []
    assert not any(c.failed for c in comparisons)


def test_p95_growth_past_tolerance_and_floor_fails_naming_the_figure() -> None:
    # 4.0 → 4.5: +12.5% and (0.5 x 0.2 ms) = 100 µs
    assert failed(doc(p95_ratio=4.5)) == ["nonstream-c1 llmgate/passthrough overhead p95 (ratio to direct)"]


def test_growth_under_the_absolute_floor_passes() -> None:
    # +12.5%, but 0.5 x 0.05 ms = 25 µs < 50 µs
    assert failed(doc(p95_ratio=4.5, direct_p95_ms=0.05)) == []


def test_growth_under_the_relative_tolerance_passes() -> None:
    # +7.5% (300 µs): under 10%; fails with a 5% tolerance
    assert failed(doc(p95_ratio=4.3, direct_p95_ms=1.0)) == []
    assert failed(doc(p95_ratio=4.3, direct_p95_ms=1.0), Tolerances(tolerance=0.05)) != []


def test_p50_is_gated_too() -> None:
    assert failed(doc(p50_ratio=6.0)) == ["nonstream-c1 llmgate/passthrough overhead p50 (ratio to direct)"]


def test_throughput_fall_fails() -> None:
    assert failed(doc(rps_ratio=0.26)) == ["nonstream-c1 llmgate/passthrough throughput (ratio to direct)"]
    assert failed(doc(rps_ratio=0.28)) == []


def test_memory_and_startup_have_their_own_tolerances() -> None:
    assert failed(doc(rss_mb=104.0)) == []  # under the 5 MB floor
    assert failed(doc(rss_mb=112.0)) == ["llmgate/passthrough RSS after load"]
    assert failed(doc(startup_ms=1100.0)) == []  # +22%
    assert failed(doc(startup_ms=1200.0)) == ["llmgate/passthrough start-up to first 200"]


def test_missing_cases_and_targets_are_listed_not_failed() -> None:
    current = doc()
    del current["cases"]["nonstream-c1"][GW]
    comparisons, missing = compare(doc(), current, Tolerances())
    assert missing == ["nonstream-c1 llmgate/passthrough: no ratio to direct on one side"]
    assert not any(c.failed for c in comparisons)
    _, missing = compare(doc(), {"cases": {}, "gateways": {}}, Tolerances())
    assert missing == ["case nonstream-c1 not in this run"]


def test_only_what_fails_twice_is_declared() -> None:
    def c(figure: str, failed: bool) -> Comparison:
        return Comparison(figure, 1.0, 2.0, 1.1, "x", failed)

    first = [c("a", True), c("b", True), c("c", False)]
    second = [c("a", True), c("b", False), c("c", True)]
    assert [x.figure for x in persistent(first, second)] == ["a"]


def paced(cpu_ratio: float, gw_cpu_pct: float = 40.0) -> dict[str, Any]:
    return {"cases": {"paced-c32": {"direct": {"p50_ms": 45.0, "p95_ms": 48.0},
                                    GW: {"gw_cpu_pct": gw_cpu_pct,
                                         "vs_direct": {"p50_ratio": 1.02, "p95_ratio": 1.05, "rps_ratio": 0.98,
                                                       "cpu_ratio": cpu_ratio}}}}}


def test_paced_streams_are_gated_on_cpu_per_request() -> None:
    # Latency and rps follow the double's pacing: a per-chunk cost that grew shows in CPU per request only.
    comparisons, _ = compare(paced(4.0), paced(5.1), Tolerances())  # +27.5%: past the default 25%
    assert [c.figure for c in comparisons if c.failed] == [
        "paced-c32 llmgate/passthrough CPU per request (ratio to the double's)"]
    comparisons, _ = compare(paced(4.0), paced(4.8), Tolerances())  # +20%
    assert not any(c.failed for c in comparisons)
    comparisons, _ = compare(paced(4.0), paced(5.1), Tolerances(cpu_tolerance=0.3))
    assert not any(c.failed for c in comparisons)
    comparisons, _ = compare(paced(4.0), {"cases": {"paced-c32": {"direct": {"p50_ms": 45.0, "p95_ms": 48.0},
                                                                  GW: {"vs_direct": {"p50_ratio": 1.0,
                                                                                     "p95_ratio": 1.0,
                                                                                     "rps_ratio": 1.0}}}}},
                             Tolerances())
    assert not any("CPU" in c.figure for c in comparisons)  # no CPU figure on one side: nothing to compare
    comparisons, _ = compare(paced(4.0, gw_cpu_pct=3.0), paced(6.0), Tolerances())
    assert not any("CPU" in c.figure for c in comparisons)  # a few clock ticks of CPU: too coarse to judge


def test_describe_names_figure_and_numbers() -> None:
    (comparison,) = [x for x in compare(doc(), doc(p95_ratio=4.5), Tolerances())[0] if x.failed]
    assert comparison.describe() == ("REGRESSION nonstream-c1 llmgate/passthrough overhead p95 (ratio to direct): "
                                     "4.500x (baseline 4.000x, limit 4.400x)")


def test_a_figure_measured_only_while_the_machine_was_busy_is_inconclusive_not_failed() -> None:
    current = doc(p95_ratio=9.0, rps_ratio=0.1)
    current["cases"]["nonstream-c1"][GW]["vs_direct"]["disturbed"] = True
    comparisons, _ = compare(doc(), current, Tolerances())
    assert not any(c.failed for c in comparisons)
    busy = [c.figure for c in comparisons if c.inconclusive]
    assert busy == ["nonstream-c1 llmgate/passthrough overhead p95 (ratio to direct)",
                    "nonstream-c1 llmgate/passthrough throughput (ratio to direct)"]
    assert comparisons[1].describe().startswith("BUSY")
