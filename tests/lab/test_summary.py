"""Medians across rounds, ratios paired within a round, the JSON document, the ceiling warning."""

from __future__ import annotations

import json

import pytest

from benchmarks.lab.loadgen import LoadResult
from benchmarks.lab.runner import GatewayStats, TargetRound
from benchmarks.lab.summary import SCHEMA, build_document, ceiling_check, summarize_case, vs_direct

GW = "llmgate/passthrough"


def result(rps: float, p50: float, p95: float, p99: float, errors: int = 0) -> LoadResult:
    return LoadResult(requests=int(rps), duration_s=1.0, rps=rps, p50_ms=p50, p95_ms=p95, p99_ms=p99, errors=errors,
                      cdf_ms=[(50.0, p50), (95.0, p95)])


def rounds() -> list[TargetRound]:
    """Three rounds; round 2's machine was twice as slow for both targets alike."""
    out = []
    for r, slow in ((1, 1.0), (2, 2.0), (3, 1.0)):
        out.append(TargetRound("direct", r, {"nonstream-c1": result(1000 / slow, 0.1 * slow, 0.2 * slow, 0.3 * slow)}))
        gw = TargetRound(GW, r, {"nonstream-c1": result(250 / slow, 0.5 * slow, 0.8 * slow, 1.2 * slow)},
                         startup_ms=900.0 + r)
        if r == 3:
            gw.stats = GatewayStats(rss_mb=100.0, pss_mb=80.0, processes=2, idle_cpu_pct=0.0)
        out.append(gw)
    return out


def test_ratios_are_paired_per_round_so_a_slow_round_cancels_out() -> None:
    vs = vs_direct(rounds(), "nonstream-c1", GW)
    assert vs is not None
    assert vs["rps_ratio"] == pytest.approx(0.25)
    assert vs["p95_ratio"] == pytest.approx(4.0)
    assert vs["overhead_p50_ms"] == pytest.approx(0.4)  # rounds 1, 3: 0.4; round 2: 0.8 → median 0.4
    assert vs["pairs"] == 3


def test_rounds_with_errors_are_left_out_of_the_ratios_and_counted() -> None:
    data = rounds()
    data[3].cases["nonstream-c1"] = result(1.0, 99.0, 99.0, 99.0, errors=5)  # llmgate, the slow round 2
    row = summarize_case(data, "nonstream-c1", GW, ["direct", GW])
    assert row is not None
    assert row["errors"] == 5 and row["rounds"] == 3
    assert row["vs_direct"]["pairs"] == 2
    assert row["p95_ms"] == pytest.approx(0.8)


def test_document_round_trips_through_json() -> None:
    doc = build_document(rounds(), ["direct", GW], ["nonstream-c1"], {"machine": {"cores": 2}})
    again = json.loads(json.dumps(doc))
    assert again["schema"] == SCHEMA and again["valid"] is True
    assert again["machine"] == {"cores": 2}
    assert set(again["cases"]["nonstream-c1"]) == {"direct", GW}
    assert "vs_direct" not in again["cases"]["nonstream-c1"]["direct"]
    gateway = again["gateways"][GW]
    assert gateway["startup_ms"] == 902.0 and gateway["rss_mb"] == 100.0 and gateway["startup_samples"] == 3
    assert len(again["rounds"]) == 6


def test_failures_make_the_document_invalid() -> None:
    data = rounds()
    data.append(TargetRound(GW, 4, error="llmgate exited with code 2"))
    doc = build_document(data, ["direct", GW], ["nonstream-c1"], {})
    assert doc["valid"] is False
    assert doc["failures"] == [{"target": GW, "round": 4, "error": "llmgate exited with code 2"}]


def test_ceiling_warning_when_a_target_is_within_3x_of_direct() -> None:
    doc = build_document(rounds(), ["direct", GW], ["nonstream-c1"], {})
    assert ceiling_check(doc) == []  # 250 vs 1000 rps: 4x apart
    doc["cases"]["nonstream-c1"][GW]["rps"] = 400.0
    (warning,) = ceiling_check(doc)
    assert "nonstream-c1" in warning and GW in warning and "within 3x" in warning


def test_pairs_disturbed_by_other_load_are_left_out() -> None:
    data = rounds()
    data[3].cases["nonstream-c1"].other_cpu_pct = 95.0  # llmgate, round 2: a neighbour kept its core busy
    data[3].cases["nonstream-c1"].rps = 10.0
    vs = vs_direct(data, "nonstream-c1", GW)
    assert vs is not None
    assert vs["pairs"] == 2 and vs["disturbed_pairs"] == 1 and vs["disturbed"] is False
    assert vs["rps_ratio"] == pytest.approx(0.25)


def test_every_pair_disturbed_is_flagged() -> None:
    data = rounds()
    for tr in data:
        tr.cases["nonstream-c1"].other_cpu_pct = 80.0
    vs = vs_direct(data, "nonstream-c1", GW)
    assert vs is not None and vs["disturbed"] is True and vs["pairs"] == 3
    assert vs_direct(data, "nonstream-c1", GW, max_other_cpu_pct=100.0)["disturbed"] is False  # type: ignore[index]


def test_cpu_per_request_is_a_ratio_to_the_doubles_alone_in_the_same_round() -> None:
    data = []
    for r, slow in ((1, 1.0), (2, 1.5), (3, 1.0)):  # round 2: a slower host, both alike
        direct = result(1000, 2.0, 2.5, 3.0)
        direct.double_cpu_pct = 20.0 * slow           # 200 µs a request (300 in round 2)
        gw = result(500, 2.1, 2.6, 3.1)
        gw.gw_cpu_pct, gw.double_cpu_pct = 40.0 * slow, 10.0  # 800 µs a request (1200 in round 2)
        data += [TargetRound("direct", r, {"paced-c32": direct}), TargetRound(GW, r, {"paced-c32": gw})]
    row = summarize_case(data, "paced-c32", GW, ["direct", GW])
    assert row is not None
    assert row["vs_direct"]["cpu_ratio"] == pytest.approx(4.0)
    assert row["gw_cpu_us"] == pytest.approx(800.0)
    assert summarize_case(data, "paced-c32", "direct", ["direct", GW])["double_cpu_us"] == pytest.approx(200.0)


def test_no_cpu_ratio_without_the_processes_cpu() -> None:
    assert "cpu_ratio" not in (vs_direct(rounds(), "nonstream-c1", GW) or {})
