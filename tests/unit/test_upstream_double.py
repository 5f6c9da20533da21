"""The upstream double over real HTTP: shapes, streams, x-mock-* headers, Anthropic checks, /_seen."""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.upstream_double import SPEECH, run_double

ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
CLAUDE = {"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with run_double() as base, httpx.Client(base_url=base, timeout=10) as c:
        yield c


def seen(client: httpx.Client) -> dict:
    r = client.get("/_seen")
    assert r.status_code == 200
    return r.json()


def sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]


def sse_events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in filter(None, text.split("\n\n")):
        event, data = block.split("\n")
        assert event.startswith("event: ") and data.startswith("data: ")
        payload = json.loads(data[6:])
        assert payload["type"] == event[7:]
        out.append((event[7:], payload))
    return out


def test_chat_completion_shape_and_openai_headers(client: httpx.Client) -> None:
    r1 = client.post("/v1/chat/completions", json={"model": "gpt-x", "messages": []})
    r2 = client.post("/v1/chat/completions", json={"model": "gpt-x", "messages": []})
    assert r1.status_code == 200 and r1.headers["content-type"] == "application/json"
    body = r1.json()
    assert body["object"] == "chat.completion" and body["model"] == "gpt-x"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 24, "total_tokens": 35}
    ids = [int(r.headers["x-request-id"].removeprefix("up-")) for r in (r1, r2)]
    assert ids[1] == ids[0] + 1
    assert int(r1.headers["openai-processing-ms"]) >= 0
    assert r1.headers["x-ratelimit-limit-requests"] == "10000"
    assert r1.headers["x-ratelimit-remaining-requests"] == "9999"


def test_chat_stream_default_chunks_and_done(client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions", json={"model": "gpt-x", "stream": True})
    assert r.headers["content-type"] == "text/event-stream"
    data = sse_data(r.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert len(chunks) == 20 + 1  # CHUNKS default, then the finish chunk; no usage chunk unless asked
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "tok0 "}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "".join(
        f"tok{i} " for i in range(20))
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["object"] == "chat.completion.chunk" and "usage" not in c for c in chunks)


def test_chat_stream_include_usage_and_x_mock_chunks(client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions", headers={"x-mock-chunks": "3"},
                    json={"model": "m", "stream": True, "stream_options": {"include_usage": True}})
    data = sse_data(r.text)
    assert len(data) == 3 + 1 + 1 + 1 and data[-1] == "[DONE]"
    usage = json.loads(data[-2])
    assert usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 11, "completion_tokens": 3,
                                                         "total_tokens": 14}
    r = client.post("/v1/chat/completions", headers={"x-mock-chunks": "3"},
                    json={"stream": True, "stream_options": {"include_usage": False}})
    assert len(sse_data(r.text)) == 3 + 1 + 1


def test_legacy_completions(client: httpx.Client) -> None:
    body = client.post("/v1/completions", json={"model": "davinci", "prompt": "x"}).json()
    assert body["object"] == "text_completion" and body["choices"][0]["text"] and body["usage"]["total_tokens"]
    r = client.post("/v1/completions", headers={"x-mock-chunks": "4"},
                    json={"model": "davinci", "stream": True, "stream_options": {"include_usage": True}})
    data = sse_data(r.text)
    assert data[-1] == "[DONE]" and len(data) == 4 + 1 + 1 + 1
    assert [json.loads(d)["choices"][0]["text"] for d in data[:4]] == ["tok0 ", "tok1 ", "tok2 ", "tok3 "]
    assert json.loads(data[4])["choices"][0]["finish_reason"] == "stop"
    assert json.loads(data[5])["usage"]["completion_tokens"] == 4


def test_embeddings(client: httpx.Client) -> None:
    many = client.post("/v1/embeddings", json={"model": "emb", "input": ["a", "b", "c"]}).json()
    assert [d["index"] for d in many["data"]] == [0, 1, 2] and many["usage"]["prompt_tokens"] == 15
    assert many["object"] == "list" and many["data"][0]["embedding"] == [0.1, 0.2, 0.3, 0.4]
    assert len(client.post("/v1/embeddings", json={"input": "one"}).json()["data"]) == 1
    assert len(client.post("/v1/embeddings", json={"input": [1, 2, 3]}).json()["data"]) == 1  # tokens
    b64 = client.post("/v1/embeddings", json={"input": "x", "encoding_format": "base64"}).json()
    vector = struct.unpack("<4f", base64.b64decode(b64["data"][0]["embedding"]))
    assert vector == pytest.approx((0.1, 0.2, 0.3, 0.4))


