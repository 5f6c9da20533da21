"""Hypothesis strategies for what a client can put on the wire: bodies, headers, chunk boundaries, paths; and
what every answer must be (no 5xx of llmgate's own, an error in the caller's shape)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.inprocess.gateway import Response
from tests.inprocess.upstream import Reply, Sent, reply_json

OPENAI_PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/token-count",
                "/v1/images/generations", "/v1/audio/speech", "/v1/audio/transcriptions"]
ANTHROPIC_PATHS = ["/v1/messages", "/v1/messages/count_tokens"]
MODELS = ["gpt-4o", "claude-3-5-sonnet", "m", "", "gpt-4o\x00", "模型", "a/b/c", "x" * 300]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", "x"]),
                                           "content": st.text(max_size=40) | json_values}), max_size=3)
request_fields = st.tuples(
    st.fixed_dictionaries(
        {"model": st.sampled_from(MODELS) | json_values},
        optional={"messages": messages | json_values, "stream": st.booleans() | json_values,
                  "stream_options": st.just({"include_usage": True}) | json_values, "max_tokens": st.integers(),
                  "input": st.text() | json_values, "text": st.text() | json_values, "prompt": st.text(),
                  "tools": json_values, "system": st.text() | json_values}),
    st.dictionaries(st.text(max_size=6), json_values, max_size=2),
).map(lambda known_and_other: {**known_and_other[1], **known_and_other[0]})


def nested(depth: int) -> bytes:
    return b'{"model":"m","messages":' + b"[" * depth + b"]" * depth + b"}"


@st.composite
def mutated(draw: st.DrawFn, body: bytes) -> bytes:
    """`body` cut, with bytes flipped, or with bytes that are no UTF-8 put in."""
    if not body:
        return body
    at = draw(st.integers(0, len(body) - 1))
    how = draw(st.sampled_from(["cut", "flip", "latin1", "insert"]))
    if how == "cut":
        return body[:at]
    if how == "flip":
        return body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1:]
    if how == "latin1":
        return body[:at] + draw(st.binary(min_size=1, max_size=3).map(lambda b: bytes(x | 0x80 for x in b))) + \
            body[at:]
    return body[:at] + draw(st.binary(max_size=8)) + body[at:]


bodies = st.one_of(
    request_fields.map(lambda fields: json.dumps(fields).encode()),
    st.binary(max_size=24).map(lambda raw: b'{"model":"' + raw + b'","messages":[],"stream":true}'),
    st.binary(min_size=1, max_size=8).map(lambda raw: b'{"model":"m","' + raw + b'":1,"text":"x"}'),
    st.sampled_from([100, 900, 972, 973, 1000, 5000]).map(nested),
    request_fields.map(lambda fields: json.dumps(fields, ensure_ascii=False).encode()).flatmap(mutated),
    st.binary(max_size=200),
    st.integers(1, 3000).map(nested),
    json_values.map(lambda value: json.dumps(value).encode()),
)

HEADER_NAMES = ["host", "content-type", "content-length", "authorization", "x-api-key", "x-request-id",
                "transfer-encoding", "connection", "accept-encoding", "anthropic-version", "openai-organization",
                "x-stainless-retry-count", "te", "upgrade", "cookie", "expect"]
header_values = st.binary(max_size=40).filter(lambda value: not any(c in value for c in b"\r\n\x00"))
headers = st.lists(st.tuples(st.sampled_from(HEADER_NAMES) | st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1,
                                                                     max_size=12).map(str),
                             header_values), max_size=6)

path_segments = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.~%:@!$&'()*+,;=é ", max_size=12)
paths = st.one_of(
    st.sampled_from(OPENAI_PATHS + ANTHROPIC_PATHS + ["/v1", "/v1/", "/v1/models", "/v1/models/gpt-4o"]),
    st.lists(path_segments, max_size=4).map(lambda parts: "/v1/" + "/".join(parts)),
    st.sampled_from(["/", "/manage", "/manage/projects", "/health", "/metrics", "/manage/schema", "/nope"]),
    st.lists(path_segments, max_size=3).map(lambda parts: "/" + "/".join(parts)),
)
methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "FOO"])

CHAT = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}


def upstream(sent: Sent) -> Reply:
    """An upstream that answers everything well: a chat completion, or a short stream of one."""
    if sent.streamed:
        frames = [b"data: " + json.dumps(CHUNK).encode() + b"\n\n", b"data: [DONE]\n\n"]
        return Reply(200, frames, [("content-type", "text/event-stream")])
    return reply_json(CHAT)


def is_anthropic(path: str) -> bool:
    return path == "/v1/messages" or path.startswith("/v1/messages/")


def check_answer(response: Response, path: str) -> None:
    """No 5xx of llmgate's own (the upstream answers everything well), a complete answer, and an error in the
    caller's shape: Anthropic's on /v1/messages*, OpenAI's everywhere else."""
    assert response.status_code < 500, response
    assert response.complete, response
    if response.status_code < 400 or response.status_code == 431:
        return
    body: Any = response.json()
    if is_anthropic(path.split("?")[0]):
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    else:
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
