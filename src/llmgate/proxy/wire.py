"""Upstream answers over HTTP/1.1, on the event loop's own transports: a small keep-alive pool per base URL.

Why not a general client: a request must be abortable (a client that leaves closes its upstream request at once),
which pyreqwest's is not, and aiohttp's general machinery costs markedly more CPU per request and per streamed
read. This does only what the gateway needs: one request written at once (or its body streamed, chunked), its
answer read whole (`fetch`) or handed over as it arrives (`stream`: whatever has come since the last read, at
once; reading paused while too much is left untaken), framed by content-length, by chunks, or by the connection's
end (parsed in `wire_answer.py`); connections reused while the upstream keeps them alive. A cancelled or failed
request aborts its connection, and so does a stream left before its end. No proxy support, no decompression, no
redirects: bytes pass through as they came.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import ssl
import time
from collections.abc import AsyncIterable
from types import TracebackType
from urllib.parse import quote, urlsplit

from llmgate.proxy.wire_answer import Answer, Connection, WireError

__all__ = ["WireConnectError", "WireConnectTimeout", "WireError", "WirePool", "WireStream"]

IDLE_S = 15.0
"""An idle connection older than this is closed rather than reused (aiohttp's keep-alive default): upstreams
close theirs after a while, and a request written on a connection being closed fails. One whose upstream says it
keeps it idle for less (`keep-alive: timeout=N`, Node's 5 s) is closed a second before that. Past its time, it is
closed and leaves the pool whether or not a request comes: a burst's connections do not outlive it."""
_FRAMING = frozenset(("content-length", "transfer-encoding"))
_BODILESS = frozenset(("GET", "HEAD"))
"""Methods whose empty request says no content-length (RFC 9110 §8.6: a request without content should not)."""

_TARGET_SAFE = "/?%:@!$&'()*+,;=-._~"
"""What a request target may hold besides letters and digits (RFC 3986's pchar, `/`, `?`, and `%` of escapes
already made); anything else (a space, a line break, non-ASCII) is percent-encoded, as general clients do."""
_TARGET_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + _TARGET_SAFE)


class WireConnectTimeout(WireError, TimeoutError):
    """No connection within the connect timeout."""


class WireConnectError(WireError):
    """The connection was refused or could not be made (DNS, TLS handshake, unreachable)."""


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class WirePool:
    """Keep-alive connections to one base URL (http or https; `tls`: the context verifying the upstream, by default
    the system's CAs); `fetch` sends a request and reads its answer whole, `stream` hands it over as it arrives."""

    def __init__(self, base_url: str, tls: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self._ssl = (tls or ssl.create_default_context()) if parts.scheme == "https" else None
        default_port = self.port == (443 if self._ssl else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = (host if default_port else f"{host}:{self.port}").encode("ascii")
        self._idle: collections.deque[Connection] = collections.deque()
        """idle connections, the most recently used last"""
        self._reaping: asyncio.TimerHandle | None = None
        """when the oldest idle connection's time is up (None: no connection idle)"""

    async def _connect(self, connect_s: float) -> Connection:
        """A new connection, made in an empty context: a transport runs its callbacks in the context it was made in
        and keeps it, so made in the request's, a pooled connection would keep that request's context variables
        (the gateway's Exchange, with the prompt) alive for as long as it lives."""
        opening = asyncio.get_running_loop().create_task(self._open(connect_s), context=contextvars.Context())
        try:
            return await opening
        except asyncio.CancelledError:
            if opening.done() and not opening.cancelled() and opening.exception() is None:
                self._abort(opening.result())  # made just as the request was cancelled
            raise

    async def _open(self, connect_s: float) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_s):
                _, connection = await loop.create_connection(
                    Connection, self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self._ssl else None)
        except TimeoutError as exc:
            raise WireConnectTimeout(f"timed out connecting to {self.host}:{self.port}") from exc
        except (OSError, ssl.SSLError) as exc:
            raise WireConnectError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return connection

    def _reuse(self) -> Connection | None:
        idle, now = self._idle, time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            if now - connection.idle_since < connection.idle_for:
                return connection
            assert connection.transport is not None
            connection.transport.close()
        return None

    def _request_head(self, method: str, path: str, headers: list[tuple[str, str]], length: int) -> bytes:
        target = self.prefix + path
        if not _TARGET_CHARS.issuperset(target):  # a decoded path, a model name from a body: never raw on the wire
            target = quote(target, safe=_TARGET_SAFE)
        lines = [f"{method} {target} HTTP/1.1"]
        has_host = False
        for name, value in headers:
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
                raise WireError(f"a line break in the request header {name!r}")
            lower = name.lower()
            if lower in _FRAMING:  # the body's framing is ours to say
                continue
            has_host = has_host or lower == "host"
            lines.append(f"{name}: {value}")
        head = "\r\n".join(lines).encode("utf-8")
        if not has_host:
            head += b"\r\nhost: " + self._host_header
        if length < 0:
            head += b"\r\ntransfer-encoding: chunked"
        elif length or method not in _BODILESS:
            head += b"\r\ncontent-length: %d" % length
        return head + b"\r\n\r\n"

    async def _send(self, method: str, path: str, headers: list[tuple[str, str]],
                    body: bytes | AsyncIterable[bytes], connect_s: float, stream: bool) -> tuple[Connection, Answer]:
        """Write the request on a pooled or new connection; the answer it will be read into. Cancelled or failed,
        the connection is aborted."""
        streamed = not isinstance(body, bytes)
        head = self._request_head(method, path, headers, -1 if streamed else len(body))  # type: ignore[arg-type]
        connection = self._reuse() or await self._connect(connect_s)
        transport = connection.transport
        assert transport is not None
        answer = connection.expect(method == "HEAD", stream)
        try:
            if streamed:
                transport.write(head)
                async for data in body:  # type: ignore[union-attr]
                    if data:
                        transport.write(_chunk(data))
                        await connection.drain()
                transport.write(b"0\r\n\r\n")
            else:
                transport.write(head + body)  # type: ignore[operator]
        except BaseException:
            transport.abort()
            raise
        return connection, answer

    async def fetch(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | AsyncIterable[bytes],
                    connect_s: float) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send the request and read its answer whole: status, headers (names lower-cased), body. Cancelled or
        failed, the connection is aborted (the upstream sees it closed at once)."""
        connection, answer = await self._send(method, path, headers, body, connect_s, False)
        try:
            await answer.progress()
        except BaseException:
            self._abort(connection)
            raise
        self._settle(connection, answer)
        return answer.status, answer.headers, answer.take()

    async def stream(self, method: str, path: str, headers: list[tuple[str, str]],
                     body: bytes | AsyncIterable[bytes], connect_s: float) -> WireStream:
        """Send the request and wait for its answer's head: the answer, its body to be read as it arrives.
        Cancelled or failed, the connection is aborted."""
        connection, answer = await self._send(method, path, headers, body, connect_s, True)
        try:
            while answer.head:
                await answer.progress()
        except BaseException:
            self._abort(connection)
            raise
        return WireStream(self, connection, answer)

    def _settle(self, connection: Connection, answer: Answer) -> None:
        """The answer was read to its end: keep its connection if the upstream does and nothing came after it."""
        if answer.keep_alive and not connection.closed and not connection.leftover():
            connection.resume()
            self._release(connection, IDLE_S if answer.keep_alive_s is None else min(IDLE_S, answer.keep_alive_s - 1))
        else:
            connection.closed = True
            assert connection.transport is not None
            connection.transport.close()

    @staticmethod
    def _abort(connection: Connection) -> None:
        connection.closed = True
        assert connection.transport is not None
        connection.transport.abort()

    def _release(self, connection: Connection, idle_for: float) -> None:
        """Keep `connection` for the next request, for `idle_for` at most."""
        connection.idle_since = time.monotonic()
        connection.idle_for = idle_for
        self._idle.append(connection)
        if self._reaping is None:  # in an empty context too: the request's would live on in the timer
            self._reaping = asyncio.get_running_loop().call_later(idle_for, self._reap, context=contextvars.Context())

    def _reap(self) -> None:
        """Close the idle connections past their time, the oldest first (the upstream may have closed some already),
        and come back when the next one's is up."""
        self._reaping = None
        idle, now = self._idle, time.monotonic()
        while idle and (idle[0].closed or now - idle[0].idle_since >= idle[0].idle_for):
            oldest = idle.popleft()
            oldest.closed = True
            if oldest.transport is not None:
                oldest.transport.close()
        if idle:
            due = idle[0].idle_since + idle[0].idle_for - now
            self._reaping = asyncio.get_running_loop().call_later(due, self._reap)

    def close(self) -> None:
        """Close the idle connections (on shutdown)."""
        if self._reaping is not None:
            self._reaping.cancel()
            self._reaping = None
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()
        self._idle.clear()


class WireStream:
    """An answer whose head is in (`status`, `headers`, names lower-cased) and whose body is handed over as it
    arrives (de-chunked). Leave it with `close()` or as an async context manager: a connection whose answer was
    read to its end goes back to the pool, any other is aborted (the upstream sees the request abandoned)."""

    __slots__ = ("_answer", "_connection", "_pool", "headers", "status")

    def __init__(self, pool: WirePool, connection: Connection, answer: Answer) -> None:
        self._pool = pool
        self._connection: Connection | None = connection
        self._answer = answer
        self.status = answer.status
        self.headers = answer.headers

    async def __aenter__(self) -> WireStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    def ended(self) -> bool:
        """The end of the body has come and every byte before it has been taken: `next_chunk()` returns b""."""
        answer = self._answer
        return answer.done and not answer.chunks

    async def next_chunk(self) -> bytes:
        """Everything that has arrived since the last call, waiting for at least one byte; b"" at the end."""
        answer = self._answer
        while not answer.chunks:
            if answer.done:
                return b""
            await answer.progress()
        data = answer.take()
        connection = self._connection
        if connection is not None and connection.reading_paused:
            connection.resume()
        return data

    async def read(self) -> bytes:
        """The rest of the body, whole."""
        parts = []
        while chunk := await self.next_chunk():
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        """Done with the answer: its connection back to the pool if the body was read to its end, else aborted."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._answer.done:
            self._pool._settle(connection, self._answer)
        elif not connection.closed:
            WirePool._abort(connection)
