"""How many LLM tokens a response used, read from its `usage` (whole JSON bodies, or an SSE stream's tail)."""

from __future__ import annotations

import msgspec


class _Usage(msgspec.Struct):
    total_tokens: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None

    def prompt(self) -> int:
        """Anthropic's input side: uncached, cache-written and cache-read tokens are all processed."""
        return sum(n or 0 for n in (self.input_tokens, self.cache_creation_input_tokens,
                                    self.cache_read_input_tokens))

    def total(self) -> int:
        if self.total_tokens is not None:
            return self.total_tokens
        return sum(n or 0 for n in (self.prompt_tokens, self.completion_tokens, self.input_tokens,
                                    self.output_tokens))


class _WithUsage(msgspec.Struct):
    usage: _Usage | None = None


class _StartedMessage(msgspec.Struct):
    message: _WithUsage | None = None


_decode = msgspec.json.Decoder(_WithUsage).decode
_decode_start = msgspec.json.Decoder(_StartedMessage).decode
_TAIL_BYTES = 8192


def usage_tokens(body: bytes) -> int:
    """The total tokens in a JSON response's `usage`; 0 when it has none or is not JSON."""
    try:
        usage = _decode(body).usage
    except (msgspec.ValidationError, msgspec.DecodeError):
        return 0
    return usage.total() if usage else 0


class UsageMeter:
    """Reads a response's usage: a whole body, or an SSE stream. OpenAI sends the `usage` chunk last when the
    request asked for `stream_options.include_usage`; Anthropic splits it: input tokens in `message_start` at
    the head of the stream, output tokens in `message_delta` at its tail."""

    __slots__ = ("_body", "_head", "_tail")

    def __init__(self) -> None:
        self._tail = b""
        self._head: bytes | None = None
        self._body: bytes | None = None

    def whole(self, body: bytes) -> None:
        self._body = body

    def feed(self, chunk: bytes) -> None:
        if self._head is None:
            self._head = chunk[:_TAIL_BYTES]
        tail = self._tail + chunk
        self._tail = tail[-_TAIL_BYTES:] if len(tail) > _TAIL_BYTES else tail

    def tokens(self) -> int:
        if self._body is not None:
            return usage_tokens(self._body)
        for line in reversed(self._tail.split(b"\n")):
            if line.startswith(b"data: {") and b'"usage"' in line:
                found = usage_tokens(line[6:])
                if found:
                    return found + self._anthropic_input() if b'"message_delta"' in line else found
        return 0

    def _anthropic_input(self) -> int:
        """The input tokens of an Anthropic stream's `message_start` event (its first)."""
        for line in (self._head or b"").split(b"\n"):
            if line.startswith(b"data: {") and b'"message_start"' in line:
                try:
                    started = _decode_start(line[6:]).message
                except (msgspec.ValidationError, msgspec.DecodeError):
                    return 0
                return started.usage.prompt() if started is not None and started.usage is not None else 0
        return 0
