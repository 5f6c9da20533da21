"""Requests answered by an upstream of the other dialect: translate the request, send it, translate the answer.

Imported only when a request needs translation, so the passthrough path never loads llmgate.translate.
    chat_via_anthropic    POST /v1/chat/completions for a model an Anthropic provider serves
    messages_via_openai   POST /v1/messages for a model an OpenAI-compatible provider serves
A translated request goes through the same attempt loop as the passthrough (proxy/forward.py: retries,
failover, fallbacks, cooldowns, breakers, hedging, deadlines, keep-alives); proxy/translated.py says what goes
up and what comes down. An alias should not mix provider kinds: its first deployment's kind decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec

from llmgate.errors import InvalidRequest, UpstreamError
from llmgate.proxy.asgi import Receive, Send
from llmgate.proxy.forward import forward
from llmgate.proxy.headers import InboundHeaders
from llmgate.proxy.streaming import openai_error_frame
from llmgate.proxy.translated import TranslatedCall, Translation
from llmgate.routes.anthropic import anthropic_error_frame
from llmgate.routing.select import Route
from llmgate.translate.chat_stream import AnthropicEventsFromOpenAI
from llmgate.translate.chat_to_messages import TranslationError, anthropic_request, chat_completion
from llmgate.translate.errors import anthropic_error_from_openai, openai_error_from_anthropic
from llmgate.translate.messages_stream import OpenAIChunksFromAnthropic
from llmgate.translate.messages_to_chat import anthropic_message, openai_request

if TYPE_CHECKING:
    from llmgate.state import Router
    from llmgate.usage.event import Exchange

_encode = msgspec.json.Encoder().encode
# The client's headers go up too (custom and tracing headers, the SDK's x-stainless-*), except the body's
# content-type (the body is rewritten) and those that belong to the client's dialect.
_NOT_TO_ANTHROPIC = frozenset({"content-type", "openai-organization", "openai-project", "openai-beta"})
_NOT_TO_OPENAI = frozenset({"content-type", "anthropic-version", "anthropic-beta"})


def decode_json(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object; a 400 otherwise."""
    try:
        request = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"We could not parse the JSON body of your request: {exc}.") from None
    if not isinstance(request, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return request


def _translated_request(request: dict[str, Any], translate: Any) -> dict[str, Any]:
    try:
        out: dict[str, Any] = translate(request)
    except TranslationError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None
    return out


def _unusable(provider: str) -> UpstreamError:
    return UpstreamError(f"The upstream provider `{provider}` sent an answer that could not be read.")


async def chat_via_anthropic(send: Send, receive: Receive, router: Router, route: Route, inbound: InboundHeaders,
                             raw: bytes, exchange: Exchange, own_keys: dict[str, str] | None = None) -> None:
    """An OpenAI chat completion request answered by Anthropic upstreams, in OpenAI's format."""
    original = decode_json(raw)
    request = _translated_request(original, anthropic_request)
    created = int(time.time())
    stream = None
    if request.get("stream"):
        options = original.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        stream = partial(OpenAIChunksFromAnthropic, created=created, include_usage=include_usage)

    def whole(data: bytes) -> bytes:
        try:
            return _encode(chat_completion(msgspec.json.decode(data), created))
        except (msgspec.DecodeError, TranslationError):
            raise _unusable(exchange.provider or "") from None

    translation = Translation(request, "/messages", _NOT_TO_ANTHROPIC, whole, openai_error_from_anthropic, stream)
    await _forward(router, route, send, receive, inbound, raw, exchange, own_keys, translation, openai_error_frame)


async def messages_via_openai(send: Send, receive: Receive, router: Router, route: Route, inbound: InboundHeaders,
                              raw: bytes, exchange: Exchange, own_keys: dict[str, str] | None = None) -> None:
    """An Anthropic Messages request answered by OpenAI-compatible upstreams, in Anthropic's format."""
    request = _translated_request(decode_json(raw), openai_request)

    def whole(data: bytes) -> bytes:
        try:
            return _encode(anthropic_message(msgspec.json.decode(data)))
        except (msgspec.DecodeError, TranslationError):
            raise _unusable(exchange.provider or "") from None

    translation = Translation(request, "/chat/completions", _NOT_TO_OPENAI, whole, anthropic_error_from_openai,
                              AnthropicEventsFromOpenAI if request.get("stream") else None)
    await _forward(router, route, send, receive, inbound, raw, exchange, own_keys, translation,
                   anthropic_error_frame)


async def _forward(router: Router, route: Route, send: Send, receive: Receive, inbound: InboundHeaders, raw: bytes,
                   exchange: Exchange, own_keys: dict[str, str] | None, translation: Translation,
                   error_frame: Callable[[bytes], bytes]) -> None:
    """Through proxy/forward.py's attempt loop: retries, failover, fallbacks, deadlines, keep-alives."""
    call = TranslatedCall(router, send, receive, inbound, raw, exchange, str(translation.request.get("model")),
                          translation)
    call.error_frame = error_frame
    if own_keys:
        call.own_keys = own_keys
    await forward(call, route)
