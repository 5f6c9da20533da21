"""Admission the long way, for tokens that need more than their own limits: the project's limits (a function of
the project, whoever calls for it), its end users', budget periods, soft-limit alerts, and queueing.

A request over an rpm/tpm limit whose `queue_ms` is set waits in that limit's line, in arrival order, for up to
`queue_ms`: the head of the line tries again whenever a slot may have freed (at most every POLL_S, which also
picks up slots freed on other instances when Redis counts), the others wait to become the head. A client that
leaves while queued leaves the line. Past `queue_ms`, or with the line full, the usual 429.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING

from llmgate.access.limits import Counters, Limits, Refusal, count_request, refusal_error, refuse_quota, refuse_rate
from llmgate.proxy.asgi import ClientDisconnected, DisconnectWatch, uncancel

if TYPE_CHECKING:
    from llmgate.access.budgets import Budgeted
    from llmgate.access.projects import ProjectEntry
    from llmgate.access.token_entry import TokenEntry
    from llmgate.access.tokens import TokenCache
    from llmgate.proxy.asgi import Receive

POLL_S = 0.05
MAX_QUEUE = 1000
"""Requests one limit's line holds; more are refused at once (a queue must not grow without bound)."""
_RATE = ("requests", "tokens")


def try_local(cache: TokenCache, entry: TokenEntry, user: str | None, now: float) -> Refusal | None:
    """Check the token's, its project's and the end user's limits on this instance; count the request in all of
    them, or in none and return the first refusal."""
    entry.roll(now)
    refusal = _refusal(entry.limits, entry.counters, now)
    if refusal is not None:
        return refusal
    project, user_counters = entry.project, None
    if project is not None:
        refusal, user_counters = check_project(project, user, now)
        if refusal is not None:
            return refusal
    count_request(entry.limits, entry.counters, now)
    cache.counted(entry)
    if project is not None:
        count_project(cache, project, user_counters, now)
    return None


def check_project(project: ProjectEntry, user: str | None, now: float) -> tuple[Refusal | None, Counters | None]:
    """A project's limits and its end user's, on this instance, whoever calls for it (a token, a signed-in
    caller): the first refusal, or None and the end user's counters to count the request in."""
    project.roll(now)
    refusal = _refusal(project.limits, project.counters, now)
    if refusal is not None or user is None or project.user_limits is None:
        return refusal, None
    user_counters = project.user_counters(user)
    return _refusal(project.user_limits, user_counters, now), user_counters


def count_project(cache: TokenCache, project: ProjectEntry, user_counters: Counters | None, now: float) -> None:
    """An admitted request, counted in the project's counters (and its end user's)."""
    count_request(project.limits, project.counters, now)
    cache.counted_project(project)
    if user_counters is not None and project.user_limits is not None:
        count_request(project.user_limits, user_counters, now)


def _refusal(limits: Limits, counters: Counters, now: float) -> Refusal | None:
    return refuse_quota(limits, counters, now) or refuse_rate(limits, counters, now)


async def try_shared(cache: TokenCache, entry: TokenEntry, user: str | None, now: float) -> Refusal | None:
    """The same with Redis counting: the project's and end user's limits and budgets, the token's rpm, tpm and
    max_requests across instances (the token's budget on this instance, as for any token; a JWT caller's project
    alone)."""
    shared = cache.shared
    assert shared is not None
    entry.roll(now)
    limits, counters = entry.limits, entry.counters
    refusal = refuse_quota(limits._replace(max_requests=None), counters, now)
    if refusal is not None:
        return refusal
    project = entry.project
    if project is not None:
        refusal = await admit_project_shared(cache, project, user, now)
        if refusal is not None:
            return refusal
    if entry.token_id:  # a JWT caller has no token: nothing of its own to count in Redis
        refusal = await shared.admit(entry.token_id, limits, counters.request_count, counters.period_start)
        if refusal is not None:
            return refusal
    counters.request_count += 1
    cache.counted(entry)
    return None


async def admit_project_shared(cache: TokenCache, project: ProjectEntry, user: str | None,
                               now: float) -> Refusal | None:
    """A project's limits and its end user's, counted in Redis across instances (counted when admitted)."""
    shared = cache.shared
    assert shared is not None
    project.roll(now)
    subject = f"project:{project.project_id}"
    refusal = await shared.admit_budget(subject, project.limits, project.counters)
    if refusal is not None:
        return refusal
    cache.counted_project(project)
    if user is None or project.user_limits is None:
        return None
    return await shared.admit_budget(f"{subject}:user:{user}", project.user_limits, project.user_counters(user))


