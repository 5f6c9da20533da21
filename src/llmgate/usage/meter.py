"""How many LLM tokens a response used, read from its `usage` (whole JSON bodies, or an SSE stream's tail).

Shapes read: OpenAI chat/completions/embeddings (`prompt_tokens`, `completion_tokens`, `total_tokens`,
`prompt_tokens_details.cached_tokens`), the Responses API (`input_tokens`, `output_tokens`,
`input_tokens_details.cached_tokens`, inside `response` in its stream's `response.completed` event) and
Anthropic (`input_tokens` + cache writes + cache reads, `output_tokens`; split over `message_start` and
`message_delta` in a stream) and Bedrock's Converse (`inputTokens` + cache reads and writes, `outputTokens`).
"""

from __future__ import annotations

import msgspec


class TokenUsage(msgspec.Struct, frozen=True, gc=False):
    """Tokens one request used; `cached`: prompt tokens served from the provider's cache, when reported.

    A Struct, not a NamedTuple: made for every metered answer, and built in C."""

    prompt: int
    completion: int
    total: int
    cached: int | None = None


class _Details(msgspec.Struct):
    cached_tokens: int | None = None


class _Usage(msgspec.Struct):
    total_tokens: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    prompt_tokens_details: _Details | None = None
    input_tokens_details: _Details | None = None
    # Bedrock's Converse (camelCase; cache reads and writes counted apart from inputTokens)
    converse_input: int | None = msgspec.field(default=None, name="inputTokens")
    converse_output: int | None = msgspec.field(default=None, name="outputTokens")
    converse_cache_read: int | None = msgspec.field(default=None, name="cacheReadInputTokens")
    converse_cache_write: int | None = msgspec.field(default=None, name="cacheWriteInputTokens")

    def read(self) -> TokenUsage:
        if self.converse_input is not None or self.converse_output is not None:
            reads = self.converse_cache_read or 0
            prompt = (self.converse_input or 0) + reads + (self.converse_cache_write or 0)
            completion = self.converse_output or 0
            return TokenUsage(prompt, completion, prompt + completion, reads or None)
        if self.prompt_tokens is not None or self.completion_tokens is not None:  # OpenAI chat, embeddings
            prompt, completion = self.prompt_tokens or 0, self.completion_tokens or 0
            details = self.prompt_tokens_details
        else:  # the Responses API; Anthropic (its input side: uncached, cache-written and cache-read tokens)
            prompt = sum(n or 0 for n in (self.input_tokens, self.cache_creation_input_tokens,
                                          self.cache_read_input_tokens))
            completion = self.output_tokens or 0
            details = self.input_tokens_details
        cached = details.cached_tokens if details is not None else self.cache_read_input_tokens
        total = self.total_tokens if self.total_tokens is not None else prompt + completion
        return TokenUsage(prompt, completion, total, cached)


class _WithUsage(msgspec.Struct):
    usage: _Usage | None = None
    response: _WithUsage | None = None  # the Responses API's stream events
    message: _WithUsage | None = None  # Anthropic's message_start


_decode = msgspec.json.Decoder(_WithUsage).decode
_TAIL_BYTES = 8192
_KEEP_BYTES = 2 * _TAIL_BYTES
_UNREAD = object()


def _usage_of(data: bytes) -> _Usage | None:
    try:
        found = _decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if found.usage is not None:
        return found.usage
    inner = found.response or found.message
    return inner.usage if inner is not None else None


class _UsageOnlyEvent(msgspec.Struct):
    choices: list[msgspec.Raw] | None = None
    usage: _Usage | None = None


_decode_usage_only = msgspec.json.Decoder(_UsageOnlyEvent).decode


def usage_only_event(event: bytes) -> TokenUsage | None:
    """The usage of an OpenAI stream's usage event (`data: {"choices":[],"usage":{...}}`); None for any other
    event."""
    start = event.find(b"{")
    return usage_only_json(event[start:]) if start >= 0 else None  # the SSE separator after it is JSON whitespace


