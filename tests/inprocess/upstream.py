"""A fake upstream transport in process: UpstreamClient's interface, answered by a handler (as httpx's
MockTransport), recording what it received.

    handler(sent) → Reply          status, headers, and a body: bytes, or parts sent one by one (a pause in
                                   seconds, HANG, or an exception raised where it stands)
    handler raises                 no answer: ConnectionRefusedError, ConnectionResetError, TimeoutError become
                                   the error the real client raises (StreamTimeout or StreamError); a client
                                   error given as such is raised as it is
    handler awaits forever         a hang (`await hang()`), until the gateway's deadline or the client gives up

`double()` is a handler that runs the upstream double's ASGI app in process, for tests that want its answers.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from llmgate.config import ProviderConfig
from llmgate.proxy.client import (
    TRANSPORT_ERRORS,
    Body,
    Headers,
    RawHeaders,
    StreamError,
    StreamTimeout,
    UpstreamClient,
)

DOUBLE_URL = "http://double.test"
"""A base URL for providers that `double()` answers (any host does; this one says so)."""
HANG = math.inf
"""A part of a body that never comes."""
Part = bytes | float | BaseException


class Reply:
    """One scripted answer: `body` whole (bytes), in parts (each bytes, a pause in seconds, HANG or an exception;
    the end comes with the last part), or an async iterable (the end comes after it, on one more read)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int = 200, body: bytes | Iterable[Part] | AsyncIterable[bytes] = b"",
                 headers: Iterable[tuple[str, str]] = ()) -> None:
        self.status = status
        self.body = body
        self.headers: RawHeaders = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


class Sent:
    """What one request brought to the upstream, and how it ended there."""

    __slots__ = ("body", "closed", "dropped", "headers", "method", "path", "provider", "streamed", "url")

    def __init__(self, provider: str, method: str, url: str, headers: Headers, body: bytes, streamed: bool) -> None:
        self.provider, self.method, self.url, self.body, self.streamed = provider, method, url, body, streamed
        parts = urlsplit(url)
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.headers = {name.lower(): value for name, value in headers}
        self.closed = False
        """The gateway is done with it: the answer read, the stream closed, or the request failed."""
        self.dropped = False
        """The gateway gave up on it before its end (a deadline, a lost hedge, the client leaving)."""

    @property
    def key(self) -> str | None:
        """The credential it carried, as the provider reads it."""
        auth = self.headers.get("authorization")
        return auth.removeprefix("Bearer ") if auth else self.headers.get("x-api-key") or self.headers.get("api-key")

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Sent({self.provider} {self.method} {self.path} key={self.key})"


Handler = Callable[[Sent], Reply | Awaitable[Reply]]


async def hang() -> Reply:
    """Never answer (until cancelled)."""
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")


def replies(*answers: Reply | BaseException) -> Handler:
    """A handler answering each request with the next of `answers` (an exception is raised instead)."""
    queue = list(answers)

    def handler(_: Sent) -> Reply:
        assert queue, "more upstream requests than scripted replies"
        answer = queue.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return handler


