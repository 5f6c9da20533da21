"""Streaming passthrough: bytes unchanged, tokens as they come, disconnects and silences handled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway, write_config

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
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m"}, timeout=0.5,
                       headers={**AUTH, "x-mock-delay-ms": "3000"})
        deadline = time.monotonic() + 2
        while "client disconnected while waiting" not in gw.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "client disconnected while waiting; upstream request closed" in gw.logs()
        assert httpx.post(f"{gw.url}/v1/chat/completions", headers=AUTH, json={"model": "m"}).status_code == 200


@pytest.fixture(scope="module")
def impatient_gateway(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway whose provider allows 0.5 s to the first byte and 0.5 s between chunks."""
    config = write_config(tmp_path_factory.mktemp("cfg"), f"""
[[providers]]
name = "slowpoke"
base_url = "{upstream}/v1"
api_key = "env:OPENAI_API_KEY"
timeouts = {{ connect_s = 2, first_byte_s = 0.5, idle_s = 0.5 }}
""")
    with start_gateway(gateway_env(upstream), "--config", config) as gw:
        yield gw


def test_first_byte_timeout_is_504(impatient_gateway: Gateway) -> None:
    for body in (STREAM_BODY, b'{"model":"m"}'):
        response = httpx.post(f"{impatient_gateway.url}/v1/chat/completions", content=body,
                              headers={**AUTH, "x-mock-delay-ms": "2000"}, timeout=10)
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "upstream_timeout"


def test_idle_timeout_mid_stream_ends_with_an_error_event(impatient_gateway: Gateway) -> None:
    headers = {**AUTH, "x-mock-chunks": "3", "x-mock-chunk-delay-ms": "2000"}
    body = raw_stream(f"{impatient_gateway.url}/v1/chat/completions", headers)
    assert body.startswith(b"data: {")
    assert body.endswith(b"\n\n") and b"[DONE]" not in body
    assert b'"code":"upstream_timeout"' in body.rsplit(b"data: ", 1)[1]
    # The OpenAI SDK raises it as an APIError
    with openai.OpenAI(base_url=f"{impatient_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0) as client, \
            pytest.raises(openai.APIError, match=r"sent nothing for 0\.5 s"):
        list(client.chat.completions.create(model="m", messages=[], stream=True, extra_headers=headers))


def test_unreachable_upstream_is_502(tmp_path: Path, upstream: str) -> None:
    from tests.upstream_double import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"
    with start_gateway(gateway_env(upstream, OPENAI_BASE_URL=dead)) as gw:
        for body in (STREAM_BODY, b'{"model":"m"}'):
            response = httpx.post(f"{gw.url}/v1/chat/completions", content=body, headers=AUTH)
            assert response.status_code == 502
            assert response.json()["error"]["code"] == "upstream_unreachable"
        assert "sk-upstream" not in gw.logs() and "unreachable" in gw.logs()
