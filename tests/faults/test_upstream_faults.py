"""Upstream faults against a real gateway (granian) in front of the fault-injecting upstream (tests/faults/
upstream.py), each with what the client must see: never a 500 from the gateway itself, a stream ended by an
error event it can raise on, a timeout named as what it was, and one usage event per request."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.faults.upstream import CHUNK, WHOLE, FaultUpstream, run_fault_upstream
from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway, write_config

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
FAULTS = ("ok", "reset", "drip", "silent", "silent-after-one", "invalid-json", "truncated", "bad-header", "503")
IDLE_S = 0.4


def provider(name: str, base: str, timeouts: str = "", keys: str = '"sk-fault-key-0000000000"') -> str:
    return f"""
[[providers]]
name = "{name}"
base_url = "{base}/{name}/v1"
api_keys = [{keys}]
models = ["{name}"]
timeouts = {{ connect_s = 0.3, first_byte_s = {timeouts or "2"}, idle_s = {IDLE_S} }}
"""


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultUpstream]:
    with run_fault_upstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults") / "usage.jsonl"


@pytest.fixture(scope="module")
def gw(faults: FaultUpstream, events: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    base = f"http://127.0.0.1:{faults.port}"
    # silent-after-one waits long for a first byte but little between chunks: the idle timeout must apply
    config = "[routing]\nmax_attempts = 2\nbackoff_base_ms = 1\nbreaker_failures = 1000\n" + "".join(
        provider(name, base, "30" if name == "silent-after-one" else ("0.6" if name == "silent" else ""))
        for name in FAULTS if name != "429-key")
    config += provider("429-key", base, keys='"sk-key-a-000000000000", "sk-key-b-000000000000"')
    path = write_config(tmp_path_factory.mktemp("faults-config"), config)
    env = gateway_env(base, LLMGATE_CONFIG=path, LLMGATE_USAGE_JSONL=str(events), LLMGATE_USAGE_FLUSH_S="0.05")
    with start_gateway(env) as gateway:
        yield gateway


def chat(gw: Gateway, model: str, stream: bool = False, **headers: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers={**AUTH, **headers}, timeout=20)


def usage_event(events: Path, response: httpx.Response) -> dict[str, Any]:
    request_id = response.headers["x-request-id"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in events.read_text().splitlines() if events.exists() else []:
            event = json.loads(line)
            if event["request_id"] == request_id:
                return event  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"no usage event for {request_id}")


def last_event(body: bytes) -> dict[str, Any]:
    assert body.endswith(b"\n\n") and b"[DONE]" not in body
    return json.loads(body.rstrip().rsplit(b"data: ", 1)[1])  # type: ignore[no-any-return]


def test_a_healthy_upstream_is_relayed(gw: Gateway, events: Path) -> None:
    whole = chat(gw, "ok")
    assert whole.status_code == 200 and whole.content == WHOLE
    streamed = chat(gw, "ok", stream=True)
    assert streamed.status_code == 200 and streamed.content == CHUNK + CHUNK + b"data: [DONE]\n\n"
    assert usage_event(events, streamed)["total_tokens"] == 5  # asked for, read, and removed from the stream


def test_a_reset_mid_stream_ends_the_stream_with_an_error_event(gw: Gateway, events: Path) -> None:
    response = chat(gw, "reset", stream=True)
    assert response.status_code == 200 and response.content.startswith(CHUNK)
    assert last_event(response.content)["error"]["code"] == "bad_upstream_response"
    assert usage_event(events, response)["error"] == "bad_upstream_response"
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as client, \
            pytest.raises(openai.APIError, match="failed mid-stream"):
        list(client.chat.completions.create(model="reset", messages=[], stream=True))


def test_a_reset_before_a_whole_body_is_a_502(gw: Gateway, events: Path) -> None:
    response = chat(gw, "reset")
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_unreachable"
    assert response.headers["x-llmgate-attempts"] == "2"
    assert usage_event(events, response)["status"] == 502


def test_a_dripped_event_reaches_the_client_as_it_comes(gw: Gateway) -> None:
    """The usage log is on: the tap must not hold the event's bytes until its end (they take ~1.2 s)."""
    arrivals: list[tuple[float, bytes]] = []
    body = {"model": "drip", "messages": [], "stream": True}
    started = time.monotonic()
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, headers=AUTH, timeout=20) as response:
        for part in response.iter_raw():
            arrivals.append((time.monotonic() - started, part))
    data = b"".join(part for _, part in arrivals)
    assert data == CHUNK + CHUNK + b"data: [DONE]\n\n"
    first_bytes_at = next(at for at, part in arrivals if part)
    event_done_at = next(at for at, _ in arrivals if b"".join(p for a, p in arrivals if a <= at).startswith(CHUNK))
    assert len(arrivals) > 5 and event_done_at - first_bytes_at > 0.5  # bytes came out while it was dripping


