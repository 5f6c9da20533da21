"""The error table: each GatewayError → its status and an OpenAI-style body."""

import msgspec
import pytest

from llmgate.errors import (
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    ModelNotFound,
    PayloadTooLarge,
    RouteNotFound,
    Unauthorized,
    UpstreamTimeout,
    UpstreamUnreachable,
    error_response,
)


@pytest.mark.parametrize(("error", "status", "type_", "code"), [
    (InvalidRequest("bad", param="model"), 400, "invalid_request_error", None),
    (Unauthorized("no"), 401, "invalid_request_error", "invalid_api_key"),
    (RouteNotFound("no"), 404, "invalid_request_error", "unknown_url"),
    (ModelNotFound("no"), 404, "invalid_request_error", "model_not_found"),
    (MethodNotAllowed("no"), 405, "invalid_request_error", "method_not_allowed"),
    (PayloadTooLarge("no"), 413, "invalid_request_error", "payload_too_large"),
    (UpstreamUnreachable("no"), 502, "upstream_error", "upstream_unreachable"),
    (UpstreamTimeout("no"), 504, "upstream_error", "upstream_timeout"),
    (GatewayError("no"), 500, "server_error", None),
])
def test_error_table(error: GatewayError, status: int, type_: str, code: str | None) -> None:
    got_status, body = error_response(error)
    assert got_status == status
    assert msgspec.json.decode(body) == {"error": {"message": error.message, "type": type_,
                                                   "param": error.param, "code": code}}
