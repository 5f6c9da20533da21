"""Calls whose upstream is Google's (providers of kind `gemini` and `vertex`): the request translated on the way
up, the answer on the way down. Imported only when such a request comes.

    chat_via_google       POST /v1/chat/completions  → Gemini generateContent (Claude on Vertex: rawPredict)
    embeddings_via_google POST /v1/embeddings        → Gemini batchEmbedContents (Vertex: predict)
    messages_via_google   POST /v1/messages          → the same, from Anthropic's Messages API (Claude on Vertex
                                                       natively, Gemini through OpenAI chat's translation)
    count_tokens_via_google  POST /v1/messages/count_tokens → Gemini countTokens (Claude on Vertex: counted here)
The provider kind and the model of the route's first deployment decide the dialect: an alias should not mix
them (as for the other translated calls, pipeline/translate.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec

from llmgate.errors import InvalidRequest, UpstreamError
from llmgate.pipeline.local import decode_json
from llmgate.providers.vertex import ANTHROPIC_VERSION, is_anthropic_model
from llmgate.proxy.google import GoogleCall
from llmgate.proxy.translated import Translation
from llmgate.translate import gemini_request as to_gemini
from llmgate.translate import gemini_response as from_gemini
from llmgate.translate.chat_stream import AnthropicEventsFromOpenAI
from llmgate.translate.chat_to_messages import TranslationError, anthropic_request
from llmgate.translate.chat_to_messages import chat_completion as chat_from_anthropic
from llmgate.translate.errors import anthropic_error_from_openai, openai_error_from_anthropic
from llmgate.translate.gemini_stream import OpenAIChunksFromGemini
from llmgate.translate.messages_stream import OpenAIChunksFromAnthropic
from llmgate.translate.messages_to_chat import anthropic_message, convert_messages, convert_tools, openai_request

if TYPE_CHECKING:
    from llmgate.pipeline.request import V1Request
    from llmgate.routing.select import Route
    from llmgate.upstreams import Upstreams

Json = dict[str, Any]
_encode = msgspec.json.Encoder().encode
# The client's headers go up too (custom and tracing headers), except the body's content-type and those of the
# client's own dialect.
_DROP = frozenset({"content-type", "openai-organization", "openai-project", "openai-beta", "anthropic-version",
                   "anthropic-beta"})
_DROP_FOR_CLAUDE = _DROP - {"anthropic-beta"}


def _checked(translate: Callable[[], Any]) -> Any:
    try:
        return translate()
    except TranslationError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None


def _reader(request: V1Request, translate: Callable[[Any], Json]) -> Callable[[bytes], bytes]:
    """A 200 body → the client's, or a 502 naming the provider when it cannot be read."""
    exchange = request.exchange

    def whole(data: bytes) -> bytes:
        try:
            return _encode(translate(msgspec.json.decode(data)))
        except (msgspec.DecodeError, TranslationError):
            raise UpstreamError(f"The upstream provider `{exchange.provider or ''}` sent an answer that could not "
                                "be read.") from None

    return whole


def openai_error_from_vertex(status: int, body: bytes) -> tuple[int, bytes]:
    """Claude on Vertex answers Anthropic's errors, but Vertex's own (quota, auth) are Google's."""
    if b'"type":"error"' in body.replace(b" ", b""):
        return openai_error_from_anthropic(status, body)
    return from_gemini.openai_error_from_google(status, body)


ErrorTranslator = Callable[[int, bytes], tuple[int, bytes]]


def _anthropic_error(openai_error: ErrorTranslator) -> ErrorTranslator:
    return lambda status, body: anthropic_error_from_openai(*openai_error(status, body))


class _Piped:
    """Two stream translators in a row (Gemini → OpenAI chunks → Anthropic events)."""

    __slots__ = ("_first", "_second")

    def __init__(self, first: OpenAIChunksFromGemini, second: AnthropicEventsFromOpenAI) -> None:
        self._first, self._second = first, second

    @property
    def usage(self) -> Any:
        return self._first.usage

    def feed(self, data: bytes) -> bytes:
        return self._second.feed(self._first.feed(data))

    def close(self) -> bytes:
        return self._second.feed(self._first.close()) + self._second.close()

    def fail(self, message: str) -> bytes:
        return self._second.fail(message)