def test_models(client: httpx.Client) -> None:
    listing = client.get("/v1/models").json()
    assert listing["object"] == "list" and {m["id"] for m in listing["data"]} >= {"gpt-4o-mini"}
    one = client.get("/v1/models/ft:gpt-4o:acme").json()
    assert one == {"id": "ft:gpt-4o:acme", "object": "model", "created": 1, "owned_by": "mock"}


def test_responses_api(client: httpx.Client) -> None:
    body = client.post("/v1/responses", json={"model": "gpt-r", "input": "hi"}).json()
    assert body["object"] == "response" and body["status"] == "completed" and body["model"] == "gpt-r"
    assert body["output"][0]["content"][0]["type"] == "output_text"
    r = client.post("/v1/responses", headers={"x-mock-chunks": "2"}, json={"model": "gpt-r", "stream": True})
    events = sse_events(r.text)
    assert [e for e, _ in events] == [
        "response.created", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [p["sequence_number"] for _, p in events] == list(range(9))
    assert events[-1][1]["response"]["output"][0]["content"][0]["text"] == "tok0 tok1 "


def test_images(client: httpx.Client) -> None:
    body = client.post("/v1/images/generations", json={"prompt": "cat", "n": 2}).json()
    assert len(body["data"]) == 2
    assert base64.b64decode(body["data"][0]["b64_json"]).startswith(b"\x89PNG\r\n\x1a\n")


def test_audio_speech_streams_deterministic_bytes(client: httpx.Client) -> None:
    pieces = []
    with client.stream("POST", "/v1/audio/speech", headers={"x-mock-chunk-delay-ms": "50"},
                       json={"model": "tts-1", "input": "hi", "voice": "alloy"}) as r:
        assert r.headers["content-type"] == "audio/mpeg" and "content-length" not in r.headers
        pieces = list(r.iter_raw())
    audio = b"".join(pieces)
    assert audio == SPEECH and len(audio) == 8192 and len(pieces) >= 2  # sent 50 ms apart
    assert client.post("/v1/audio/speech", json={}).content == audio


def test_audio_transcriptions_multipart(client: httpx.Client) -> None:
    request = client.build_request("POST", "/v1/audio/transcriptions", data={"model": "whisper-1"},
                                   files={"file": ("a.mp3", b"\xff\xfb" + bytes(5000), "audio/mpeg")})
    size = len(request.read())
    r = client.send(request)
    assert r.status_code == 200 and r.json() == {"text": "Hello from the mock upstream."}
    assert int(r.headers["x-mock-received-bytes"]) == size > 5000
    assert r.headers["x-mock-model"] == "whisper-1"
    text = client.post("/v1/audio/transcriptions", data={"model": "w", "response_format": "text"},
                       files={"file": ("a.mp3", b"abc")})
    assert text.text == "Hello from the mock upstream." and text.headers["content-type"].startswith("text/plain")
    missing = client.post("/v1/audio/transcriptions", files={"file": ("a.mp3", b"abc")})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "model"


@pytest.mark.parametrize(("headers", "body", "message"), [
    ({"anthropic-version": "2023-06-01"}, CLAUDE, "x-api-key header is required"),
    ({"x-api-key": "k"}, CLAUDE, "anthropic-version header is required"),
    (ANTHROPIC, {**CLAUDE, "max_tokens": None}, "max_tokens: Field required"),
    (ANTHROPIC, {**CLAUDE, "max_tokens": "64"}, "max_tokens: Field required"),
    (ANTHROPIC, {**CLAUDE, "messages": [{"role": "system", "content": "x"}]}, "messages: roles must be"),
    (ANTHROPIC, {**CLAUDE, "messages": "hi"}, "messages: roles must be"),
])
def test_anthropic_validation(client: httpx.Client, headers: dict, body: dict, message: str) -> None:
    r = client.post("/v1/messages", headers=headers, json=body)
    assert r.status_code == 400
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["message"].startswith(message)


def test_anthropic_messages_and_stream(client: httpx.Client) -> None:
    body = client.post("/v1/messages", headers=ANTHROPIC, json=CLAUDE).json()
    assert body["type"] == "message" and body["model"] == "claude-x" and body["stop_reason"] == "end_turn"
    assert body["content"][0]["type"] == "text" and body["usage"] == {"input_tokens": 11, "output_tokens": 7}
    r = client.post("/v1/messages", headers={**ANTHROPIC, "x-mock-chunks": "3"}, json={**CLAUDE, "stream": True})
    events = sse_events(r.text)
    assert [e for e, _ in events] == ["message_start", "content_block_start", "ping"] + [
        "content_block_delta"] * 3 + ["content_block_stop", "message_delta", "message_stop"]
    assert events[3][1]["delta"] == {"type": "text_delta", "text": "tok0 "}
    assert events[-2][1]["usage"] == {"output_tokens": 3}
    assert client.post("/v1/messages/count_tokens", headers=ANTHROPIC, json=CLAUDE).json() == {"input_tokens": 11}


def test_x_mock_status(client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions", headers={"x-mock-status": "503"}, json={})
    assert r.status_code == 503
    assert r.json() == {"error": {"message": "mock error 503", "type": "server_error", "param": None, "code": 503}}
    assert r.headers["x-request-id"].startswith("up-") and "retry-after" not in r.headers
    limited = client.post("/v1/chat/completions", headers={"x-mock-status": "429"}, json={})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    assert limited.json()["error"]["type"] == "rate_limit_error"


def test_x_mock_fail_key_fails_only_the_matching_key(client: httpx.Client) -> None:
    fail = {"x-mock-fail-key": "bad"}
    r = client.post("/v1/chat/completions", headers={**fail, "authorization": "Bearer sk-bad-1"}, json={})
    assert r.status_code == 500 and r.json()["error"]["message"] == "mock error 500"
    assert client.post("/v1/chat/completions", headers={**fail, "authorization": "Bearer sk-good-1"},
                       json={}).status_code == 200
    prefixed = client.post("/_mock/fail-key=bad/v1/chat/completions", headers={"authorization": "Bearer sk-bad"},
                           json={})
    assert prefixed.status_code == 500


@pytest.mark.parametrize("status", [b"abc", b"99999", b"", b"42", b"429.5", b"nan", b"1e400", b"\xff\xfe"])
def test_garbage_status_is_400(client: httpx.Client, status: bytes) -> None:
    r = client.post("/v1/models", headers={"x-mock-status": status})
    assert r.status_code == 400 and r.json()["error"]["code"] == 400


@pytest.mark.parametrize("garbage", [b"abc", b"", b"nan", b"-5", b"\xff\xfe", b"1,5"])
def test_garbage_numbers_fall_back_to_defaults(client: httpx.Client, garbage: bytes) -> None:
    r = client.post("/v1/chat/completions", json={"stream": True, "model": "m"}, headers={
        "x-mock-chunks": garbage, "x-mock-delay-ms": garbage, "x-mock-chunk-delay-ms": garbage})
    assert r.status_code == 200 and sse_data(r.text)[-1] == "[DONE]"
    assert len(sse_data(r.text)) == (20 if garbage != b"-5" else 0) + 2  # a negative count clamps to 0
    assert client.post("/v1/chat/completions", content=b"\xff{not json").json()["model"] == "mock"
    assert client.post("/v1/chat/completions", json=[1, 2]).status_code == 200


def test_x_mock_delay_and_chunk_delay(client: httpx.Client) -> None:
    t0 = time.perf_counter()
    client.post("/v1/chat/completions", headers={"x-mock-delay-ms": "300"}, json={})
    assert time.perf_counter() - t0 >= 0.3
    arrivals = []
    t0 = time.perf_counter()
    with client.stream("POST", "/v1/chat/completions", json={"stream": True},
                       headers={"x-mock-chunks": "4", "x-mock-chunk-delay-ms": "100"}) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.perf_counter() - t0)
    assert len(arrivals) == 4 + 1 + 1
    assert arrivals[0] < 0.09 and arrivals[-1] >= 0.4  # first chunk at once, then 100 ms after each delta


def test_a_paced_model_streams_its_chunks_apart(client: httpx.Client) -> None:
    # paced-*: 2 ms between chunks, each its own write (one read each at the client), as real tokens arrive.
    with client.stream("POST", "/v1/chat/completions", json={"model": "paced-gpt", "stream": True},
                       headers={"x-mock-chunks": "20"}) as r:
        t0 = time.perf_counter()
        reads = list(r.iter_raw())
        took = time.perf_counter() - t0
    assert took >= 19 * 0.002 and len(reads) >= 10  # back to back, 22 frames would come in one or two reads
    t0 = time.perf_counter()
    client.post("/v1/chat/completions", json={"model": "paced-gpt", "stream": True},
                headers={"x-mock-chunks": "5", "x-mock-chunk-delay-ms": "60"})  # the header wins
    assert time.perf_counter() - t0 >= 4 * 0.06


def test_unknown_path_404(client: httpx.Client) -> None:
    r = client.get("/v1/nope")
    assert r.status_code == 404 and r.json()["error"]["message"] == "not found"


def test_seen_and_reset(client: httpx.Client) -> None:
    assert client.post("/_reset").json() == {"ok": True}
    assert seen(client)["count"] == 0 and seen(client)["recent"] == []
    big = "x" * 10_000
    client.post("/v1/chat/completions?trace=1", headers={"authorization": "Bearer sk-1", "x-extra": "v"},
                json={"model": "m", "pad": big})
    s = seen(client)
    assert s["count"] == 1 and s["last_auth"] == "Bearer sk-1" and s["last_path"] == "/v1/chat/completions?trace=1"
    assert s["last_method"] == "POST" and len(s["last_body"]) == 4096 and s["last_body_size"] > 10_000
    assert s["last_headers"]["x-extra"] == "v" and s["last_headers"]["authorization"] == "Bearer sk-1"
    client.post("/v1/messages", headers=ANTHROPIC, json=CLAUDE)
    assert seen(client)["last_auth"] == "sk-ant-test"
    for i in range(40):
        client.get(f"/v1/models/m{i}")
    s = seen(client)
    assert s["count"] == 42 and len(s["recent"]) == 32 and s["recent"][-1]["path"] == "/v1/models/m39"
    assert {"streams_started", "streams_completed", "streams_aborted", "open_streams"} <= s.keys()
    client.post("/_reset")
    assert seen(client)["count"] == 0 and seen(client)["last_path"] is None


def test_stream_bookkeeping_and_client_disconnect(client: httpx.Client) -> None:
    client.post("/_reset")
    client.post("/v1/chat/completions", json={"stream": True})
    s = seen(client)
    assert (s["streams_started"], s["streams_completed"], s["streams_aborted"], s["open_streams"]) == (1, 1, 0, 0)
    with client.stream("POST", "/v1/chat/completions", json={"stream": True},
                       headers={"x-mock-chunks": "50", "x-mock-chunk-delay-ms": "200"}) as r:
        lines = r.iter_lines()
        assert next(lines).startswith("data: ")
        assert seen(client)["open_streams"] == 1
    left = time.monotonic()  # the context exit closed the connection mid-stream
    while seen(client)["streams_aborted"] == 0 and time.monotonic() - left < 1.5:
        time.sleep(0.02)
    s = seen(client)
    assert time.monotonic() - left < 1.0 + 0.5
    assert (s["streams_started"], s["streams_completed"], s["streams_aborted"], s["open_streams"]) == (2, 1, 1, 0)


def test_env_defaults() -> None:
    with run_double(env={"CHUNKS": "3", "DELAY_MS": "250", "CHUNK_DELAY_MS": "0"}) as base:
        t0 = time.perf_counter()
        r = httpx.post(f"{base}/v1/chat/completions", json={"stream": True})
        assert time.perf_counter() - t0 >= 0.25
        assert len(sse_data(r.text)) == 3 + 1 + 1


def test_run_double_reports_failures() -> None:
    with run_double() as base:
        port = int(base.rsplit(":", 1)[1])
        with pytest.raises(RuntimeError, match="in use"), run_double(port=port):
            pass
    with pytest.raises(RuntimeError, match=r"(?s)exited with.*PYTHONHOME"), run_double(env={"PYTHONHOME": "/nope"}):
        pass
