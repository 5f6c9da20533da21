"""Requests whose answer is translated into the other dialect: they go through the same attempt loop as the
passthrough (proxy/forward.py: retries, failover, fallbacks, cooldowns, breakers, hedging, deadlines,
keep-alives), with `TranslatedCall` saying what goes up and `deliver_translated` what comes down.

The passthrough path relays bytes untouched; this one hands the upstream's answer to a translator first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from llmgate.errors import GatewayError
from llmgate.proxy.asgi import Headers, Receive, Send, send_response
from llmgate.proxy.attempt import Call, ClientPools, Opened
from llmgate.proxy.client import TRANSPORT_ERRORS
from llmgate.proxy.headers import InboundHeaders, downstream_headers
from llmgate.proxy.streaming import broken_stream, end_with_error
from llmgate.usage.event import Exchange

if TYPE_CHECKING:
    from llmgate.routing.keys import KeyState
    from llmgate.routing.select import Deployment

RawHeaders = list[tuple[bytes, bytes]]
TranslateBody = Callable[[int, bytes], tuple[int, bytes]]
"""(upstream status, upstream body) → (status, body) in the caller's dialect."""

_JSON, _SSE = b"application/json", b"text/event-stream"
# Describe the upstream's body, not ours: dropped from a translated answer.
_BODY_HEADERS = frozenset({b"content-length", b"content-type", b"content-encoding", b"etag"})
_encode = msgspec.json.Encoder().encode


class StreamTranslator(Protocol):
    """Upstream SSE bytes in, the caller's SSE bytes out (translate/messages_stream.py, translate/chat_stream.py)."""

    def feed(self, data: bytes) -> bytes: ...
    def close(self) -> bytes: ...
    def fail(self, message: str) -> bytes: ...


class Translation:
    """One request's translation: the upstream request, and how its answer comes back."""

    __slots__ = ("drop", "error", "meters_output", "path", "request", "stream", "whole")

    def __init__(self, request: dict[str, Any], path: str, drop: frozenset[str],
                 whole: Callable[[bytes], bytes], error: TranslateBody,
                 stream: Callable[[str], StreamTranslator] | None, meters_output: bool = False) -> None:
        self.request = request
        """The translated request; its `model` is set per deployment."""
        self.path = path
        """The upstream endpoint, e.g. `/messages`."""
        self.drop = drop
        """Caller's headers that must not go up (they belong to the caller's dialect)."""
        self.whole = whole
        """A 200 body → the caller's body; raises UpstreamError when the upstream's answer cannot be read."""
        self.error = error
        self.stream = stream
        """A stream's translator for the upstream model name; None when not streaming."""
        self.meters_output = meters_output
        """The usage meter reads the translated answer (the upstream's dialect is one it cannot read); a
        stream's translator then reports its usage in `usage` when it closes."""


class TranslatedCall(Call):
    """A Call whose upstream request is the translation, re-encoded for each deployment's model name."""

    __slots__ = ("_bodies",)

    def __init__(self, upstreams: ClientPools, send: Send, receive: Receive, task: asyncio.Task[object],
                 inbound: InboundHeaders, body: bytes, exchange: Exchange, model: str,
                 translation: Translation) -> None:
        super().__init__(upstreams, send, receive, task, "POST", translation.path, "", inbound, body, exchange, model,
                         translation.stream is not None, "chat", is_json=False)
        self.translation: Translation = translation
        self._bodies: dict[str, bytes] = {}

    def model_for(self, deployment: Deployment) -> str:
        return deployment.upstream_model or self.model or ""

    def upstream_path(self, deployment: Deployment) -> str:
        return deployment.provider.upstream_path(self.translation.path, "", self.model_for(deployment))

    def upstream_headers(self, deployment: Deployment, key: KeyState) -> list[tuple[str, str]]:
        provider = deployment.provider
        own = self.own_keys.get(provider.name) if self.own_keys else None
        auth = provider.auth_headers(own) if own else key.auth_headers
        return translated_request_headers(self.inbound, self.translation.drop, self.request_id,
                                          (*provider.default_headers, *auth))

    async def deliver(self, opened: Opened, extra: Headers) -> GatewayError | None:
        return await deliver_translated(self, opened, extra)

    def upstream_body(self, deployment: Deployment) -> bytes:
        model = self.model_for(deployment)
        body = self._bodies.get(model)
        if body is None:
            self.translation.request["model"] = model
            body = self._bodies[model] = _encode(self.translation.request)
        return body


