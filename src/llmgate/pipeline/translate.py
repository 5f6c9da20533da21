"""Calls whose upstream speaks the other dialect: the request translated on the way up, the answer on the way
down. Imported only when a request needs translation, so the passthrough never loads llmgate.translate.

    chat_via_anthropic    POST /v1/chat/completions for a model an Anthropic provider serves
    messages_via_openai   POST /v1/messages for a model an OpenAI-compatible provider serves
A translated call goes through the same attempt loop as the passthrough (proxy/forward.py); proxy/translated.py
says what goes up and what comes down. An alias should not mix provider kinds: its first deployment's decides.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec

from llmgate.errors import InvalidRequest, UpstreamError
from llmgate.pipeline.local import decode_json
from llmgate.proxy.translated import TranslatedCall, Translation
from llmgate.translate.chat_stream import AnthropicEventsFromOpenAI
from llmgate.translate.chat_to_messages import TranslationError, anthropic_request, chat_completion
from llmgate.translate.errors import anthropic_error_from_openai, openai_error_from_anthropic
from llmgate.translate.messages_stream import OpenAIChunksFromAnthropic
from llmgate.translate.messages_to_chat import anthropic_message, openai_request

if TYPE_CHECKING:
    from llmgate.pipeline.request import V1Request
    from llmgate.upstreams import Upstreams

_encode = msgspec.json.Encoder().encode
# The client's headers go up too (custom and tracing headers, the SDK's x-stainless-*), except the body's
# content-type (the body is rewritten) and those that belong to the client's dialect.
_NOT_TO_ANTHROPIC = frozenset({"content-type", "openai-organization", "openai-project", "openai-beta"})
_NOT_TO_OPENAI = frozenset({"content-type", "anthropic-version", "anthropic-beta"})


def _translated_request(request: dict[str, Any], translate: Any) -> dict[str, Any]:
    try:
        out: dict[str, Any] = translate(request)
    except TranslationError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None
    return out


def _unusable(provider: str) -> UpstreamError:
    return UpstreamError(f"The upstream provider `{provider}` sent an answer that could not be read.")


def chat_via_anthropic(request: V1Request, upstreams: Upstreams) -> TranslatedCall:
    """An OpenAI chat completion request answered by Anthropic upstreams, in OpenAI's format."""
    assert isinstance(request.body, bytes)
    original = decode_json(request.body)
    translated = _translated_request(original, anthropic_request)
    created = int(time.time())
    exchange = request.exchange
    stream = None
    if translated.get("stream"):
        options = original.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        stream = partial(OpenAIChunksFromAnthropic, created=created, include_usage=include_usage)

    def whole(data: bytes) -> bytes:
        try:
            return _encode(chat_completion(msgspec.json.decode(data), created))
        except (msgspec.DecodeError, TranslationError):
            raise _unusable(exchange.provider or "") from None

    translation = Translation(translated, "/messages", _NOT_TO_ANTHROPIC, whole, openai_error_from_anthropic, stream)
    return _call(request, upstreams, translation)


def messages_via_openai(request: V1Request, upstreams: Upstreams) -> TranslatedCall:
    """An Anthropic Messages request answered by OpenAI-compatible upstreams, in Anthropic's format."""
    assert isinstance(request.body, bytes)
    translated = _translated_request(decode_json(request.body), openai_request)
    exchange = request.exchange

    def whole(data: bytes) -> bytes:
        try:
            return _encode(anthropic_message(msgspec.json.decode(data)))
        except (msgspec.DecodeError, TranslationError):
            raise _unusable(exchange.provider or "") from None

    translation = Translation(translated, "/chat/completions", _NOT_TO_OPENAI, whole, anthropic_error_from_openai,
                              AnthropicEventsFromOpenAI if translated.get("stream") else None)
    return _call(request, upstreams, translation)


def _call(request: V1Request, upstreams: Upstreams, translation: Translation) -> TranslatedCall:
    assert isinstance(request.body, bytes)
    call = TranslatedCall(upstreams, request.send, request.receive, request.task, request.inbound, request.body,
                          request.exchange, str(translation.request.get("model")), translation)
    call.error_frame = request.dialect.error_frame
    if request.entry is not None and request.entry.upstream_keys:
        call.own_keys = request.entry.upstream_keys
    return call
