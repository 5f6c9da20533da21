"""Hedged attempts (opt-in per alias): when the first attempt has no first byte by a deadline, a second goes to
the next deployment/key; whichever answers first is used and the other is cancelled (its connection dropped).

The deadline is the alias's fixed `hedge.after_ms`, or its recent p95 time to first byte. Hedges are capped at
`hedge.max_ratio` of the alias's requests (default 5%). Only hedged aliases pay for tasks; others never get here.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from loguru import logger

from llmgate.errors import UpstreamTimeout
from llmgate.proxy.asgi import uncancel
from llmgate.proxy.attempt import Call, Failure, Opened
from llmgate.routing.keys import KeyState
from llmgate.routing.select import Deployment, Entry, Pick, Route, choose

Open = Callable[[Call, Deployment, KeyState], Awaitable[Opened | Failure]]
Record = Callable[[Failure], object]
_closing: set[asyncio.Future[None]] = set()  # a reference until done, so the loop cannot drop them early


async def open_hedged(call: Call, route: Route, pick: Pick, entries: tuple[Entry, ...], exclude: list[Deployment],
                      open_attempt: Open, record: Record) -> Opened | Failure:
    """Like `open_attempt(call, *pick)`, with a second attempt raced against it if the first is slow. The time
    to first byte is measured in real time (the deadline is on the event loop's timer); routing's picks use
    `call.clock`."""
    hedge = route.hedge
    assert hedge is not None
    hedge.requests += 1
    started = time.monotonic()
    running: dict[asyncio.Future[Opened | Failure], Pick] = {
        asyncio.ensure_future(open_attempt(call, *pick)): pick}
    result: Failure | None = None
    try:
        done, _ = await asyncio.wait(running, timeout=hedge.delay_s())
        if not done and hedge.may_hedge():
            second = _second_pick(call, route, pick, entries, exclude, time.monotonic() - started)
            if second is not None:
                running[asyncio.ensure_future(open_attempt(call, *second))] = second
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                del running[task]
                outcome = task.result()
                if isinstance(outcome, Opened):
                    hedge.record_ttfb(time.monotonic() - started)
                    return outcome
                if result is not None:
                    record(result)  # the earlier failure of two: routing hears of both
                result = outcome
        assert result is not None
        return result
    except asyncio.CancelledError:
        guard = call.guard
        if guard is None or not guard.fired:
            raise
        uncancel()
        guard.between_attempts()
        asked = f"`{call.model}`" if call.model else "this request"
        error = UpstreamTimeout(f"The upstream for {asked} did not answer in time.")
        return Failure(pick[0], pick[1], "timeout", error=error)
    finally:
        _abandon(call, running)


def _second_pick(call: Call, route: Route, pick: Pick, entries: tuple[Entry, ...], exclude: list[Deployment],
                 waited_s: float) -> Pick | None:
    """Another deployment if one is available, else another key of the same one; counted as a hedge."""
    now, model, tried = call.clock(), call.model, call.tried_keys or ()
    second = choose(entries, model, now, [*exclude, pick[0]], random.random, tried) or \
        choose(entries, model, now, exclude, random.random, (*tried, pick[1]))
    if second is None or route.hedge is None:
        return None
    route.hedge.hedges += 1
    call.hedges += 1
    call.attempts += 1
    logger.bind(request_id=call.request_id.decode()).info(
        "hedging {} after {:.0f} ms: {} → also {}", route.name, waited_s * 1000, pick[0].name, second[0].name)
    return second


def _abandon(call: Call, running: dict[asyncio.Future[Opened | Failure], Pick]) -> None:
    """Cancel the attempts still running (the loser); close a second stream that opened as well."""
    for task, (deployment, _) in running.items():
        deployment.breaker_for(call.model).release()
        if not task.done():
            task.cancel()
        elif not task.cancelled() and isinstance(late := task.result(), Opened) and late.reply is not None:
            closing = asyncio.ensure_future(late.reply.__aexit__(None, None, None))
            _closing.add(closing)
            closing.add_done_callback(_closing.discard)
