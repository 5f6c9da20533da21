"""A fake OpenAI/Anthropic upstream over real HTTP, for tests and as the "direct" baseline of load benchmarks.

A raw ASGI 3 app (msgspec for JSON, no framework) served by granian. It lives in tests/, not in the package: it is
shaped by what llmgate's tests need (`/_seen`, the x-mock-* faults), and a gateway never runs it. Run it from the
repository's root with `python -m tests.upstream_double --host 127.0.0.1 --port 18080`, or from a test with
`with run_double() as base_url: ...`.

Endpoints (matched on the path's suffix, any prefix, any method): chat/completions, completions, embeddings,
models, models/{id}, responses, images/generations, audio/speech, audio/transcriptions (multipart),
Anthropic messages and messages/count_tokens (validated like the real API; tool calls when a request offers
tools: upstream_double_tools.py; errors and the `request-id` header as Anthropic names it). `GET /_seen` shows
what it received; `POST /_reset` clears that.

Per-request headers: x-mock-status (non-200 -> an OpenAI error body, Anthropic's on messages paths),
x-mock-delay-ms (before the first byte; a client that leaves meanwhile is counted `abandoned` in /_seen, and nothing
is generated for it),
x-mock-chunks (stream length), x-mock-chunk-delay-ms (between chunks), x-mock-retry-after (on a 429, default 1),
x-mock-reset-after-chunks (drop the connection after that many stream deltas; non-streamed: after the headers),
x-mock-reject-key (401 when the request's key contains this text), x-mock-fail-key (500 when it contains this
text), x-mock-no-usage (1: OpenAI-style answers carry no
`usage`, and streams ignore `stream_options.include_usage`, like an upstream that reports none).
The same settings can be fixed per base URL
with a path prefix, so several "deployments" can share one double: `/_mock/status=503,delay-ms=10/v1/...`
behaves as `/v1/...` with `x-mock-status: 503` and `x-mock-delay-ms: 10`. Env defaults: DELAY_MS, CHUNKS (20),
CHUNK_DELAY_MS; a model named `paced-*` streams its chunks PACED_CHUNK_DELAY_MS (2) apart, each its own write, as
a real model's tokens arrive (as ../shared/bench/mock_upstream.js does). Bodies and stream frames are precomputed
(cached per model), nothing is logged per request.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import http.client
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from functools import lru_cache
from typing import IO, Any, NamedTuple

import msgspec

from tests import upstream_double_tools as tools

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Frames = tuple[bytes, tuple[bytes, ...], bytes]  # (head, one frame per delta, tail) of a streamed body

MAX_CHUNKS = 10_000
CREATED = 1700000000
TEXT = "Hello from the mock upstream. "
USAGE = {"prompt_tokens": 11, "completion_tokens": 24, "total_tokens": 35}
_JSON, _SSE = b"application/json", b"text/event-stream"
_enc = msgspec.json.encode
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The repository's root, where `tests` is importable from."""


def _env_ms(name: str, default: float) -> float:
    """A non-negative number of milliseconds from the environment (garbage -> default)."""
    return _number(os.environ.get(name, "").encode() or None, default, 600_000.0)


def _number(raw: bytes | None, default: float, hi: float) -> float:
    """A header value as a number clamped to [0, hi]; absent, garbage or NaN -> default. Never raises."""
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return min(max(value, 0.0), hi) if value == value else default


def _status(raw: bytes | None) -> int:
    """x-mock-status: absent -> 200; anything but an integer in 200..599 -> 400, like the JS double."""
    if raw is None:
        return 200
    try:
        value = float(raw)
    except ValueError:
        return 400
    return int(value) if 200 <= value <= 599 and value.is_integer() else 400


DELAY_MS = _env_ms("DELAY_MS", 0.0)
CHUNKS = int(_number(os.environ.get("CHUNKS", "").encode() or None, 20, MAX_CHUNKS))
CHUNK_DELAY_MS = _env_ms("CHUNK_DELAY_MS", 0.0)
PACED_CHUNK_DELAY_MS = _env_ms("PACED_CHUNK_DELAY_MS", 2.0)


