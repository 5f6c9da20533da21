"""An OpenAI `chat.completion.chunk` SSE stream → Anthropic's SSE event sequence.

message_start, then per content block content_block_start / content_block_delta… / content_block_stop
(text blocks with text_delta, tool_use blocks with input_json_delta; indices count blocks from 0), then
message_delta (stop_reason, usage) and message_stop. The usage chunk of `stream_options.include_usage` comes
after the finish_reason chunk, so message_delta waits for `[DONE]` (or the end of the stream).
An OpenAI error event becomes Anthropic's `error` event.
"""

from __future__ import annotations

from typing import Any

import msgspec

from llmgate.translate.errors import anthropic_stream_error
from llmgate.translate.messages_to_chat import STOP_REASONS, anthropic_usage
from llmgate.translate.sse import Event, SSETranslator

_encode = msgspec.json.Encoder().encode


def sse_event(data: dict[str, Any]) -> bytes:
    """One Anthropic SSE event: its `type` is also the event name."""
    name: str = data["type"]
    return b"event: " + name.encode() + b"\ndata: " + _encode(data) + b"\n\n"


class AnthropicEventsFromOpenAI(SSETranslator):
    """Feed it the upstream's bytes as they come (`feed`), then `close()` at the end; each returns SSE bytes."""

    def __init__(self, model: str) -> None:
        super().__init__()
        self._id = ""
        self._model = model
        self._started = False
        self._open: tuple[str, int] | None = None  # ("text", -1) or ("tool", openai tool index) of the open block
        self._blocks = 0
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool_calls index → Anthropic block index
        self._stop_reason: str | None = None
        self._usage: Any = None

    def close(self) -> bytes:
        """The upstream ended: finish the message if it said why it stopped, else end with an error event."""
        if self.finished:
            return b""
        out = self._translate_rest()
        if self.finished:
            return out
        if self._stop_reason is not None:
            return out + self._finish()
        return out + self.fail("The upstream stream ended before a finish_reason.")

    def fail(self, message: str) -> bytes:
        """End the stream with an error event (the upstream broke or went silent)."""
        if self.finished:
            return b""
        self.finished = True
        return anthropic_stream_error(message)

    def _translate(self, event: Event) -> bytes:
        data = event.data
        if data.strip() == "[DONE]":
            return self._finish()
        try:
            chunk = msgspec.json.decode(data)
        except msgspec.DecodeError:
            return b""
        if not isinstance(chunk, dict):
            return b""
        if "error" in chunk:
            error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            self.finished = True
            return anthropic_stream_error(str(error.get("message") or "The upstream reported an error."))
        out = bytearray() if self._started else bytearray(self._start(chunk))
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out += self._choice(choice)
        return bytes(out)

    def _start(self, chunk: dict[str, Any]) -> bytes:
        self._started = True
        self._id = chunk.get("id") or self._id
        self._model = chunk.get("model") or self._model
        message: dict[str, Any] = {
            "id": self._id, "type": "message", "role": "assistant", "model": self._model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}
        return sse_event({"type": "message_start", "message": message})

    def _choice(self, choice: dict[str, Any]) -> bytes:
        out = bytearray()
        delta = choice.get("delta") or {}
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self._open is None or self._open[0] != "text":
                out += self._open_block(("text", -1), {"type": "text", "text": ""})
            out += sse_event({"type": "content_block_delta", "index": self._blocks - 1,
                              "delta": {"type": "text_delta", "text": text}})
        for call in delta.get("tool_calls") or ():
            out += self._tool_call(call)
        if choice.get("finish_reason"):
            self._stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return bytes(out)

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        out = bytearray()
        index = call.get("index", 0)
        function = call.get("function") or {}
        if index not in self._tool_blocks:
            block: dict[str, Any] = {"type": "tool_use", "id": call.get("id") or f"toolu_{self._id}_{index}",
                     "name": function.get("name") or "", "input": {}}
            out += self._open_block(("tool", index), block)
            self._tool_blocks[index] = self._blocks - 1
        arguments = function.get("arguments")
        if arguments:
            out += sse_event({"type": "content_block_delta", "index": self._tool_blocks[index],
                              "delta": {"type": "input_json_delta", "partial_json": arguments}})
        return bytes(out)

    def _open_block(self, which: tuple[str, int], block: dict[str, Any]) -> bytes:
        out = self._close_block()
        self._open = which
        self._blocks += 1
        return out + sse_event({"type": "content_block_start", "index": self._blocks - 1, "content_block": block})

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return sse_event({"type": "content_block_stop", "index": self._blocks - 1})

    def _finish(self) -> bytes:
        out = bytearray() if self._started else bytearray(self._start({}))
        out += self._close_block()
        out += sse_event({"type": "message_delta",
                          "delta": {"stop_reason": self._stop_reason or "end_turn", "stop_sequence": None},
                          "usage": anthropic_usage(self._usage)})
        out += sse_event({"type": "message_stop"})
        self.finished = True
        return bytes(out)
