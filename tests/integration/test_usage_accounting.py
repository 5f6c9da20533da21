"""Usage accounting end to end: llmgate under granian with the usage log on (store + JSONL sinks), in front of
the upstream double; each request's event read back from the JSONL file, totals from /manage/usage."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmgate.usage.counting import count_chat_prompt_tokens, count_text_tokens
from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway, write_config

MT = "mt-usage-0123456789"
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
HI = [{"role": "user", "content": "Say hello in one short sentence please."}]
ANTHROPIC_KEY = "sk-ant-upstream-usage-0011223344"


@pytest.fixture(scope="module")
def usage_gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Path]]:
    tmp = tmp_path_factory.mktemp("usage")
    config = write_config(tmp, f"""
[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "{upstream}/v1"
api_key = "{ANTHROPIC_KEY}"
models = ["claude-x"]

[[providers]]
name = "openai"
base_url = "{upstream}/v1"
api_key = "env:OPENAI_API_KEY"

[[providers]]
name = "passthrough"
base_url = "{upstream}/v1"
api_key = "env:OPENAI_API_KEY"

[[models]]
name = "cheap"
deployments = [{{ provider = "openai", model = "gpt-4o-mini" }}]

[prices."gpt-4o-mini"]
input_per_mtok = 0.15
output_per_mtok = 0.6

[prices."claude-*"]
input_per_mtok = 3
output_per_mtok = 15
""")
    jsonl = tmp / "events.jsonl"
    env = gateway_env(upstream, LLMGATE_CONFIG=config, LLMGATE_USAGE_JSONL=str(jsonl), LLMGATE_USAGE_FLUSH_S="0.05",
                      LLMGATE_MANAGEMENT_TOKEN=MT)
    with start_gateway(env) as gw:
        yield gw, jsonl


def event_of(jsonl: Path, request_id: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """The usage event of `request_id`, once the bus has written it."""
    deadline = time.monotonic() + timeout_s
    while True:
        if jsonl.exists():
            for line in jsonl.read_text().splitlines():
                event: dict[str, Any] = json.loads(line)
                if event["request_id"] == request_id:
                    return event
        if time.monotonic() > deadline:
            raise AssertionError(f"no usage event for {request_id} after {timeout_s} s")
        time.sleep(0.02)


def post(url: str, path: str, body: dict[str, Any], **headers: str) -> tuple[httpx.Headers, bytes]:
    """POST and return the response headers and its bytes exactly as they came (streams included)."""
    with httpx.stream("POST", url + path, json=body, headers={**AUTH, **headers}, timeout=10) as response:
        assert response.status_code == 200, response.read()
        return response.headers, b"".join(response.iter_raw())


def tokens(event: dict[str, Any]) -> tuple[int | None, int | None, int | None, bool]:
    return event.get("prompt_tokens"), event.get("completion_tokens"), event.get("total_tokens"), \
        event.get("estimated", False)


def test_non_streaming_chat(usage_gw: tuple[Gateway, Path], upstream: str) -> None:
    gw, jsonl = usage_gw
    headers, body = post(gw.url, "/v1/chat/completions", {"model": "cheap", "messages": HI})
    event = event_of(jsonl, headers["x-request-id"])
    assert tokens(event) == (11, 24, 35, False)
    assert event["model"] == "cheap" and event["deployment"] == "openai/gpt-4o-mini" and event["status"] == 200
    assert event["cost"] == pytest.approx((11 * 0.15 + 24 * 0.6) / 1e6)  # priced by the upstream model
    assert json.loads(body)["usage"]["total_tokens"] == 35
    assert event["duration_ms"] >= event["upstream_ms"] > 0 and event["overhead_ms"] >= 0


@pytest.mark.parametrize("client_asks", [False, True])
def test_stream_usage_and_the_clients_bytes_unchanged(usage_gw: tuple[Gateway, Path], upstream: str,
                                                      client_asks: bool) -> None:
    gw, jsonl = usage_gw
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": HI, "stream": True}
    if client_asks:
        body["stream_options"] = {"include_usage": True}
    headers, through_gateway = post(gw.url, "/v1/chat/completions", body, **{"x-mock-chunks": "7"})
    sent_upstream = json.loads(httpx.get(f"{upstream}/_seen").json()["last_body"])
    assert sent_upstream["stream_options"] == {"include_usage": True}  # asked for, by the client or by llmgate
    _, direct = post(upstream, "/v1/chat/completions", body, **{"x-mock-chunks": "7"})
    assert through_gateway == direct  # exactly what the client's own request gets from the upstream
    assert (b'"usage"' in through_gateway) is client_asks
    event = event_of(jsonl, headers["x-request-id"])
    assert tokens(event) == (11, 7, 18, False) and event["stream"] is True


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_without_usage_is_estimated(usage_gw: tuple[Gateway, Path], stream: bool) -> None:
    gw, jsonl = usage_gw
    body = {"model": "gpt-4o-mini", "messages": HI, "stream": stream}
    headers, answer = post(gw.url, "/v1/chat/completions", body, **{"x-mock-no-usage": "1", "x-mock-chunks": "5"})
    assert b'"usage"' not in answer
    event = event_of(jsonl, headers["x-request-id"])
    completion = "tok0 tok1 tok2 tok3 tok4 " if stream else json.loads(answer)["choices"][0]["message"]["content"]
    prompt = count_chat_prompt_tokens(HI, "gpt-4o-mini")
    expected = count_text_tokens(completion, "gpt-4o-mini")
    assert tokens(event) == (prompt, expected, prompt + expected, True)
    assert event["cost"] == pytest.approx((prompt * 0.15 + expected * 0.6) / 1e6)


def test_embeddings_with_ten_inputs_are_one_event(usage_gw: tuple[Gateway, Path]) -> None:
    gw, jsonl = usage_gw
    inputs = [f"text number {i}" for i in range(10)]
    headers, _ = post(gw.url, "/v1/embeddings", {"model": "text-embedding-3-small", "input": inputs})
    event = event_of(jsonl, headers["x-request-id"])
    assert tokens(event) == (50, 0, 50, False)  # the double's 5 per input, reported once
    headers, _ = post(gw.url, "/v1/embeddings", {"model": "text-embedding-3-small", "input": inputs},
                      **{"x-mock-no-usage": "1"})
    expected = sum(count_text_tokens(text, "text-embedding-3-small") for text in inputs)
    assert tokens(event_of(jsonl, headers["x-request-id"])) == (expected, 0, expected, True)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert sum(1 for e in lines if e["request_id"] == headers["x-request-id"]) == 1


def test_anthropic_native_stream(usage_gw: tuple[Gateway, Path], upstream: str) -> None:
    gw, jsonl = usage_gw
    body = {"model": "claude-x", "max_tokens": 50, "messages": HI, "stream": True}
    headers, through_gateway = post(gw.url, "/v1/messages", body, **{"x-mock-chunks": "4"})
    _, direct = post(upstream, "/v1/messages", body, **{"x-mock-chunks": "4", "x-api-key": ANTHROPIC_KEY,
                                                         "anthropic-version": "2023-06-01"})
    assert through_gateway == direct
    event = event_of(jsonl, headers["x-request-id"])
    assert tokens(event) == (11, 4, 15, False) and event["provider"] == "anthropic"
    assert event["cost"] == pytest.approx((11 * 3 + 4 * 15) / 1e6)


@pytest.mark.parametrize("stream", [False, True])
def test_translated_chat_for_an_anthropic_model(usage_gw: tuple[Gateway, Path], stream: bool) -> None:
    gw, jsonl = usage_gw
    headers, _ = post(gw.url, "/v1/chat/completions", {"model": "claude-x", "messages": HI, "stream": stream},
                      **{"x-mock-chunks": "3"})
    event = event_of(jsonl, headers["x-request-id"])
    assert tokens(event) == ((11, 3, 14, False) if stream else (11, 7, 18, False))


def test_manage_usage_and_the_cli(usage_gw: tuple[Gateway, Path]) -> None:
    gw, jsonl = usage_gw
    for _ in range(2):  # whatever other tests ran before: at least two requests for `cheap`
        headers, _ = post(gw.url, "/v1/chat/completions", {"model": "cheap", "messages": HI})
        event_of(jsonl, headers["x-request-id"])
    time.sleep(0.2)  # the store sink got the same batch as the JSONL sink
    manage = {"authorization": f"Bearer {MT}"}
    summary = httpx.get(f"{gw.url}/manage/usage", params={"group_by": "model"}, headers=manage).json()
    assert summary["recording"] is True and summary["note"] is None
    cheap = next(g for g in summary["data"] if g["group"] == "cheap")
    assert cheap["requests"] >= 2 and cheap["errors"] == 0 and cheap["total_tokens"] >= 70
    assert cheap["cost"] > 0 and cheap["latency_p95_ms"] >= cheap["latency_p50_ms"] > 0
    only = httpx.get(f"{gw.url}/manage/usage", params={"model": "cheap", "from": "2020-01-01"}, headers=manage)
    assert [g["requests"] for g in only.json()["data"]] == [cheap["requests"]]
    for params, param in (({"group_by": "week"}, "group_by"), ({"from": "yesterday"}, "from"),
                          ({"from": "2030-01-01", "to": "2020-01-01"}, "from")):
        bad = httpx.get(f"{gw.url}/manage/usage", params=params, headers=manage)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == param, bad.text
    assert httpx.get(f"{gw.url}/manage/usage").status_code == 401
    env = {"PATH": "/usr/bin:/bin", "LLMGATE_URL": gw.url, "LLMGATE_MANAGEMENT_TOKEN": MT}
    table = subprocess.run([sys.executable, "-m", "llmgate", "usage", "--group-by", "model"], env=env,
                           capture_output=True, text=True, timeout=30)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["GROUP", "REQUESTS", "ERRORS"]
    assert any(row.split()[:2] == ["cheap", str(cheap["requests"])] for row in rows)