def _upstream_model(route: Route, request: V1Request) -> str:
    deployment = route.entries[0][0]
    return deployment.upstream_model or request.model or ""


def _is_claude_on_vertex(route: Route, request: V1Request) -> bool:
    return route.dialect("chat") == "vertex" and is_anthropic_model(_upstream_model(route, request))


def counts_tokens_here(route: Route, request: V1Request) -> bool:
    """Claude on Vertex has no countTokens of Google's: its `count_tokens` is counted with tiktoken here."""
    return _is_claude_on_vertex(route, request)


def _call(request: V1Request, upstreams: Upstreams, translation: Translation, capability: str,
          build: Callable[[str], Json], query: str = "") -> GoogleCall:
    assert isinstance(request.body, bytes)
    call = GoogleCall(upstreams, request.send, request.receive, request.task, request.inbound, request.body,
                      request.exchange, request.model or "", translation, capability, build, query)
    call.error_frame = request.dialect.error_frame
    if request.entry is not None and request.entry.upstream_keys:
        call.own_keys = request.entry.upstream_keys
    return call


def _claude_body(messages_request: Json) -> Callable[[str], Json]:
    body = {key: value for key, value in messages_request.items() if key != "model"}
    body["anthropic_version"] = ANTHROPIC_VERSION
    return lambda _model: body


def _method(stream: bool, claude: bool) -> tuple[str, str]:
    if claude:
        return (":streamRawPredict", "") if stream else (":rawPredict", "")
    return (":streamGenerateContent", "alt=sse") if stream else (":generateContent", "")


def chat_via_google(request: V1Request, upstreams: Upstreams, route: Route) -> GoogleCall:
    """An OpenAI chat completion request answered by Gemini (or Claude on Vertex), in OpenAI's format."""
    assert isinstance(request.body, bytes)
    original = decode_json(request.body)
    stream = original.get("stream") is True
    options = original.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    created = int(time.time())
    claude = _is_claude_on_vertex(route, request)
    path, query = _method(stream, claude)
    if claude:
        body = _checked(lambda: anthropic_request(original))
        translation = Translation({}, path, _DROP, _reader(request, lambda m: chat_from_anthropic(m, created)),
                                  openai_error_from_vertex,
                                  partial(OpenAIChunksFromAnthropic, created=created, include_usage=include_usage)
                                  if stream else None)
        return _call(request, upstreams, translation, "chat", _claude_body(body))
    body = _checked(lambda: to_gemini.gemini_request(original))
    model = request.model or ""
    whole = _reader(request, lambda r: from_gemini.chat_completion(r, model, created))
    translation = Translation({}, path, _DROP, whole, from_gemini.openai_error_from_google,
                              partial(OpenAIChunksFromGemini, created=created, include_usage=include_usage)
                              if stream else None, meters_output=True)
    return _call(request, upstreams, translation, "chat", lambda _model: body, query)


def embeddings_via_google(request: V1Request, upstreams: Upstreams, route: Route) -> GoogleCall:
    """An OpenAI embeddings request answered by Gemini's batchEmbedContents or Vertex AI's predict."""
    assert isinstance(request.body, bytes)
    original = decode_json(request.body)
    texts, dimensions = _checked(lambda: to_gemini.embedding_inputs(original))
    model, encoding = request.model or "", original.get("encoding_format")
    if route.dialect("embeddings") == "vertex":
        body = to_gemini.vertex_embed_request(texts, dimensions)
        translation = Translation({}, ":predict", _DROP, _reader(
            request, lambda r: from_gemini.vertex_embeddings(r, model, encoding)),
            from_gemini.openai_error_from_google, None, meters_output=True)
        return _call(request, upstreams, translation, "embeddings", lambda _model: body)
    translation = Translation({}, ":batchEmbedContents", _DROP, _reader(
        request, lambda r: from_gemini.gemini_embeddings(r, model, encoding)),
        from_gemini.openai_error_from_google, None, meters_output=True)
    return _call(request, upstreams, translation, "embeddings",
                 lambda upstream: to_gemini.batch_embed_request(texts, dimensions, upstream))