class Body(msgspec.Struct):
    """The request-body fields the double looks at; everything else is parsed and ignored."""

    model: Any = None
    stream: Any = None
    stream_options: Any = None
    input: Any = None
    max_tokens: Any = None
    messages: Any = None
    n: Any = None
    encoding_format: Any = None
    system: Any = None
    tools: Any = None
    tool_choice: Any = None
    temperature: Any = None


_decode_body = msgspec.json.Decoder(Body).decode
_EMPTY = Body()


class Record(NamedTuple):
    """One received request, rendered into JSON only when /_seen asks."""

    method: str
    path: str
    auth: bytes | None
    body: bytes
    headers: list[tuple[bytes, bytes]]


class Seen:
    """What the double received and how its streams ended (one worker process, so plain counters)."""

    def __init__(self) -> None:
        self.open_streams = 0  # a gauge: /_reset leaves it alone
        self.request_ids = 0  # never reset, so x-request-id stays unique for the process lifetime
        self.reset()

    def reset(self) -> None:
        self.count = self.streams_started = self.streams_completed = self.streams_aborted = self.abandoned = 0
        self.recent: deque[Record] = deque(maxlen=32)

    def to_json(self) -> bytes:
        last = self.recent[-1] if self.recent else None
        headers: dict[str, str] = {}
        for k, v in last.headers if last else ():
            name, value = k.decode("latin-1"), v.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return _enc({
            "count": self.count,
            "last_method": last and last.method,
            "last_auth": last and _text(last.auth),
            "last_path": last and last.path,
            "last_body": last and _text(last.body[:4096]),
            "last_body_size": last and len(last.body),
            "last_headers": headers,
            "recent": [{"method": r.method, "path": r.path, "auth": _text(r.auth),
                        "body": _text(r.body[:4096])} for r in self.recent],
            "streams_started": self.streams_started,
            "streams_completed": self.streams_completed,
            "streams_aborted": self.streams_aborted,
            "abandoned": self.abandoned,
            "open_streams": self.open_streams,
        })


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "replace")


SEEN = Seen()


