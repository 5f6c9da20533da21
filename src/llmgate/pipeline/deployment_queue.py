"""Queued deployment limits: when every deployment of an alias is at its rpm/tpm, a request waits up to the
alias's `queue_ms` (`[routing] queue_ms`, or per deployment) for one to come under it, in arrival order, then goes
on to `forward` (which answers as usual if none did). A client that leaves while queued leaves the line."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from llmgate.access.admission import MAX_QUEUE, POLL_S, leave_line
from llmgate.proxy.asgi import ClientDisconnected, DisconnectWatch, uncancel

if TYPE_CHECKING:
    from llmgate.access.tokens import TokenCache
    from llmgate.pipeline.request import V1Request
    from llmgate.routing.select import Route


async def queue_for_deployment(route: Route, clock: Callable[[], float], request: V1Request,
                               tokens: TokenCache) -> None:
    """Wait (only when the alias has `queue_ms` and no room, or others wait already) for a deployment with room;
    the time waited goes to the exchange (Server-Timing `queue`, /metrics)."""
    started = clock()
    line = route.waitline
    if not line and route.has_room(started):
        return
    if line is None:
        line = route.waitline = deque()
    if len(line) >= MAX_QUEUE:
        return
    turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    line.append(turn)
    if len(line) == 1:
        turn.set_result(None)
    watch = DisconnectWatch(request.receive, request.task)
    tokens.queued += 1
    try:
        await _wait_for_room(route, clock, turn, started + route.queue_ms / 1000)
    except asyncio.CancelledError:
        if watch.disconnected:
            uncancel()
            raise ClientDisconnected from None
        raise
    finally:
        tokens.queued -= 1
        watch.stop()
        leave_line(line, turn)
        request.exchange.queue_s += max(clock() - started, 0.0)


async def _wait_for_room(route: Route, clock: Callable[[], float], turn: asyncio.Future[None],
                         deadline: float) -> None:
    while True:
        now = clock()
        if (turn.done() and route.has_room(now)) or now >= deadline:
            return
        wait_s = min(POLL_S, deadline - now)
        if turn.done():
            await asyncio.sleep(wait_s)
        else:
            await asyncio.wait({turn}, timeout=wait_s)
