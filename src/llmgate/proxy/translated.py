"""Upstream I/O for requests whose answer is translated into the other dialect (whole or streamed).

The passthrough path (proxy/forward.py, proxy/streaming.py) relays bytes untouched; this one reads the
upstream's answer and hands it to a translator first. The same guards apply: a client that leaves closes the
upstream request, and a silent upstream (first byte, idle) ends the stream with an error event.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from loguru import logger

from llmgate.errors import UpstreamTimeout
from llmgate.proxy.asgi import DisconnectWatch, Receive, Send, send_response, uncancel
from llmgate.proxy.client import TRANSPORT_ERRORS, UpstreamClient
from llmgate.proxy.forward import upstream_error
from llmgate.proxy.headers import downstream_headers
from llmgate.proxy.streaming import StreamGuard
from llmgate.usage.event import CLIENT_CLOSED, Exchange

RawHeaders = list[tuple[bytes, bytes]]
TranslateBody = Callable[[int, bytes], tuple[int, bytes]]
"""(upstream status, upstream body) → (status, body) in the caller's dialect."""

_JSON, _SSE = b"application/json", b"text/event-stream"
# Describe the upstream's body, not ours: dropped from a translated answer.
_BODY_HEADERS = frozenset({b"content-length", b"content-type", b"content-encoding", b"etag"})


class StreamTranslator(Protocol):
    """Upstream SSE bytes in, the caller's SSE bytes out (translate/messages_stream.py, translate/chat_stream.py)."""

    def feed(self, data: bytes) -> bytes: ...
    def close(self) -> bytes: ...
    def fail(self, message: str) -> bytes: ...


def translated_headers(upstream: Iterable[tuple[bytes, bytes]], exchange: Exchange,
                       content_type: bytes) -> RawHeaders:
    """The upstream's headers (as proxy/headers.py rewrites them) minus those describing its body; the
    upstream's request id noted in `exchange`."""
    headers, exchange.upstream_request_id = downstream_headers(upstream, exchange.request_id)
    out = [(name, value) for name, value in headers if name not in _BODY_HEADERS]
    out.append((b"content-type", content_type))
    return out


async def exchange_translated(send: Send, receive: Receive, client: UpstreamClient, path: str,
                              headers: list[tuple[str, str]], body: bytes, exchange: Exchange,
                              translate: TranslateBody) -> None:
    """POST `body`, read the whole answer, send `translate(status, body)` to the client."""
    watch = DisconnectWatch(receive)
    sent_at = time.monotonic()
    try:
        status, upstream_headers, data = await client.fetch("POST", path, headers, body)
    except asyncio.CancelledError:
        if not watch.disconnected:
            raise
        uncancel()
        exchange.status = CLIENT_CLOSED
        logger.debug("client disconnected while waiting; upstream request closed")
        return
    except TRANSPORT_ERRORS as exc:
        raise upstream_error(exc, client) from exc
    finally:
        watch.stop()
        exchange.upstream_s = exchange.ttfb_s = time.monotonic() - sent_at
    translated_status, translated = translate(status, data)
    if status == 200 and exchange.meter is not None:
        exchange.meter.whole(data)  # the upstream's usage, in its dialect
    exchange.status = translated_status
    await send_response(send, translated_status, translated_headers(upstream_headers, exchange, _JSON), translated)


async def relay_translated(send: Send, receive: Receive, client: UpstreamClient, path: str,
                           headers: list[tuple[str, str]], body: bytes, exchange: Exchange,
                           translator: StreamTranslator, translate_error: TranslateBody) -> None:
    """POST `body` and stream the answer through `translator`; an upstream error status is translated whole.

    Before the response has started, failures raise a GatewayError (the caller answers in its dialect);
    after, the stream ends with the translator's error event.
    """
    watch = DisconnectWatch(receive)
    timeouts = client.provider.timeouts
    deadline = StreamGuard(send, math.inf, list)  # the relay's deadlines; no keep-alives here
    deadline.expect_first_byte(timeouts)
    started = False
    meter = exchange.meter
    sent_at = time.monotonic()
    try:
        async with client.stream("POST", path, headers, body) as reply:
            deadline.progress()
            exchange.ttfb_s = time.monotonic() - sent_at
            if reply.status != 200:
                parts = []
                while chunk := await reply.next_chunk():
                    deadline.progress()
                    parts.append(chunk)
                status, translated = translate_error(reply.status, b"".join(parts))
                exchange.status = status
                await send_response(send, status, translated_headers(reply.raw_headers(), exchange, _JSON),
                                    translated)
                return
            exchange.status = 200
            await send({"type": "http.response.start", "status": 200,
                        "headers": translated_headers(reply.raw_headers(), exchange, _SSE)})
            started = True
            while chunk := await reply.next_chunk():
                deadline.progress()
                if meter is not None:
                    meter.feed(chunk)
                if out := translator.feed(chunk):
                    await send({"type": "http.response.body", "body": out, "more_body": True})
        await send({"type": "http.response.body", "body": translator.close(), "more_body": False})
    except asyncio.CancelledError:
        if not (watch.disconnected or deadline.fired):
            raise
        uncancel()
        if watch.disconnected:
            exchange.status = CLIENT_CLOSED
            logger.debug("client disconnected mid-stream; upstream response closed")
            return
        silence = timeouts.idle_s if started else timeouts.first_byte_s
        if not started:
            raise UpstreamTimeout(f"The upstream sent nothing for {silence} s.") from None
        await _end(send, translator.fail(f"The upstream sent nothing for {silence} s."))
    except TRANSPORT_ERRORS as exc:
        if not started:
            raise upstream_error(exc, client) from exc
        logger.warning("upstream stream broke mid-response: {}", exc)
        await _end(send, translator.fail(f"The upstream connection failed mid-stream: {exc}"))
    finally:
        watch.stop()
        deadline.stop()
        exchange.upstream_s = time.monotonic() - sent_at


async def _end(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": False})
