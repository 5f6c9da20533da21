"""The tables: every figure of the document reaches the screen."""

from __future__ import annotations

import io

from rich.console import Console

from benchmarks.lab.gate import Comparison
from benchmarks.lab.report import case_table, gate_table, machine_info, print_report

GW = "llmgate/passthrough"
ROWS = {
    "direct": {"rps": 3000.0, "p50_ms": 0.25, "p95_ms": 0.4, "p99_ms": 0.5, "ttfb_p50_ms": None, "ttfb_p95_ms": None,
               "errors": 0},
    GW: {"rps": 1200.0, "p50_ms": 0.7, "p95_ms": 0.95, "p99_ms": 1.5, "ttfb_p50_ms": 0.6, "ttfb_p95_ms": 0.9,
         "errors": 3, "vs_direct": {"rps_ratio": 0.4, "p95_ratio": 2.375, "overhead_p50_ms": 0.45,
                                    "overhead_p95_ms": 0.55, "overhead_p99_ms": 1.0},
         "rps_vs": {"other": 0.8}},
    "other": {"rps": 1500.0, "p50_ms": 0.6, "p95_ms": 0.9, "p99_ms": 1.4, "errors": 0,
              "vs_direct": {"rps_ratio": 0.5, "p95_ratio": 2.25, "overhead_p50_ms": 0.35, "overhead_p95_ms": 0.5,
                            "overhead_p99_ms": 0.9}, "rps_vs": {GW: 1.25}},
}


def render(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=200).print(renderable)
    return out.getvalue()


def test_case_table_shows_rates_latencies_overheads_and_ratios() -> None:
    text = render(case_table("stream-c1", ROWS))
    assert "stream-c1" in text
    for cell in ("3,000", "1,200", "0.95", "+0.45", "+0.55", "+1.00", "0.40", "2.38", "rps/other", "0.80", "0.60"):
        assert cell in text, cell
    assert "!!! 3 errors" in text


def test_gate_table_marks_failures() -> None:
    text = render(gate_table([Comparison("a figure", 4.0, 4.5, 4.4, "x", True),
                              Comparison("another", 1.0, 1.0, 1.1, "x", False)]))
    assert "FAIL" in text and "a figure" in text and "4.500x" in text and "ok" in text


def test_whole_report_lists_failures() -> None:
    doc = {"cases": {"nonstream-c1": ROWS}, "gateways": {GW: {"startup_ms": 912.0, "rss_mb": 101.5, "pss_mb": 80.0,
                                                               "processes": 2, "idle_cpu_pct": 0.0}},
           "footprint": {"import_ms": 650.0, "installed_mb": 140.0, "top_imports": [["litestar", 300.0]]},
           "failures": [{"target": GW, "round": 2, "error": "exited\nmore"}], "invalid": []}
    out = io.StringIO()
    print_report(Console(file=out, width=200), doc, 5.0)
    text = out.getvalue()
    for cell in ("912", "101.5", "650 ms", "140 MB", "litestar", "300.0", "FAILED", "round 2: exited"):
        assert cell in text, cell


def test_machine_info_names_the_key_packages() -> None:
    info = machine_info(None)
    assert info["cores"] >= 1 and info["python"] and info["wrk"] is None
    assert set(info["packages"]) >= {"llmgate", "granian", "litestar", "msgspec"}
