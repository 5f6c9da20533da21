"""Raw ASGI plumbing for the hot path: read a body under a limit, send a response, watch for a disconnect.

The /v1 pipeline speaks ASGI messages directly (no Request/Response objects): markedly more throughput than a
Litestar handler, streaming most (benchmarks/README.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from loguru import logger

from llmgate.errors import GatewayError, IncompleteBody, PayloadTooLarge, error_response

# Plain ASGI shapes: the hot path builds and reads message dicts directly (Litestar's TypedDicts are stricter
# than what a passthrough needs to say).
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_CONTENT_TYPE = (b"content-type", b"application/json")


async def read_body(receive: Receive, limit: int, content_length: int | None) -> bytes:
    """The whole request body; `PayloadTooLarge` as soon as it is known to exceed `limit` bytes."""
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(too_large_message(limit))
    message = await receive()
    body: bytes = message.get("body", b"")
    # Granian sends a body as `more_body=True` and then an empty last message; once content-length bytes are
    # in, that last message is not awaited (a wait per request for nothing). DisconnectWatch reads it later.
    if not message.get("more_body", False) or len(body) == content_length:
        if len(body) > limit:
            raise PayloadTooLarge(too_large_message(limit))
        if not body and message["type"] == "http.disconnect":
            raise incomplete_body(0)
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body", False) and size != content_length:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise incomplete_body(size)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large_message(limit))
        parts.append(chunk)
    return b"".join(parts)


async def iter_body(receive: Receive, first: bytes, limit: int) -> AsyncIterator[bytes]:
    """Yield the request body as it arrives (after `first`, already read), enforcing `limit`."""
    size = len(first)
    if first:
        yield first
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large_message(limit))
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def incomplete_body(received: int) -> IncompleteBody:
    """The 400 for a body that ended early. Granian reports a body it could not read (a chunk shorter than it
    declared, a chunk size that is no number, a connection closed mid-body) as `http.disconnect`: a client still
    there gets this answer, one that left does not, and the log says which bytes came."""
    logger.info("the request body ended early, after {} bytes (malformed chunked framing, or the client left)",
                received)
    return IncompleteBody("The request body ended before it was complete (malformed chunked framing, or a "
                          "connection closed mid-body).", headers={"connection": "close"})


def too_large_message(limit: int) -> str:
    return f"Request body is larger than the limit of {limit} bytes."


class ClientDisconnected(Exception):
    """The client went away before the response was complete."""


async def send_response(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """Send a complete response in two messages."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: GatewayError, request_id: bytes) -> None:
    """Answer with `error` as an OpenAI-style JSON error."""
    status, body = error_response(error)
    headers: Headers = [JSON_CONTENT_TYPE, (b"x-request-id", request_id)]
    headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items())
    await send_response(send, status, headers, body)


class DisconnectWatch:
    """Cancels the handler's task when the client disconnects, so the upstream request is closed at once.

    Granian's `send()` silently drops data after a disconnect, so without this an abandoned request would keep
    the upstream generating (and billing) until it ends. Start it only once the request body has been read.
    Granian's `receive()` returns a future, so watching costs a done-callback, not a task (a task per request
    cost a sizeable share of non-streaming throughput); other servers' coroutines are wrapped in a task.

    Given a `WatchList`, the watch starts only once the request has lasted the list's delay: granian's pending receive
    still has a cost, streams most, which a request done sooner need not pay; a client that left meanwhile is seen as
    soon as the watch starts.
    """

    __slots__ = ("_list", "_pending", "_receive", "_target", "disconnected")

    def __init__(self, receive: Receive, task: asyncio.Task[Any] | None, later: WatchList | None = None) -> None:
        """Watch `receive` for the disconnect that cancels `task` (the request's, running this)."""
        self.disconnected = False
        self._receive = receive
        self._target = task
        self._pending: asyncio.Future[Any] | None = None
        self._list = later
        if later is not None:
            later.add(self)
        else:
            self.arm()

    def arm(self) -> None:
        """Start watching now."""
        self._list = None
        pending: Any = self._receive()
        if not asyncio.isfuture(pending):  # granian's is a future already; other servers give a coroutine
            pending = asyncio.ensure_future(pending)
        pending.add_done_callback(self._on_message)
        self._pending = pending

    def _on_message(self, done: asyncio.Future[Any]) -> None:
        if done is not self._pending or done.cancelled() or done.exception() is not None:
            return
        if done.result()["type"] == "http.disconnect":
            self.disconnected = True
            if self._target is not None:
                self._target.cancel()
        else:  # a leftover empty body message: keep listening
            self.arm()

    def stop(self) -> None:
        """Stop watching (the response is complete)."""
        if self._list is not None:
            self._list.discard(self)
            self._list = None
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.remove_done_callback(self._on_message)
            pending.cancel()


class WatchList:
    """Starts each `DisconnectWatch` given to it once `after_s` have passed, on one timer for all of them.

    A timer per request (`call_later` and its cancel) cost more than the dict entry this takes: requests are
    kept in arrival order, and the timer is set for the oldest; when it fires, every watch that has waited long
    enough starts, and the timer moves to the next one. Under steady load it fires a few times a second.
    """

    __slots__ = ("_loop", "_timer", "_waiting", "after_s")

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._waiting: dict[DisconnectWatch, float] = {}
        """watch → when it was added (loop time), in that order"""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def add(self, watch: DisconnectWatch) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._waiting[watch] = loop.time()
        if self._timer is None:
            self._timer = loop.call_later(self.after_s, self._start_due)

    def discard(self, watch: DisconnectWatch) -> None:
        self._waiting.pop(watch, None)

    def _start_due(self) -> None:
        self._timer = None
        assert self._loop is not None
        due = self._loop.time() - self.after_s
        waiting = self._waiting
        while waiting:
            watch, added = next(iter(waiting.items()))
            if added > due:
                self._timer = self._loop.call_at(added + self.after_s, self._start_due)
                return
            del waiting[watch]
            watch.arm()

    def __len__(self) -> int:
        return len(self._waiting)


def uncancel() -> None:
    """Clear the cancellation a guard requested once it has been handled, so later awaits run normally."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
