"""Who may use /manage (the management token compared in constant time, or a JWT whose claims make its caller an
admin), and how its errors look (OpenAI-style bodies)."""

from __future__ import annotations

import hmac
import re
import time
from typing import TYPE_CHECKING, Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.handlers import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.routes import HTTPRoute

from llmgate.access.authenticate import looks_like_jwt
from llmgate.access.throttle import AuthThrottle, client_address
from llmgate.audit import Actor
from llmgate.errors import (
    ErrorBody,
    Forbidden,
    GatewayError,
    InvalidRequest,
    ManagementDisabled,
    NotFound,
    Unauthorized,
    error_response,
)
from llmgate.log import new_request_id

if TYPE_CHECKING:
    from llmgate.access.jwt import JwtAuth

_BACKTICKED = re.compile(r"`([^`]+)`")
DISABLED = ("The management API is disabled: set LLMGATE_MANAGEMENT_TOKEN to a secret and send it as "
            "'Authorization: Bearer <token>'.")


async def require_management_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: `Authorization: Bearer $LLMGATE_MANAGEMENT_TOKEN`, or a JWT of an `[[auth.jwt]]` issuer whose
    `admin_claim` holds `admin_value`; 503 when neither is configured, 401 when missing or wrong, 403 for a JWT
    without the admin role, 429 once the caller's address has failed too often (access/throttle.py, shared with
    /v1). Names the caller in `connection.state.actor` (for the audit trail)."""
    expected: str | None = connection.app.state.management_token
    jwt: JwtAuth | None = connection.app.state.get("jwt")
    admin_jwt = jwt is not None and jwt.has_admin_claim
    if not expected and not admin_jwt:
        raise ManagementDisabled(DISABLED)
    header = connection.headers.get("authorization", "")
    given = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if given and expected and hmac.compare_digest(given.encode(), expected.encode()):
        connection.state.actor = "management_token"
        return
    throttle: AuthThrottle | None = connection.app.state.get("auth_throttle")
    if given and jwt is not None and admin_jwt and looks_like_jwt(given):
        try:
            caller = await jwt.verify(given, time.time(), for_v1=False)
        except Unauthorized:
            if throttle is not None:
                throttle.failed(client_address(connection.scope), time.monotonic())  # type: ignore[arg-type]
            raise
        if not caller.is_admin:
            raise Forbidden("This JWT does not carry the admin role the management API needs.")
        connection.state.actor = f"jwt:{caller.subject or caller.user or '?'}"
        return
    if throttle is not None:
        throttle.failed(client_address(connection.scope), time.monotonic())  # type: ignore[arg-type]
    if not given:
        raise Unauthorized("Missing management token: send 'Authorization: Bearer <LLMGATE_MANAGEMENT_TOKEN>'.")
    raise Unauthorized("Incorrect management token.")


def actor_of(request: Request[Any, Any, Any]) -> Actor:
    """The caller the guard let in, and its address: who an audited action is recorded as."""
    client = request.client.host if request.client is not None else None
    return Actor(name=request.state.get("actor", "unknown"), client=client)


def gateway_error(request: Request[Any, Any, Any], error: GatewayError) -> Response[bytes]:
    status, body = error_response(error)
    request_id = request.headers.get("x-request-id") or new_request_id()
    return Response(body, status_code=status, media_type="application/json",
                    headers={**error.headers, "x-request-id": request_id})


def validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    """Litestar's body/query validation, reworded to name the field: 422 for a wrong value, 400 for bad JSON."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    first = problems[0] if problems and isinstance(problems[0], dict) else {}
    field = first.get("key") or None
    message = str(first.get("message") or exc.detail)
    named = _BACKTICKED.search(message)
    if field == "data" and named and ("unknown field" in message or "missing required field" in message):
        field = named.group(1)  # the body as a whole: name the field it lacks or should not have
    if not problems:
        return gateway_error(request, InvalidRequest(f"The request body is not valid JSON: {message}."))
    error = InvalidRequest(f"Invalid request body: {message}." if field in (None, "data") else
                           f"Invalid `{field}`: {message}.", param=None if field == "data" else field)
    error.status = 422
    return gateway_error(request, error)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if isinstance(exc, NotFoundException):
        return gateway_error(request, NotFound(f"Not found: {request.method} {request.url.path}"))
    detail = str(exc.detail)
    if exc.status_code == 400 and ("truncated" in detail or "JSON" in detail or "malformed" in detail.lower()):
        return gateway_error(request, InvalidRequest(f"The request body is not valid JSON: {detail}."))
    error = GatewayError(detail, headers=dict(exc.headers or {}))  # a 405's `allow`
    error.status, error.type = exc.status_code, "invalid_request_error"
    return gateway_error(request, error)


def answer_options(request: Request[Any, Any, Any]) -> Response[bytes] | None:
    """`OPTIONS` on a /manage path: 204 with `allow` listing every method the path serves (a before-request hook).

    Litestar's own OPTIONS handler is made with the first route of a path and keeps that route's methods: for
    /manage/projects it said `OPTIONS, POST` though GET is served too."""
    if request.method != "OPTIONS":
        return None
    handler = request.route_handler
    methods = {method for route in request.app.routes if isinstance(route, HTTPRoute)
               and any(known is handler for known in route.route_handlers) for method in route.methods}
    return Response(b"", status_code=204, headers={"allow": ", ".join(sorted(methods))})


_ERRORS = {
    400: "Bad request: the body is not valid JSON, or a parameter is refused (`error.param` names it)",
    401: "The management token is missing or wrong",
    404: "No such project or token",
    409: "A conflict: a project name already taken, or a revoked token",
    422: "A value of the body or the query has the wrong type or is out of range (`error.param` names it)",
    429: "Too many failed authentications from this address (`retry-after` says when to try again)",
    503: "The management API is disabled (LLMGATE_MANAGEMENT_TOKEN is not set)",
}


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The OpenAPI description of the errors a /manage operation answers: those of every operation (401, 429, 503)
    and `statuses`, each with the OpenAI-shaped body they really have (errors.py's `ErrorBody`)."""
    return {status: ResponseSpec(data_container=ErrorBody, description=_ERRORS[status], generate_examples=False)
            for status in sorted({401, 429, 503, *statuses})}