def reply_json(body: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Reply:
    """A JSON answer."""
    return Reply(status, json.dumps(body).encode(), [("content-type", "application/json"), *headers])


def per_provider(**handlers: Handler) -> Handler:
    """A handler that hands each request to the handler of its provider (by name)."""

    def handler(sent: Sent) -> Reply | Awaitable[Reply]:
        return handlers[sent.provider](sent)

    return handler


def refusing(*providers: str, otherwise: Handler | None = None) -> Handler:
    """Connection refused for these providers (nothing listens at their address); `otherwise` (the double run
    in process by default) answers the others."""
    answer = otherwise or double()

    def handler(sent: Sent) -> Reply | Awaitable[Reply]:
        if sent.provider in providers:
            raise ConnectionRefusedError(f"connection refused: {sent.url}")
        return answer(sent)

    return handler


def client_error(exc: BaseException) -> BaseException:
    """What the real client raises for a failure named with a builtin exception."""
    if isinstance(exc, TRANSPORT_ERRORS) or not isinstance(exc, TimeoutError | ConnectionError):
        return exc
    message = str(exc) or type(exc).__name__
    return StreamTimeout(message) if isinstance(exc, TimeoutError) else StreamError(message)


class FakeUpstream(UpstreamClient):
    """UpstreamClient's interface, in process: `fetch` reads a whole Reply, `stream` relays its parts."""

    def __init__(self, provider: ProviderConfig, handler: Handler, log: list[Sent]) -> None:
        super().__init__(provider)
        self.handler = handler
        self.log = log
        self.is_open = False

    async def open(self) -> None:
        self.is_open = True

    async def close(self) -> None:
        self.is_open = False

    async def answer(self, method: str, path: str, headers: Headers, body: Body, streamed: bool) -> tuple[Sent, Reply]:
        """Record the request and ask the handler; `sent` is marked as the handler's outcome says."""
        assert self.is_open, "UpstreamClient.open() was not awaited"
        if not isinstance(body, bytes):
            body = b"".join([chunk async for chunk in body])
        sent = Sent(self.provider.name, method, self.base_url + path, headers, body, streamed)
        self.log.append(sent)
        try:
            answer = self.handler(sent)
            return sent, await answer if inspect.isawaitable(answer) else answer
        except asyncio.CancelledError:
            sent.closed = sent.dropped = True
            raise
        except BaseException as exc:
            sent.closed = True
            raise client_error(exc) from None

    async def fetch(self, method: str, path: str, headers: Headers, body: Body) -> tuple[int, RawHeaders, bytes]:
        """As the real client: the whole answer within the provider's first-byte timeout, else StreamTimeout."""
        sent: Sent | None = None
        try:
            async with asyncio.timeout(self.provider.timeouts.first_byte_s):
                sent, reply = await self.answer(method, path, headers, body, streamed=False)
                parts = Parts(reply.body)
                data = b"".join([chunk async for chunk in parts.rest()])
        except TimeoutError as exc:  # the deadline (the handler's own errors came converted already)
            if sent is not None:
                sent.dropped = True
            raise client_error(exc) from None
        except asyncio.CancelledError:
            if sent is not None:
                sent.dropped = True
            raise
        except BaseException as exc:
            raise client_error(exc) from None
        finally:
            if sent is not None:
                sent.closed = True
        return reply.status, reply.headers, data

    def stream(self, method: str, path: str, headers: Headers, body: Body) -> FakeStream:  # type: ignore[override]
        return FakeStream(self, method, path, headers, body)


class Parts:
    """A Reply's body read part by part: pauses slept, exceptions raised, the end known with the last part of a
    list (as proxy/wire.py knows it when the terminator came with the last bytes)."""

    def __init__(self, body: bytes | Iterable[Part] | AsyncIterable[bytes]) -> None:
        self._iter: AsyncIterator[bytes] | None = None
        self._list: list[Part] = []
        if isinstance(body, bytes):
            self._list = [body] if body else []
        elif isinstance(body, AsyncIterable):
            self._iter = aiter(body)
        else:
            self._list = list(body)
        self.ended = not self._list and self._iter is None

    async def next(self) -> bytes:
        """The next bytes; b"" at the end."""
        if self._iter is not None:
            try:
                return await anext(self._iter)
            except StopAsyncIteration:
                self.ended = True
                return b""
        while self._list:
            part = self._list.pop(0)
            if isinstance(part, bytes):
                self.ended = not self._list
                return part
            if isinstance(part, BaseException):
                raise part
            await (hang() if part == HANG else asyncio.sleep(part))
        self.ended = True
        return b""

    async def rest(self) -> AsyncIterator[bytes]:
        while chunk := await self.next():
            yield chunk

    async def close(self) -> None:
        if self._iter is not None and hasattr(self._iter, "aclose"):
            await self._iter.aclose()


class FakeStream:
    """StreamedReply's interface over a Reply; no deadlines of its own (the gateway's StreamGuard keeps them)."""

    def __init__(self, client: FakeUpstream, method: str, path: str, headers: Headers, body: Body) -> None:
        self._request = (client, method, path, headers, body)
        self._parts: Parts | None = None
        self._headers: RawHeaders = []
        self.sent: Sent | None = None
        self.status = 0

    async def __aenter__(self) -> FakeStream:
        self.sent, reply = await self._request[0].answer(*self._request[1:], streamed=True)
        self.status, self._headers = reply.status, reply.headers
        self._parts = Parts(reply.body)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self.sent is not None and self._parts is not None
        self.sent.closed = True
        if exc is not None or not self._parts.ended:
            self.sent.dropped = True
        await self._parts.close()

    def raw_headers(self) -> RawHeaders:
        return list(self._headers)

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self._rest()])

    def ended(self) -> bool:
        assert self._parts is not None
        return self._parts.ended

    async def next_chunk(self) -> bytes:
        assert self._parts is not None
        try:
            return await self._parts.next()
        except ConnectionError as exc:
            raise client_error(exc) from None

    async def _rest(self) -> AsyncIterator[bytes]:
        while chunk := await self.next_chunk():
            yield chunk