def messages_via_google(request: V1Request, upstreams: Upstreams, route: Route) -> GoogleCall:
    """An Anthropic Messages request answered by Claude on Vertex (as it is) or by Gemini (through chat)."""
    assert isinstance(request.body, bytes)
    original = decode_json(request.body)
    stream = original.get("stream") is True
    if _is_claude_on_vertex(route, request):
        path, _ = _method(stream, True)
        translation = Translation({}, path, _DROP_FOR_CLAUDE, lambda data: data,
                                  anthropic_error_from_vertex, _Passthrough if stream else None)
        return _call(request, upstreams, translation, "chat", _claude_body(original))
    chat = _checked(lambda: openai_request(original))
    body = _checked(lambda: to_gemini.gemini_request(chat))
    model, created = request.model or "", int(time.time())
    path, query = _method(stream, False)

    def piped(upstream_model: str) -> _Piped:
        return _Piped(OpenAIChunksFromGemini(upstream_model, created, True), AnthropicEventsFromOpenAI(model))

    translation = Translation({}, path, _DROP, _reader(
        request, lambda r: anthropic_message(from_gemini.chat_completion(r, model, created))),
        _anthropic_error(from_gemini.openai_error_from_google), piped if stream else None, meters_output=True)
    return _call(request, upstreams, translation, "chat", lambda _model: body, query)


def count_tokens_via_google(request: V1Request, upstreams: Upstreams, route: Route) -> GoogleCall:
    """Anthropic's `count_tokens` for a Gemini model: Google's own `countTokens`, as `{"input_tokens": n}`."""
    assert isinstance(request.body, bytes)
    original = decode_json(request.body)

    def prompt() -> Json:
        chat: Json = {"messages": convert_messages(original.get("system"), original.get("messages"))}
        if original.get("tools"):
            chat["tools"] = convert_tools(original["tools"])
        body = to_gemini.gemini_request(chat)
        body.pop("generationConfig", None)
        return body

    body = _checked(prompt)
    translation = Translation({}, ":countTokens", _DROP, _reader(request, _input_tokens),
                              _anthropic_error(from_gemini.openai_error_from_google), None)
    if route.dialect("chat") == "vertex":  # Vertex's countTokens takes the prompt's fields as they are
        return _call(request, upstreams, translation, "chat", lambda _model: body)
    # Gemini's takes system instructions and tools only inside a generateContentRequest naming the model
    return _call(request, upstreams, translation, "chat",
                 lambda upstream: {"generateContentRequest": {"model": f"models/{upstream}", **body}})


def _input_tokens(answer: Any) -> Json:
    total = answer.get("totalTokens") if isinstance(answer, dict) else None
    if not isinstance(total, int):
        raise TranslationError("The upstream's answer is not a countTokens response.")
    return {"input_tokens": total}


def anthropic_error_from_vertex(status: int, body: bytes) -> tuple[int, bytes]:
    """For an Anthropic client of Claude on Vertex: Anthropic's errors as they are, Vertex's own translated."""
    if b'"type":"error"' in body.replace(b" ", b""):
        return status, body
    return anthropic_error_from_openai(*from_gemini.openai_error_from_google(status, body))


class _Passthrough:
    """Claude's stream on Vertex is already the Messages API's: relayed as it comes."""

    __slots__ = ()

    def __init__(self, _model: str) -> None:
        pass

    def feed(self, data: bytes) -> bytes:
        return data

    def close(self) -> bytes:
        return b""

    def fail(self, message: str) -> bytes:
        from llmgate.translate.errors import anthropic_stream_error

        return anthropic_stream_error(message)


def via_google(request: V1Request, upstreams: Upstreams, route: Route) -> GoogleCall:
    """The call for `request` on a route a Google provider serves; 400 for endpoints Google has no match for."""
    if request.path == "/chat/completions":
        return chat_via_google(request, upstreams, route)
    if request.path == "/embeddings":
        return embeddings_via_google(request, upstreams, route)
    if request.path == "/messages":
        return messages_via_google(request, upstreams, route)
    raise InvalidRequest(f"/v1{request.path} is not available for models served by a Google provider; "
                         "use /v1/chat/completions, /v1/embeddings or /v1/messages.")
