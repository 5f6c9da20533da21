"""Which deployments serve a request, and how: passed through in the caller's dialect, translated into the
other one, or (Anthropic's `count_tokens` for an OpenAI-compatible provider) answered here. Pure: no I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec

from llmgate.errors import InvalidRequest, ModelNotFound
from llmgate.pipeline.dialects import ANTHROPIC
from llmgate.pipeline.local import answer_count_tokens
from llmgate.providers.registry import GOOGLE_KINDS
from llmgate.proxy.attempt import Call

if TYPE_CHECKING:
    from llmgate.pipeline.endpoints import Answer, Endpoint
    from llmgate.pipeline.request import V1Request
    from llmgate.routing.select import Route
    from llmgate.upstreams import Upstreams

COUNT_TOKENS = "/messages/count_tokens"
_TRANSLATED = {"anthropic": "an Anthropic", "bedrock": "a Bedrock"}
"""Provider kinds whose chat requests are translated (the others are passed through)."""


Admission = Literal["request", "model", "none"]
"""What a virtual token is checked for: its model and limits (the request counted); its model alone (counting
tokens is free); nothing (the model list, /v1/token-count)."""


class Forwarded(msgspec.Struct, frozen=True, gc=False):
    """Served by `call` on `route`'s deployments (retries, failover, fallbacks). A Struct: one is made for every
    request, in C."""

    route: Route
    call: Call
    admit: Admission = "request"


class Answered(msgspec.Struct, frozen=True, gc=False):
    """Answered by llmgate itself."""

    answer: Answer
    admit: Admission = "none"


Plan = Forwarded | Answered


def resolve(request: V1Request, endpoint: Endpoint, upstreams: Upstreams) -> Plan:
    """The plan for `request` on `endpoint`; 404 when no deployment serves its model (for this endpoint)."""
    if endpoint.answer is not None:
        return Answered(endpoint.answer)
    if request.dialect is ANTHROPIC:
        return _resolve_messages(request, upstreams)
    table = upstreams.table
    model, path = request.model, request.path
    route = table.default_route if model is None else table.resolve(model, "" if endpoint.body == "raw" else path)
    dialect = route.dialect(endpoint.capability)
    if dialect in GOOGLE_KINDS:
        from llmgate.pipeline.google import via_google  # only Google's requests load its translators

        return Forwarded(route, via_google(request, upstreams, route))
    if dialect not in _TRANSLATED:
        return Forwarded(route, passthrough(request, endpoint, upstreams))
    if path != "/chat/completions" or not isinstance(request.body, bytes):
        raise InvalidRequest(f"/v1{path} is not available for models served by {_TRANSLATED[dialect]} provider; "
                             "use /v1/chat/completions or /v1/messages.")
    if dialect == "bedrock":
        from llmgate.pipeline.bedrock import chat_via_bedrock  # only Bedrock requests load botocore

        return Forwarded(route, chat_via_bedrock(request, upstreams))
    from llmgate.pipeline.translate import chat_via_anthropic  # only translated requests load the translators

    return Forwarded(route, chat_via_anthropic(request, upstreams))


def _resolve_messages(request: V1Request, upstreams: Upstreams) -> Plan:
    """`/v1/messages*`: native on Anthropic deployments, else translated to chat (or counted here)."""
    model, path = request.model or "", request.path
    try:
        route = upstreams.table.resolve(model, path)
        native = route.dialect("messages") == "anthropic"
    except ModelNotFound:
        route, native = upstreams.table.resolve(model, "/chat/completions"), False
    if route.dialect("chat") in GOOGLE_KINDS:
        from llmgate.pipeline.google import count_tokens_via_google, counts_tokens_here, messages_via_google

        if path != COUNT_TOKENS:
            return Forwarded(route, messages_via_google(request, upstreams, route))
        if counts_tokens_here(route, request):
            return Answered(answer_count_tokens, admit="model")
        return Forwarded(route, count_tokens_via_google(request, upstreams, route), admit="model")
    if native:
        call = passthrough(request, None, upstreams, capability="messages")
        return Forwarded(route, call, admit="model" if path == COUNT_TOKENS else "request")
    if path == COUNT_TOKENS:
        return Answered(answer_count_tokens, admit="model")
    if route.dialect("chat") == "bedrock":
        from llmgate.pipeline.bedrock import messages_via_bedrock

        return Forwarded(route, messages_via_bedrock(request, upstreams))
    from llmgate.pipeline.translate import messages_via_openai

    return Forwarded(route, messages_via_openai(request, upstreams))


def passthrough(request: V1Request, endpoint: Endpoint | None, upstreams: Upstreams,
                capability: str | None = None) -> Call:
    """A call that forwards the caller's bytes (the model renamed where a deployment needs it)."""
    kind = endpoint.body if endpoint is not None else "view"
    call = Call(upstreams, request.send, request.receive, request.task, request.method, request.path, request.query,
                request.inbound, request.body, request.exchange, request.model, request.stream,
                endpoint.capability if endpoint is not None else capability,
                is_json=kind == "view" or (kind == "raw" and b"json" in request.inbound.content_type))
    call.error_frame = request.dialect.error_frame
    if request.entry is not None:  # its project's own upstream keys
        call.own_keys = request.entry.upstream_keys
    return call
