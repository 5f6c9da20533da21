"""The fields routing needs from an OpenAI request body; everything else is forwarded unread."""

from __future__ import annotations

import msgspec


class RoutingView(msgspec.Struct, frozen=True):
    """`model` and `stream`: decoded from the raw bytes, which are forwarded untouched."""

    model: str
    stream: bool | None = None
    stream_options: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    """Kept raw, unread: whether the body has any tells the usage meter how to ask for a stream's usage
    (usage/tap.py `ask_for_usage`) without searching the body again."""
    user: str | None = None
    """OpenAI's end-user id: recorded in usage, and what a project's per-user limits count."""


decode_routing_view = msgspec.json.Decoder(RoutingView).decode

_decode_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_encode = msgspec.json.Encoder().encode


def replace_model(raw: bytes, model: str) -> bytes:
    """The body with its top-level `model` set to `model`; every other value kept as raw JSON, in order.

    Only for deployments whose upstream model name differs from the alias: the common case forwards the bytes.
    """
    fields = _decode_top_level(raw)
    fields["model"] = msgspec.Raw(_encode(model))
    return _encode(fields)
