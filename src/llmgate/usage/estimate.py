"""Token counts for a request whose provider reported no usage: tiktoken over the request and the answer. Pure.

Runs in the event bus's background task, never on the request path. Prompt: chat `messages` (+ `tools`) by
OpenAI's recipe, a completions `prompt`, embeddings `input` (strings, or token arrays counted as they are),
Anthropic `system` + `messages`. Completion: from the whole JSON answer or a stream's `data:` events, the
text a client would see (chat deltas' content and tool-call arguments, completions' text, Anthropic text and
tool-input deltas). Anything it cannot read counts as 0 rather than failing the event.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from llmgate.usage.counting import count_chat_prompt_tokens, count_text_tokens
from llmgate.usage.meter import TokenUsage

_decode = msgspec.json.decode


def estimate_usage(endpoint: str, model: str | None, request_body: bytes | None,
                   response_body: bytes | None) -> TokenUsage | None:
    """Estimated usage of one request on `endpoint` (e.g. `/v1/chat/completions`); None when the endpoint is
    not one whose tokens can be counted or the request cannot be read."""
    if request_body is None:
        return None
    try:
        request = _decode(request_body)
    except msgspec.DecodeError:
        return None
    if not isinstance(request, dict):
        return None
    name = model or str(request.get("model") or "")
    prompt = _prompt_tokens(endpoint, request, name)
    if prompt is None:
        return None
    completion = 0
    if response_body and endpoint != "/v1/embeddings":
        completion = count_text_tokens("".join(_answer_texts(response_body)), name)
    return TokenUsage(prompt, completion, prompt + completion)


def _prompt_tokens(endpoint: str, request: dict[str, Any], model: str) -> int | None:
    try:
        if endpoint == "/v1/chat/completions":
            tools = request.get("tools")
            return count_chat_prompt_tokens(request.get("messages") or [], model,
                                            tools if isinstance(tools, list) else None)
        if endpoint == "/v1/completions":
            return _inputs_tokens(request.get("prompt"), model)
        if endpoint == "/v1/embeddings":
            return _inputs_tokens(request.get("input"), model)  # once per request, however many inputs
        if endpoint == "/v1/messages":
            return _anthropic_prompt_tokens(request, model)
    except ValueError:  # a shape tiktoken's recipe cannot read: count what can be read
        return count_text_tokens("".join(_strings(request.get("messages") or request.get("prompt"))), model)
    return None


def _inputs_tokens(value: Any, model: str) -> int:
    """A string, a list of strings, a token array, or a list of token arrays."""
    if isinstance(value, str):
        return count_text_tokens(value, model)
    if not isinstance(value, list):
        return 0
    if value and all(isinstance(x, int) for x in value):
        return len(value)
    total = 0
    for item in value:
        if isinstance(item, str):
            total += count_text_tokens(item, model)
        elif isinstance(item, list):
            total += len(item)
    return total


def _anthropic_prompt_tokens(request: dict[str, Any], model: str) -> int:
    texts = list(_strings(request.get("system")))
    for message in request.get("messages") or ():
        if isinstance(message, dict):
            texts.extend(_strings(message.get("content")))
    tools = request.get("tools")
    extra = len(msgspec.json.encode(tools)) // 4 if tools else 0  # ~4 bytes a token for JSON schemas
    return count_text_tokens("".join(texts), model) + extra


def _strings(value: Any) -> Iterator[str]:
    """Every `text` (and plain string) in a content value: a string, or a list of parts."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for part in value:
            if isinstance(part, str):
                yield part
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    yield part["text"]
                elif isinstance(part.get("content"), str | list):
                    yield from _strings(part["content"])


def _answer_texts(body: bytes) -> Iterator[str]:
    """The generated text of a whole JSON answer or of an SSE stream."""
    stripped = body.lstrip()
    if stripped[:1] == b"{":
        try:
            yield from _texts_of(_decode(stripped))
        except msgspec.DecodeError:
            return
        return
    for line in body.split(b"\n"):
        line = line.rstrip(b"\r")
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data[:1] != b"{":
            continue
        try:
            yield from _texts_of(_decode(data))
        except msgspec.DecodeError:
            continue


def _texts_of(event: Any) -> Iterator[str]:
    """Texts in one answer object or stream event (OpenAI chat/completions, Anthropic)."""
    if not isinstance(event, dict):
        return
    for choice in event.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("text"), str):
            yield choice["text"]
        for key in ("message", "delta"):
            part = choice.get(key)
            if isinstance(part, dict):
                yield from _message_texts(part)
    yield from _anthropic_texts(event)


def _anthropic_texts(event: dict[str, Any]) -> Iterator[str]:
    """Texts of an Anthropic message or stream event."""
    if isinstance(event.get("content"), list):
        yield from _strings(event["content"])
        for block in event["content"]:
            if isinstance(block, dict) and block.get("type") == "tool_use":
                yield msgspec.json.encode(block.get("input")).decode()
    delta = event.get("delta")
    if event.get("type") == "content_block_delta" and isinstance(delta, dict):
        for key in ("text", "partial_json", "thinking"):
            if isinstance(delta.get(key), str):
                yield delta[key]


def _message_texts(message: dict[str, Any]) -> Iterator[str]:
    for key in ("content", "refusal"):
        if isinstance(message.get(key), str):
            yield message[key]
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            for key in ("name", "arguments"):
                if isinstance(function.get(key), str):
                    yield function[key]
