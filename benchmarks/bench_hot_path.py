"""Micro benchmarks of the per-request work on the /v1 hot path (pure functions, no I/O).

Reference: `json.loads` of the same body, the full parse the gateway avoids; the routing-field decode is
recorded as a ratio to it. Header and auth costs are recorded against a 2 KB `json.loads`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from llmgate.access.authenticate import Authenticator
from llmgate.access.token_entry import TokenEntry, hash_secret
from llmgate.access.tokens import TokenCache
from llmgate.pipeline.read import decode_view
from llmgate.proxy.headers import downstream_headers, split_request_headers, upstream_request_headers
from llmgate.store.base import Project, Token
from llmgate.store.crypto import KeyBox
from llmgate.usage.meter import UsageMeter
from tests.upstream_double import chat_frames


def chat_body(size: int) -> bytes:
    """A chat request of about `size` bytes, `model` last (the decoder must skip everything before it)."""
    message = {"role": "user", "content": "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 4}
    messages: list[dict[str, str]] = []
    while len(json.dumps(messages)) < size:
        messages.append(message)
    return json.dumps({"messages": messages, "temperature": 0.2, "stream": False, "model": "gpt-4o-mini"}).encode()


BODIES = {"2KB": chat_body(2_000), "200KB": chat_body(200_000)}

# What the OpenAI Python SDK sends, as granian hands it over.
SDK_HEADERS = [
    (b"host", b"127.0.0.1:8000"), (b"accept-encoding", b"gzip, deflate"), (b"connection", b"keep-alive"),
    (b"accept", b"application/json"), (b"content-type", b"application/json"), (b"user-agent", b"OpenAI/Python 3.51.0"),
    (b"x-stainless-lang", b"python"), (b"x-stainless-package-version", b"3.51.0"), (b"x-stainless-os", b"Linux"),
    (b"x-stainless-arch", b"x64"), (b"x-stainless-runtime", b"CPython"), (b"x-stainless-runtime-version", b"3.11.7"),
    (b"authorization", b"Bearer sk-master-0123456789abcdef"), (b"x-stainless-async", b"false"),
    (b"x-stainless-retry-count", b"0"), (b"x-stainless-read-timeout", b"600"), (b"content-length", b"2048"),
]
# What OpenAI answers with.
UPSTREAM_HEADERS = [
    (b"date", b"Mon, 23 Nov 2026 18:00:00 GMT"), (b"content-type", b"application/json"),
    (b"transfer-encoding", b"chunked"), (b"connection", b"keep-alive"),
    (b"access-control-expose-headers", b"X-Request-ID"),
    (b"openai-organization", b"org-abc"), (b"openai-processing-ms", b"412"), (b"openai-version", b"2020-10-01"),
    (b"x-ratelimit-limit-requests", b"10000"), (b"x-ratelimit-limit-tokens", b"30000000"),
    (b"x-ratelimit-remaining-requests", b"9999"), (b"x-ratelimit-remaining-tokens", b"29999990"),
    (b"x-ratelimit-reset-requests", b"6ms"), (b"x-ratelimit-reset-tokens", b"0s"),
    (b"x-request-id", b"req_0123456789abcdef"), (b"strict-transport-security", b"max-age=31536000"),
    (b"cf-cache-status", b"DYNAMIC"), (b"server", b"cloudflare"), (b"alt-svc", b'h3=":443"; ma=86400'),
]
AUTH_HEADERS = (("authorization", "Bearer sk-provider-0123456789abcdef"),)


@pytest.mark.parametrize("size", list(BODIES))
def test_full_json_parse_reference(record: Callable[..., None], size: str) -> None:
    record(json.loads, BODIES[size], is_reference=f"json_loads_{size}")


@pytest.mark.parametrize("size", list(BODIES))
def test_decode_routing_fields(record: Callable[..., None], size: str) -> None:
    assert decode_view(BODIES[size]).model == "gpt-4o-mini"
    record(decode_view, BODIES[size], reference=f"json_loads_{size}")


def _rewrite_request() -> Any:
    inbound = split_request_headers(SDK_HEADERS)
    return upstream_request_headers(inbound, AUTH_HEADERS, b"0123456789abcdef01234567", ())


def test_request_header_rewrite(record: Callable[..., None]) -> None:
    assert AUTH_HEADERS[0] in _rewrite_request()
    record(_rewrite_request, reference="json_loads_2KB")


def test_response_header_rewrite(record: Callable[..., None]) -> None:
    assert downstream_headers(UPSTREAM_HEADERS, b"rid")[1] == b"req_0123456789abcdef"
    record(downstream_headers, UPSTREAM_HEADERS, b"rid", reference="json_loads_2KB")


def test_auth_master_key(record: Callable[..., None]) -> None:
    authenticator = Authenticator("sk-master-0123456789abcdef")
    record(authenticator.authenticate, "sk-master-0123456789abcdef", 0.0, reference="json_loads_2KB")


def test_virtual_token_checks(record: Callable[..., None]) -> None:
    """Everything a cached virtual token adds to a request: hash + lookup, model, limits, usage."""
    cache = TokenCache(None, KeyBox(None), 1e12, 1.0, lambda: 0.0)  # type: ignore[arg-type]  # never loads
    secret = "lg-" + "a" * 43
    token = Token(id="t", project_id="p", prefix="lg-…aaaa", secret_hash=hash_secret(secret), created_at=0.0,
                  updated_at=0.0, rpm_limit=10**9, tpm_limit=10**12, max_requests=10**12, budget_tokens=10**15)
    cache.entries[token.secret_hash] = TokenEntry(token, Project(id="p", name="p", created_at=0.0, updated_at=0.0),
                                                  cache.keybox, 0.0)
    authenticator = Authenticator("sk-master-0123456789abcdef", cache)
    answer = b'{"id":"x","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":24,"total_tokens":35}}'
    clock = iter(range(10**9))

    def checks() -> None:
        now = next(clock) * 1e-6
        entry = authenticator.authenticate(secret, now).entry  # type: ignore[union-attr]
        entry.check_model("gpt-4o-mini")  # type: ignore[union-attr]
        cache.admit(entry, now)  # type: ignore[arg-type]
        meter = UsageMeter()
        meter.whole(answer)
        cache.record_usage(entry, meter.tokens(), now)  # type: ignore[arg-type]

    record(checks, reference="json_loads_2KB")


def _cached_token_authenticator() -> tuple[Authenticator, str]:
    cache = TokenCache(None, KeyBox(None), 1e12, 1.0, lambda: 0.0)  # type: ignore[arg-type]  # never loads
    secret = "lg-" + "b" * 43
    token = Token(id="t", project_id="p", prefix="lg-…bbbb", secret_hash=hash_secret(secret), created_at=0.0,
                  updated_at=0.0)
    cache.entries[token.secret_hash] = TokenEntry(token, Project(id="p", name="p", created_at=0.0, updated_at=0.0),
                                                  cache.keybox, 0.0)
    return Authenticator("sk-master-0123456789abcdef", cache), secret


def test_auth_cached_virtual_token(record: Callable[..., None]) -> None:
    """The auth step alone for a virtual token found in the cache: hash the secret, one dict lookup."""
    authenticator, secret = _cached_token_authenticator()
    principal = authenticator.authenticate(secret, 0.0)
    assert principal is not None and principal.kind == "token"
    record(authenticator.authenticate, secret, 0.0, reference="json_loads_2KB")


# An OpenAI stream as the upstream double sends it (20 deltas and the usage chunk), in reads of 160 bytes.
_STREAM = b"".join((lambda f: (f[0], *f[1], f[2]))(chat_frames("gpt-4o-mini", 20, True)))
STREAM_READS = [_STREAM[i:i + 160] for i in range(0, len(_STREAM), 160)]


def _tap_stream() -> int:
    meter = UsageMeter()
    for chunk in STREAM_READS:
        meter.feed(chunk)
    return meter.tokens()


def test_sse_usage_tap(record: Callable[..., None]) -> None:
    """The usage tap over a whole 20-event stream (feed per read, then find the usage chunk)."""
    assert _tap_stream() == 31
    record(_tap_stream, reference="json_loads_2KB")
