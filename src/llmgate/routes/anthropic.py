"""`/v1/messages` and `/v1/messages/count_tokens` for Anthropic clients; every error in Anthropic's format.

authenticate (x-api-key or bearer) → read body → decode `model`/`stream` → resolve the alias →
  served by Anthropic deployments: pass through natively with proxy/forward.py (retries, failover, key rotation;
  x-api-key, anthropic-version, anthropic-beta; streams byte for byte)
  served by OpenAI-compatible deployments: translate (routes/translating.py, imported only then); count_tokens
  is counted here with tiktoken, since OpenAI has no counting endpoint.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from loguru import logger

from llmgate.errors import (
    GatewayError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    ModelNotFound,
    anthropic_error_response,
)
from llmgate.proxy.asgi import JSON_CONTENT_TYPE, ClientDisconnected, Receive, Scope, Send, read_body, send_response
from llmgate.proxy.forward import Call, forward
from llmgate.proxy.headers import InboundHeaders
from llmgate.routing.select import Route
from llmgate.state import GatewayState, Router
from llmgate.usage.event import CLIENT_CLOSED, Exchange

if TYPE_CHECKING:
    from llmgate.access.tokens import TokenEntry

MESSAGES, COUNT_TOKENS = "/messages", "/messages/count_tokens"
ANTHROPIC_PATHS = frozenset({MESSAGES, COUNT_TOKENS})


def anthropic_error_frame(body: bytes) -> bytes:
    """Anthropic's in-stream `error` event around an error body (OpenAI-shaped bodies are translated)."""
    from llmgate.translate.errors import anthropic_error_from_openai

    if b'"type":"error"' not in body:
        body = anthropic_error_from_openai(500, body)[1]
    return b"event: error\ndata: " + body + b"\n\n"


async def send_anthropic_error(send: Send, error: GatewayError, request_id: bytes) -> None:
    status, body = anthropic_error_response(error)
    headers = [JSON_CONTENT_TYPE, (b"x-request-id", request_id)]
    headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items())
    await send_response(send, status, headers, body)


async def serve_anthropic(scope: Scope, receive: Receive, send: Send, state: GatewayState, inbound: InboundHeaders,
                          exchange: Exchange, path: str) -> None:
    """Answer one Anthropic-format request on `path` (one of ANTHROPIC_PATHS)."""
    from llmgate.routes.openai import authenticate  # routes/openai.py imports this module at its top

    method = scope["method"]
    request_id = exchange.request_id
    try:
        if method != "POST":
            raise MethodNotAllowed(f"Method {method} is not allowed for /v1{path}.",
                                   headers={"allow": "POST"})
        principal = await authenticate(state, inbound, exchange)
        await _route(scope, receive, send, state, inbound, exchange, path, principal.entry)
    except GatewayError as error:
        exchange.status, exchange.error = error.status, error.code or error.type
        await send_anthropic_error(send, error, request_id)
    except ClientDisconnected:
        exchange.status = CLIENT_CLOSED
    except Exception:
        logger.bind(request_id=request_id.decode()).exception("unexpected error")
        exchange.status, exchange.error = 500, "server_error"
        await send_anthropic_error(send, InternalError("The gateway failed to handle the request."), request_id)


async def _route(scope: Scope, receive: Receive, send: Send, state: GatewayState, inbound: InboundHeaders,
                 exchange: Exchange, path: str, entry: TokenEntry | None) -> None:
    from llmgate.routes.openai import counts_usage, decode_view, meter_translated, meter_usage, settle

    request_id = exchange.request_id
    router = state.router  # held for the whole request: a reload meanwhile does not change it
    router.active += 1
    try:
        raw = await read_body(receive, state.settings.server.max_body_bytes, inbound.content_length)
        view = decode_view(raw)
        exchange.model, exchange.stream = view.model, view.stream is True
        route, native = _messages_route(router, view.model, path)
        if entry is not None:  # a virtual token: its model and limits (counting tokens is free: not counted)
            if path == COUNT_TOKENS:
                entry.check_model(view.model)
            elif state.tokens.check_request(entry, view.model, now := time.time()):  # limits shared in Redis
                await state.tokens.admit_shared(entry, now)
        exchange.route_s = time.monotonic() - exchange.started_at - exchange.auth_s
        server = state.settings.server
        if native:
            query = scope.get("query_string", b"")  # older Anthropic SDKs' beta client sent ?beta=true
            call = Call(router, send, receive, "POST", path, query.decode("latin-1") if query else "", inbound, raw,
                        exchange, view.model, view.stream is True, "messages")
            call.error_frame = anthropic_error_frame
            if entry is not None:
                call.own_keys = entry.upstream_keys
            if (route.counts_tokens or counts_usage(entry, server)) and path != COUNT_TOKENS:
                meter_usage(call, server.usage_log)
            await forward(call, route)
            if entry is not None:
                await settle(state, entry, exchange)
            return
        if path == COUNT_TOKENS:
            await _count_tokens_locally(send, raw, request_id)
            exchange.status = 200
            return
        from llmgate.routes.translating import messages_via_openai

        if counts_usage(entry, server):
            meter_translated(exchange, raw, inbound, server)
        await messages_via_openai(send, receive, router, route, inbound, raw, exchange,
                                  entry.upstream_keys if entry is not None else None)
        if entry is not None:
            await settle(state, entry, exchange)
    finally:
        router.leave()


def _messages_route(router: Router, model: str, path: str) -> tuple[Route, bool]:
    """The alias for `model`, and whether its deployments speak Messages natively (else: translate to chat)."""
    try:
        route = router.table.resolve(model, path)
    except ModelNotFound:
        route = router.table.resolve(model, "/chat/completions")  # OpenAI-compatible deployments: translated
        return route, False
    return route, route.dialect("messages") == "anthropic"


async def _count_tokens_locally(send: Send, raw: bytes, request_id: bytes) -> None:
    """count_tokens for a model on an OpenAI-compatible provider: tiktoken over the translated prompt."""
    from llmgate.routes.translating import decode_json
    from llmgate.translate.chat_to_messages import TranslationError
    from llmgate.translate.messages_to_chat import convert_messages, convert_tools
    from llmgate.usage.counting import count_chat_prompt_tokens

    request: Any = decode_json(raw)
    try:
        messages = convert_messages(request.get("system"), request.get("messages"))
        tools = convert_tools(request["tools"]) if request.get("tools") else None
        tokens = count_chat_prompt_tokens(messages, request["model"], tools)
    except TranslationError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    body = b'{"input_tokens":%d}' % tokens
    await send_response(send, 200, [JSON_CONTENT_TYPE, (b"x-request-id", request_id)], body)
