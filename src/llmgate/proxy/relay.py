"""The passthrough's delivery: the upstream's answer as it came, with the gateway's headers; a stream's chunks
relayed as they arrive (tapped for usage only when it is counted)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmgate.errors import GatewayError
from llmgate.proxy.asgi import Headers, send_response
from llmgate.proxy.headers import downstream_headers
from llmgate.proxy.streaming import end_with_error, relay_body

if TYPE_CHECKING:
    from llmgate.proxy.attempt import Call, Opened


async def relay(call: Call, opened: Opened, extra: Headers) -> GatewayError | None:
    """The passthrough: the upstream's answer as it came, with our headers; a mid-stream failure is returned."""
    exchange = call.exchange
    headers, exchange.upstream_request_id = downstream_headers(opened.headers, call.request_id)
    headers.extend(extra)
    ok = opened.status == 200
    if opened.reply is None:
        await send_response(call.send, opened.status, headers, opened.body)
        if exchange.meter is not None:  # an error's body too: the raw log keeps it (usage is read from 200s only)
            exchange.meter.whole(opened.body)
        return None
    guard = call.guard
    assert guard is not None
    if guard.started and opened.status >= 400:  # keep-alives went out as a 200: say it the SSE way
        await end_with_error(call.send, guard, opened.body + await opened.reply.read())
        return None
    tap = call.tap if ok else None
    if tap is not None:
        tap.strip = call.asked_for_usage(opened.deployment)
    error = await relay_body(call.send, opened.reply, opened.body, guard, headers, tap)
    if error is not None:  # the stream broke: it ended with our error event, still a 200 to the client
        exchange.error = error.code or error.type
    elif tap is not None:  # the upstream itself may have ended it with an error event
        exchange.error = tap.ended_with_error()
    return error
