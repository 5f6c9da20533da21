"""The `/v1` allowlist as data: each path's dialect, and per method how its body is read, what a deployment
must offer to serve it, or which answer llmgate gives itself. `find_endpoint` turns a miss into 404 or 405."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal, NamedTuple

from llmgate.config_checks import parse_route
from llmgate.errors import MethodNotAllowed, RouteNotFound
from llmgate.pipeline.dialects import ANTHROPIC, OPENAI, Dialect
from llmgate.pipeline.local import answer_models, answer_token_count
from llmgate.providers.base import ENDPOINT_CAPABILITIES

if TYPE_CHECKING:
    from llmgate.pipeline.request import V1Request
    from llmgate.upstreams import Upstreams

BodyKind = Literal["view", "multipart", "raw", "whole", "none"]
Answer = Callable[["V1Request", "Upstreams"], Awaitable[None]]
"""An answer llmgate gives itself, once the caller is authenticated and the body read."""


class Endpoint(NamedTuple):
    """One method of one `/v1` path."""

    body: BodyKind
    """view: JSON, `model`/`stream` decoded for routing, the bytes forwarded; multipart: streamed up, its
    leading fields sniffed; raw: an extra route, passed through (`model` read when it is JSON); whole: read
    for an answer of llmgate's own; none: no body."""
    streams_response: bool = False
    """Relay the answer chunk by chunk even without `"stream": true` (binary audio)."""
    capability: str | None = None
    """What a deployment must offer to serve it (providers/base.py)."""
    answer: Answer | None = None
    """Answered by llmgate itself, not forwarded."""


class PathRoutes(NamedTuple):
    dialect: Dialect
    methods: dict[str, Endpoint]


def _forwarded(path: str, body: BodyKind = "view", streams_response: bool = False) -> Endpoint:
    return Endpoint(body, streams_response, ENDPOINT_CAPABILITIES.get(path))


DEFAULT_ENDPOINTS: dict[str, PathRoutes] = {
    path: PathRoutes(OPENAI, {"POST": _forwarded(path)}) for path in
    ("/chat/completions", "/completions", "/embeddings", "/images/generations", "/responses")
} | {
    "/audio/speech": PathRoutes(OPENAI, {"POST": _forwarded("/audio/speech", streams_response=True)}),
    "/audio/transcriptions": PathRoutes(OPENAI, {"POST": _forwarded("/audio/transcriptions", "multipart")}),
    "/models": PathRoutes(OPENAI, {"GET": Endpoint("none", answer=answer_models)}),
    "/token-count": PathRoutes(OPENAI, {"POST": Endpoint("whole", answer=answer_token_count)}),
    "/messages": PathRoutes(ANTHROPIC, {"POST": _forwarded("/messages")}),
    "/messages/count_tokens": PathRoutes(ANTHROPIC, {"POST": _forwarded("/messages/count_tokens")}),
}
_MODEL = PathRoutes(OPENAI, {"GET": Endpoint("none", answer=answer_models)})  # /models/{id}: ids may hold slashes


def build_endpoints(extra_routes: tuple[str, ...]) -> dict[str, PathRoutes]:
    """The allowlist: the default endpoints plus `server.extra_routes` from the config (passed through)."""
    endpoints = {path: PathRoutes(routes.dialect, dict(routes.methods)) for path, routes in DEFAULT_ENDPOINTS.items()}
    for i, route in enumerate(extra_routes):
        method, path = parse_route(route, f"server.extra_routes[{i}]")
        endpoints.setdefault(path, PathRoutes(OPENAI, {})).methods.setdefault(method, Endpoint("raw"))
    return endpoints


def find_routes(endpoints: dict[str, PathRoutes], path: str) -> PathRoutes | None:
    """The routes of `path` (relative to /v1), if it is on the allowlist."""
    routes = endpoints.get(path)
    if routes is None and path.startswith("/models/"):
        return _MODEL
    return routes


def find_endpoint(routes: PathRoutes | None, method: str, path: str) -> Endpoint:
    """The endpoint for `method`; 404 off the allowlist, 405 (with `allow`) for another method."""
    if routes is None:
        raise RouteNotFound(f"Invalid URL ({method} /v1{path})")
    endpoint = routes.methods.get(method)
    if endpoint is None:
        raise MethodNotAllowed(f"Method {method} is not allowed for /v1{path}.",
                               headers={"allow": ", ".join(routes.methods)})
    return endpoint
