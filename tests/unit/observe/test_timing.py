"""The Server-Timing header."""

from __future__ import annotations

from llmgate.observe.timing import server_timing
from llmgate.usage.event import Exchange
from tests.inprocess.gateway import Gateway


def parse(header: bytes) -> dict[str, float]:
    return {name: float(dur) for name, dur in (part.split(";dur=") for part in header.decode().split(", "))}


def test_a_whole_answer() -> None:
    exchange = Exchange(b"r", "POST", "/v1/chat/completions", lag_s=0.0005)
    exchange.auth_s, exchange.route_s = 0.00002, 0.00001
    exchange.upstream_s = exchange.ttfb_s = 0.4123
    timing = parse(server_timing(exchange, exchange.started_at + 0.4126))
    assert timing == {"auth": 0.02, "route": 0.01, "upstream-ttfb": 412.3, "overhead": 0.8}


def test_a_stream_counts_its_open_attempt_as_upstream_time() -> None:
    exchange = Exchange(b"r", "POST", "/v1/chat/completions")
    exchange.upstream_s = 0.1  # a failed first attempt
    exchange.ttfb_s = 0.05
    now = exchange.started_at + 0.3
    timing = parse(server_timing(exchange, now, in_flight_since=exchange.started_at + 0.2))
    assert timing["upstream-ttfb"] == 50.0 and timing["overhead"] == 100.0  # 0.3 - 0.1 - (0.3 - 0.2)


def test_server_timing_breaks_down_the_gateways_part(double_gateway: Gateway) -> None:
    """Through the app, against the double run in process."""
    for body in ({"model": "m"}, {"model": "m", "stream": True}):
        response = double_gateway.post("/v1/chat/completions", json=body, headers={"x-mock-delay-ms": "40"})
        timing = {name: float(dur) for name, dur in
                  (part.split(";dur=") for part in response.headers["server-timing"].split(", "))}
        assert set(timing) == {"auth", "route", "upstream-ttfb", "overhead"}
        assert timing["upstream-ttfb"] >= 40  # the double waited 40 ms before answering
        assert 0 <= timing["auth"] < timing["upstream-ttfb"] and 0 <= timing["overhead"] < timing["upstream-ttfb"]
