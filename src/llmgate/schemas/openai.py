"""The fields routing needs from an OpenAI request body; everything else is forwarded unread."""

from __future__ import annotations

import msgspec


class RoutingView(msgspec.Struct, frozen=True):
    """`model` and `stream`: decoded from the raw bytes, which are forwarded untouched."""

    model: str
    stream: bool | None = None


decode_routing_view = msgspec.json.Decoder(RoutingView).decode
