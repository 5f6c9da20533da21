"""The errors llmgate itself answers with, and the one table that turns them into a status and a body.

    GatewayError
     ├── InvalidRequest          400  malformed JSON, missing `model`, ...
     │    └── IncompleteBody     400  the body ended early (malformed chunked framing, or the client left)
     ├── Unauthorized            401  missing or wrong key
     │    ├── TokenRevoked       401  a revoked virtual token
     │    ├── TokenExpired       401  a virtual token past its expires_at
     │    └── JwtRefused         401  a bearer JWT refused; `code` says why (access/jwt.py)
     ├── ModelNotAllowed         403  a virtual token asking for a model it may not use
     ├── Forbidden               403  /manage: a JWT without the admin role
     ├── NotFound                404  /manage: no such project or token
     ├── Conflict                409  /manage: a project name taken, a revoked token rotated
     ├── RateLimited             429  rpm or tpm (retry-after, x-ratelimit-*)
     ├── QuotaExhausted          429  max_requests or budget_tokens used up
     ├── AuthThrottled           429  too many failed authentications from one address (retry-after)
     ├── ManagementDisabled      503  /manage without LLMGATE_MANAGEMENT_TOKEN
     ├── RouteNotFound           404  a path outside the /v1 allowlist
     ├── ModelNotFound           404  no provider serves the model
     ├── MethodNotAllowed        405
     ├── RequestTimeout          408  the request body did not arrive within LLMGATE_BODY_TIMEOUT_S
     ├── PayloadTooLarge         413
     ├── RateLimited             429  every key that could serve the model is resting after a 429
     ├── UpstreamUnreachable     502  connection refused, reset, DNS
     ├── UpstreamError           502  the upstream answered something unusable (a gateway-served route)
     ├── NoHealthyDeployment     503  every deployment's circuit breaker is open
     ├── Overloaded              503  the event loop lags past LLMGATE_SHED_LAG_MS (retry-after)
     ├── StoreUnavailable        503  a virtual token not cached while the store is down (retry-after)
     ├── UpstreamTimeout         504  connect, first byte or idle timeout
     └── InternalError           500  a bug: logged with its traceback

Code raises these; only `error_response` builds the OpenAI-style body `{"error": {message, type, param, code}}`,
and `anthropic_error_response` the Anthropic one `{"type": "error", "error": {type, message}}` (the /v1/messages
routes). Upstream error responses are not GatewayErrors: they reach the client unchanged, or translated into
the caller's dialect by `llmgate.translate.errors` when the upstream speaks the other one.
"""

from __future__ import annotations

import msgspec


class ErrorDetail(msgspec.Struct, kw_only=True, frozen=True):
    """The `error` object of an OpenAI error body (all four keys always present, as OpenAI sends them)."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(msgspec.Struct, kw_only=True, frozen=True):
    error: ErrorDetail


class GatewayError(Exception):
    """Base of every error llmgate answers itself."""

    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}


class InvalidRequest(GatewayError):
    status, type = 400, "invalid_request_error"
    code: str | None = None


class IncompleteBody(InvalidRequest):
    code = "incomplete_body"


class Unauthorized(GatewayError):
    status, type, code = 401, "invalid_request_error", "invalid_api_key"


class RouteNotFound(GatewayError):
    status, type, code = 404, "invalid_request_error", "unknown_url"


class ModelNotFound(GatewayError):
    status, type, code = 404, "invalid_request_error", "model_not_found"


class MethodNotAllowed(GatewayError):
    status, type, code = 405, "invalid_request_error", "method_not_allowed"


class RequestTimeout(GatewayError):
    status, type, code = 408, "invalid_request_error", "request_timeout"


class PayloadTooLarge(GatewayError):
    status, type, code = 413, "invalid_request_error", "payload_too_large"


class NoHealthyDeployment(GatewayError):
    status, type, code = 503, "upstream_error", "no_healthy_deployment"


class Overloaded(GatewayError):
    status, type, code = 503, "server_error", "overloaded"


class StoreUnavailable(GatewayError):
    status, type, code = 503, "server_error", "store_unavailable"


class UpstreamUnreachable(GatewayError):
    status, type, code = 502, "upstream_error", "upstream_unreachable"


class UpstreamError(GatewayError):
    status, type, code = 502, "upstream_error", "bad_upstream_response"


class UpstreamTimeout(GatewayError):
    status, type, code = 504, "upstream_error", "upstream_timeout"


class InternalError(GatewayError):
    status, type, code = 500, "server_error", "internal_error"


_encode = msgspec.json.Encoder().encode


def error_body(error: GatewayError) -> bytes:
    """The OpenAI-style JSON body for `error`."""
    detail = ErrorDetail(message=error.message, type=error.type, param=error.param, code=error.code)
    return _encode(ErrorBody(error=detail))


def error_response(error: GatewayError) -> tuple[int, bytes]:
    """Status and body for `error`: the one place an error becomes HTTP."""
    return error.status, error_body(error)


class TokenRevoked(Unauthorized):
    code = "token_revoked"


class TokenExpired(Unauthorized):
    code = "token_expired"


class ModelNotAllowed(GatewayError):
    status, type, code = 403, "invalid_request_error", "model_not_allowed"


class RateLimited(GatewayError):
    """rpm or tpm: `type` is "requests" or "tokens", as OpenAI sends it."""

    status, type, code = 429, "requests", "rate_limit_exceeded"

    def __init__(self, message: str, *, kind: str = "requests", headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers=headers)
        self.type = kind


class QuotaExhausted(GatewayError):
    """max_requests or the token budget is used up: retrying will not help."""

    status, type = 429, "insufficient_quota"
    code: str | None = "insufficient_quota"


class AuthThrottled(GatewayError):
    status, type, code = 429, "requests", "too_many_failed_authentications"


class Forbidden(GatewayError):
    status, type, code = 403, "invalid_request_error", "forbidden"


class NotFound(GatewayError):
    status, type, code = 404, "invalid_request_error", "not_found"


class Conflict(GatewayError):
    status, type, code = 409, "invalid_request_error", "conflict"


class ManagementDisabled(GatewayError):
    status, type, code = 503, "server_error", "management_disabled"


# Anthropic's error types by status (https://docs.anthropic.com/en/api/errors); 529 is its "overloaded".
ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    """Anthropic's `error.type` for an HTTP status (other 4xx: invalid_request_error, other 5xx: api_error)."""
    return ANTHROPIC_ERROR_TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error")


def anthropic_error_response(error: GatewayError) -> tuple[int, bytes]:
    """Status and Anthropic-style body for `error`, for callers of the Anthropic routes."""
    body = {"type": "error", "error": {"type": anthropic_error_type(error.status), "message": error.message}}
    return error.status, _encode(body)
