"""A Gemini `streamGenerateContent?alt=sse` stream → OpenAI `chat.completion.chunk` SSE, event by event.

Each Gemini event is a whole `GenerateContentResponse` holding the new part of each candidate:
  the first event                 → a chunk with delta {role: assistant, content: ""} per candidate
  text parts                      → content deltas (thought parts left out)
  functionCall parts (whole)      → a tool_calls delta with id, name and all of the arguments
  finishReason                    → a chunk with finish_reason (see gemini_response.FINISH_REASONS)
  promptFeedback.blockReason      → a content_filter finish
  usageMetadata (running totals)  → remembered; after the last event, the usage chunk (when
                                    stream_options.include_usage) and `data: [DONE]`
  {"error": ...}                  → an OpenAI error event, ending the stream
Gemini has no end event: the stream is complete when every candidate has finished. One that ends before
(the connection closed) ends with an error event instead of [DONE], so a client never mistakes it for whole.
"""

from __future__ import annotations

from typing import Any

import msgspec

from llmgate.translate.errors import openai_stream_error
from llmgate.translate.gemini_response import finish_reason, new_call_id, openai_usage, tool_call
from llmgate.translate.sse import Event, SSETranslator
from llmgate.usage.meter import TokenUsage

_encode = msgspec.json.Encoder().encode
DONE = b"data: [DONE]\n\n"


class OpenAIChunksFromGemini(SSETranslator):
    """Feed it the upstream's bytes as they come (`feed`), then `close()` at the end; each returns SSE bytes.
    `usage` holds the stream's usage once known (for the usage log, whether or not the client asked)."""

    def __init__(self, model: str, created: int, include_usage: bool) -> None:
        super().__init__()
        self._base: dict[str, Any] = {"id": "chatcmpl-", "object": "chat.completion.chunk", "created": created,
                                      "model": model}
        self._include_usage = include_usage
        self._meta: Any = None
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}  # candidate index → tool calls sent
        self._open: set[int] = set()  # candidates that started and have not finished
        self._finished_any = False
        self.usage: TokenUsage | None = None

    def close(self) -> bytes:
        """The upstream ended: the usage chunk and [DONE], or an error event if a candidate never finished."""
        if self.finished:
            return b""
        out = self._translate_rest()
        if self.finished:
            return out
        self.finished = True
        if self._open or not self._finished_any:
            return out + openai_stream_error("The upstream stream ended before its last candidate finished.")
        usage = openai_usage(self._meta)
        self.usage = TokenUsage(usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"],
                                (usage.get("prompt_tokens_details") or {}).get("cached_tokens"))
        if not self._include_usage:
            return out + DONE
        return out + b"data: " + _encode({**self._base, "choices": [], "usage": usage}) + b"\n\n" + DONE

    def fail(self, message: str) -> bytes:
        """End the stream with an error event (the upstream broke or went silent)."""
        if self.finished:
            return b""
        self.finished = True
        return openai_stream_error(message)

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + _encode({**self._base, "choices": [choice]}) + b"\n\n"

    def _translate(self, event: Event) -> bytes:
        data = event.data
        try:
            event = msgspec.json.decode(data)
        except msgspec.DecodeError:
            return b""
        if not isinstance(event, dict):
            return b""
        if isinstance(event.get("error"), dict):
            self.finished = True
            error = event["error"]
            return openai_stream_error(str(error.get("message") or "The upstream reported an error."),
                                       str(error.get("status") or "api_error"))
        if event.get("responseId"):
            self._base["id"] = "chatcmpl-" + str(event["responseId"])
        if event.get("modelVersion"):
            self._base["model"] = event["modelVersion"]
        if event.get("usageMetadata") is not None:
            self._meta = event["usageMetadata"]
        candidates = event.get("candidates")
        if isinstance(candidates, list):
            return b"".join(self._candidate(c, i) for i, c in enumerate(candidates) if isinstance(c, dict))
        feedback = event.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            self._finished_any = True
            start = self._start(0)
            self._open.discard(0)
            return start + self._chunk(0, {}, "content_filter")
        return b""

    def _start(self, index: int) -> bytes:
        if index in self._started:
            return b""
        self._started.add(index)
        self._open.add(index)
        return self._chunk(index, {"role": "assistant", "content": ""})

    def _candidate(self, candidate: dict[str, Any], position: int) -> bytes:
        index = candidate.get("index", position)
        out = bytearray(self._start(index))
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict) or part.get("thought") is True:
                continue
            if isinstance(part.get("text"), str) and part["text"]:
                out += self._chunk(index, {"content": part["text"]})
            elif isinstance(part.get("functionCall"), dict):
                n = self._calls.get(index, 0)
                self._calls[index] = n + 1
                out += self._chunk(index, {"tool_calls": [{"index": n, **tool_call(part, new_call_id())}]})
        reason = candidate.get("finishReason")
        if reason and index in self._open:
            self._open.discard(index)
            self._finished_any = True
            out += self._chunk(index, {}, finish_reason(reason, bool(self._calls.get(index))))
        return bytes(out)
