"""The cache key of a request: endpoint, model and the body's fields that determine the answer, normalised.

The body is decoded and encoded again with its keys sorted (at every depth), without the fields that do not
change the answer (`user`, `metadata`, `stream_options`, and `model`/`stream`, which are keyed on their own), and
hashed: the key does not depend on the order of keys, on whitespace, or on who asked.
"""

from __future__ import annotations

import hashlib
from typing import Any

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
    return hashlib.blake2b(material, digest_size=20).hexdigest()


def answer_headers(forward: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The request headers (as forwarded) that are part of the key."""
    return tuple(sorted((name, value) for name, value in forward if name in ANSWER_HEADERS))
