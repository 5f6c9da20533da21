"""`/v1`: the OpenAI-compatible API, one raw-ASGI mount that reads top to bottom.

allowlist → authenticate → read body (limit) → decode `model`/`stream` → [virtual token: model allowed?
limits] → pick provider → forward → relay → [virtual token: count its usage].
Paths outside the allowlist get 404, a wrong method 405, both as OpenAI-style errors. Beside the allowlist:
/v1/messages and /v1/messages/count_tokens (routes/anthropic.py, which answers in Anthropic's format), and
/v1/token-count (routes/token_count.py). A chat request for an alias an Anthropic provider serves is
translated (routes/translating.py, imported only then).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Literal, NamedTuple

import msgspec
from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from loguru import logger
from msgspec import UnsetType

from llmgate.access.authenticate import Principal
from llmgate.config import ServerConfig
from llmgate.config_checks import parse_route
from llmgate.errors import (
    GatewayError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    ModelNotFound,
    PayloadTooLarge,
    RouteNotFound,
)
from llmgate.log import current_request, new_request_id
from llmgate.providers.base import ENDPOINT_CAPABILITIES
from llmgate.proxy.asgi import (
    JSON_CONTENT_TYPE,
    ASGIApp,
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    iter_body,
    read_body,
    send_error,
    send_response,
    too_large_message,
)
from llmgate.proxy.client import Body
from llmgate.proxy.forward import Call, forward
from llmgate.proxy.headers import InboundHeaders, split_request_headers, valid_host
from llmgate.routes.anthropic import ANTHROPIC_PATHS, serve_anthropic
from llmgate.routes.shedding import shed, shed_after_s
from llmgate.routes.token_count import serve_token_count
from llmgate.routing.select import Route
from llmgate.schemas.openai import RoutingView, decode_routing_view
from llmgate.state import GatewayState, Router
from llmgate.usage.event import CLIENT_CLOSED, Exchange
from llmgate.usage.meter import UsageMeter
from llmgate.usage.tap import StreamTap, ask_for_usage

if TYPE_CHECKING:
    from llmgate.access.tokens import TokenEntry


class Endpoint(NamedTuple):
    """How a /v1 route's body is read and its answer relayed."""

    body: Literal["json", "multipart", "raw", "models", "token_count"]
    """json: decode `model`/`stream`; multipart: stream it up unparsed; raw: extra routes; models and
    token_count: served here."""
    streams_response: bool = False
    """Relay the answer chunk by chunk even without `"stream": true` (binary audio)."""
    capability: str | None = None
    """What a deployment must offer to serve it (providers/base.py); set by `build_routes`."""


# path (relative to /v1) → method → endpoint
DEFAULT_ROUTES: dict[str, dict[str, Endpoint]] = {
    "/chat/completions": {"POST": Endpoint("json")},
    "/completions": {"POST": Endpoint("json")},
    "/embeddings": {"POST": Endpoint("json")},
    "/images/generations": {"POST": Endpoint("json")},
    "/responses": {"POST": Endpoint("json")},
    "/audio/speech": {"POST": Endpoint("json", streams_response=True)},
    "/audio/transcriptions": {"POST": Endpoint("multipart")},
    "/models": {"GET": Endpoint("models")},
    "/token-count": {"POST": Endpoint("token_count")},
}
_MODEL_ROUTE = {"GET": Endpoint("models")}  # /models/{id}; ids may hold slashes (org/model)


def build_routes(extra_routes: tuple[str, ...]) -> dict[str, dict[str, Endpoint]]:
    """The allowlist: the default routes plus `server.extra_routes` from the config."""
    routes = {path: {method: endpoint._replace(capability=ENDPOINT_CAPABILITIES.get(path))
                     for method, endpoint in methods.items()} for path, methods in DEFAULT_ROUTES.items()}
    for i, route in enumerate(extra_routes):
        method, path = parse_route(route, f"server.extra_routes[{i}]")
        routes.setdefault(path, {}).setdefault(method, Endpoint("raw"))
    return routes


def v1_handler(v1: ASGIApp) -> ASGIRouteHandler:
    """`serve_v1`'s app as Litestar's `/v1` mount."""
    return asgi("/v1", is_mount=True, copy_scope=False)(v1)


