"""What the cache keeps of an answer (`Answer`), the storage contract, and the in-process LRU bounded by bytes."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import msgspec


class Usage(msgspec.Struct, frozen=True, array_like=True):
    """The tokens the answer used when it was made (shown again, at no cost, on each hit)."""

    prompt: int
    completion: int
    total: int
    cached: int | None = None


class Answer(msgspec.Struct, frozen=True, array_like=True):
    """A successful answer as its client received it: the headers worth repeating, and the body (a stream's SSE
    bytes, whole)."""

    headers: list[tuple[bytes, bytes]]
    body: bytes
    deployment: str | None = None
    """The deployment that made it."""
    usage: Usage | None = None

    @property
    def size(self) -> int:
        """Bytes it holds (the bound of the in-process cache counts these)."""
        return len(self.body) + sum(len(name) + len(value) for name, value in self.headers) + 64


encode_answer = msgspec.msgpack.Encoder().encode
decode_answer = msgspec.msgpack.Decoder(Answer).decode


class AnswerStore(Protocol):
    """Where answers are kept, by key, each for its TTL."""

    async def get(self, key: str) -> Answer | None:
        """The fresh answer kept under `key`; None when there is none (or the storage failed)."""

    async def put(self, key: str, answer: Answer, ttl_s: float) -> None:
        """Keep `answer` under `key` for `ttl_s` seconds (a storage failure is logged, not raised)."""

    @property
    def held_bytes(self) -> int:
        """Bytes held in this process (0 when the answers live elsewhere)."""

    async def close(self) -> None:
        """Let go of connections."""


class MemoryStore:
    """The in-process cache: least recently used answers go first once their bytes pass `max_bytes`; an answer
    larger than that is not kept."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Answer]] = OrderedDict()
        """key → (expires at, answer), least recently used first"""
        self._bytes = 0

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> Answer | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires_at, answer = found
        if expires_at <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return answer

    async def put(self, key: str, answer: Answer, ttl_s: float) -> None:
        size = answer.size
        if size > self.max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock() + ttl_s, answer)
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, answer = self._entries.pop(key)
        self._bytes -= answer.size

    async def close(self) -> None:
        self._entries.clear()
        self._bytes = 0