def translated_request_headers(inbound: InboundHeaders, drop: frozenset[str], request_id: bytes,
                               provider_headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The caller's headers minus its dialect's and the body's, the provider's (auth, version) where the caller
    sent none, a JSON content type and our request id."""
    headers = [(name, value) for name, value in inbound.forward if name not in drop]
    sent = {name for name, _ in headers}
    headers.extend(header for header in provider_headers if header[0] not in sent)
    headers.append(("content-type", "application/json"))
    headers.append(("x-client-request-id", request_id.decode("latin-1")))
    return headers


def translated_headers(upstream: list[tuple[bytes, bytes]], exchange: Exchange,
                       content_type: bytes) -> RawHeaders:
    """The upstream's headers (as proxy/headers.py rewrites them) minus those describing its body; the
    upstream's request id noted in `exchange`."""
    headers, exchange.upstream_request_id = downstream_headers(upstream, exchange.request_id)
    out = [(name, value) for name, value in headers if name not in _BODY_HEADERS]
    out.append((b"content-type", content_type))
    return out


async def deliver_translated(call: TranslatedCall, opened: Opened, extra: Headers) -> GatewayError | None:
    """Send the chosen answer, translated; `extra`: the gateway's own headers. Returns a mid-stream failure."""
    translation, exchange = call.translation, call.exchange
    reply = opened.reply
    if reply is None:
        if opened.status == 200:
            status, body = 200, translation.whole(opened.body)
            if exchange.meter is not None:  # the upstream's usage, in its dialect (or ours)
                exchange.meter.whole(body if translation.meters_output else opened.body)
        else:
            status, body = translation.error(opened.status, opened.body)
        exchange.status = status
        await send_response(call.send, status, [*translated_headers(opened.headers, exchange, _JSON), *extra], body)
        return None
    guard = call.guard
    assert guard is not None and translation.stream is not None
    if opened.status != 200:
        status, body = translation.error(opened.status, opened.body + await reply.read())
        exchange.status = status
        if guard.started:  # keep-alives went out as a 200
            await end_with_error(call.send, guard, body)
        else:
            await send_response(call.send, status, [*translated_headers(opened.headers, exchange, _JSON), *extra],
                                body)
        return None
    return await _relay(call, opened, translation.stream(call.model_for(opened.deployment)), extra)


async def _relay(call: TranslatedCall, opened: Opened, translator: StreamTranslator,
                 extra: Headers) -> GatewayError | None:
    guard, send, exchange = call.guard, call.send, call.exchange
    assert guard is not None and opened.reply is not None
    meter = exchange.meter
    exchange.status = 200
    try:
        await guard.first_chunk()
        if not guard.started:
            guard.started = True
            await send({"type": "http.response.start", "status": 200,
                        "headers": [*translated_headers(opened.headers, exchange, _SSE), *extra]})
        next_chunk = opened.reply.next_chunk
        chunk = opened.body
        upstream_meter = meter if not call.translation.meters_output else None
        while chunk:
            if upstream_meter is not None:
                upstream_meter.feed(chunk)
            if out := translator.feed(chunk):
                if meter is not None and upstream_meter is None:
                    meter.feed(out)
                await send({"type": "http.response.body", "body": out, "more_body": True})
            guard.progress()
            chunk = await next_chunk()
        tail = translator.close()
        if meter is not None and upstream_meter is None:
            meter.feed(tail)
            if (usage := getattr(translator, "usage", None)) is not None:
                meter.reported(usage)
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        return None
    except (asyncio.CancelledError, *TRANSPORT_ERRORS) as exc:
        error = broken_stream(exc, guard)
    await send({"type": "http.response.body", "body": translator.fail(error.message), "more_body": False})
    return error
