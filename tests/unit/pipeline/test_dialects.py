"""What goes up to an Anthropic provider (the caller's headers, the provider's x-api-key, a default version) and
how a started Anthropic stream ends on an error."""

from __future__ import annotations

import json

from llmgate.config import ProviderConfig
from llmgate.errors import UpstreamTimeout, error_body
from llmgate.pipeline.dialects import anthropic_error_frame
from llmgate.providers.anthropic import DEFAULT_ANTHROPIC_VERSION, Anthropic
from llmgate.proxy.headers import split_request_headers, upstream_request_headers

PROVIDER = Anthropic(ProviderConfig(name="claude", base_url="https://api.anthropic.com", kind="anthropic"))


def test_caller_credentials_replaced_and_betas_kept() -> None:
    inbound = split_request_headers([(b"x-api-key", b"sk-master"), (b"anthropic-version", b"2023-01-01"),
                                     (b"anthropic-beta", b"a,b"), (b"content-type", b"application/json")])
    headers = upstream_request_headers(inbound, PROVIDER.auth_headers("sk-ant-provider"), b"rid-1",
                                       PROVIDER.default_headers)
    assert ("x-api-key", "sk-ant-provider") in headers and ("anthropic-beta", "a,b") in headers
    assert [v for n, v in headers if n == "anthropic-version"] == ["2023-01-01"]  # the caller's own wins
    assert "sk-master" not in str(headers)


def test_version_added_only_when_missing() -> None:
    inbound = split_request_headers([(b"authorization", b"Bearer sk-master")])
    headers = upstream_request_headers(inbound, PROVIDER.auth_headers(""), b"r", PROVIDER.default_headers)
    assert ("anthropic-version", DEFAULT_ANTHROPIC_VERSION) in headers
    assert "sk-master" not in str(headers)


def test_error_frame_shape() -> None:
    event, data = anthropic_error_frame(error_body(UpstreamTimeout("silent"))).decode().strip().split("\n")
    assert event == "event: error"
    body = json.loads(data[6:])
    assert body["type"] == "error" and body["error"]["message"] == "silent"


def test_error_frame_keeps_anthropic_bodies() -> None:
    anthropic = b'{"type":"error","error":{"type":"overloaded_error","message":"busy"}}'
    assert anthropic_error_frame(anthropic) == b"event: error\ndata: " + anthropic + b"\n\n"
