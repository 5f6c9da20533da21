"""proxy/google.py: a Google 429's RetryInfo becomes the `retry-after` routing and clients read."""

from __future__ import annotations

import json

from llmgate.proxy.google import with_retry_after
from llmgate.routing.keys import retry_after_s


def exhausted(delay: str) -> bytes:
    return json.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}}).encode()


def test_retry_info_becomes_retry_after() -> None:
    headers = with_retry_after(429, [(b"content-type", b"application/json")], exhausted("41.6s"))
    assert headers[-1] == (b"retry-after", b"42") and retry_after_s(headers) == 42
    assert with_retry_after(429, [], exhausted("0.2s")) == [(b"retry-after", b"1")]  # at least a second


def test_other_answers_keep_their_headers() -> None:
    own = [(b"retry-after", b"5")]
    assert with_retry_after(429, own, exhausted("30s")) == own  # the upstream's own header wins
    assert with_retry_after(503, [], exhausted("30s")) == []
    assert with_retry_after(429, [], b'{"error":{"code":429}}') == []
