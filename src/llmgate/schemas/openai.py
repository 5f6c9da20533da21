"""The fields routing needs from an OpenAI request body; everything else is forwarded unread."""

from __future__ import annotations

import msgspec

from llmgate.errors import InvalidRequest


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

NESTED_TOO_DEEPLY = "The JSON body of your request is nested too deeply."
NOT_UTF8 = "The JSON body of your request is not valid UTF-8."
UNDECODABLE = (RecursionError, UnicodeDecodeError)
"""What msgspec raises besides its own errors: past its nesting limit, and for bytes that are no UTF-8 in a
string it decodes (strings it skips are not checked: they are forwarded as they came, for the upstream to judge)."""


def undecodable(exc: RecursionError | UnicodeDecodeError) -> InvalidRequest:
    """The 400 for a body msgspec could not decode for a reason of its own (nesting, UTF-8)."""
    if isinstance(exc, RecursionError):
        return InvalidRequest(NESTED_TOO_DEEPLY)
    return InvalidRequest(NOT_UTF8)


_decode_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_encode = msgspec.json.Encoder().encode


def replace_model(raw: bytes, model: str) -> bytes:
    """The body with its top-level `model` set to `model`; every other value kept as raw JSON, in order.

    Only for deployments whose upstream model name differs from the alias: the common case forwards the bytes.
    """
    try:
        fields = _decode_top_level(raw)
    except UNDECODABLE as exc:  # a key the routing view skipped
        raise undecodable(exc) from None
    fields["model"] = msgspec.Raw(_encode(model))
    return _encode(fields)
