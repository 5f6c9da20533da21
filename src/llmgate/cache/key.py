"""The cache key of a request: endpoint, model and the body's fields that determine the answer, normalised.

The body is decoded and encoded again with its keys sorted (at every depth), without the fields that do not
change the answer (`user`, `metadata`, `stream_options`, and `model`/`stream`, which are keyed on their own), and
hashed: the key does not depend on the order of keys, on whitespace, or on who asked.

`KeyMemo` remembers the keys it made by the raw body's digest: a request repeated byte for byte, which is what a hit
usually is, costs one hash of its bytes instead of a decode, a sorted encode and a hash of the result.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import msgspec

IGNORED_FIELDS = frozenset({"user", "metadata", "stream_options", "model", "stream"})
"""Fields that do not change the answer (`model` and `stream` are part of the key apart from the body)."""
ANSWER_HEADERS = ("anthropic-version", "anthropic-beta", "openai-beta")
"""Request headers that change what the upstream answers: part of the key when sent."""

_decode = msgspec.json.Decoder(dict[str, Any]).decode
_encode = msgspec.json.Encoder(order="sorted").encode


class KeyRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What a cached answer is looked up by, besides the body."""

    endpoint: str
    """The path relative to /v1, e.g. `/chat/completions`."""
    model: str | None
    """The resolved model: the alias (or model passed through) the request was routed by."""
    stream: bool
    scope: str = ""
    """The project the answer is kept for (empty: the master key's requests, or every caller with a global scope)."""
    headers: tuple[tuple[str, str], ...] = ()
    """The request's ANSWER_HEADERS, as sent."""


def cache_key(request: KeyRequest, body: bytes) -> str | None:
    """The key of `request` with `body`; None when its answer is not to be cached: the body is not a JSON object,
    or asks for several choices (`n` > 1)."""
    try:
        fields = _decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    n = fields.get("n")
    if n is not None and n != 1:
        return None
    include_usage = False
    if request.stream:  # the usage chunk is in the stream or not: a different answer
        options = fields.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
    kept = {name: value for name, value in fields.items() if name not in IGNORED_FIELDS}
    material = _encode((request.endpoint, request.model, request.stream, include_usage, request.scope,
                        request.headers, kept))
    return hashlib.sha256(material).hexdigest()[:40]  # sha256: the fastest of hashlib's on long bodies here


_UNKNOWN: Final = object()


class KeyMemo:
    """`cache_key`, remembered for the last `max_entries` (request, raw body) pairs: the body by its SHA-256, so a
    long body is not held, and the same bytes always give the key `cache_key` gives them (a pure function)."""

    __slots__ = ("_keys", "max_entries")

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._keys: dict[tuple[KeyRequest, bytes], str | None] = {}
        """(request, the body's digest) → its key (None: not kept), oldest first"""

    def __len__(self) -> int:
        return len(self._keys)

    def key(self, request: KeyRequest, body: bytes) -> str | None:
        """`cache_key(request, body)`."""
        seen = (request, hashlib.sha256(body).digest())
        found = self._keys.get(seen, _UNKNOWN)
        if found is not _UNKNOWN:
            return found  # type: ignore[return-value]
        key = self._keys[seen] = cache_key(request, body)
        if len(self._keys) > self.max_entries:  # the oldest goes: a bound, not a recency order
            del self._keys[next(iter(self._keys))]
        return key


def answer_headers(forward: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The request headers (as forwarded) that are part of the key."""
    return tuple(sorted((name, value) for name, value in forward if name in ANSWER_HEADERS))
