"""What goes up to an Anthropic provider (the caller's headers, the provider's x-api-key, a default version) and
how a started Anthropic stream ends on an error; in process against the double, streams that fail natively and
translated both ways: a client that leaves closes the upstream stream; a silent upstream ends the stream with an
error event in the caller's own dialect, or is a 504 in it before the start."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import anthropic
import openai
import pytest

from llmgate.config import ProviderConfig
from llmgate.errors import UpstreamTimeout, error_body
from llmgate.pipeline.dialects import anthropic_error_frame
from llmgate.providers.anthropic import DEFAULT_ANTHROPIC_VERSION, Anthropic
from llmgate.proxy.headers import split_request_headers, upstream_request_headers
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import DOUBLE_URL, double, reset_seen, seen
from tests.servers import MASTER_KEY

PROVIDER = Anthropic(ProviderConfig(name="claude", base_url="https://api.anthropic.com", kind="anthropic"))


def test_caller_credentials_replaced_and_betas_kept() -> None:
    inbound = split_request_headers([(b"x-api-key", b"sk-master"), (b"anthropic-version", b"2023-01-01"),
                                     (b"anthropic-beta", b"a,b"), (b"content-type", b"application/json")])
    headers = upstream_request_headers(inbound, PROVIDER.auth_headers("sk-ant-provider"), b"rid-1",
                                       PROVIDER.default_headers)
    assert ("x-api-key", "sk-ant-provider") in headers and ("anthropic-beta", "a,b") in headers
    assert [v for n, v in headers if n == "anthropic-version"] == ["2023-01-01"]  # the caller's own wins
    assert "sk-master" not in str(headers)


def test_version_added_only_when_missing() -> None:
    inbound = split_request_headers([(b"authorization", b"Bearer sk-master")])
    headers = upstream_request_headers(inbound, PROVIDER.auth_headers(""), b"r", PROVIDER.default_headers)
    assert ("anthropic-version", DEFAULT_ANTHROPIC_VERSION) in headers
    assert "sk-master" not in str(headers)


def test_error_frame_shape() -> None:
    event, data = anthropic_error_frame(error_body(UpstreamTimeout("silent"))).decode().strip().split("\n")
    assert event == "event: error"
    body = json.loads(data[6:])
    assert body["type"] == "error" and body["error"]["message"] == "silent"


def test_error_frame_keeps_anthropic_bodies() -> None:
    anthropic = b'{"type":"error","error":{"type":"overloaded_error","message":"busy"}}'
    assert anthropic_error_frame(anthropic) == b"event: error\ndata: " + anthropic + b"\n\n"


HI = [{"role": "user", "content": "hi"}]
SLOW_CHUNKS = {"x-mock-chunks": "3", "x-mock-chunk-delay-ms": "2000"}
SLOW_START = {"x-mock-delay-ms": "2000"}
ANTHROPIC_CALLER = {"x-api-key": MASTER_KEY}


@pytest.fixture(scope="module")
def impatient() -> Iterator[Gateway]:
    """Both dialects on the double, allowing 0.1 s to the first byte and 0.2 s between chunks."""
    config = f"""
[routing]
breaker_failures = 1000  # every test here times out on purpose: keep the breakers closed
backoff_base_ms = 1

