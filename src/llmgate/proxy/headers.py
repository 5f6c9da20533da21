"""Header rewriting between client and upstream: pure functions over header pairs.

Going up: the caller's credentials are replaced by the provider's, hop-by-hop headers are dropped, the rest
(OpenAI-Organization, OpenAI-Beta, user headers, the SDK's x-stainless-*) is kept. Coming down: hop-by-hop
headers are dropped, everything else (x-ratelimit-*, retry-after, openai-processing-ms, ...) is kept, and the
upstream's `x-request-id` is renamed `x-upstream-request-id` because `x-request-id` is llmgate's own (Anthropic's
`request-id` is copied to `x-upstream-request-id` too, and kept: the Anthropic SDK reads it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# RFC 9110 §7.6.1 connection-specific fields, plus the ones llmgate sets itself.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
     "trailer", "transfer-encoding", "upgrade"}
)
_HOP_BY_HOP_BYTES = frozenset(name.encode() for name in HOP_BY_HOP)
_DROP_DOWN = _HOP_BY_HOP_BYTES | {b"x-request-id"}
_DROP_UP = frozenset(
    _HOP_BY_HOP_BYTES
    | {b"host", b"content-length", b"authorization", b"x-api-key", b"cookie", b"x-request-id",
       # Upstream bodies are asked for uncompressed so the gateway can read usage from them later; the
       # client link is usually local, where compression costs more CPU than it saves.
       b"accept-encoding"}
)


class InboundHeaders:
    """What the hot path needs from the client's headers, found in one pass."""

    __slots__ = ("accept_encoding", "content_length", "content_type", "credential", "forward", "host", "hosts",
                 "request_id")

    def __init__(self) -> None:
        self.host: bytes = b""
        self.hosts = 0
        """How many Host headers came (RFC 9112 §3.2: exactly one in HTTP/1.1)."""
        self.credential: str | None = None
        self.request_id: bytes | None = None
        self.content_length: int | None = None
        self.content_type: bytes = b""
        self.accept_encoding: bytes = b""
        """What the client accepts (not sent upstream): llmgate's own compression of whole answers reads it."""
        self.forward: list[tuple[str, str]] = []


def split_request_headers(raw: Iterable[tuple[bytes, bytes]]) -> InboundHeaders:
    """Sort the client's headers into credentials, request id, body facts and the headers to forward.

    ASGI servers give lower-cased names. A bearer token wins over `x-api-key` when both are sent.
    """
    found = InboundHeaders()
    forward = found.forward
    for name, value in raw:
        if name not in _DROP_UP:
            if name == b"content-type":
                found.content_type = value
            forward.append((name.decode("latin-1"), value.decode("latin-1")))
        elif name == b"authorization":
            if value[:7].lower() == b"bearer ":
                found.credential = value[7:].strip().decode("latin-1")
        elif name == b"x-api-key":
            if found.credential is None:
                found.credential = value.strip().decode("latin-1")
        elif name == b"x-request-id":
            found.request_id = value
        elif name == b"content-length":
            found.content_length = int(value) if value.isdigit() else None
        elif name == b"host":
            found.host = value
            found.hosts += 1
        elif name == b"accept-encoding":
            found.accept_encoding = value
    return found


_HOST = re.compile(rb"[0-9A-Za-z!$&'()*+,;=\-._~:\[\]@%]*")
"""What RFC 3986 allows in a host and port (Litestar checks the same before its routes)."""


def valid_host(host: bytes) -> bool:
    """False for a Host header no URL could hold (header injection)."""
    return _HOST.fullmatch(host) is not None


def upstream_request_headers(inbound: InboundHeaders, auth: tuple[tuple[str, str], ...], request_id: bytes,
                             defaults: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str]]:
    """The headers to send upstream: the forwarded ones, the key's auth headers, the provider's defaults the
    caller did not send (e.g. `anthropic-version`), and our request id."""
    headers = inbound.forward.copy()
    headers.extend(auth)
    if defaults:
        sent = {name for name, _ in headers}
        headers.extend(h for h in defaults if h[0] not in sent)
    headers.append(("x-client-request-id", request_id.decode("latin-1")))
    return headers


def downstream_headers(upstream: list[tuple[bytes, bytes]],
                       request_id: bytes) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
    """The headers to send to the client, and the upstream's own request id if it sent one; `upstream`'s names
    are lower-cased (proxy/client.py gives them so)."""
    headers: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id)]
    headers += [header for header in upstream if header[0] not in _DROP_DOWN]
    named = dict(upstream)
    upstream_id = named.get(b"x-request-id")
    if upstream_id is None:
        upstream_id = named.get(b"request-id")  # Anthropic's: kept (its SDK reads it) and copied
    if upstream_id is not None:
        headers.append((b"x-upstream-request-id", upstream_id))
    return headers, upstream_id
