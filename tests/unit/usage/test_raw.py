"""The raw body log: full bodies (stream chunks included), credential headers left out, keys masked."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from llmgate.usage.account import EventBuilder
from llmgate.usage.event import Exchange
from llmgate.usage.meter import UsageMeter
from llmgate.usage.raw import RawLogSink
from tests import upstream_double as double

PROVIDER_KEY = "provider-key-without-a-known-shape-42"
USER_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"


def test_a_stream_is_logged_whole_with_secrets_masked(tmp_path: Path) -> None:
    raw = RawLogSink(str(tmp_path / "raw.jsonl"), 1 << 20, 1, known_secrets=[PROVIDER_KEY, ""])
    builder = EventBuilder(dict, raw)
    ex = Exchange(b"req-7", "POST", "/v1/chat/completions")
    ex.status, ex.stream, ex.model, ex.ended_at = 200, True, "gpt-4o-mini", ex.started_at
    body = {"model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": f"my keys: {USER_KEY} and {PROVIDER_KEY}"}]}
    ex.request_body = json.dumps(body).encode()
    ex.request_headers = [("content-type", "application/json"), ("api-key", PROVIDER_KEY),
                          ("x-trace", f"Bearer {USER_KEY}")]
    ex.meter = UsageMeter(keep_all=True)
    head, deltas, tail = double.chat_frames("gpt-4o-mini", 3, True)
    for chunk in (head, *deltas, tail):
        ex.meter.feed(chunk)
    event = builder(ex)
    asyncio.run(raw.write([event]))

    text = (tmp_path / "raw.jsonl").read_text()
    assert USER_KEY not in text and PROVIDER_KEY not in text
    [line] = [json.loads(x) for x in text.splitlines()]
    assert line["request_id"] == "req-7" and line["status"] == 200 and line["stream"] is True
    assert line["request_headers"] == {"content-type": "application/json", "x-trace": "Bearer sk-****3456"}
    assert line["request_body"]["messages"][0]["content"] == "my keys: sk-****3456 and ****e-42"
    assert line["response_body"] == (head + b"".join(deltas) + tail).decode()


def test_a_non_json_body_is_logged_as_text(tmp_path: Path) -> None:
    raw = RawLogSink(str(tmp_path / "raw.jsonl"), 1 << 20, 1)
    ex = Exchange(b"req-8", "POST", "/v1/audio/speech")
    ex.status, ex.ended_at = 200, ex.started_at
    ex.request_body = b'{"model": "tts-1", "input": "hi"}'
    ex.meter = UsageMeter()
    ex.meter.whole(b"ID3\x04 binary")
    event = EventBuilder(dict, raw)(ex)
    asyncio.run(raw.close())  # close writes what was captured
    [line] = [json.loads(x) for x in (tmp_path / "raw.jsonl").read_text().splitlines()]
    assert line["request_body"] == {"model": "tts-1", "input": "hi"}
    assert line["response_body"] == "ID3\x04 binary"
    assert event.request_id == "req-8"
