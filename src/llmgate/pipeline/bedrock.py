"""Calls answered by AWS Bedrock's Converse API: OpenAI chat (and, through chat, Anthropic Messages) translated
on the way up, Converse's answer translated back on the way down. Imported only when a request goes to a
Bedrock deployment (it loads botocore's event-stream decoder).

    chat_via_bedrock       POST /v1/chat/completions  → /model/{id}/converse[-stream]
    messages_via_bedrock   POST /v1/messages          → messages → chat → converse, and back the same way
The request goes through the same attempt loop as every other (proxy/forward.py); the client signs it
(proxy/sigv4.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from llmgate.errors import UpstreamError
from llmgate.pipeline.local import decode_json
from llmgate.pipeline.translate import _translated_request
from llmgate.proxy.attempt import FailureKind
from llmgate.proxy.client import RawHeaders
from llmgate.proxy.translated import StreamTranslator, TranslatedCall, Translation
from llmgate.translate.chat_stream import AnthropicEventsFromOpenAI
from llmgate.translate.chat_to_messages import TranslationError
from llmgate.translate.converse import chat_completion, converse_request, openai_error_from_bedrock
from llmgate.translate.converse_stream import OpenAIChunksFromConverse
from llmgate.translate.errors import anthropic_error_from_openai
from llmgate.translate.messages_to_chat import anthropic_message, openai_request
from llmgate.usage.meter import TokenUsage

if TYPE_CHECKING:
    from llmgate.pipeline.request import V1Request
    from llmgate.routing.select import Deployment
    from llmgate.upstreams import Upstreams
    from llmgate.usage.event import Exchange

_encode = msgspec.json.Encoder().encode
# The caller's dialect's headers, the body's content type and `accept` (the SDKs' application/json would not
# describe an event stream) stay here.
_NOT_TO_BEDROCK = frozenset({"content-type", "accept", "openai-organization", "openai-project", "openai-beta",
                             "anthropic-version", "anthropic-beta"})
_PASSED_ON = frozenset((b"ModelNotReadyException", b"AccessDeniedException"))


class BedrockCall(TranslatedCall):
    """A translated call whose body has no model (it is in the URL) and whose errors are told apart by name."""

    __slots__ = ()

    def upstream_body(self, deployment: Deployment) -> bytes:
        body = self._bodies.get("")
        if body is None:
            body = self._bodies[""] = _encode(self.translation.request)
        return body

    def refine_failure(self, kind: FailureKind, headers: RawHeaders) -> FailureKind | None:
        """ModelNotReadyException (a 429) is transient: the model is loading, not the credentials' rate limit;
        AccessDeniedException (403: the model not enabled for the account) is the answer, not a bad key."""
        if kind in ("rate_limited", "bad_key"):
            name = next((value for key, value in headers if key == b"x-amzn-errortype"), b"").partition(b":")[0]
            if name in _PASSED_ON:
                return "server" if name == b"ModelNotReadyException" else None
        return kind


def _whole(exchange: Exchange, translate: Callable[[Any], Any]) -> Callable[[bytes], bytes]:
    def whole(data: bytes) -> bytes:
        try:
            return _encode(translate(msgspec.json.decode(data)))
        except (msgspec.DecodeError, TranslationError, AttributeError):
            raise UpstreamError(f"The upstream provider `{exchange.provider or ''}` sent an answer that could not be "
                                "read.") from None

    return whole


def _stream(request: V1Request, include_usage: bool, created: int) -> Callable[[str], OpenAIChunksFromConverse]:
    """The stream translator's factory; chunks name the model the caller asked for, as whole answers do (a
    Converse answer names none)."""
    exchange = request.exchange
    model = request.model or ""

    def reported(usage: dict[str, Any]) -> None:
        if exchange.meter is not None:
            cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
            exchange.meter.reported(TokenUsage(usage["prompt_tokens"], usage["completion_tokens"],
                                               usage["total_tokens"], cached))

    def translator(_upstream_model: str) -> OpenAIChunksFromConverse:
        return OpenAIChunksFromConverse(model, created, include_usage, reported)

    return translator


def chat_via_bedrock(request: V1Request, upstreams: Upstreams) -> TranslatedCall:
    """An OpenAI chat completion request answered by Bedrock, in OpenAI's format."""
    assert isinstance(request.body, bytes)
    original = decode_json(request.body)
    converse = _translated_request(original, converse_request)
    created = int(time.time())
    model = request.model or ""
    stream = None
    if original.get("stream") is True:
        options = original.get("stream_options")
        stream = _stream(request, isinstance(options, dict) and options.get("include_usage") is True, created)
    whole = _whole(request.exchange, lambda answer: chat_completion(answer, model, created))
    translation = Translation(converse, "/converse-stream" if stream else "/converse", _NOT_TO_BEDROCK, whole,
                              openai_error_from_bedrock, stream)
    return _call(request, upstreams, translation)


def messages_via_bedrock(request: V1Request, upstreams: Upstreams) -> TranslatedCall:
    """An Anthropic Messages request answered by Bedrock (through OpenAI chat), in Anthropic's format."""
    assert isinstance(request.body, bytes)
    chat = _translated_request(decode_json(request.body), openai_request)
    converse = _translated_request(chat, converse_request)
    created = int(time.time())
    model = request.model or ""
    stream = _anthropic_stream(request, created) if chat.get("stream") is True else None

    def whole(answer: Any) -> Any:
        return anthropic_message(chat_completion(answer, model, created))

    def error(status: int, body: bytes) -> tuple[int, bytes]:
        return anthropic_error_from_openai(*openai_error_from_bedrock(status, body))

    translation = Translation(converse, "/converse-stream" if stream else "/converse", _NOT_TO_BEDROCK,
                              _whole(request.exchange, whole), error, stream)
    return _call(request, upstreams, translation)


def _anthropic_stream(request: V1Request, created: int) -> Callable[[str], StreamTranslator]:
    chunks = _stream(request, True, created)
    model = request.model or ""

    def translator(upstream_model: str) -> StreamTranslator:
        return Chained(chunks(upstream_model), AnthropicEventsFromOpenAI(model))

    return translator


class Chained:
    """Two stream translators in a row: Converse → OpenAI chunks → Anthropic events."""

    __slots__ = ("first", "second")

    def __init__(self, first: StreamTranslator, second: StreamTranslator) -> None:
        self.first, self.second = first, second

    def feed(self, data: bytes) -> bytes:
        middle = self.first.feed(data)
        return self.second.feed(middle) if middle else b""

    def close(self) -> bytes:
        return self.second.feed(self.first.close()) + self.second.close()

    def fail(self, message: str) -> bytes:
        return self.second.fail(message)


def _call(request: V1Request, upstreams: Upstreams, translation: Translation) -> TranslatedCall:
    assert isinstance(request.body, bytes)
    call = BedrockCall(upstreams, request.send, request.receive, request.task, request.inbound, request.body,
                       request.exchange, request.model or "", translation)
    call.error_frame = request.dialect.error_frame
    return call
