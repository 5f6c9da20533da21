"""`/v1/messages` and `/v1/messages/count_tokens` for Anthropic clients; every error in Anthropic's format.

authenticate (x-api-key or bearer) → read body → decode `model`/`stream` → pick provider →
  Anthropic provider: pass through natively (x-api-key, anthropic-version, anthropic-beta; streams byte for byte)
  OpenAI-compatible provider: translate (routes/translating.py, imported only then); count_tokens is counted
  here with tiktoken, since OpenAI has no counting endpoint.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from loguru import logger

from llmgate.errors import GatewayError, InternalError, InvalidRequest, MethodNotAllowed, anthropic_error_response
from llmgate.proxy.asgi import JSON_CONTENT_TYPE, ClientDisconnected, Receive, Scope, Send, read_body, send_response
from llmgate.proxy.client import TRANSPORT_ERRORS
from llmgate.proxy.forward import forward, upstream_error
from llmgate.proxy.headers import InboundHeaders
from llmgate.proxy.streaming import relay_stream
from llmgate.state import GatewayState
from llmgate.usage.meter import UsageMeter

if TYPE_CHECKING:
    from llmgate.access.tokens import TokenEntry

ANTHROPIC_VERSION = "2023-06-01"
"""Sent upstream when the client names none (the Anthropic SDKs always send one; curl users may not)."""
MESSAGES, COUNT_TOKENS = "/messages", "/messages/count_tokens"
ANTHROPIC_PATHS = frozenset({MESSAGES, COUNT_TOKENS})


def anthropic_upstream_headers(inbound: InboundHeaders, api_key: str, request_id: bytes) -> list[tuple[str, str]]:
    """The client's headers (anthropic-version and anthropic-beta among them) plus the provider's x-api-key."""
    headers = inbound.forward.copy()
    if not any(name == "anthropic-version" for name, _ in headers):
        headers.append(("anthropic-version", ANTHROPIC_VERSION))
    if api_key:
        headers.append(("x-api-key", api_key))
    headers.append(("x-client-request-id", request_id.decode("latin-1")))
    return headers


def anthropic_error_event(error: GatewayError) -> bytes:
    """Anthropic's in-stream `error` event for a gateway error (e.g. the upstream went silent mid-stream)."""
    return b"event: error\ndata: " + anthropic_error_response(error)[1] + b"\n\n"


async def send_anthropic_error(send: Send, error: GatewayError, request_id: bytes) -> None:
    status, body = anthropic_error_response(error)
    headers = [JSON_CONTENT_TYPE, (b"x-request-id", request_id)]
    headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items())
    await send_response(send, status, headers, body)


async def serve_anthropic(scope: Scope, receive: Receive, send: Send, state: GatewayState, inbound: InboundHeaders,
                          request_id: bytes, path: str) -> None:
    """Answer one Anthropic-format request on `path` (one of ANTHROPIC_PATHS)."""
    method = scope["method"]
    try:
        if method != "POST":
            raise MethodNotAllowed(f"Method {method} is not allowed for /v1{path}.",
                                   headers={"allow": "POST"})
        now = time.time()
        principal = state.authenticator.authenticate(inbound.credential, now)
        if principal is None:  # a virtual token not in the cache
            principal = await state.authenticator.load(inbound.credential or "", now)
        await _route(scope, receive, send, state, inbound, request_id, path, principal.entry)
    except GatewayError as error:
        await send_anthropic_error(send, error, request_id)
    except ClientDisconnected:
        return
    except Exception:
        logger.bind(request_id=request_id.decode()).exception("unexpected error")
        await send_anthropic_error(send, InternalError("The gateway failed to handle the request."), request_id)


async def _route(scope: Scope, receive: Receive, send: Send, state: GatewayState, inbound: InboundHeaders,
                 request_id: bytes, path: str, entry: TokenEntry | None) -> None:
    from llmgate.routes.openai import decode_view  # routes/openai.py imports this module at its top

    raw = await read_body(receive, state.settings.server.max_body_bytes, inbound.content_length)
    view = decode_view(raw)
    provider = state.table.provider_for(view.model)
    client = state.clients[provider]
    api_key = client.provider.api_key
    if entry is not None:  # a virtual token: its model and limits (counting tokens is free: not counted)
        if path == COUNT_TOKENS:
            entry.check_model(view.model)
        else:
            await state.tokens.check_request(entry, view.model, time.time())
        api_key = entry.upstream_keys.get(provider, api_key)
    if client.provider.kind == "anthropic":
        headers = anthropic_upstream_headers(inbound, api_key, request_id)
        query = scope.get("query_string", b"")  # older Anthropic SDKs' beta client sent ?beta=true
        upstream_path = f"{path}?{query.decode('latin-1')}" if query else path
        if view.stream is not True:
            meter = UsageMeter() if entry is not None and path != COUNT_TOKENS else None
            await forward(send, receive, client, "POST", upstream_path, headers, raw, request_id, False, meter)
            if entry is not None and meter is not None:
                tokens = meter.tokens()
                if state.tokens.record_usage(entry, tokens, time.time()):
                    await state.tokens.record_shared_usage(entry, tokens)
            return
        try:  # as forward() does, but a stream that fails once started ends with Anthropic's error event
            await relay_stream(send, receive, client.stream("POST", upstream_path, headers, raw), request_id,
                               client.provider.timeouts, error_event=anthropic_error_event)
        except TRANSPORT_ERRORS as exc:
            raise upstream_error(exc, client) from exc
        return
    if path == COUNT_TOKENS:
        await _count_tokens_locally(send, raw, request_id)
        return
    from llmgate.routes.translating import messages_via_openai

    await messages_via_openai(send, receive, client, inbound, raw, request_id)


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
