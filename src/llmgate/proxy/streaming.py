"""Streaming passthrough: the upstream's bytes go to the client exactly as they came, no chunk parsed.

Two guards run beside the relay and cancel it: `DisconnectWatch` (the client left: close the upstream at once)
and `StreamDeadline` (the upstream is silent past the first-byte or idle timeout). One timer per stream, moved
lazily: a chunk only stores a new deadline, the timer re-arms itself when it fires early.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from loguru import logger

from llmgate.config import Timeouts
from llmgate.errors import GatewayError, UpstreamTimeout, error_body
from llmgate.proxy.asgi import DisconnectWatch, Receive, Send, uncancel
from llmgate.proxy.client import TRANSPORT_ERRORS, StreamedReply
from llmgate.proxy.headers import downstream_headers
from llmgate.usage.meter import UsageMeter


class StreamDeadline:
    """Cancels the current task when no byte came from the upstream in time."""

    __slots__ = ("_handle", "_idle_s", "_loop", "_task", "deadline", "fired")

    def __init__(self, first_byte_s: float, idle_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._idle_s = idle_s
        self.fired = False
        self.deadline = self._loop.time() + first_byte_s
        self._handle = self._loop.call_at(self.deadline, self._check)

    def progress(self) -> None:
        """A byte came: the next one is due within the idle timeout."""
        self.deadline = self._loop.time() + self._idle_s

    def _check(self) -> None:
        if self._loop.time() >= self.deadline:
            self.fired = True
            if self._task is not None:
                self._task.cancel()
        else:
            self._handle = self._loop.call_at(self.deadline, self._check)

    def stop(self) -> None:
        self._handle.cancel()


def openai_error_event(error: GatewayError) -> bytes:
    """`data: {"error": ...}` (no [DONE]), the shape the OpenAI SDK raises on."""
    return b"data: " + error_body(error) + b"\n\n"


async def relay_stream(send: Send, receive: Receive, reply: StreamedReply, request_id: bytes,
                       timeouts: Timeouts, watch_disconnect: bool = True,
                       error_event: Callable[[GatewayError], bytes] = openai_error_event,
                       meter: UsageMeter | None = None) -> bytes | None:
    """Send the upstream response to the client chunk by chunk; return the upstream's request id.

    Before the first byte has gone out, failures raise a GatewayError (the caller answers with an error);
    after it, the stream is ended with `error_event(error)`: by default an OpenAI-style error event, which the
    OpenAI SDK raises as APIError (the Anthropic routes pass Anthropic's `event: error`).
    `watch_disconnect` must be False while the request body is still being read from `receive`.
    A `meter` sees every chunk of a 200 response (to find its usage).
    """
    watch = DisconnectWatch(receive) if watch_disconnect else None
    deadline = StreamDeadline(timeouts.first_byte_s, timeouts.idle_s)
    started = False
    upstream_id: bytes | None = None
    try:
        async with reply:
            deadline.progress()
            headers, upstream_id = downstream_headers(reply.raw_headers(), request_id)
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            started = True
            next_chunk = reply.next_chunk
            feed = meter.feed if meter is not None and reply.status == 200 else None
            while chunk := await next_chunk():
                deadline.progress()
                if feed is not None:
                    feed(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except asyncio.CancelledError:
        disconnected = watch is not None and watch.disconnected
        if not (disconnected or deadline.fired):
            raise  # the server is shutting down
        uncancel()
        if disconnected:
            logger.debug("client disconnected mid-stream; upstream response closed")
            return upstream_id
        error = UpstreamTimeout(f"The upstream sent nothing for {_silence(started, timeouts)} s.")
        if not started:
            raise error from None
        await _end_with_error(send, error_event(error))
    except TRANSPORT_ERRORS as exc:
        if not started:
            raise
        logger.warning("upstream stream broke mid-response: {}", exc)
        await _end_with_error(send, error_event(GatewayError(f"The upstream connection failed mid-stream: {exc}")))
    finally:
        if watch is not None:
            watch.stop()
        deadline.stop()
    return upstream_id


def _silence(started: bool, timeouts: Timeouts) -> float:
    return timeouts.idle_s if started else timeouts.first_byte_s


async def _end_with_error(send: Send, event: bytes) -> None:
    """End a started stream with an error event."""
    await send({"type": "http.response.body", "body": event, "more_body": False})
