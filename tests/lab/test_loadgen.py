"""Reading wrk's report lines and the built-in generator's samples into one LoadResult."""

from __future__ import annotations

import pytest

from benchmarks.lab.loadgen import parse_wrk, result_from_samples, result_from_wrk
from benchmarks.lab.processes import BenchError

WRK_OUT = """Running 5s test @ http://127.0.0.1:1/v1/chat/completions
RESULT requests=2926 duration_us=5010444 bytes=2115498 connect=0 read=1 write=0 timeout=2 non2xx=3
LATENCY_US p50=994 p90=5067 p95=6638 p99=9903 max=13378 mean=2173.8 stdev=2114.6
CDF_US 1=646 50=994 99.9=12509
"""


def test_wrk_lines_become_a_result() -> None:
    r = result_from_wrk(parse_wrk(WRK_OUT))
    assert r.requests == 2926
    assert r.rps == pytest.approx(2926 / 5.010444)
    assert (r.p50_ms, r.p95_ms, r.p99_ms) == (0.994, 6.638, 9.903)
    assert r.errors == 6
    assert r.cdf_ms == [(1.0, 0.646), (50.0, 0.994), (99.9, 12.509)]
    assert r.ttfb_p50_ms is None  # wrk cannot time the first byte


def test_wrk_without_report_lines_is_an_error() -> None:
    with pytest.raises(BenchError, match="no RESULT"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_samples_become_a_result_with_first_byte_times_for_streams() -> None:
    latencies = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    first = [i / 10000 for i in range(1, 101)]  # 0.1..10 ms
    r = result_from_samples(latencies, first, errors=2, duration_s=2.0, stream=True)
    assert r.requests == 100 and r.rps == 50.0 and r.errors == 2
    assert (r.p50_ms, r.p95_ms, r.p99_ms) == pytest.approx((50.0, 95.0, 99.0))
    assert (r.ttfb_p50_ms, r.ttfb_p95_ms) == pytest.approx((5.0, 9.5))
    assert r.cdf_ms[0] == pytest.approx((1.0, 1.0))
    assert result_from_samples(latencies, first, 0, 2.0, stream=False).ttfb_p50_ms is None


def test_no_success_is_an_error() -> None:
    with pytest.raises(BenchError, match="no successful request"):
        result_from_samples([], [], errors=40, duration_s=1.0, stream=False)
