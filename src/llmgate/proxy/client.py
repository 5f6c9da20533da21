"""The upstream HTTP clients, pooled, one pair per provider, behind a small interface.

A client that leaves must close its upstream request at once, streamed or not: an LLM generating for nobody
costs tokens. So every request is abortable:
- whole answers go through `proxy/wire.py`, a keep-alive HTTP/1.1 client on the event loop's own transports that
  aborts the connection of a cancelled request. It does only what a whole answer needs, and costs less CPU per
  answer than pyreqwest (Rust reqwest/hyper), the fastest general client measured (benchmarks/README.md).
  pyreqwest is not used: it cannot abort a request in flight. Its request runs as a task in its own Rust
  runtime; cancelling the Python side, closing its response or its client drops only the handle to that task,
  which runs on, the upstream connection open, until the answer comes (only its own timeout ends it). No
  earlier answer on a path tells that the next one will be quick, so no request can be trusted to it.
- streams go through aiohttp, read with `readany()`, which returns what has arrived without waiting for more:
  the same bytes, in fewer and cheaper sends than chunk by chunk. Its cancellation closes the connection.
Everything client-specific lives here; `proxy/forward.py` translates the errors named in `TRANSPORT_ERRORS`.

aiohttp loads when the first stream needs it, or in the background once the gateway serves (`warm_streaming`):
its import was a fifth of start-up. Its errors, and the whole-answer client's, are re-raised as `StreamError`s,
so that naming them needs no import.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterable
from types import TracebackType
from typing import TYPE_CHECKING

from loguru import logger

from llmgate.config import ProviderConfig
from llmgate.proxy.wire import WireConnectTimeout, WireError, WirePool

if TYPE_CHECKING:
    import aiohttp

Body = bytes | AsyncIterable[bytes]
Headers = list[tuple[str, str]]
RawHeaders = list[tuple[bytes, bytes]]


class StreamError(Exception):
    """An upstream client failed (aiohttp's `ClientError` or a `WireError`, re-raised as ours)."""


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


def _stream_error(exc: aiohttp.ClientError) -> StreamError:
    import aiohttp

    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return StreamConnectTimeout(message)
    if isinstance(exc, TimeoutError):
        return StreamTimeout(message)
    return StreamError(message)


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


def _is_loaded(name: str) -> bool:
    """The module `name` is imported (not merely being imported, in another thread)."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and not getattr(spec, "_initializing", False)


def warm_streaming() -> asyncio.Future[object]:
    """Import aiohttp in a worker thread, so the first stream does not wait for it on the event loop."""
    return asyncio.ensure_future(asyncio.to_thread(importlib.import_module, "aiohttp"))


class StreamedReply:
    """An upstream response read as it arrives; use as an async context manager."""

    __slots__ = ("_client_error", "_request", "_response", "status")

    def __init__(self, request: aiohttp.client._RequestContextManager, client_error: type[Exception]) -> None:
        self._request = request
        self._client_error = client_error
        self._response: aiohttp.ClientResponse | None = None
        self.status = 0

    async def __aenter__(self) -> StreamedReply:
        try:
            self._response = await self._request.__aenter__()
        except self._client_error as exc:  # evaluated only when something was raised
            raise _stream_error(exc) from exc  # type: ignore[arg-type]
        self.status = self._response.status
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if exc is not None and self._response is not None:
            self._response.close()  # abandoned mid-body: drop the connection rather than pool it
        await self._request.__aexit__(exc_type, exc, tb)

    def raw_headers(self) -> RawHeaders:
        """The response headers, names lower-cased (as pyreqwest's already are)."""
        assert self._response is not None
        headers = [(name.lower(), value) for name, value in self._response.raw_headers]
        return headers if all(value.isascii() for _, value in headers) else _ascii_headers(headers)

    async def read(self) -> bytes:
        """The whole remaining body (an error answer, before it is decided whether to retry)."""
        assert self._response is not None
        try:
            return await self._response.read()
        except self._client_error as exc:
            raise _stream_error(exc) from exc  # type: ignore[arg-type]

    def ended(self) -> bool:
        """The whole body has been read: `next_chunk()` would return b"" (the end arrived with the last bytes)."""
        assert self._response is not None
        return self._response.content.at_eof()

    async def next_chunk(self) -> bytes:
        """Whatever has arrived since the last call (waiting for at least one byte); b"" at the end."""
        assert self._response is not None
        try:
            return await self._response.content.readany()
        except self._client_error as exc:
            raise _stream_error(exc) from exc  # type: ignore[arg-type]


class UpstreamClient:
    """Pooled connections to one provider's base URL; auth headers come with each request (keys rotate)."""

    def __init__(self, provider: ProviderConfig) -> None:
        self.provider = provider
        self.base_url = provider.base_url
        self._opened = False
        self._wire = WirePool(provider.base_url)
        self._session: aiohttp.ClientSession | None = None
        self._client_error: type[Exception] = Exception

    async def open(self) -> None:
        """Ready the client (in the app's lifespan); connections open as requests need them."""
        self._opened = True

    def _open_session(self) -> aiohttp.ClientSession:
        """The streaming pool, opened at its first use (in the running loop)."""
        import aiohttp

        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.provider.timeouts.connect_s),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )
        self._client_error = aiohttp.ClientError
        return self._session

    async def close(self) -> None:
        """Close the pools (on shutdown)."""
        self._opened = False
        self._wire.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, method: str, path: str, headers: Headers, body: Body) -> tuple[int, RawHeaders, bytes]:
        """Send a request and read the whole response: status, headers (names lower-cased), body. The upstream's
        first-byte timeout bounds it all; a cancelled fetch (its client left) closes the upstream request at once."""
        assert self._opened, "UpstreamClient.open() was not awaited"
        timeouts = self.provider.timeouts
        try:
            async with asyncio.timeout(timeouts.first_byte_s):
                status, raw, data = await self._wire.fetch(method, path, headers, body, timeouts.connect_s)
        except WireConnectTimeout as exc:
            raise StreamConnectTimeout(str(exc)) from exc
        except WireError as exc:
            raise StreamError(str(exc)) from exc
        except TimeoutError as exc:
            raise StreamTimeout("no answer within the first-byte timeout") from exc
        return status, raw if all(value.isascii() for _, value in raw) else _ascii_headers(raw), data

    def stream(self, method: str, path: str, headers: Headers, body: Body) -> StreamedReply:
        """Prepare a request whose response is relayed as it arrives (deadlines: see proxy/streaming.py)."""
        assert self._opened, "UpstreamClient.open() was not awaited"
        session = self._session or self._open_session()
        return StreamedReply(session.request(method, self.base_url + path, headers=headers, data=body,
                                             allow_redirects=False), self._client_error)
