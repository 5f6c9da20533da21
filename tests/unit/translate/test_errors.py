"""Error bodies and statuses from one dialect into the other."""

from __future__ import annotations

import json

import pytest

from llmgate.errors import ModelNotFound, UpstreamTimeout, anthropic_error_response
from llmgate.translate.errors import (
    anthropic_error_from_openai,
    anthropic_stream_error,
    openai_error_from_anthropic,
    openai_stream_error,
)


def test_anthropic_error_to_openai() -> None:
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    status, out = openai_error_from_anthropic(429, body)
    assert status == 429
    assert json.loads(out) == {"error": {"message": "slow down", "type": "rate_limit_error", "param": None,
                                         "code": None}}
    status, out = openai_error_from_anthropic(529, b'{"type":"error","error":{"type":"overloaded_error",'
                                                   b'"message":"Overloaded"}}')
    assert status == 503 and json.loads(out)["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize(("status", "kind"), [(400, "invalid_request_error"), (401, "authentication_error"),
                                              (403, "permission_error"), (404, "not_found_error"),
                                              (413, "request_too_large"), (422, "invalid_request_error"),
                                              (429, "rate_limit_error"), (500, "api_error"), (502, "api_error")])
def test_openai_error_to_anthropic(status: int, kind: str) -> None:
    body = json.dumps({"error": {"message": "nope", "type": "x", "param": None, "code": None}}).encode()
    out_status, out = anthropic_error_from_openai(status, body)
    assert out_status == status
    assert json.loads(out) == {"type": "error", "error": {"type": kind, "message": "nope"}}


def test_unreadable_and_odd_error_bodies_keep_their_text() -> None:
    assert json.loads(anthropic_error_from_openai(502, b"<html>Bad Gateway</html>")[1])["error"]["message"] == \
        "<html>Bad Gateway</html>"
    assert json.loads(anthropic_error_from_openai(400, b'{"error":"plain text"}')[1])["error"]["message"] == \
        "plain text"
    assert "empty body" in json.loads(openai_error_from_anthropic(500, b"")[1])["error"]["message"]


def test_gateway_errors_in_anthropic_format() -> None:
    status, body = anthropic_error_response(ModelNotFound("no such model"))
    assert status == 404 and json.loads(body) == {"type": "error", "error": {"type": "not_found_error",
                                                                            "message": "no such model"}}
    assert json.loads(anthropic_error_response(UpstreamTimeout("slow"))[1])["error"]["type"] == "api_error"


def test_stream_error_events() -> None:
    assert openai_stream_error("boom").startswith(b'data: {"error":{"message":"boom"')
    event, data = anthropic_stream_error("boom", "overloaded_error").decode().strip().split("\n")
    assert event == "event: error" and json.loads(data[6:])["error"] == {"type": "overloaded_error",
                                                                         "message": "boom"}
