"""Header rewriting between client and upstream: pure functions over header pairs.

Going up: the caller's credentials are replaced by the provider's, hop-by-hop headers are dropped, the rest
(OpenAI-Organization, OpenAI-Beta, user headers, the SDK's x-stainless-*) is kept. Coming down: hop-by-hop
headers are dropped, everything else (x-ratelimit-*, retry-after, openai-processing-ms, ...) is kept, and the
upstream's `x-request-id` is renamed `x-upstream-request-id` because `x-request-id` is llmgate's own (Anthropic's
`request-id` is copied to `x-upstream-request-id` too, and kept: the Anthropic SDK reads it).
"""

from __future__ import annotations

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
    """What the hot path needs from the client's headers."""

    __slots__ = ("content_length", "content_type", "credential", "forward", "request_id")

    def __init__(self, credential: str | None = None, request_id: bytes | None = None,
                 content_length: int | None = None, content_type: bytes = b"",
                 forward: list[tuple[str, str]] | None = None) -> None:
        self.credential = credential
        self.request_id = request_id
        self.content_length = content_length
        self.content_type = content_type
        self.forward: list[tuple[str, str]] = forward if forward is not None else []


def split_request_headers(raw: Iterable[tuple[bytes, bytes]]) -> InboundHeaders:
    """Sort the client's headers into credentials, request id, body facts and the headers to forward.

    ASGI servers give lower-cased names. A bearer token wins over `x-api-key` when both are sent; of a repeated
    single-valued header, the last counts. (One comprehension and a dict in C: a loop testing each header
    against each name ran ~36 bytecodes a header, and the OpenAI SDK sends 17.)
    """
    raw = raw if isinstance(raw, list) else list(raw)
    forward = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw if name not in _DROP_UP]
    named = dict(raw)
    credential: str | None = None
    authorization = named.get(b"authorization")
    if authorization is not None and authorization[:7].lower() == b"bearer ":
        credential = authorization[7:].strip().decode("latin-1")
    else:
        api_key = named.get(b"x-api-key")
        if api_key is not None:
            credential = api_key.strip().decode("latin-1")
    length = named.get(b"content-length")
    return InboundHeaders(credential, named.get(b"x-request-id"),
                          int(length) if length is not None and length.isdigit() else None,
                          named.get(b"content-type", b""), forward)


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
