"""The upstream HTTP client, pooled, one per provider, behind a small interface.

A client that leaves must close its upstream request at once, streamed or not: an LLM generating for nobody
costs tokens. So every request is abortable: whole answers and streams go through `proxy/wire.py`, a keep-alive
HTTP/1.1 client on the event loop's own transports that aborts the connection of a cancelled request (and of a
stream left before its end). It does only what the gateway needs, and costs less CPU per answer than pyreqwest
(Rust reqwest/hyper), the fastest general client measured, and per stream than aiohttp (benchmarks/README.md).
A stream's `next_chunk()` returns whatever has arrived since the last call without waiting for more: the same
bytes, in fewer and cheaper sends than chunk by chunk.
pyreqwest is not used: it cannot abort a request in flight. Its request runs as a task in its own Rust runtime;
cancelling the Python side, closing its response or its client drops only the handle to that task, which runs
on, the upstream connection open, until the answer comes (only its own timeout ends it). No earlier answer on a
path tells that the next one will be quick, so no request can be trusted to it.
Everything client-specific lives here; `proxy/forward.py` translates the errors named in `TRANSPORT_ERRORS`: the
wire client's are re-raised as `StreamError`s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from types import TracebackType

from loguru import logger

from llmgate.config import ProviderConfig
from llmgate.proxy.deadlines import Deadlines
from llmgate.proxy.wire import WireConnectTimeout, WireError, WirePool, WireStream

Body = bytes | AsyncIterable[bytes]
Headers = list[tuple[str, str]]
RawHeaders = list[tuple[bytes, bytes]]


class StreamError(Exception):
    """The upstream client failed (a `WireError`, re-raised as ours)."""


class StreamTimeout(StreamError, TimeoutError):
    """An upstream client timed out."""


class StreamConnectTimeout(StreamTimeout):
    """An upstream client timed out connecting."""


TRANSPORT_ERRORS = (StreamError,)
"""Everything the clients raise for a failed exchange (timeouts are also `TimeoutError`)."""


def is_timeout(exc: BaseException) -> bool:
    """True for a connect or read timeout."""
    return isinstance(exc, TimeoutError)


def is_connect_timeout(exc: BaseException) -> bool:
    return isinstance(exc, StreamConnectTimeout)


def _stream_error(exc: WireError) -> StreamError:
    if isinstance(exc, WireConnectTimeout):
        return StreamConnectTimeout(str(exc))
    return StreamError(str(exc))


def _log_dropped(name: str) -> None:
    logger.warning("dropped the upstream's response header {} (its value is not ASCII)", name)


def _ascii_headers(headers: RawHeaders) -> RawHeaders:
    """`headers` without the values that hold bytes past ASCII (obs-text, RFC 9110 §5.5), each dropped logged."""
    kept: RawHeaders = []
    for name, value in headers:
        if value.isascii():
            kept.append((name, value))
        else:
            _log_dropped(name.decode("latin-1"))
    return kept


class StreamedReply:
    """An upstream response read as it arrives; use as an async context manager (the request goes out when it is
    entered, which returns once the response's head is in)."""

    __slots__ = ("_pool", "_request", "_stream", "status")

    def __init__(self, pool: WirePool, request: tuple[str, str, Headers, Body, float]) -> None:
        self._pool = pool
        self._request = request
        self._stream: WireStream | None = None
        self.status = 0

    async def __aenter__(self) -> StreamedReply:
        try:
            self._stream = await self._pool.stream(*self._request)
        except WireError as exc:
            raise _stream_error(exc) from exc
        self.status = self._stream.status
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Back to the pool if the body was read to its end; else (left mid-body, on an error or not) the
        connection is aborted."""
        if self._stream is not None:
            self._stream.close()

    def raw_headers(self) -> RawHeaders:
        """The response headers, names lower-cased."""
        assert self._stream is not None
        headers = self._stream.headers
        return headers if all(value.isascii() for _, value in headers) else _ascii_headers(headers)

    async def read(self) -> bytes:
        """The whole remaining body (an error answer, before it is decided whether to retry)."""
        assert self._stream is not None
        try:
            return await self._stream.read()
        except WireError as exc:
            raise _stream_error(exc) from exc

    def ended(self) -> bool:
        """The whole body has been read: `next_chunk()` would return b"" (the end arrived with the last bytes)."""
        assert self._stream is not None
        return self._stream.ended()

    async def next_chunk(self) -> bytes:
        """Whatever has arrived since the last call (waiting for at least one byte); b"" at the end."""
        assert self._stream is not None
        try:
            return await self._stream.next_chunk()
        except WireError as exc:
            raise _stream_error(exc) from exc


class UpstreamClient:
    """Pooled connections to one provider's base URL; auth headers come with each request (keys rotate)."""

    def __init__(self, provider: ProviderConfig) -> None:
        self.provider = provider
        self.base_url = provider.base_url
        self._opened = False
        self._wire = WirePool(provider.base_url)
        self._first_byte = Deadlines(provider.timeouts.first_byte_s)
        """Whole answers still awaited, cancelled at the first-byte timeout (proxy/deadlines.py)."""

    async def open(self) -> None:
        """Ready the client (in the app's lifespan); connections open as requests need them."""
        self._opened = True

    async def close(self) -> None:
        """Close the pool's idle connections (on shutdown)."""
        self._opened = False
        self._wire.close()

    async def fetch(self, method: str, path: str, headers: Headers, body: Body) -> tuple[int, RawHeaders, bytes]:
        """Send a request and read the whole response: status, headers (names lower-cased), body. The upstream's
        first-byte timeout bounds it all; a cancelled fetch (its client left) closes the upstream request at once."""
        assert self._opened, "UpstreamClient.open() was not awaited"
        # The task awaiting this one answer: the request's, or a hedged attempt's own (proxy/hedge.py).
        task = asyncio.current_task()
        assert task is not None
        deadlines = self._first_byte
        deadlines.start(task)
        try:
            status, raw, data = await self._wire.fetch(method, path, headers, body, self.provider.timeouts.connect_s)
        except asyncio.CancelledError:
            if not deadlines.stop(task):
                raise
            raise StreamTimeout("no answer within the first-byte timeout") from None
        except WireConnectTimeout as exc:
            raise StreamConnectTimeout(str(exc)) from exc
        except WireError as exc:
            raise StreamError(str(exc)) from exc
        finally:
            deadlines.stop(task)
        return status, raw if all(value.isascii() for _, value in raw) else _ascii_headers(raw), data

    def stream(self, method: str, path: str, headers: Headers, body: Body) -> StreamedReply:
        """Prepare a request whose response is relayed as it arrives (deadlines: see proxy/streaming.py)."""
        assert self._opened, "UpstreamClient.open() was not awaited"
        return StreamedReply(self._wire, (method, path, headers, body, self.provider.timeouts.connect_s))
