"""What goes up to an Anthropic provider: the caller's headers, the provider's x-api-key, a default version."""

from __future__ import annotations

import json

from llmgate.errors import UpstreamTimeout
from llmgate.proxy.headers import split_request_headers
from llmgate.routes.anthropic import ANTHROPIC_VERSION, anthropic_error_event, anthropic_upstream_headers


def test_caller_credentials_replaced_and_betas_kept() -> None:
    inbound = split_request_headers([(b"x-api-key", b"sk-master"), (b"anthropic-version", b"2023-06-01"),
                                     (b"anthropic-beta", b"a,b"), (b"content-type", b"application/json")])
    headers = anthropic_upstream_headers(inbound, "sk-ant-provider", b"rid-1")
    assert headers == [("anthropic-version", "2023-06-01"), ("anthropic-beta", "a,b"),
                       ("content-type", "application/json"), ("x-api-key", "sk-ant-provider"),
                       ("x-client-request-id", "rid-1")]


def test_version_added_only_when_missing() -> None:
    inbound = split_request_headers([(b"authorization", b"Bearer sk-master")])
    assert anthropic_upstream_headers(inbound, "", b"r") == [("anthropic-version", ANTHROPIC_VERSION),
                                                              ("x-client-request-id", "r")]


def test_error_event_shape() -> None:
    event, data = anthropic_error_event(UpstreamTimeout("silent")).decode().strip().split("\n")
    assert event == "event: error"
    assert json.loads(data[6:]) == {"type": "error", "error": {"type": "api_error", "message": "silent"}}
