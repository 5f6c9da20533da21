"""The upstream HTTP clients, pooled, one pair per provider, behind a small interface.

Chosen by measurement (benchmarks/README.md), per kind of response:
- whole responses go through pyreqwest (Rust reqwest/hyper): the highest throughput of the three measured in
  the minimal passthrough, ahead of aiohttp, with httpx far behind (its pool collapses under concurrency);
- streams go through aiohttp. pyreqwest can stream only chunk by chunk (`read_chunk`, each a hop from its
  Rust thread to the event loop) or by filling a buffer first (its default pre-reads 64 KiB before even the
  headers are returned, so an LLM stream would reach the client only once generation ended). aiohttp's
  `readany()` returns what has arrived without waiting for more: the same bytes, fewer and cheaper sends.
- pyreqwest cannot abort a request in flight (cancelling its future leaves the request running in its Rust
  runtime, the upstream connection open until the answer comes). So a whole answer goes through pyreqwest only
  on paths known to answer fast (`AnswerTimes`); where some answers are slow or none is known yet (an LLM
  generating: the answer a client may give up on), through aiohttp, whose cancellation closes the connection at
  once. The per-request cost of aiohttp matters little there: such requests wait for seconds.
Everything client-specific lives here; `proxy/forward.py` translates the errors named in `TRANSPORT_ERRORS`.

aiohttp loads when the first stream needs it, or in the background once the gateway serves (`warm_streaming`):
its import was a fifth of start-up. Its errors are re-raised as `StreamError`s, so that naming them
needs no import.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import sys
import time
from collections.abc import AsyncIterable, Callable
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from loguru import logger
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import ConnectTimeoutError, PyreqwestError, RequestTimeoutError

from llmgate.config import ProviderConfig

if TYPE_CHECKING:
    import aiohttp
    from pyreqwest.http import HeaderMap

Body = bytes | AsyncIterable[bytes]
Headers = list[tuple[str, str]]
RawHeaders = list[tuple[bytes, bytes]]


class StreamError(Exception):
    """The streaming client failed (aiohttp's `ClientError`, re-raised as ours)."""


class StreamTimeout(StreamError, TimeoutError):
    """The streaming client timed out."""


class StreamConnectTimeout(StreamTimeout):
    """The streaming client timed out connecting."""


TRANSPORT_ERRORS = (PyreqwestError, StreamError)
"""Everything the clients raise for a failed exchange (timeouts are also `TimeoutError`)."""


def is_timeout(exc: BaseException) -> bool:
    """True for a connect or read timeout of either client."""
    return isinstance(exc, RequestTimeoutError | TimeoutError)


def is_connect_timeout(exc: BaseException) -> bool:
    return isinstance(exc, ConnectTimeoutError | StreamConnectTimeout)


FAST_ANSWER_S = 0.25
"""A path whose whole answers all come within this is served by pyreqwest: a client leaving a request that short
loses little. A path where some take longer goes through aiohttp, which closes an abandoned request at once."""


class AnswerTimes:
    """Which upstream paths answer fast: those seen, with no answer slower than FAST_ANSWER_S in the last
    `SLOW_MEMORY_S` (bounded in the paths it remembers). Remembered by time, not by count: while one long
    generation runs, many quick answers may come on the same path, and the next long one must still be abortable.
    A request still waiting on the pooled client past FAST_ANSWER_S marks its path slow as soon as the next
    request asks (the requests in flight are kept oldest first: a look at the oldest is enough)."""

    __slots__ = ("_clock", "_next", "_slow_at", "_waiting")
    MAX_PATHS = 512
    SLOW_MEMORY_S = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._slow_at: dict[str, float] = {}
        """path → when an answer on it was last slow (-inf: never)"""
        self._waiting: dict[int, tuple[str, float]] = {}
        """ticket → (path, when sent) of the pooled client's requests in flight, oldest first"""
        self._next = 0

    def is_fast(self, path: str) -> bool:
        """Answers on `path` are known to come fast (a path not seen yet is not)."""
        slow_at = self._slow_at.get(path)
        return slow_at is not None and self._clock() - slow_at >= self.SLOW_MEMORY_S

    def pooled(self, path: str) -> int | None:
        """A ticket (for `done`) when a request on `path` may go through the pooled client; None when it must be
        abortable."""
        now = self._clock()
        waiting = self._waiting
        while waiting:
            ticket, (waiting_path, sent_at) = next(iter(waiting.items()))
            if now - sent_at < FAST_ANSWER_S:
                break
            del waiting[ticket]
            self._slow_at[waiting_path] = now
        if not self.is_fast(path):
            return None
        self._next += 1
        waiting[self._next] = (path, now)
        return self._next

    def done(self, ticket: int | None, path: str, seconds: float) -> None:
        """A request on `path` ended after `seconds` (answered, failed, or its client left)."""
        if ticket is not None:
            self._waiting.pop(ticket, None)
        slow_at = self._slow_at
        if path not in slow_at and len(slow_at) >= self.MAX_PATHS:
            slow_at.clear()  # paths come from clients: forget them all rather than grow without bound
        if seconds >= FAST_ANSWER_S:
            slow_at[path] = self._clock()
        else:
            slow_at.setdefault(path, -math.inf)


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


def _header_pairs(headers: HeaderMap) -> RawHeaders:
    """pyreqwest's headers as byte pairs, names lower-cased (the http crate's HeaderName already is).

    A value with bytes past ASCII (obs-text, RFC 9110 §5.5) cannot be read from pyreqwest as bytes or str: it is
    dropped, with a log line, as the streaming client's are (`_ascii_headers`), so both kinds answer alike."""
    try:
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    except ValueError:  # "failed to convert header to a str"
        pairs: RawHeaders = []
        for name in headers.keys():  # noqa: SIM118  (a HeaderMap's own keys view; names are always ASCII)
            try:
                values = headers.getall(name)
            except ValueError:
                _log_dropped(name)
                continue
            pairs.extend((name.encode("latin-1"), value.encode("latin-1")) for value in values)
        return pairs


def _ascii_headers(headers: RawHeaders) -> RawHeaders:
    """`headers` without the values that hold bytes past ASCII (see `_header_pairs`), each dropped logged."""
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
        self._buffered: Client | None = None
        self._streaming: aiohttp.ClientSession | None = None
        self._client_error: type[Exception] = Exception
        self.answer_times = AnswerTimes()
        """Which paths' whole answers go through pyreqwest (see the module docstring)."""

    async def open(self) -> None:
        """Open the connection pools (in the app's lifespan)."""
        connect = timedelta(seconds=self.provider.timeouts.connect_s)
        builder = (
            ClientBuilder()
            .connect_timeout(connect)
            # Bytes pass through untouched: no transparent decompression, no redirects, no cookies.
            .gzip(False).brotli(False).zstd(False).deflate(False)
            .follow_redirects(False)
            .tcp_nodelay(True)
            # A whole answer comes when the model is done: first_byte_s bounds all of it (set once for the pool).
            .timeout(timedelta(seconds=self.provider.timeouts.first_byte_s))
        )
        self._buffered = await builder.build().__aenter__()

    def _open_streaming(self) -> aiohttp.ClientSession:
        """The streaming pool, opened at its first use (in the running loop)."""
        import aiohttp

        self._streaming = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.provider.timeouts.connect_s),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )
        self._client_error = aiohttp.ClientError
        return self._streaming

    async def close(self) -> None:
        """Close the pools (on shutdown)."""
        if self._buffered is not None:
            await self._buffered.close()
            self._buffered = None
        if self._streaming is not None:
            await self._streaming.close()
            self._streaming = None

    async def fetch(self, method: str, path: str, headers: Headers, body: Body) -> tuple[int, RawHeaders, bytes]:
        """Send a request and read the whole response: status, headers (names lower-cased), body. The upstream's
        first-byte timeout bounds it all; a cancelled fetch closes its upstream request at once when the path's
        answers are slow (see the module docstring)."""
        started = time.monotonic()
        times = self.answer_times
        ticket = times.pooled(path)
        try:
            if ticket is not None:
                return await self._fetch_pooled(method, path, headers, body, started)
            if self._streaming is None and not _is_loaded("aiohttp"):
                # aiohttp's import (started in the background at start-up) is not done: wait for it off the loop
                await asyncio.to_thread(importlib.import_module, "aiohttp")
            return await self._fetch_abortable(method, path, headers, body)
        finally:
            times.done(ticket, path, time.monotonic() - started)

    async def _fetch_pooled(self, method: str, path: str, headers: Headers, body: Body,
                            started: float) -> tuple[int, RawHeaders, bytes]:
        assert self._buffered is not None, "UpstreamClient.open() was not awaited"
        builder = self._buffered.request(method, self.base_url + path).headers(headers)
        if isinstance(body, bytes):
            if body:
                builder = builder.body_bytes(body)
        else:
            builder = builder.body_stream(body)
        try:
            response = await builder.build().send()
        except ConnectTimeoutError as exc:
            # pyreqwest names the whole request's timeout (first_byte_s) a connect timeout too: one that fired
            # at first_byte_s is that one, the connection was up.
            if not self._is_connect_timeout(time.monotonic() - started):
                raise RequestTimeoutError("no answer within the first-byte timeout", {"causes": None}) from exc
            raise
        return response.status, _header_pairs(response.headers), bytes(await response.bytes())

    def _is_connect_timeout(self, elapsed_s: float) -> bool:
        """A timeout after `elapsed_s` was the connect timeout, not the whole request's (first_byte_s)."""
        timeouts = self.provider.timeouts
        return timeouts.connect_s < timeouts.first_byte_s and elapsed_s < timeouts.first_byte_s * 0.99

    async def _fetch_abortable(self, method: str, path: str, headers: Headers,
                               body: Body) -> tuple[int, RawHeaders, bytes]:
        reply = self.stream(method, path, headers, body)
        try:
            async with asyncio.timeout(self.provider.timeouts.first_byte_s):
                async with reply:
                    return reply.status, reply.raw_headers(), await reply.read()
        except TimeoutError as exc:
            if isinstance(exc, StreamError):
                raise
            raise StreamTimeout("no answer within the first-byte timeout") from exc

    def stream(self, method: str, path: str, headers: Headers, body: Body) -> StreamedReply:
        """Prepare a request whose response is relayed as it arrives (deadlines: see proxy/streaming.py)."""
        assert self._buffered is not None, "UpstreamClient.open() was not awaited"
        session = self._streaming or self._open_streaming()
        return StreamedReply(session.request(method, self.base_url + path, headers=headers, data=body,
                                             allow_redirects=False), self._client_error)