[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "{DOUBLE_URL}/v1"
api_key = "sk-ant-upstream-impatient-0000"
models = ["claude-x"]
timeouts = {{ connect_s = 2, first_byte_s = 0.1, idle_s = 0.2 }}

[[providers]]
name = "openai"
base_url = "{DOUBLE_URL}/v1"
api_key = "env:OPENAI_API_KEY"
timeouts = {{ connect_s = 2, first_byte_s = 0.1, idle_s = 0.2 }}
"""
    with Gateway(config, double()) as gw:
        yield gw


def raw_events(gateway: Gateway, path: str, body: dict, headers: dict) -> str:
    r = gateway.post(f"/v1{path}", json=body, headers={**ANTHROPIC_CALLER, **headers}, auth=False)
    assert r.status_code == 200
    return r.text


@pytest.mark.parametrize("model", ["claude-x", "gpt-4o-mini"])
def test_anthropic_client_gets_an_error_event(impatient: Gateway, model: str) -> None:
    text = raw_events(impatient, "/messages", {"model": model, "max_tokens": 8, "messages": HI, "stream": True},
                      SLOW_CHUNKS)
    last = text.strip().rsplit("\n\n", 1)[1].split("\n")
    assert last[0] == "event: error" and "message_stop" not in text
    assert "sent nothing for 0.2 s" in json.loads(last[1][6:])["error"]["message"]
    with anthropic.Anthropic(base_url=impatient.url, api_key=MASTER_KEY, max_retries=0,
                             http_client=impatient.http2) as client, \
            pytest.raises(anthropic.APIStatusError, match="sent nothing"), \
            client.messages.stream(model=model, max_tokens=8, messages=HI, extra_headers=SLOW_CHUNKS) as stream:
        stream.get_final_message()


def test_openai_client_gets_an_error_event_from_a_translated_stream(impatient: Gateway) -> None:
    text = raw_events(impatient, "/chat/completions", {"model": "claude-x", "messages": HI, "stream": True},
                      SLOW_CHUNKS)
    assert "[DONE]" not in text and '"error":{"message":"The upstream sent nothing for 0.2 s."' in text
    with openai.OpenAI(base_url=f"{impatient.url}/v1", api_key=MASTER_KEY, max_retries=0,
                       http_client=impatient.http) as client, \
            pytest.raises(openai.APIError, match=r"sent nothing for 0\.2 s"):
        list(client.chat.completions.create(model="claude-x", messages=HI, stream=True, extra_headers=SLOW_CHUNKS))


@pytest.mark.parametrize(("path", "model", "stream"), [
    ("/messages", "claude-x", True), ("/messages", "gpt-4o-mini", True), ("/messages", "gpt-4o-mini", False),
])
def test_silent_upstream_before_the_stream_is_an_anthropic_504(impatient: Gateway, path: str, model: str,
                                                                stream: bool) -> None:
    r = impatient.post(f"/v1{path}", headers={**ANTHROPIC_CALLER, **SLOW_START}, auth=False,
                       json={"model": model, "max_tokens": 8, "messages": HI, "stream": stream})
    assert r.status_code == 504 and r.json()["type"] == "error" and r.json()["error"]["type"] == "api_error"


@pytest.mark.parametrize("stream", [True, False])
def test_silent_anthropic_upstream_is_an_openai_504(impatient: Gateway, stream: bool) -> None:
    r = impatient.post("/v1/chat/completions", headers={**ANTHROPIC_CALLER, **SLOW_START}, auth=False,
                       json={"model": "claude-x", "messages": HI, "stream": stream})
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"


def wait_for_the_double(gw: Gateway, key: str, expected: int) -> dict:
    """What the double saw once `key` reaches `expected` (it notices a client that left as its loop runs)."""
    for _ in range(60):
        if (found := seen())[key] >= expected:
            return found  # type: ignore[no-any-return]
        gw.run(asyncio.sleep(0.05))
    return seen()  # type: ignore[no-any-return]


@pytest.mark.parametrize("model", ["claude-x", "gpt-4o-mini"])
def test_giving_up_before_the_first_byte_closes_the_upstream_request(impatient: Gateway, model: str) -> None:
    """The double generates nothing for a request whose client left during its delay (as a real upstream):
    the gateway's 504 must have hung up on it, after each of its attempts (a timeout is retried)."""
    reset_seen()
    r = impatient.post("/v1/messages", headers={**ANTHROPIC_CALLER, **SLOW_START}, auth=False,
                       json={"model": model, "max_tokens": 8, "messages": HI, "stream": True})
    attempts = int(r.headers["x-llmgate-attempts"])
    assert r.status_code == 504 and attempts > 1
    found = wait_for_the_double(impatient, "abandoned", attempts)
    assert found["abandoned"] == attempts and found["streams_started"] == 0


@pytest.fixture(scope="module")
def two_dialects() -> Iterator[Gateway]:
    """`anthropic` (kind anthropic, the claude-* models) and `openai`, both on the double."""
    config = f"""
[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "{DOUBLE_URL}/v1"
api_key = "sk-ant-upstream-test-00112233445566"
models = ["claude-x", "claude-sonnet-test"]

[[providers]]
name = "openai"
base_url = "{DOUBLE_URL}/v1"
api_key = "env:OPENAI_API_KEY"
"""
    with Gateway(config, double()) as gw:
        yield gw


@pytest.mark.parametrize(("path", "body"), [
    ("/chat/completions", {"model": "claude-x", "messages": HI, "stream": True}),
    ("/messages", {"model": "gpt-4o-mini", "max_tokens": 8, "messages": HI, "stream": True}),
    ("/messages", {"model": "claude-x", "max_tokens": 8, "messages": HI, "stream": True}),
])
def test_client_disconnect_closes_the_upstream_stream(two_dialects: Gateway, path: str, body: dict) -> None:
    reset_seen()
    headers = {**ANTHROPIC_CALLER, "x-mock-chunks": "100", "x-mock-chunk-delay-ms": "100"}
    # the first translated chunk came; now hang up
    response = two_dialects.run(two_dialects.send("POST", f"/v1{path}", headers=headers, json=body, auth=False,
                                                  leave=lambda r: bool(r.content)))
    assert response.status_code == 200 and not response.complete
    found = wait_for_the_double(two_dialects, "streams_aborted", 1)
    assert found["streams_aborted"] == 1 and found["streams_completed"] == 0
