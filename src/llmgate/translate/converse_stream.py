"""A Bedrock ConverseStream answer (AWS event-stream binary framing) → OpenAI `chat.completion.chunk` SSE, event
by event as the bytes arrive.

The framing is decoded by botocore's incremental parser (`EventStreamBuffer`: prelude, headers, payload, both
CRCs checked); each message names its event in the `:event-type` header and carries JSON:
  messageStart                        → a chunk with delta {role: assistant, content: ""}
  contentBlockStart (toolUse)         → a tool_calls delta with the call's id, name and empty arguments
  contentBlockDelta text / toolUse    → a content delta / a tool_calls arguments delta
  messageStop                         → a chunk with finish_reason (stopReason mapped)
  metadata                            → the usage (reported, and a usage chunk when asked for), then [DONE]
  `:message-type: exception`          → an OpenAI error event ending the stream (the SDK raises it)
  contentBlockStop, reasoning deltas  → nothing
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from botocore.eventstream import EventStreamBuffer, ParserError

from llmgate.translate.converse import STOP_REASONS, new_completion_id, openai_usage
from llmgate.translate.errors import openai_stream_error

_encode = msgspec.json.Encoder().encode
DONE = b"data: [DONE]\n\n"
_EXCEPTION_TYPES = {"throttlingException": "rate_limit_error", "validationException": "invalid_request_error",
                    "serviceUnavailableException": "server_error", "internalServerException": "server_error",
                    "modelStreamErrorException": "model_error"}
Usage = dict[str, Any]


class OpenAIChunksFromConverse:
    """Feed it the upstream's bytes as they come (`feed`), then `close()` at the end; each returns SSE bytes.
    `on_usage` is called with the OpenAI-shaped usage when the stream reports it."""

    def __init__(self, model: str, created: int, include_usage: bool,
                 on_usage: Callable[[Usage], None] | None = None) -> None:
        self._buffer = EventStreamBuffer()
        self._base: dict[str, Any] = {"id": new_completion_id(), "object": "chat.completion.chunk",
                                      "created": created, "model": model}
        self._include_usage = include_usage
        self._on_usage = on_usage
        self._tool_index: dict[int, int] = {}  # Converse contentBlockIndex → OpenAI tool_calls index
        self._stopped = False
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        """The OpenAI SSE bytes for the events `data` completes."""
        if self.finished:
            return b""
        self._buffer.add_data(data)
        out = bytearray()
        try:
            for message in self._buffer:
                out += self._translate(message.headers, message.payload)
                if self.finished:
                    break
        except ParserError as exc:  # a corrupted frame: nothing after it can be trusted
            self.finished = True
            out += openai_stream_error(f"The upstream's event stream could not be read: {exc}")
        return bytes(out)

    def close(self) -> bytes:
        """The upstream ended: a stream that stopped but sent no metadata ends normally, else with an error."""
        if self.finished:
            return b""
        self.finished = True
        if self._stopped:
            return DONE
        return openai_stream_error("The upstream stream ended before messageStop.")

    def fail(self, message: str) -> bytes:
        """End the stream with an error event (the upstream broke or went silent)."""
        if self.finished:
            return b""
        self.finished = True
        return openai_stream_error(message)

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return b"data: " + _encode({**self._base, "choices": [choice]}) + b"\n\n"

    def _translate(self, headers: dict[str, Any], payload: bytes) -> bytes:
        try:
            event = msgspec.json.decode(payload) if payload else {}
        except msgspec.DecodeError:
            event = {}
        if not isinstance(event, dict):
            event = {}
        if headers.get(":message-type") == "exception":
            self.finished = True
            name = str(headers.get(":exception-type", ""))
            message = event.get("message") or event.get("Message") or f"The upstream reported {name or 'an error'}."
            return openai_stream_error(str(message), _EXCEPTION_TYPES.get(name, "api_error"))
        handler = _HANDLERS.get(str(headers.get(":event-type", "")))
        return handler(self, event) if handler is not None else b""

    def _message_start(self, _: dict[str, Any]) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def _block_start(self, event: dict[str, Any]) -> bytes:
        use = (event.get("start") or {}).get("toolUse")
        if not isinstance(use, dict):
            return b""
        index = self._tool_index[event.get("contentBlockIndex", -1)] = len(self._tool_index)
        call = {"index": index, "id": use.get("toolUseId"), "type": "function",
                "function": {"name": use.get("name"), "arguments": ""}}
        return self._chunk({"tool_calls": [call]})

    def _block_delta(self, event: dict[str, Any]) -> bytes:
        delta = event.get("delta") or {}
        if isinstance(delta.get("text"), str):
            return self._chunk({"content": delta["text"]})
        use = delta.get("toolUse")
        index = self._tool_index.get(event.get("contentBlockIndex", -1))
        if isinstance(use, dict) and index is not None and use.get("input"):
            return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": use["input"]}}]})
        return b""

    def _message_stop(self, event: dict[str, Any]) -> bytes:
        self._stopped = True
        return self._chunk({}, STOP_REASONS.get(event.get("stopReason") or "end_turn", "stop"))

    def _metadata(self, event: dict[str, Any]) -> bytes:
        self.finished = True
        usage = openai_usage(event.get("usage"))
        if self._on_usage is not None and isinstance(event.get("usage"), dict):
            self._on_usage(usage)
        if not self._include_usage:
            return DONE
        return b"data: " + _encode({**self._base, "choices": [], "usage": usage}) + b"\n\n" + DONE


_HANDLERS = {
    "messageStart": OpenAIChunksFromConverse._message_start,
    "contentBlockStart": OpenAIChunksFromConverse._block_start,
    "contentBlockDelta": OpenAIChunksFromConverse._block_delta,
    "messageStop": OpenAIChunksFromConverse._message_stop,
    "metadata": OpenAIChunksFromConverse._metadata,
}