class Req:
    """One request as the handlers see it."""

    __slots__ = ("body", "chunk_delay", "headers", "id_header", "json", "model", "n", "receive", "reset", "rid", "send",
                 "t0", "usage")

    def __init__(self, receive: Receive, send: Send, headers: dict[bytes, bytes], body: bytes) -> None:
        self.receive, self.send, self.headers, self.body = receive, send, headers, body
        self.t0 = time.perf_counter()
        try:
            self.json = _decode_body(body) if body[:1] == b"{" else _EMPTY
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.json = _EMPTY
        model = self.json.model
        self.model: str = model if isinstance(model, str) and model else "mock"
        self.n = int(_number(headers.get(b"x-mock-chunks"), CHUNKS, MAX_CHUNKS))
        # A model named paced-* streams as a real model's tokens arrive: each chunk its own write, a few ms apart.
        default_delay = PACED_CHUNK_DELAY_MS if self.model.startswith("paced") else CHUNK_DELAY_MS
        self.chunk_delay = _number(headers.get(b"x-mock-chunk-delay-ms"), default_delay, 600_000.0) / 1000
        reset = headers.get(b"x-mock-reset-after-chunks")
        self.reset = int(_number(reset, 0, MAX_CHUNKS)) if reset is not None else None
        SEEN.request_ids += 1
        self.rid = b"up-%d" % SEEN.request_ids
        self.id_header = b"x-request-id"  # Anthropic's API names it `request-id` (set for messages paths)
        self.usage = _has_usage(headers)

    def response_headers(self, ctype: bytes, extra: tuple[tuple[bytes, bytes], ...] = (),
                         remaining: bytes = b"9999") -> list[tuple[bytes, bytes]]:
        """content-type plus what every OpenAI response carries: its request id, timing and rate limits."""
        ms = b"%d" % int((time.perf_counter() - self.t0) * 1000)
        return [(b"content-type", ctype), (self.id_header, self.rid), (b"openai-processing-ms", ms),
                (b"x-ratelimit-limit-requests", b"10000"), (b"x-ratelimit-remaining-requests", remaining),
                *extra]

    async def respond(self, body: bytes, status: int = 200, ctype: bytes = _JSON,
                      extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        await self.send({"type": "http.response.start", "status": status,
                         "headers": self.response_headers(ctype, extra)})
        if self.reset is not None:
            await self.send({"type": "http.response.body", "body": body[:len(body) // 2], "more_body": True})
            raise ConnectionResetError("x-mock-reset-after-chunks")
        await self.send({"type": "http.response.body", "body": body})

    async def stream(self, frames: Frames, ctype: bytes = _SSE) -> None:
        """Send head, the deltas (chunk_delay apart) and tail; count the stream as completed or aborted.

        A watcher task waits for `http.disconnect` (granian's `send` does not raise when the client is
        gone), so a client that leaves is noticed at once, even in the middle of a chunk delay.
        """
        head, deltas, tail = frames
        watch = asyncio.ensure_future(_disconnected(self.receive))
        SEEN.streams_started += 1
        SEEN.open_streams += 1
        completed = False
        try:
            extra = ((b"cache-control", b"no-cache"),) if ctype == _SSE else ()
            await self.send({"type": "http.response.start", "status": 200,
                             "headers": self.response_headers(ctype, extra)})
            if head:
                await self.send({"type": "http.response.body", "body": head, "more_body": True})
            for i, frame in enumerate(deltas):
                if i == self.reset:
                    raise ConnectionResetError("x-mock-reset-after-chunks")
                if watch.done():
                    return
                await self.send({"type": "http.response.body", "body": frame, "more_body": True})
                if self.chunk_delay > 0:
                    await asyncio.wait((watch,), timeout=self.chunk_delay)
            if not watch.done():
                await self.send({"type": "http.response.body", "body": tail, "more_body": False})
                completed = True
        except ConnectionResetError:
            raise  # asked for: granian drops the connection mid-body
        except Exception:  # send failing means the client went away: counted below as aborted
            pass
        finally:
            watch.cancel()
            SEEN.open_streams -= 1
            if completed:
                SEEN.streams_completed += 1
            else:
                SEEN.streams_aborted += 1


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _left_during(receive: Receive, delay_s: float) -> bool:
    """Wait `delay_s`; True when the client disconnected meanwhile."""
    watch = asyncio.ensure_future(_disconnected(receive))
    done, _ = await asyncio.wait((watch,), timeout=delay_s)
    if not done:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    return bool(done)


# ---- precomputed bodies and stream frames (cached per model / chunk count) ----

def _sse(data: Any, event: str | None = None) -> bytes:
    return (b"event: %s\n" % event.encode() if event else b"") + b"data: " + _enc(data) + b"\n\n"


def _with_usage(body: dict[str, Any], usage: bool) -> dict[str, Any]:
    return {**body, "usage": USAGE} if usage else body


@lru_cache(maxsize=256)
def chat_body(model: str, usage: bool = True) -> bytes:
    return _enc(_with_usage({"id": "chatcmpl-mock", "object": "chat.completion", "created": CREATED,
                             "model": model, "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                 "role": "assistant", "content": TEXT * 4}}]}, usage))


@lru_cache(maxsize=32)
def chat_frames(model: str, n: int, usage: bool) -> Frames:
    base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": CREATED, "model": model}
    first = {"role": "assistant", "content": "tok0 "}
    null = {"usage": None} if usage else {}  # as OpenAI: every chunk carries `"usage":null` when usage is asked
    deltas = tuple(_sse({**base, "choices": [{"index": 0, "finish_reason": None, "delta": (
        first if i == 0 else {"content": f"tok{i} "})}], **null}) for i in range(n))
    tail = _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], **null})
    if usage:
        tail += _sse({**base, "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": n,
                                                         "total_tokens": 11 + n}})
    return b"", deltas, tail + b"data: [DONE]\n\n"


@lru_cache(maxsize=256)
def completion_body(model: str, usage: bool = True) -> bytes:
    return _enc(_with_usage({"id": "cmpl-mock", "object": "text_completion", "created": CREATED, "model": model,
                             "choices": [{"text": TEXT * 4, "index": 0, "logprobs": None,
                                          "finish_reason": "stop"}]}, usage))


@lru_cache(maxsize=32)
def completion_frames(model: str, n: int, usage: bool) -> Frames:
    base = {"id": "cmpl-mock", "object": "text_completion", "created": CREATED, "model": model}
    choice = {"index": 0, "logprobs": None, "finish_reason": None}
    deltas = tuple(_sse({**base, "choices": [{**choice, "text": f"tok{i} "}]}) for i in range(n))
    tail = _sse({**base, "choices": [{**choice, "text": "", "finish_reason": "stop"}]})
    if usage:
        tail += _sse({**base, "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": n,
                                                         "total_tokens": 11 + n}})
    return b"", deltas, tail + b"data: [DONE]\n\n"


@lru_cache(maxsize=256)
def anthropic_body(model: str) -> bytes:
    return _enc({"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                 "content": [{"type": "text", "text": TEXT.strip()}], "stop_reason": "end_turn",
                 "stop_sequence": None, "usage": {"input_tokens": 11, "output_tokens": 7}})


@lru_cache(maxsize=32)
def anthropic_frames(model: str, n: int) -> Frames:
    def ev(data: dict[str, Any]) -> bytes:
        return _sse(data, data["type"])

    head = ev({"type": "message_start", "message": {
        "id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 11, "output_tokens": 1}}})
    head += ev({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    head += ev({"type": "ping"})  # the real API sends one here; clients must ignore it
    deltas = tuple(ev({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": f"tok{i} "}}) for i in range(n))
    tail = ev({"type": "content_block_stop", "index": 0})
    tail += ev({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": n}})
    return head, deltas, tail + ev({"type": "message_stop"})


def _response_object(model: str, text: str, status: str, output_tokens: int) -> dict[str, Any]:
    """A minimal Responses API object."""
    done = status == "completed"
    item = {"type": "message", "id": "msg_mock", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}] if done else []}
    return {"id": "resp_mock", "object": "response", "created_at": CREATED, "status": status, "model": model,
            "output": [item] if done else [],
            "usage": {"input_tokens": 11, "output_tokens": output_tokens, "total_tokens": 11 + output_tokens}}


@lru_cache(maxsize=256)
def responses_body(model: str) -> bytes:
    return _enc(_response_object(model, TEXT.strip(), "completed", 7))


@lru_cache(maxsize=32)
def responses_frames(model: str, n: int) -> Frames:
    """response.created ... response.output_text.delta x n ... response.completed, each with `event:`."""
    seq = iter(range(1 << 30))

    def ev(kind: str, **data: Any) -> bytes:
        return _sse({"type": kind, "sequence_number": next(seq), **data}, kind)

    text = "".join(f"tok{i} " for i in range(n))
    part = {"type": "output_text", "text": "", "annotations": []}
    item = {"type": "message", "id": "msg_mock", "status": "in_progress", "role": "assistant", "content": []}
    ids = {"item_id": "msg_mock", "output_index": 0}
    head = ev("response.created", response=_response_object(model, "", "in_progress", 0))
    head += ev("response.output_item.added", output_index=0, item=item)
    head += ev("response.content_part.added", **ids, content_index=0, part=part)
    deltas = tuple(ev("response.output_text.delta", **ids, content_index=0, delta=f"tok{i} ")
                   for i in range(n))
    done = _response_object(model, text, "completed", n)
    tail = ev("response.output_text.done", **ids, content_index=0, text=text)
    tail += ev("response.content_part.done", **ids, content_index=0, part={**part, "text": text})
    tail += ev("response.output_item.done", output_index=0, item=done["output"][0])
    return head, deltas, tail + ev("response.completed", response=done)


_VECTOR = [0.1, 0.2, 0.3, 0.4]
_VECTOR_B64 = base64.b64encode(struct.pack("<4f", *_VECTOR)).decode()


@lru_cache(maxsize=256)
def embeddings_body(model: str, count: int, b64: bool, usage: bool = True) -> bytes:
    counts = {"prompt_tokens": 5 * count, "total_tokens": 5 * count}
    return _enc({"object": "list", "model": model, **({"usage": counts} if usage else {}),
                 "data": [{"object": "embedding", "index": i, "embedding": _VECTOR_B64 if b64 else _VECTOR}
                          for i in range(count)]})


PNG_1X1 = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
MODELS = ("gpt-4o-mini", "text-embedding-3-small")
_MODELS_BODY = _enc({"object": "list", "data": [
    {"id": m, "object": "model", "created": 1, "owned_by": "mock"} for m in MODELS]})
ANTHROPIC_MODELS = ("claude-sonnet-4-5-20250929", "claude-3-5-haiku-20241022")
_ANTHROPIC_MODELS_BODY = _enc({"data": [
    {"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"} for m in ANTHROPIC_MODELS],
    "has_more": False, "first_id": ANTHROPIC_MODELS[0], "last_id": ANTHROPIC_MODELS[-1]})
#: audio/speech answers these 8 KiB (an ID3 tag then a fixed pattern), in SPEECH_CHUNKS pieces.
SPEECH = (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes((i * 31 + 7) & 0xFF for i in range(8182)))
SPEECH_CHUNKS = 4
_SPEECH_FRAMES: Frames = (b"", tuple(SPEECH[i:i + 2048] for i in range(0, len(SPEECH), 2048)), b"")


def form_field(body: bytes, name: str) -> bytes | None:
    """The value of a plain field in a multipart/form-data body, or None (a linear scan, no parsing)."""
    at = body.find(b'name="%s"' % name.encode())
    start = body.find(b"\r\n\r\n", at) if at >= 0 else -1
    end = body.find(b"\r\n--", start + 4) if start >= 0 else -1
    return body[start + 4:end] if end >= 0 else None


# ---- handlers ----

def _include_usage(r: Req) -> bool:
    options = r.json.stream_options
    return isinstance(options, dict) and bool(options.get("include_usage")) and r.usage


def _has_usage(headers: dict[bytes, bytes]) -> bool:
    return headers.get(b"x-mock-no-usage", b"0") in (b"", b"0", b"false")


async def _chat(r: Req) -> None:
    call = tools.openai_tool(r.json.tools, r.json.tool_choice, r.json.messages)
    if call is not None:
        if r.json.stream:
            return await r.stream(tools.openai_tool_frames(r.model, *call, _include_usage(r)))
        return await r.respond(tools.openai_tool_body(r.model, *call))
    if r.json.stream:
        return await r.stream(chat_frames(r.model, r.n, _include_usage(r)))
    await r.respond(chat_body(r.model, r.usage))


async def _completions(r: Req) -> None:
    if r.json.stream:
        return await r.stream(completion_frames(r.model, r.n, _include_usage(r)))
    await r.respond(completion_body(r.model, r.usage))


def anthropic_invalid(headers: dict[bytes, bytes], body: Body, count_tokens: bool = False) -> str | None:
    """What the real Anthropic API would reject in this request (the JS double's checks and more), or None."""
    if not headers.get(b"x-api-key"):
        return "x-api-key header is required"
    if not headers.get(b"anthropic-version"):
        return "anthropic-version header is required"
    if count_tokens:  # count_tokens takes no max_tokens
        return _anthropic_messages_invalid(body)
    mt = body.max_tokens
    if isinstance(mt, bool) or not (isinstance(mt, int) or (isinstance(mt, float) and mt.is_integer())):
        return "max_tokens: Field required"
    return _anthropic_messages_invalid(body)


def _anthropic_messages_invalid(body: Body) -> str | None:
    msgs = body.messages
    if not isinstance(msgs, list) or any(not isinstance(m, dict) or m.get("role") not in ("user", "assistant")
                                         for m in msgs):
        return 'messages: roles must be "user" or "assistant" (system is a top-level parameter)'
    return tools.anthropic_content_invalid(body.system, msgs, body.tools, body.temperature)


async def _anthropic_error(r: Req, message: str) -> None:
    error = {"type": "invalid_request_error", "message": message}
    await r.respond(_enc({"type": "error", "error": error}), 400)


async def _messages(r: Req) -> None:
    bad = anthropic_invalid(r.headers, r.json)
    if bad:
        return await _anthropic_error(r, bad)
    call = tools.anthropic_tool(r.json.tools, r.json.tool_choice, r.json.messages)
    if call is not None:
        if r.json.stream:
            return await r.stream(tools.anthropic_tool_frames(r.model, *call))
        return await r.respond(tools.anthropic_tool_body(r.model, *call))
    if r.json.stream:
        return await r.stream(anthropic_frames(r.model, r.n))
    await r.respond(anthropic_body(r.model))


async def _count_tokens(r: Req) -> None:
    bad = anthropic_invalid(r.headers, r.json, count_tokens=True)
    if bad:
        return await _anthropic_error(r, bad)
    await r.respond(b'{"input_tokens":11}')


async def _embeddings(r: Req) -> None:
    inp = r.json.input  # a list of ints is one tokenized input, as in the OpenAI API
    many = isinstance(inp, list) and not (inp and all(isinstance(x, int) for x in inp))
    await r.respond(embeddings_body(r.model, len(inp) if many else 1, r.json.encoding_format == "base64", r.usage))


async def _models(r: Req) -> None:
    if r.headers.get(b"anthropic-version"):  # Anthropic's shape: the claude models, paginated
        await r.respond(_ANTHROPIC_MODELS_BODY)
        return
    await r.respond(_MODELS_BODY)


async def _model(r: Req, model_id: str) -> None:
    await r.respond(_enc({"id": model_id, "object": "model", "created": 1, "owned_by": "mock"}))


async def _responses(r: Req) -> None:
    if r.json.stream:
        return await r.stream(responses_frames(r.model, r.n))
    await r.respond(responses_body(r.model))


async def _images(r: Req) -> None:
    n = r.json.n if isinstance(r.json.n, int) and 1 <= r.json.n <= 10 else 1
    await r.respond(_enc({"created": CREATED, "data": [{"b64_json": PNG_1X1, "revised_prompt": None}] * n}))


async def _speech(r: Req) -> None:
    await r.stream(_SPEECH_FRAMES, b"audio/mpeg")


async def _transcriptions(r: Req) -> None:
    model = form_field(r.body, "model")
    size = ((b"x-mock-received-bytes", b"%d" % len(r.body)),)
    if not model:
        error = {"message": "model: Field required", "type": "invalid_request_error", "param": "model",
                 "code": None}
        return await r.respond(_enc({"error": error}), 400, extra=size)
    extra = (*size, (b"x-mock-model", model))
    if form_field(r.body, "response_format") == b"text":
        return await r.respond(TEXT.strip().encode(), ctype=b"text/plain; charset=utf-8", extra=extra)
    await r.respond(_enc({"text": TEXT.strip()}), extra=extra)


Handler = Callable[[Req], Awaitable[None]]
ROUTES: tuple[tuple[str, Handler], ...] = (
    ("/chat/completions", _chat), ("/completions", _completions), ("/messages", _messages),
    ("/messages/count_tokens", _count_tokens), ("/embeddings", _embeddings), ("/models", _models),
    ("/responses", _responses), ("/images/generations", _images), ("/audio/speech", _speech),
    ("/audio/transcriptions", _transcriptions),
)
_NOT_FOUND = b'{"error":{"message":"not found","type":"not_found_error","param":null,"code":null}}'
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_error"}


@lru_cache(maxsize=64)
def error_body(status: int) -> bytes:
    """The OpenAI error shape for an x-mock-status."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "mock_error")
    return _enc({"error": {"message": f"mock error {status}", "type": kind, "param": None, "code": status}})


# ---- the ASGI app ----

async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """The ASGI 3 entry point."""
    if scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    parts = [message.get("body", b"")]
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _path_settings(path: str, headers: dict[bytes, bytes]) -> str:
    """`/_mock/status=503,delay-ms=10/v1/x` → `/v1/x`, with x-mock-status and x-mock-delay-ms set in `headers`."""
    spec, _, rest = path[len("/_mock/"):].partition("/")
    for item in spec.split(","):
        name, _, value = item.partition("=")
        if name:
            headers[b"x-mock-" + name.encode()] = value.encode()
    return "/" + rest


async def _http(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    body = await _read_body(receive)
    path: str = scope["path"]
    if path in ("/_seen", "/_reset"):
        if path == "/_reset":
            SEEN.reset()
        payload = SEEN.to_json() if path == "/_seen" else b'{"ok":true}'
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", _JSON)]})
        return await send({"type": "http.response.body", "body": payload})
    headers = dict(scope["headers"])
    if path.startswith("/_mock/"):
        path = _path_settings(path, headers)
    qs = scope.get("query_string")
    SEEN.count += 1
    auth = headers.get(b"authorization") or headers.get(b"x-api-key") or headers.get(b"api-key")
    full_path = f"{scope['path']}?{qs.decode('latin-1')}" if qs else scope["path"]
    SEEN.recent.append(Record(scope["method"], full_path, auth, body, scope["headers"]))
    r = Req(receive, send, headers, body)
    anthropic = path.rstrip("/").endswith(("/messages", "/messages/count_tokens"))
    if anthropic:
        r.id_header = b"request-id"
    status = _status(headers.get(b"x-mock-status"))
    reject = headers.get(b"x-mock-reject-key")
    if reject and auth and reject in auth:
        status = 401
    fail = headers.get(b"x-mock-fail-key")
    if fail and auth and fail in auth:
        status = 500
    delay = _number(headers.get(b"x-mock-delay-ms"), DELAY_MS, 600_000.0)
    if delay > 0 and await _left_during(receive, delay / 1000):
        SEEN.abandoned += 1  # as a real upstream, nothing is generated for a client that left while waiting
        return
    if status != 200:
        limited = status == 429
        retry_after = headers.get(b"x-mock-retry-after", b"1")
        await send({"type": "http.response.start", "status": status, "headers": r.response_headers(
            _JSON, ((b"retry-after", retry_after),) if limited else (), b"0" if limited else b"9999")})
        body = b"" if status in (204, 304) else (tools.anthropic_error_body if anthropic else error_body)(status)
        return await send({"type": "http.response.body", "body": body})
    path = path.rstrip("/")
    for suffix, handler in ROUTES:
        if path.endswith(suffix):
            return await handler(r)
    if "/models/" in path:
        return await _model(r, path.split("/models/", 1)[1])
    await r.respond(_NOT_FOUND, 404)


# ---- running it ----

def main(argv: list[str] | None = None) -> int:
    """CLI: serve the double with granian (1 worker, uvloop, no logs)."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    parser = argparse.ArgumentParser(prog="python -m tests.upstream_double",
                                     description="A fake OpenAI/Anthropic upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "18080")))
    parser.add_argument("--delay-ms", type=float, help="(env DELAY_MS)")
    parser.add_argument("--chunks", type=int, help="(env CHUNKS, default 20)")
    parser.add_argument("--chunk-delay-ms", type=float, help="(env CHUNK_DELAY_MS)")
    args = parser.parse_args(argv)
    overrides = {"DELAY_MS": args.delay_ms, "CHUNKS": args.chunks, "CHUNK_DELAY_MS": args.chunk_delay_ms}
    for env, value in overrides.items():
        if value is not None:
            os.environ[env] = str(value)  # read by the worker when it imports this module
    Granian("tests.upstream_double:app", address=args.host,
            port=args.port, interface=Interfaces.ASGI, loop=Loops.uvloop, workers=1, log_enabled=False,
            log_access=False, backlog=2048).serve()
    return 0


def importable_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with the repository's root first on PYTHONPATH: a child finds `tests.upstream_double` (and granian's
    workers its app) from any working directory."""
    path = env.get("PYTHONPATH")
    return {**env, "PYTHONPATH": REPO + (os.pathsep + path if path else "")}


def free_port(port: int = 0) -> int:
    """`port` (0: any) if nothing listens there; granian binds with SO_REUSEPORT, so it would not notice."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise RuntimeError(f"port {port} is in use: {e}") from None
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
    try:
        conn.request("GET", "/_seen")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL to its process group (granian's workers included) after 5 s.

    For processes started with `start_new_session=True`, so the group holds only what they started.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _stderr(err: IO[bytes]) -> str:
    err.seek(0)
    return err.read().decode("utf-8", "replace")


@contextlib.contextmanager
def run_double(port: int | None = None, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `python -m tests.upstream_double` on 127.0.0.1 (a free port by default); yield its base URL.

    Waits (10 s at most) until `GET /_seen` answers; RuntimeError with the child's stderr otherwise.
    """
    port = free_port(port or 0)
    cmd = [sys.executable, "-m", "tests.upstream_double", "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=importable_env({**os.environ, **(env or {})}), stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
        try:
            deadline = time.monotonic() + 10
            while not _answers(port):
                if proc.poll() is not None:
                    raise RuntimeError(f"upstream double exited with {proc.returncode}:\n{_stderr(err)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"upstream double silent on port {port} for 10 s:\n{_stderr(err)}")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_process(proc)


if __name__ == "__main__":
    raise SystemExit(main())
