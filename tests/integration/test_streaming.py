"""Streaming passthrough under granian: bytes unchanged, tokens as they come, clients that hang up (deadlines and
keep-alives in process: tests/unit/proxy/test_streaming.py)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
STREAM_BODY = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}'


def raw_stream(url: str, headers: dict[str, str], body: bytes = STREAM_BODY) -> bytes:
    with httpx.stream("POST", url, headers=headers, content=body, timeout=10) as response:
        assert response.status_code == 200, response.read()
        return b"".join(response.iter_raw())


@pytest.mark.parametrize("chunks", ["0", "1", "20", "300"])
def test_stream_bytes_are_identical_to_upstream(gateway: Gateway, upstream: str, chunks: str) -> None:
    mock = {"x-mock-chunks": chunks}
    direct = raw_stream(f"{upstream}/v1/chat/completions", mock)
    through = raw_stream(f"{gateway.url}/v1/chat/completions", {**AUTH, **mock})
    assert through == direct
    assert through.endswith(b"data: [DONE]\n\n")


def test_stream_headers(gateway: Gateway) -> None:
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", headers=AUTH, content=STREAM_BODY) as response:
        response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-upstream-request-id"].startswith("up-")
    assert len(response.headers["x-request-id"]) == 24


def test_tokens_arrive_as_they_are_generated(gateway: Gateway) -> None:
    """No buffering: with 300 ms between upstream chunks, the first reaches the client long before the last."""
    headers = {**AUTH, "x-mock-chunks": "4", "x-mock-chunk-delay-ms": "300"}
    arrivals: list[float] = []
    start = time.monotonic()
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", headers=headers, content=STREAM_BODY,
                      timeout=10) as response:
        for _ in response.iter_raw():
            arrivals.append(time.monotonic() - start)
    assert len(arrivals) >= 4
    assert arrivals[-1] - arrivals[0] >= 0.8  # spread over the upstream's ~1.2 s, not delivered at once


def test_client_disconnect_closes_the_upstream_stream(gateway: Gateway, upstream: str) -> None:
    httpx.post(f"{upstream}/_reset")
    headers = {**AUTH, "x-mock-chunks": "100", "x-mock-chunk-delay-ms": "100"}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", headers=headers, content=STREAM_BODY,
                      timeout=10) as response:
        next(response.iter_raw())  # the first chunk came; now hang up
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        seen = httpx.get(f"{upstream}/_seen").json()
        if seen["streams_aborted"] >= 1:
            break
        time.sleep(0.05)
    assert seen["streams_aborted"] == 1 and seen["streams_completed"] == 0
    # and the gateway still serves
    assert httpx.post(f"{gateway.url}/v1/chat/completions", headers=AUTH, json={"model": "m"}).status_code == 200


def test_client_disconnect_while_waiting_for_a_whole_response(upstream: str) -> None:
    """A non-streamed request abandoned by its client is cancelled upstream too, at once."""
    with start_gateway(gateway_env(upstream, LLMGATE_LOG_LEVEL="DEBUG")) as gw:
        httpx.post(f"{upstream}/_reset")
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m"}, timeout=0.5,
                       headers={**AUTH, "x-mock-delay-ms": "3000"})
        deadline = time.monotonic() + 2
        while "client disconnected while waiting" not in gw.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "client disconnected while waiting; upstream request closed" in gw.logs()
        while httpx.get(f"{upstream}/_seen").json()["abandoned"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(f"{upstream}/_seen").json()["abandoned"] == 1  # the upstream saw the connection closed
        assert httpx.post(f"{gw.url}/v1/chat/completions", headers=AUTH, json={"model": "m"}).status_code == 200
