"""Requests answered by an upstream of the other dialect: translate the request, send it, translate the answer.

Imported only when a request needs translation, so the passthrough path never loads llmgate.translate.
    chat_via_anthropic    POST /v1/chat/completions for a model an Anthropic provider serves
    messages_via_openai   POST /v1/messages for a model an OpenAI-compatible provider serves
A translated request gets one attempt on the deployment and key routing picks (no retries or failover yet:
those live in proxy/forward.py's byte-passthrough loop).
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from llmgate.errors import InvalidRequest, NoHealthyDeployment, UpstreamError
from llmgate.proxy.asgi import Receive, Send
from llmgate.proxy.client import UpstreamClient
from llmgate.proxy.headers import InboundHeaders
from llmgate.proxy.translated import exchange_translated, relay_translated
from llmgate.routing.select import Route, choose, choose_last_resort
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


class Target(NamedTuple):
    """Where one translated request goes: the client, the upstream path, its auth headers and model name."""

    client: UpstreamClient
    path: str
    headers: tuple[tuple[str, str], ...]
    model: str
    deployment: str


def pick_target(router: Router, route: Route, capability: str, path: str, model: str,
                own_keys: dict[str, str] | None = None) -> Target:
    """The deployment and key routing would try first for `capability` (a resting key as a last resort);
    `own_keys`: the caller's project's upstream keys by provider, used instead of the provider's."""
    entries = route.by_capability.get(capability) or ()
    now = time.monotonic()
    pick = choose(entries, now, (), random.random) or choose_last_resort(entries, now)
    if pick is None:
        raise NoHealthyDeployment(f"No healthy deployment can serve `{route.name}` right now.")
    deployment, key = pick
    upstream_model = deployment.upstream_model or model
    provider = deployment.provider
    own = own_keys.get(provider.name) if own_keys else None
    auth = provider.auth_headers(own) if own else key.auth_headers
    return Target(router.clients[provider.name], provider.upstream_path(path, "", upstream_model),
                  (*provider.default_headers, *auth), upstream_model, deployment.name)


def _upstream_headers(inbound: InboundHeaders, drop: frozenset[str], exchange: Exchange,
                      target: Target) -> list[tuple[str, str]]:
    """The headers to send upstream (noting the chosen deployment in `exchange`)."""
    exchange.deployment, exchange.provider, exchange.attempts = target.deployment, target.client.provider.name, 1
    request_id = exchange.request_id
    headers = [(name, value) for name, value in inbound.forward if name not in drop]
    sent = {name for name, _ in headers}
    headers.extend(header for header in target.headers if header[0] not in sent)
    headers.append(("content-type", "application/json"))
    headers.append(("x-client-request-id", request_id.decode("latin-1")))
    return headers


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


def _unusable(client: UpstreamClient) -> UpstreamError:
    return UpstreamError(f"The upstream provider `{client.provider.name}` sent an answer that could not be read.")


async def chat_via_anthropic(send: Send, receive: Receive, router: Router, route: Route, inbound: InboundHeaders,
                             raw: bytes, exchange: Exchange, own_keys: dict[str, str] | None = None) -> None:
    """An OpenAI chat completion request answered by an Anthropic upstream, in OpenAI's format."""
    original = decode_json(raw)
    request = _translated_request(original, anthropic_request)
    target = pick_target(router, route, "chat", "/messages", str(request.get("model")), own_keys)
    request["model"] = target.model
    client = target.client
    headers = _upstream_headers(inbound, _NOT_TO_ANTHROPIC, exchange, target)
    created = int(time.time())
    if request.get("stream"):
        options = original.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        translator = OpenAIChunksFromAnthropic(str(request.get("model")), created, include_usage)
        await relay_translated(send, receive, client, target.path, headers, _encode(request), exchange,
                               translator, openai_error_from_anthropic)
        return

    def translate(status: int, data: bytes) -> tuple[int, bytes]:
        if status != 200:
            return openai_error_from_anthropic(status, data)
        try:
            return 200, _encode(chat_completion(msgspec.json.decode(data), created))
        except (msgspec.DecodeError, TranslationError):
            raise _unusable(client) from None

    await exchange_translated(send, receive, client, target.path, headers, _encode(request), exchange, translate)


async def messages_via_openai(send: Send, receive: Receive, router: Router, route: Route, inbound: InboundHeaders,
                              raw: bytes, exchange: Exchange, own_keys: dict[str, str] | None = None) -> None:
    """An Anthropic Messages request answered by an OpenAI-compatible upstream, in Anthropic's format."""
    request = _translated_request(decode_json(raw), openai_request)
    target = pick_target(router, route, "chat", "/chat/completions", str(request.get("model")), own_keys)
    request["model"] = target.model
    client = target.client
    headers = _upstream_headers(inbound, _NOT_TO_OPENAI, exchange, target)
    if request.get("stream"):
        translator = AnthropicEventsFromOpenAI(str(request.get("model")))
        await relay_translated(send, receive, client, target.path, headers, _encode(request), exchange,
                               translator, anthropic_error_from_openai)
        return

    def translate(status: int, data: bytes) -> tuple[int, bytes]:
        if status != 200:
            return anthropic_error_from_openai(status, data)
        try:
            return 200, _encode(anthropic_message(msgspec.json.decode(data)))
        except (msgspec.DecodeError, TranslationError):
            raise _unusable(client) from None

    await exchange_translated(send, receive, client, target.path, headers, _encode(request), exchange,
                              translate)
