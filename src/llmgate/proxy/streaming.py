"""Streaming passthrough: the upstream's bytes go to the client exactly as they came, no chunk parsed.

`StreamGuard` runs beside a streaming request, across its attempts, on one lazily moved timer:
- the first-byte / idle deadline: cancels the task when the upstream is silent too long;
- keep-alive: while no upstream byte has come for `keepalive_s`, a `: keep-alive` SSE comment goes out (the
  response is started with 200 and text/event-stream for it), so proxies with idle timeouts keep the stream.
  Only a stream that waits that long pays for it (a task per comment); faster ones stay byte-for-byte identical.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from loguru import logger

from llmgate.config import Timeouts
from llmgate.errors import GatewayError, UpstreamError, UpstreamTimeout, error_body
from llmgate.proxy.asgi import Headers, Send, uncancel
from llmgate.proxy.client import TRANSPORT_ERRORS, StreamedReply
from llmgate.usage.tap import StreamTap

KEEPALIVE_COMMENT = b": keep-alive\n\n"


def openai_error_frame(body: bytes) -> bytes:
    """`data: {"error": ...}` (no [DONE]), the shape the OpenAI SDK raises on."""
    return b"data: " + body + b"\n\n"


class StreamGuard:
    """Deadline and keep-alive for one streaming request (see the module docstring)."""

    __slots__ = ("_armed_at", "_handle", "_headers", "_keepalive_s", "_loop", "_next_keepalive",
                 "_pending", "_send", "_task", "deadline", "error_frame", "fired", "idle_s", "started", "waiting")

    def __init__(self, send: Send, keepalive_s: float, headers: Callable[[], Headers],
                 error_frame: Callable[[bytes], bytes] = openai_error_frame) -> None:
        self.error_frame = error_frame
        """How an error ends a started stream, in the caller's dialect."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._send = send
        self._headers: Callable[[], Headers] | None = headers
        """The response start a keep-alive sends: the call's bound method, dropped by `stop()` (the call holds
        the guard too, and the cycle would leave both, the request's closures with them, to the cyclic GC)."""
        self._keepalive_s = keepalive_s
        self._next_keepalive = self._loop.time() + keepalive_s
        self._pending: asyncio.Task[None] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = math.inf
        self.idle_s = 0.0
        self.deadline = math.inf
        self.fired = False
        self.started = False
        """The response start has gone to the client (by the relay or by a keep-alive)."""
        self.waiting = True
        """No byte of the upstream's body has come yet."""

    def expect_first_byte(self, timeouts: Timeouts) -> None:
        """A new attempt: the upstream must answer within its first-byte timeout."""
        self.fired = False
        self.idle_s = timeouts.idle_s
        self.deadline = self._loop.time() + timeouts.first_byte_s
        self._arm()

    def between_attempts(self) -> None:
        """An attempt failed before the first byte: no deadline until the next one starts."""
        self.deadline = math.inf

    def progress(self) -> None:
        """Waiting for the upstream starts now: its next byte is due within the idle timeout."""
        deadline = self.deadline = self._loop.time() + self.idle_s
        if deadline < self._armed_at:  # sooner than the timer's next check (an idle_s under the keep-alive's)
            self._arm()

    async def first_chunk(self) -> None:
        """The upstream body's first chunk came: no more keep-alives; let a comment being sent finish first."""
        self.waiting = False
        await self.settle()

    async def settle(self) -> None:
        """Wait for a keep-alive comment being sent (before sending anything else). One that `stop()` cancelled
        is waited for too, without raising its cancellation: the stream still ends with its error."""
        pending = self._pending
        if pending is None:
            return
        if not pending.done():
            await asyncio.wait((pending,))
        if not pending.cancelled():
            pending.result()  # a send that failed raises here

    def _arm(self) -> None:
        at = min(self.deadline, self._next_keepalive) if self.waiting else self.deadline
        if at < self._armed_at:
            if self._handle is not None:
                self._handle.cancel()
            self._armed_at = at
            self._handle = self._loop.call_at(at, self._check)

    def _check(self) -> None:
        self._handle, self._armed_at = None, math.inf
        now = self._loop.time()
        if now >= self.deadline:
            self.fired = True
            if self._task is not None:
                self._task.cancel()
            return
        if self.waiting and now >= self._next_keepalive:
            self._next_keepalive = now + self._keepalive_s
            if self._pending is None or self._pending.done():  # else the last comment is still being sent: skip
                self._pending = self._loop.create_task(self._keepalive())
        self._arm()

    async def _keepalive(self) -> None:
        if not self.started:
            self.started = True
            assert self._headers is not None, "a keep-alive after stop()"
            await self._send({"type": "http.response.start", "status": 200, "headers": self._headers()})
        await self._send({"type": "http.response.body", "body": KEEPALIVE_COMMENT, "more_body": True})

    def stop(self) -> None:
        """No more deadline or keep-alive (the guard's state stays readable)."""
        self._headers = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()


async def relay_body(send: Send, reply: StreamedReply, first: bytes, guard: StreamGuard, headers: Headers,
                     tap: StreamTap | None = None) -> GatewayError | None:
    """Relay an opened upstream reply whose first chunk has been read, chunk by chunk, as it came.

    Once bytes have gone out nothing is retried: a broken or silent upstream ends the stream with an
    OpenAI-style error event, which the OpenAI SDK raises as APIError; the error is returned (the deployment's
    failure). Cancellation by the deadline is handled here; any other cancellation (disconnect) propagates.
    `tap`, when given, sees every chunk and says what to send of it (usage/tap.py: the meter, and the usage
    chunk the gateway asked for removed).
    """
    try:
        await guard.first_chunk()
        if not guard.started:
            guard.started = True
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        next_chunk, ended = reply.next_chunk, reply.ended
        chunk = first
        while chunk:
            out = chunk if tap is None else tap.feed(chunk)
            if ended():  # the upstream's end came with these bytes: they end the response (one send fewer)
                await send({"type": "http.response.body", "body": out + tap.end() if tap is not None else out})
                return None
            if out:
                await send({"type": "http.response.body", "body": out, "more_body": True})
            guard.progress()  # after the send: a slow client must not look like a silent upstream
            chunk = await next_chunk()
        await send({"type": "http.response.body", "body": tap.end() if tap is not None else b""})
        return None
    except (asyncio.CancelledError, *TRANSPORT_ERRORS) as exc:
        error = broken_stream(exc, guard)
    await end_with_error(send, guard, error_body(error))
    return error


def broken_stream(exc: BaseException, guard: StreamGuard) -> GatewayError:
    """The error a started stream ends with: the guard's deadline (silent upstream) or a broken connection.
    Any other cancellation (the client left) is raised again. Call it from the `except` that caught `exc`."""
    if isinstance(exc, asyncio.CancelledError):
        if not guard.fired:
            raise exc
        uncancel()
        return UpstreamTimeout(f"The upstream sent nothing for {guard.idle_s} s.")
    logger.warning("upstream stream broke mid-response: {}", exc)
    return UpstreamError(f"The upstream connection failed mid-stream: {exc}")


async def end_with_error(send: Send, guard: StreamGuard, body: bytes) -> None:
    """End a started stream with the error `body` framed in the caller's dialect (OpenAI: `data:`, no [DONE])."""
    guard.waiting = False
    await guard.settle()
    await send({"type": "http.response.body", "body": guard.error_frame(body), "more_body": False})