def test_a_silent_upstream_is_a_first_byte_timeout(gw: Gateway, events: Path) -> None:
    response = chat(gw, "silent")  # (the pooled client's timeout: tests/unit/proxy/test_client.py)
    assert response.status_code == 504
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("upstream_timeout",
                                                 "The upstream provider `silent` did not answer in time.")
    streamed = chat(gw, "silent", stream=True)
    assert streamed.status_code == 504 and streamed.json()["error"]["code"] == "upstream_timeout"
    assert usage_event(events, streamed)["status"] == 504
    anthropic = httpx.post(f"{gw.url}/v1/messages", headers={"x-api-key": MASTER_KEY}, timeout=20,
                           json={"model": "silent", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert anthropic.status_code == 504 and anthropic.json()["type"] == "error"  # in the caller's dialect
    assert anthropic.json()["error"]["message"] == "The upstream provider `silent` did not answer in time."


def test_a_stream_silent_after_one_event_ends_at_the_idle_timeout_not_the_first_byte_one(gw: Gateway,
                                                                                         events: Path) -> None:
    started = time.monotonic()
    response = chat(gw, "silent-after-one", stream=True)
    took = time.monotonic() - started
    assert response.status_code == 200 and response.content.startswith(CHUNK)
    error = last_event(response.content)["error"]
    assert error["code"] == "upstream_timeout" and f"sent nothing for {IDLE_S} s" in error["message"]
    assert took < 10  # first_byte_s is 30
    assert usage_event(events, response)["error"] == "upstream_timeout"


def test_invalid_json_is_passed_on_as_it_came(gw: Gateway, events: Path) -> None:
    response = chat(gw, "invalid-json")
    assert response.status_code == 200 and response.content == b'{"id": "c1", not json'
    event = usage_event(events, response)
    assert (event["status"] == 200 and event["total_tokens"] is None) or event["estimated"]


def test_a_truncated_body_is_a_502_after_the_retries(gw: Gateway) -> None:
    response = chat(gw, "truncated")
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_unreachable"
    assert response.headers["x-llmgate-attempts"] == "2"


def test_header_bytes_outside_ascii_never_make_a_500(gw: Gateway) -> None:
    for _ in range(3):  # the first through the abortable client, the next through the pooled one (a fast path)
        response = chat(gw, "bad-header")
        assert response.status_code == 200 and response.content == WHOLE


def test_a_429_on_one_key_moves_to_the_other_and_rests_the_first(gw: Gateway, faults: FaultUpstream) -> None:
    answers = [chat(gw, "429-key") for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    used = [key for key in faults.keys if "key-" in key]
    assert sum("key-a" in key for key in used) <= 1  # refused once, then resting for its retry-after
    assert all(a.headers["x-llmgate-attempts"] == "1" for a in answers[1:])


def test_a_503_is_retried_then_passed_on(gw: Gateway, faults: FaultUpstream, events: Path) -> None:
    before = faults.seen["503"]
    response = chat(gw, "503")
    assert response.status_code == 503 and response.json()["error"]["message"] == "fault 503"
    assert faults.seen["503"] - before == 2 and response.headers["x-llmgate-attempts"] == "2"
    assert usage_event(events, response)["status"] == 503