def serve_v1(state: GatewayState) -> ASGIApp:
    """The `/v1` ASGI app, bound to the gateway's state; `scope["path"]` is relative to /v1."""
    routes = build_routes(state.settings.server.extra_routes)
    max_lag_s = shed_after_s(state.settings.server)

    async def v1(scope: Scope, receive: Receive, send: Send) -> None:
        inbound = split_request_headers(scope["headers"])
        request_id = inbound.request_id or new_request_id().encode()
        path = scope["path"].rstrip("/")
        method = scope["method"]
        exchange = Exchange(request_id, method, "/v1" + path, state.lag.lag_s)
        current_request.set(exchange)  # every line logged from here on carries the request ids
        try:
            if not valid_host(inbound.host):
                raise InvalidRequest("The Host header is not a valid host name.")
            if exchange.lag_s > max_lag_s:  # the loop is behind: answer 503 now rather than queue
                await shed(send, exchange, path in ANTHROPIC_PATHS)
                return
            if path in ANTHROPIC_PATHS:
                await serve_anthropic(scope, receive, send, state, inbound, exchange, path)
                return
            methods = routes.get(path) or (_MODEL_ROUTE if path.startswith("/models/") else None)
            if methods is None:
                raise RouteNotFound(f"Invalid URL ({method} /v1{path})")
            endpoint = methods.get(method)
            if endpoint is None:
                raise MethodNotAllowed(f"Method {method} is not allowed for /v1{path}.",
                                       headers={"allow": ", ".join(methods)})
            principal = await authenticate(state, inbound, exchange)
            if endpoint.body == "models":
                await _serve_models(send, state, path, request_id)
                exchange.status = 200
                return
            if endpoint.body == "token_count":
                raw = await read_body(receive, state.settings.server.max_body_bytes, inbound.content_length)
                await serve_token_count(send, raw, request_id)
                exchange.status = 200
                return
            await _proxy(scope, receive, send, state, inbound, exchange, path, endpoint, principal)
        except GatewayError as error:
            exchange.status, exchange.error = error.status, error.code or error.type
            await send_error(send, error, request_id)
        except ClientDisconnected:
            exchange.status = CLIENT_CLOSED
        except Exception:
            logger.bind(request_id=request_id.decode()).exception("unexpected error")
            exchange.status, exchange.error = 500, "server_error"
            await send_error(send, InternalError("The gateway failed to handle the request."), request_id)
        finally:
            exchange.ended_at = time.monotonic()
            state.bus.emit(exchange)

    return v1


async def authenticate(state: GatewayState, inbound: InboundHeaders, exchange: Exchange) -> Principal:
    """The caller (master key, open mode or a virtual token), stamped into `exchange`; 401 otherwise."""
    now = time.time()
    principal = state.authenticator.authenticate(inbound.credential, now)
    if principal is None:  # a virtual token not in the cache
        principal = await state.authenticator.load(inbound.credential or "", now)
    entry = principal.entry
    if entry is not None:
        exchange.project_id, exchange.token_id = entry.project_id, entry.token_id
    exchange.auth_s = time.monotonic() - exchange.started_at
    return principal


async def _proxy(scope: Scope, receive: Receive, send: Send, state: GatewayState, inbound: InboundHeaders,
                 exchange: Exchange, path: str, endpoint: Endpoint, principal: Principal) -> None:
    router = state.router  # held for the whole request: a reload meanwhile does not change it
    router.active += 1
    try:
        limit = state.settings.server.max_body_bytes
        body: Body
        model: str | None
        stream_options: msgspec.Raw | UnsetType | None = None  # the body's own (UNSET: none), when decoded
        if endpoint.body == "multipart":
            first = await read_first_chunk(receive, limit, inbound.content_length)
            model, stream = sniff_multipart_fields(first)
            body = iter_body(receive, first.body, limit) if first.more else first.body
        else:
            raw = await read_body(receive, limit, inbound.content_length)
            if endpoint.body == "json":
                view = decode_view(raw)
                model, stream, stream_options = view.model, view.stream is True, view.stream_options
            else:
                model, stream = _lenient_model(raw, inbound.content_type), False
            body = raw
        exchange.model, exchange.stream = model, stream
        route = _route(router, model, path, endpoint)
        capability = endpoint.capability
        entry = principal.entry
        # A virtual token: the model, then its limits (counting the request; in Redis when they are shared).
        if entry is not None and state.tokens.check_request(entry, model, now := time.time()):
            await state.tokens.admit_shared(entry, now)
        exchange.route_s = time.monotonic() - exchange.started_at - exchange.auth_s
        if route.dialect(capability) == "anthropic":
            if path != "/chat/completions" or not isinstance(body, bytes):
                raise InvalidRequest(f"/v1{path} is not available for models served by an Anthropic provider; "
                                     "use /v1/chat/completions or /v1/messages.")
            from llmgate.routes.translating import chat_via_anthropic

            if counts_usage(entry, state.settings.server):
                meter_translated(exchange, body, inbound, state.settings.server)
            await chat_via_anthropic(send, receive, router, route, inbound, body, exchange,
                                     entry.upstream_keys if entry is not None else None)
            if entry is not None:
                await settle(state, entry, exchange)
            return
        query = scope.get("query_string", b"")
        call = Call(router, send, receive, scope["method"], path, query.decode("latin-1") if query else "", inbound,
                    body, exchange, model, stream or endpoint.streams_response, capability,
                    is_json=endpoint.body == "json" or (endpoint.body == "raw" and b"json" in inbound.content_type))
        if entry is not None:  # its project's own upstream keys
            call.own_keys = entry.upstream_keys
        if route.counts_tokens or counts_usage(entry, state.settings.server):  # count its tokens
            meter_usage(call, state.settings.server.usage_log, stream_options)
        await forward(call, route)
        if entry is not None:
            await settle(state, entry, exchange)
    finally:
        router.leave()