def usage_only_json(data: bytes) -> TokenUsage | None:
    """`usage_only_event` of the event's JSON alone."""
    try:
        found = _decode_usage_only(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if found.choices is None or found.choices or found.usage is None:
        return None
    return found.usage.read()


def body_usage(body: bytes) -> TokenUsage | None:
    """The usage in a JSON response body; None when it has none or is not JSON."""
    usage = _usage_of(body)
    return usage.read() if usage is not None else None


def usage_tokens(body: bytes) -> int:
    """The total tokens in a JSON response's `usage`; 0 when it has none or is not JSON."""
    usage = body_usage(body)
    return usage.total if usage is not None else 0


class UsageMeter(msgspec.Struct, gc=False):
    """Reads a response's usage: a whole body, or an SSE stream. OpenAI sends the `usage` chunk last when the
    request asked for `stream_options.include_usage`; Anthropic splits it: input tokens in `message_start` at
    the head of the stream, output tokens in `message_delta` at its tail. Keeps only the first and last 8 KiB
    of a stream unless `keep_all` (to count the completion with tiktoken when no usage comes).

    A Struct: one is made for every metered answer, and its defaults are set in C rather than by a Python
    `__init__`. A stream's chunks are appended as they come and trimmed to the head and tail once
    they pass 16 KiB, instead of each chunk being joined to an 8 KiB tail (a copy of up to 8 KiB a chunk).
    """

    keep_all: bool = False
    keeps_body: bool = False
    """The raw log wants the whole answer: `keep_all` holds even once the provider's usage has come."""
    _chunks: list[bytes] = msgspec.field(default_factory=list)
    """The stream's chunks since the last trim (every chunk with `keep_all`)."""
    _size: int = 0
    """Bytes in `_chunks`."""
    _head: bytes | None = None
    """The stream's first 8 KiB, set when its chunks are first trimmed (before that, they start with them)."""
    _body: bytes | None = None
    _reported: TokenUsage | None = None
    _read: object = _UNREAD
    """`usage()`'s answer, kept: a virtual token's settlement and the metrics both ask for it."""

    def whole(self, body: bytes) -> None:
        self._body = body
        self._read = _UNREAD

    def feed(self, chunk: bytes) -> None:
        self._read = _UNREAD
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size > _KEEP_BYTES and not self.keep_all:
            self._trim()

    def _trim(self) -> None:
        data = b"".join(self._chunks)
        if self._head is None:
            self._head = data[:_TAIL_BYTES]
        tail = data[-_TAIL_BYTES:]
        self._chunks, self._size = [tail], len(tail)

    def reported(self, usage: TokenUsage) -> None:
        """The usage of the stream's usage event, read by the tap that removed it (so the tail is not searched).

        What was kept for an estimate is let go (unless the raw log wants it): an exchange waits up to a second
        in the usage bus's queue, and a stream's bytes with it."""
        self._reported = usage
        self._read = _UNREAD
        if self.keep_all and not self.keeps_body:
            self.keep_all = False
            self._chunks, self._size = [], 0

    @property
    def body(self) -> bytes | None:
        """The whole response: the body, or every chunk of a stream when kept."""
        if self._body is not None:
            return self._body
        return b"".join(self._chunks) if self.keep_all else None

    def usage(self) -> TokenUsage | None:
        """The usage the provider reported; None when it reported none."""
        if self._read is _UNREAD:
            self._read = self._find_usage()
        return self._read  # type: ignore[return-value]

    def _find_usage(self) -> TokenUsage | None:
        if self._body is not None:
            return body_usage(self._body)
        if self._reported is not None:
            return self._reported
        tail = b"".join(self._chunks)[-_TAIL_BYTES:]
        end = len(tail)
        # The lines that mention "usage", last first: found by searching back, not by splitting the tail.
        while (at := tail.rfind(b'"usage"', 0, end)) >= 0:
            start = end = tail.rfind(b"\n", 0, at) + 1
            if tail.startswith(b"data: {", start):
                stop = tail.find(b"\n", at)
                data = tail[start + 6:stop if stop >= 0 else len(tail)]
                usage = _usage_of(data)
                if usage is None:
                    continue
                found = usage.read()
                if data.find(b'"message_delta"') >= 0:  # Anthropic: the input side came in message_start
                    started = self._anthropic_start()
                    if started is not None:
                        return TokenUsage(started.prompt, found.completion, started.prompt + found.completion,
                                          started.cached)
                return found
        return None

    def tokens(self) -> int:
        usage = self.usage()
        return usage.total if usage is not None else 0

    def _anthropic_start(self) -> TokenUsage | None:
        """The input side of an Anthropic stream's `message_start` event (its first)."""
        head = self._head if self._head is not None else b"".join(self._chunks)[:_TAIL_BYTES]
        for line in head.split(b"\n"):
            if line.startswith(b"data: {") and line.find(b'"message_start"') >= 0:
                usage = _usage_of(line[6:])
                return usage.read() if usage is not None else None
        return None