async def admit_request(cache: TokenCache, entry: TokenEntry, user: str | None, receive: Receive) -> float:
    """Admit the request (counting it) or raise its 429; return the seconds it spent queued."""
    now = cache.clock()
    line = _busy_line(entry)
    refusal = None if line is not None else await _try(cache, entry, user, now)
    if line is None and refusal is None:
        cache.check_alerts(entry)
        return 0.0
    subject = line or _subject(entry, refusal)
    if subject is None or subject.queue_ms <= 0 or (refusal is not None and refusal.kind not in _RATE):
        assert refusal is not None
        raise refusal_error(refusal)
    waited = await _wait_in_line(cache, entry, user, receive, subject, refusal, now)
    cache.check_alerts(entry)
    return waited


async def _try(cache: TokenCache, entry: TokenEntry, user: str | None, now: float) -> Refusal | None:
    if cache.shared is None:
        return try_local(cache, entry, user, now)
    try:
        return await try_shared(cache, entry, user, now)
    except Exception as exc:  # Redis unreachable: keep serving, with this instance's own counts
        cache.warn_shared(exc, now)
        return try_local(cache, entry, user, now)


def _busy_line(entry: TokenEntry) -> Budgeted | None:
    """A limit that has requests waiting: a newcomer queues behind them rather than overtake them."""
    if entry.waitline:
        return entry
    project = entry.project
    return project if project is not None and project.waitline else None


def _subject(entry: TokenEntry, refusal: Refusal | None) -> Budgeted | None:
    """Whose limit refused and has a line: the token's or the project's. An end user's limit refuses at once: in
    the project's line it would hold up the project's other end users behind it."""
    if refusal is None or refusal.param is None:
        return None
    if refusal.param.startswith("token."):
        return entry
    return entry.project if refusal.param.startswith("project.") else None


async def _wait_in_line(cache: TokenCache, entry: TokenEntry, user: str | None, receive: Receive,
                        subject: Budgeted, refusal: Refusal | None, now: float) -> float:
    deadline = now + subject.queue_ms / 1000
    line = subject.waitline
    if line is None:
        line = subject.waitline = deque()
    if len(line) >= MAX_QUEUE:
        raise refusal_error(refusal or _timed_out(subject))
    turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    line.append(turn)
    if len(line) == 1:
        turn.set_result(None)
    watch = DisconnectWatch(receive, asyncio.current_task())
    cache.queued += 1
    try:
        return await _take_turns(cache, entry, user, subject, turn, deadline, refusal, now)
    except asyncio.CancelledError:
        if watch.disconnected:  # the client left: out of the line, nothing counted
            uncancel()
            raise ClientDisconnected from None
        raise
    finally:
        cache.queued -= 1
        watch.stop()
        leave_line(line, turn)


async def _take_turns(cache: TokenCache, entry: TokenEntry, user: str | None, subject: Budgeted,
                      turn: asyncio.Future[None], deadline: float, refusal: Refusal | None, started: float) -> float:
    """Wait to be the head of the line, then try whenever a slot may have freed, until admitted or past the
    deadline (measured on the cache's clock; the waits are short so that a test's clock is seen moving)."""
    while True:
        now = cache.clock()
        if now >= deadline:
            raise refusal_error(refusal or _timed_out(subject))
        wait_s = min(POLL_S, deadline - now)
        if not turn.done():
            await asyncio.wait({turn}, timeout=wait_s)
            continue
        if refusal is not None:  # else it queued behind others and tries at once on becoming the head
            await asyncio.sleep(min(wait_s, max(refusal.retry_after_s or wait_s, 0.001)))
        now = cache.clock()
        refusal = await _try(cache, entry, user, now)
        if refusal is None:
            return max(now - started, 0.0)
        if refusal.kind not in _RATE:
            raise refusal_error(refusal)


def leave_line(line: deque[asyncio.Future[None]], turn: asyncio.Future[None]) -> None:
    """Out of the line; the next one becomes the head."""
    was_head = bool(line) and line[0] is turn
    with contextlib.suppress(ValueError):
        line.remove(turn)
    if was_head and line and not line[0].done():
        line[0].set_result(None)


def _timed_out(subject: Budgeted) -> Refusal:
    limits = subject.limits
    return Refusal("requests", f"Rate limit reached: the request waited {subject.queue_ms} ms in the queue "
                   f"without a slot freeing up.", subject.queue_ms / 1000, {}, f"{limits.scope}.queue_ms")
