"""Headers of a translated answer: the upstream's, minus those describing its body, ids renamed."""

from __future__ import annotations

from llmgate.proxy.translated import translated_headers
from llmgate.usage.event import Exchange


def test_body_headers_replaced_and_ids_kept() -> None:
    # names lower-cased, as proxy/client.py gives them
    upstream = [(b"content-type", b"application/json"), (b"content-length", b"123"), (b"content-encoding", b"gzip"),
                (b"request-id", b"req_1"), (b"anthropic-ratelimit-requests-remaining", b"9"),
                (b"transfer-encoding", b"chunked")]
    exchange = Exchange(b"ours", "POST", "/v1/chat/completions")
    assert translated_headers(upstream, exchange, b"text/event-stream") == [
        (b"x-request-id", b"ours"), (b"request-id", b"req_1"), (b"anthropic-ratelimit-requests-remaining", b"9"),
        (b"x-upstream-request-id", b"req_1"), (b"content-type", b"text/event-stream")]
    assert exchange.upstream_request_id == b"req_1"  # for the usage event and the logs
