"""Streams that fail, natively and translated both ways: a client that leaves closes the upstream stream; a silent
upstream ends the stream with an error event in the caller's own dialect, or is a 504 in it before the start."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway, write_config

HI = [{"role": "user", "content": "hi"}]
SLOW_CHUNKS = {"x-mock-chunks": "3", "x-mock-chunk-delay-ms": "2000"}
SLOW_START = {"x-mock-delay-ms": "2000"}


@pytest.fixture(scope="module")
def impatient(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Both dialects on the double, allowing 0.5 s to the first byte and between chunks."""
    config = write_config(Path(tmp_path_factory.mktemp("impatient")), f"""
[routing]
breaker_failures = 1000  # every test here times out on purpose: keep the breakers closed

[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "{upstream}/v1"
api_key = "sk-ant-upstream-impatient-0000"
models = ["claude-x"]
timeouts = {{ connect_s = 2, first_byte_s = 0.5, idle_s = 0.5 }}

[[providers]]
name = "openai"
base_url = "{upstream}/v1"
api_key = "env:OPENAI_API_KEY"
timeouts = {{ connect_s = 2, first_byte_s = 0.5, idle_s = 0.5 }}
""")
    with start_gateway(gateway_env(upstream, LLMGATE_CONFIG=config)) as gw:
        yield gw


def raw_events(gateway: Gateway, path: str, body: dict, headers: dict) -> str:
    r = httpx.post(f"{gateway.url}/v1{path}", json=body, headers={"x-api-key": MASTER_KEY, **headers}, timeout=10)
    assert r.status_code == 200
    return r.text


@pytest.mark.parametrize("model", ["claude-x", "gpt-4o-mini"])
def test_anthropic_client_gets_an_error_event(impatient: Gateway, model: str) -> None:
    text = raw_events(impatient, "/messages", {"model": model, "max_tokens": 8, "messages": HI, "stream": True},
                      SLOW_CHUNKS)
    last = text.strip().rsplit("\n\n", 1)[1].split("\n")
    assert last[0] == "event: error" and "message_stop" not in text
    assert "sent nothing for 0.5 s" in json.loads(last[1][6:])["error"]["message"]
    with anthropic.Anthropic(base_url=impatient.url, api_key=MASTER_KEY, max_retries=0) as client, \
            pytest.raises(anthropic.APIStatusError, match="sent nothing"), \
            client.messages.stream(model=model, max_tokens=8, messages=HI, extra_headers=SLOW_CHUNKS) as stream:
        stream.get_final_message()


def test_openai_client_gets_an_error_event_from_a_translated_stream(impatient: Gateway) -> None:
    text = raw_events(impatient, "/chat/completions", {"model": "claude-x", "messages": HI, "stream": True},
                      SLOW_CHUNKS)
    assert "[DONE]" not in text and '"error":{"message":"The upstream sent nothing for 0.5 s."' in text
    with openai.OpenAI(base_url=f"{impatient.url}/v1", api_key=MASTER_KEY, max_retries=0) as client, \
            pytest.raises(openai.APIError, match=r"sent nothing for 0\.5 s"):
        list(client.chat.completions.create(model="claude-x", messages=HI, stream=True, extra_headers=SLOW_CHUNKS))


@pytest.mark.parametrize(("path", "model", "stream"), [
    ("/messages", "claude-x", True), ("/messages", "gpt-4o-mini", True), ("/messages", "gpt-4o-mini", False),
])
def test_silent_upstream_before_the_stream_is_an_anthropic_504(impatient: Gateway, path: str, model: str,
                                                                stream: bool) -> None:
    r = httpx.post(f"{impatient.url}/v1{path}", headers={"x-api-key": MASTER_KEY, **SLOW_START}, timeout=10,
                   json={"model": model, "max_tokens": 8, "messages": HI, "stream": stream})
    assert r.status_code == 504 and r.json()["type"] == "error" and r.json()["error"]["type"] == "api_error"


@pytest.mark.parametrize("stream", [True, False])
def test_silent_anthropic_upstream_is_an_openai_504(impatient: Gateway, stream: bool) -> None:
    r = httpx.post(f"{impatient.url}/v1/chat/completions", headers={"x-api-key": MASTER_KEY, **SLOW_START},
                   json={"model": "claude-x", "messages": HI, "stream": stream}, timeout=10)
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"


@pytest.mark.parametrize("model", ["claude-x", "gpt-4o-mini"])
def test_giving_up_before_the_first_byte_closes_the_upstream_request(impatient: Gateway, upstream: str,
                                                                     model: str) -> None:
    """The double generates nothing for a request whose client left during its delay (as a real upstream):
    the gateway's 504 must have hung up on it, after each of its attempts (a timeout is retried)."""
    httpx.post(f"{upstream}/_reset")
    r = httpx.post(f"{impatient.url}/v1/messages", headers={"x-api-key": MASTER_KEY, **SLOW_START}, timeout=10,
                   json={"model": model, "max_tokens": 8, "messages": HI, "stream": True})
    attempts = int(r.headers["x-llmgate-attempts"])
    assert r.status_code == 504 and attempts > 1
    deadline = time.monotonic() + 3
    while (seen := httpx.get(f"{upstream}/_seen").json())["abandoned"] < attempts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen["abandoned"] == attempts and seen["streams_started"] == 0


@pytest.mark.parametrize(("path", "body"), [
    ("/chat/completions", {"model": "claude-x", "messages": HI, "stream": True}),
    ("/messages", {"model": "gpt-4o-mini", "max_tokens": 8, "messages": HI, "stream": True}),
    ("/messages", {"model": "claude-x", "max_tokens": 8, "messages": HI, "stream": True}),
])
def test_client_disconnect_closes_the_upstream_stream(two_dialect_gateway: Gateway, upstream: str, path: str,
                                                      body: dict) -> None:
    httpx.post(f"{upstream}/_reset")
    headers = {"x-api-key": MASTER_KEY, "x-mock-chunks": "100", "x-mock-chunk-delay-ms": "100"}
    with httpx.stream("POST", f"{two_dialect_gateway.url}/v1{path}", headers=headers, json=body,
                      timeout=10) as response:
        next(response.iter_raw())  # the first translated chunk came; now hang up
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        seen = httpx.get(f"{upstream}/_seen").json()
        if seen["streams_aborted"] >= 1:
            break
        time.sleep(0.05)
    assert seen["streams_aborted"] == 1 and seen["streams_completed"] == 0