def counts_usage(entry: TokenEntry | None, server: ServerConfig) -> bool:
    """Whether the LLM tokens of a request's answer are counted for its caller: for the usage log, or for a
    virtual token whose limits need them (or every token's, with `meter_every_token`)."""
    return server.usage_log or (entry is not None and (entry.counts_tokens or server.meter_every_token))


async def settle(state: GatewayState, entry: TokenEntry, exchange: Exchange) -> None:
    """A virtual token's request ended: count the tokens (and, at the configured prices, the cost) it used."""
    meter = exchange.meter
    usage = meter.usage() if meter is not None and exchange.status == 200 else None
    if usage is None:
        return
    cost = state.pricing.cost(exchange.model, exchange.deployment, usage)
    if state.tokens.record_usage(entry, usage.total, time.time(), cost or 0.0):  # and Redis's tpm window
        await state.tokens.record_shared_usage(entry, usage.total)


_ASKS_FOR_USAGE = frozenset({"/chat/completions", "/completions"})
"""OpenAI streams that carry usage only when asked (`stream_options.include_usage`)."""


def meter_usage(call: Call, usage_log: bool, stream_options: msgspec.Raw | UnsetType | None = None) -> None:
    """Count the tokens of `call`'s answer: for a virtual token's budget and limits, a deployment's tpm, and
    the usage log.

    An OpenAI chat/completions stream is asked for its usage chunk, which is removed again from what the client
    receives unless it asked for it too (`stream_options`: the body's own, as decoded for routing; UNSET when
    it has none). With the usage log on, the request body and a stream's chunks are kept (to count tokens with
    tiktoken should no usage come).
    """
    exchange = call.exchange
    stream = call.stream
    raw_log = usage_log and call.router.settings.server.raw_log
    meter = exchange.meter = UsageMeter(usage_log and stream, raw_log)
    body = call.body
    if usage_log and isinstance(body, bytes):
        exchange.request_body = body
        if raw_log:  # the raw body log wants the headers too (no credentials)
            exchange.request_headers = call.inbound.forward
    if not stream:
        return
    if call.path in _ASKS_FOR_USAGE and isinstance(body, bytes):
        call.usage_body = ask_for_usage(body, stream_options)
    call.tap = StreamTap(meter)


def meter_translated(exchange: Exchange, body: bytes, inbound: InboundHeaders, server: ServerConfig) -> None:
    """`meter_usage` for a translated request: the meter sees the upstream's answer, in its dialect."""
    exchange.meter = UsageMeter(keep_all=server.usage_log)
    if server.usage_log:
        exchange.request_body = body
        if server.raw_log:
            exchange.request_headers = inbound.forward


def _route(router: Router, model: str | None, path: str, endpoint: Endpoint) -> Route:
    """The alias for `model` (capability-checked), or the default route for requests that name none."""
    if model is None:
        return router.table.default_route
    if endpoint.body == "raw":  # extra routes need no capability
        return router.table.resolve(model, "")
    return router.table.resolve(model, path)


def decode_view(raw: bytes) -> RoutingView:
    """Decode `model`/`stream`; a client's mistake becomes a 400 that names it."""
    try:
        return decode_routing_view(raw)
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
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


class FirstChunk(NamedTuple):
    body: bytes
    more: bool


async def read_first_chunk(receive: Receive, limit: int, content_length: int | None) -> FirstChunk:
    """The first body message, enough to find a multipart form's leading fields without buffering the file."""
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(too_large_message(limit))
    message = await receive()
    return FirstChunk(message.get("body", b""), message.get("more_body", False))


_FIELD = re.compile(rb'Content-Disposition: form-data; name="(model|stream)"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]*)\r\n',
                    re.IGNORECASE)


def sniff_multipart_fields(first: FirstChunk) -> tuple[str | None, bool]:
    """`model` and `stream` from the leading text fields of a multipart body (the SDKs send fields before files)."""
    fields = {name.lower(): value for name, value in _FIELD.findall(first.body[:65536])}
    model = fields.get(b"model")
    return (model.decode("utf-8", "replace") if model else None), fields.get(b"stream", b"").lower() == b"true"


async def _serve_models(send: Send, state: GatewayState, path: str, request_id: bytes) -> None:
    headers = [JSON_CONTENT_TYPE, (b"x-request-id", request_id)]
    if path == "/models":
        models = await state.router.catalog.list_models()
        await send_response(send, 200, headers, msgspec.json.encode({"object": "list", "data": models}))
        return
    model_id = path[len("/models/"):]
    model = await state.router.catalog.get_model(model_id)
    if model is None:
        raise ModelNotFound(f"The model `{model_id}` does not exist or you do not have access to it.",
                            param="model")
    await send_response(send, 200, headers, msgspec.json.encode(model))
