"""An Anthropic Messages SSE stream → OpenAI `chat.completion.chunk` SSE, event by event.

  message_start                    → a chunk with delta {role: assistant, content: ""}
  content_block_start (tool_use)   → a tool_calls delta with the call's id, name and empty arguments
  content_block_delta text_delta   → a content delta
  content_block_delta input_json_delta → a tool_calls arguments delta (same tool_calls index)
  message_delta                    → a chunk with finish_reason (stop_reason mapped); usage remembered
  message_stop                     → the usage chunk (when stream_options.include_usage) and `data: [DONE]`
  error                            → an OpenAI error event, ending the stream (the OpenAI SDK raises it)
  ping, content_block_stop, thinking/signature deltas → nothing
"""

from __future__ import annotations

from typing import Any

import msgspec

from llmgate.translate.chat_to_messages import FINISH_REASONS, openai_usage
from llmgate.translate.errors import openai_stream_error
from llmgate.translate.sse import Event, SSETranslator

_encode = msgspec.json.Encoder().encode
DONE = b"data: [DONE]\n\n"


class OpenAIChunksFromAnthropic(SSETranslator):
    """Feed it the upstream's bytes as they come (`feed`), then `close()` at the end; each returns SSE bytes."""

    def __init__(self, model: str, created: int, include_usage: bool) -> None:
        super().__init__()
        self._base: dict[str, Any] = {"id": "", "object": "chat.completion.chunk", "created": created,
                                      "model": model}
        self._include_usage = include_usage
        self._usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}  # Anthropic content block index → OpenAI tool_calls index

    def close(self) -> bytes:
        """The upstream ended: translate what is left; an unfinished stream ends with an error event."""
        out = self._translate_rest() if not self.finished else b""
        if not self.finished:
            self.finished = True
            out += openai_stream_error("The upstream stream ended before message_stop.")
        return out

    def fail(self, message: str) -> bytes:
        """End the stream with an error event (the upstream broke or went silent)."""
        if self.finished:
            return b""
        self.finished = True
        return openai_stream_error(message)

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return b"data: " + _encode({**self._base, "choices": [choice]}) + b"\n\n"

    def _translate(self, event: Event) -> bytes:
        name, data = event.event, event.data
        try:
            event = msgspec.json.decode(data)
        except msgspec.DecodeError:
            return b""
        if not isinstance(event, dict):
            return b""
        kind = event.get("type") or name
        handler = _HANDLERS.get(kind)
        return handler(self, event) if handler is not None else b""

    def _message_start(self, event: dict[str, Any]) -> bytes:
        message = event.get("message") or {}
        self._base["id"] = message.get("id") or self._base["id"]
        self._base["model"] = message.get("model") or self._base["model"]
        self._usage = dict(message.get("usage") or {})
        return self._chunk({"role": "assistant", "content": ""})

    def _block_start(self, event: dict[str, Any]) -> bytes:
        block = event.get("content_block") or {}
        if block.get("type") == "tool_use":
            index = self._tool_index[event.get("index", -1)] = len(self._tool_index)
            call = {"index": index, "id": block.get("id"), "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""}}
            return self._chunk({"tool_calls": [call]})
        if block.get("type") == "text" and block.get("text"):
            return self._chunk({"content": block["text"]})
        return b""

    def _block_delta(self, event: dict[str, Any]) -> bytes:
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta":
            return self._chunk({"content": delta.get("text", "")})
        if delta.get("type") == "input_json_delta":
            index = self._tool_index.get(event.get("index", -1))
            if index is not None and delta.get("partial_json"):
                return self._chunk({"tool_calls": [{"index": index,
                                                    "function": {"arguments": delta["partial_json"]}}]})
        return b""

    def _message_delta(self, event: dict[str, Any]) -> bytes:
        usage = event.get("usage") or {}
        self._usage.update({k: v for k, v in usage.items() if v is not None})  # counts in message_delta are totals
        stop_reason = (event.get("delta") or {}).get("stop_reason")
        if stop_reason is None:
            return b""
        return self._chunk({}, FINISH_REASONS.get(stop_reason, "stop"))

    def _message_stop(self, _: dict[str, Any]) -> bytes:
        self.finished = True
        if not self._include_usage:
            return DONE
        usage = {**self._base, "choices": [], "usage": openai_usage(self._usage)}
        return b"data: " + _encode(usage) + b"\n\n" + DONE

    def _error(self, event: dict[str, Any]) -> bytes:
        error = event.get("error") or {}
        self.finished = True
        return openai_stream_error(str(error.get("message") or "The upstream reported an error."),
                                   str(error.get("type") or "api_error"))


_HANDLERS = {
    "message_start": OpenAIChunksFromAnthropic._message_start,
    "content_block_start": OpenAIChunksFromAnthropic._block_start,
    "content_block_delta": OpenAIChunksFromAnthropic._block_delta,
    "message_delta": OpenAIChunksFromAnthropic._message_delta,
    "message_stop": OpenAIChunksFromAnthropic._message_stop,
    "error": OpenAIChunksFromAnthropic._error,
}
