"""`: keep-alive` SSE comments while a stream waits long for its first byte; fast streams unchanged."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
BODY = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}'


@pytest.fixture(scope="module")
def usage_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keepalive") / "usage.jsonl"


@pytest.fixture(scope="module")
def eager(upstream: str, usage_log: Path) -> Iterator[Gateway]:
    """Keep-alives every 0.2 s; usage events to a JSONL file."""
    env = gateway_env(upstream, LLMGATE_STREAM_KEEPALIVE_S="0.2", LLMGATE_USAGE_JSONL=str(usage_log),
                      LLMGATE_USAGE_FLUSH_S="0.05")
    with start_gateway(env) as gw:
        yield gw


def raw(url: str, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    with httpx.stream("POST", url, headers=headers, content=BODY, timeout=10) as response:
        return response, b"".join(response.iter_raw())


def test_slow_first_byte_gets_keepalive_comments(eager: Gateway, upstream: str) -> None:
    mock = {"x-mock-chunks": "3", "x-mock-delay-ms": "700"}
    _, direct = raw(f"{upstream}/v1/chat/completions", mock)
    response, through = raw(f"{eager.url}/v1/chat/completions", {**AUTH, **mock})
    assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
    comments, _, rest = through.rpartition(b": keep-alive\n\n")
    assert rest == direct  # the upstream's bytes follow the comments unchanged
    assert 2 <= through.count(b": keep-alive\n\n") <= 4 and comments.replace(b": keep-alive\n\n", b"") == b""


def test_the_sdk_reads_through_keepalives(eager: Gateway) -> None:
    client = openai.OpenAI(base_url=f"{eager.url}/v1", api_key=MASTER_KEY, max_retries=0)
    stream = client.chat.completions.create(model="m", messages=[], stream=True,
                                            extra_headers={"x-mock-delay-ms": "500", "x-mock-chunks": "4"})
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "tok0 tok1 tok2 tok3 "


def test_fast_streams_stay_byte_for_byte_identical(eager: Gateway, upstream: str) -> None:
    mock = {"x-mock-chunks": "20"}
    _, direct = raw(f"{upstream}/v1/chat/completions", mock)
    _, through = raw(f"{eager.url}/v1/chat/completions", {**AUTH, **mock})
    assert through == direct


def test_upstream_error_after_keepalives_ends_the_stream_with_an_error_event(eager: Gateway) -> None:
    client = openai.OpenAI(base_url=f"{eager.url}/v1", api_key=MASTER_KEY, max_retries=0)
    with pytest.raises(openai.APIError, match="mock error 400"):
        stream = client.chat.completions.create(model="m", messages=[], stream=True,
                                                extra_headers={"x-mock-delay-ms": "500", "x-mock-status": "400"})
        for _ in stream:
            pass


def test_every_attempt_failing_after_keepalives_is_logged_as_what_the_client_saw(eager: Gateway,
                                                                                 usage_log: Path) -> None:
    response, body = raw(f"{eager.url}/v1/chat/completions",
                         {**AUTH, "x-mock-delay-ms": "500", "x-mock-status": "503"})
    assert response.status_code == 200 and body.startswith(b": keep-alive") and b'"error"' in body
    request_id = response.headers["x-request-id"]
    for _ in range(50):
        events = [json.loads(line) for line in usage_log.read_text().splitlines()] if usage_log.exists() else []
        found = [e for e in events if e["request_id"] == request_id]
        if found:
            break
        time.sleep(0.1)
    assert found and found[0]["status"] == 200 and found[0]["error"] == "upstream_error"
