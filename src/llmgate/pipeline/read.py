"""Read a request's body under the size limit, and the fields routing needs from it (`model`, `stream`).

JSON bodies are decoded into a small view and forwarded as they came; multipart bodies (audio uploads) are
streamed up, their leading text fields sniffed from the first chunk, never buffered whole.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from llmgate.errors import InvalidRequest, PayloadTooLarge, RequestTimeout
from llmgate.proxy.asgi import Receive, incomplete_body, iter_body, read_body, too_large_message
from llmgate.proxy.deadlines import Deadlines
from llmgate.schemas.openai import UNDECODABLE, RoutingView, decode_routing_view, undecodable

if TYPE_CHECKING:
    from llmgate.pipeline.endpoints import Endpoint
    from llmgate.pipeline.request import V1Request


async def read(request: V1Request, endpoint: Endpoint, limit: int, deadlines: Deadlines) -> None:
    """Fill in `request.body`, `model`, `stream` (and `stream_options` for JSON views); 408 when the body takes longer
    than `deadlines.after_s` to arrive."""
    if endpoint.body == "none":
        return
    task = request.task
    deadlines.start(task)
    try:
        await _read(request, endpoint, limit)
    except asyncio.CancelledError:
        if not deadlines.stop(task):
            raise
        raise RequestTimeout(f"The request body did not arrive within {deadlines.after_s:g} seconds.",
                             headers={"connection": "close"}) from None
    finally:
        deadlines.stop(task)


async def _read(request: V1Request, endpoint: Endpoint, limit: int) -> None:
    kind = endpoint.body
    content_length = request.inbound.content_length
    if kind == "multipart":
        first = await read_first_chunk(request.receive, limit, content_length)
        request.model, request.stream = sniff_multipart_fields(first)
        request.body = iter_body(request.receive, first.body, limit) if first.more else first.body
    else:
        raw = request.body = await read_body(request.receive, limit, content_length)
        if kind == "view":
            view = decode_view(raw)
            request.model, request.stream, request.stream_options = view.model, view.stream is True, \
                view.stream_options
            request.user = view.user
        elif kind == "raw":
            request.model = _lenient_model(raw, request.inbound.content_type)
    exchange = request.exchange
    exchange.model, exchange.stream = request.model, request.stream
    request.stream = request.stream or endpoint.streams_response  # relayed as a stream, though not asked as one


def decode_view(raw: bytes) -> RoutingView:
    """Decode `model`/`stream`; a client's mistake becomes a 400 that names it."""
    try:
        return decode_routing_view(raw)
    except UNDECODABLE as exc:
        raise undecodable(exc) from None
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$.")
        param = where.rstrip("`") or None
        if "missing required field `model`" in message:
            raise InvalidRequest("You must provide a model parameter.", param="model") from None
        if message.startswith("Expected `object`"):
            raise InvalidRequest("The request body must be a JSON object.") from None
        raise InvalidRequest(f"Invalid value for '{param}': {message}.", param=param) from None
    except msgspec.DecodeError as exc:
        if not raw.strip():
            raise InvalidRequest("The request body is empty; expected a JSON object.") from None
        raise InvalidRequest(f"We could not parse the JSON body of your request: {exc}.") from None


def _lenient_model(raw: bytes, content_type: bytes) -> str | None:
    """The `model` of an extra route's JSON body, if it has one; anything else goes to the default provider."""
    if b"json" not in content_type:
        return None
    try:
        return decode_routing_view(raw).model
    except (msgspec.ValidationError, msgspec.DecodeError, *UNDECODABLE):
        return None


class FirstChunk(NamedTuple):
    body: bytes
    more: bool


async def read_first_chunk(receive: Receive, limit: int, content_length: int | None) -> FirstChunk:
    """The first body message, enough to find a multipart form's leading fields without buffering the file."""
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(too_large_message(limit))
    message = await receive()
    if message["type"] == "http.disconnect":
        raise incomplete_body(0)
    return FirstChunk(message.get("body", b""), message.get("more_body", False))


_FIELD = re.compile(rb'Content-Disposition: form-data; name="(model|stream)"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]*)\r\n',
                    re.IGNORECASE)


def sniff_multipart_fields(first: FirstChunk) -> tuple[str | None, bool]:
    """`model` and `stream` from the leading text fields of a multipart body (the SDKs send fields before files)."""
    fields = {name.lower(): value for name, value in _FIELD.findall(first.body[:65536])}
    model = fields.get(b"model")
    return (model.decode("utf-8", "replace") if model else None), fields.get(b"stream", b"").lower() == b"true"