def double() -> Handler:
    """A handler that answers with the upstream double's ASGI app, run in process (its `SEEN` records)."""
    from tests.upstream_double import app

    async def handler(sent: Sent) -> Reply:
        parts = urlsplit(sent.url)
        scope = {"type": "http", "method": sent.method, "path": parts.path, "query_string": parts.query.encode(),
                 "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in sent.headers.items()]}
        return await run_asgi(app, scope, sent.body)

    return handler


async def ask_double(method: str, path: str, headers: dict[str, str] | None = None,
                     body: bytes = b"") -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Ask the double directly (no gateway): status, headers, the whole body (the baseline to compare with)."""
    from tests.upstream_double import app

    path, _, query = path.partition("?")
    scope = {"type": "http", "method": method, "path": path, "query_string": query.encode(),
             "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]}
    reply = await run_asgi(app, scope, body)
    return reply.status, reply.headers, b"".join([chunk async for chunk in Parts(reply.body).rest()])


def seen() -> Any:
    """What the in-process double received (its `GET /_seen`)."""
    from tests.upstream_double import SEEN

    return json.loads(SEEN.to_json())


def reset_seen() -> None:
    """Forget what the in-process double received (its `POST /_reset`)."""
    from tests.upstream_double import SEEN

    SEEN.reset()


_serving: set[asyncio.Future[None]] = set()  # a reference until done, so the loop cannot drop them early


class _ASGIExchange:
    """One request to an in-process ASGI app, as a server holds it: the app's messages queued as they come."""

    def __init__(self, body: bytes) -> None:
        self.messages: asyncio.Queue[dict[str, Any] | BaseException | None] = asyncio.Queue()
        self.left = asyncio.Event()
        self._body: bytes | None = body

    async def receive(self) -> dict[str, Any]:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if not self.left.is_set():  # as granian: sends after the client left are dropped
            self.messages.put_nowait(message)

    async def serve(self, app: Callable[..., Awaitable[None]], scope: dict[str, Any]) -> None:
        try:
            await app(scope, self.receive, self.send)
            self.messages.put_nowait(None)
        except Exception as exc:
            self.messages.put_nowait(exc)

    async def body(self) -> AsyncIterator[bytes]:
        try:
            while (message := await self.messages.get()) is not None:
                if isinstance(message, BaseException):
                    raise ConnectionResetError(str(message))
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body"):
                    return
        finally:
            self.left.set()


async def run_asgi(app: Callable[..., Awaitable[None]], scope: dict[str, Any], body: bytes) -> Reply:
    """Run an ASGI app for one request; its answer as a Reply whose body streams as the app sends it. Giving up
    on the answer tells the app that the client left; the app raising before or while answering is a
    connection reset."""
    exchange = _ASGIExchange(body)
    task = asyncio.ensure_future(exchange.serve(app, scope))
    _serving.add(task)
    task.add_done_callback(_serving.discard)
    try:
        start = await exchange.messages.get()
    except BaseException:
        exchange.left.set()
        raise
    if not isinstance(start, dict):
        exchange.left.set()
        raise ConnectionResetError(f"the upstream closed the connection: {start!r}")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
    return Reply(start["status"], exchange.body(), headers)
