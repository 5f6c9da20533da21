"""Queued rate limits (`queue_ms`): a request over rpm waits for a slot in arrival order, then proceeds, or gets
the usual 429 past queue_ms; a client that leaves while queued leaves the line. In process, the token cache's
clock moved by hand while the requests wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.inprocess.access import TOKENS_ENV, chat, manage, new_token, until
from tests.inprocess.gateway import FakeClock, Gateway, Response
from tests.inprocess.upstream import DOUBLE_URL, double


@pytest.fixture
def gw() -> Iterator[Gateway]:
    with Gateway(upstream=double(), env={**TOKENS_ENV, "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}) as gateway:
        gateway.services.tokens.clock = gateway.wall = FakeClock(time.time())  # type: ignore[attr-defined]
        yield gateway


def send(gw: Gateway, secret: str, **kw: Any) -> asyncio.Future[Response]:
    return asyncio.ensure_future(gw.send("POST", "/v1/chat/completions", json={"model": "m", "messages": []},
                                         auth=False, headers={"authorization": f"Bearer {secret}"}, **kw))


async def settle(seconds: float = 0.15) -> None:
    """Let the queued requests poll (they look at the clock at least every 50 ms)."""
    await asyncio.sleep(seconds)


def test_a_request_over_rpm_waits_for_a_slot_in_arrival_order(gw: Gateway) -> None:
    secret = new_token(gw, rpm_limit=1, queue_ms=120_000)["secret"]
    wall: FakeClock = gw.wall  # type: ignore[attr-defined]

    async def scenario() -> list[Response]:
        first = await send(gw, secret)
        second = send(gw, secret)
        await settle()
        third = send(gw, secret)
        await settle()
        assert not second.done() and not third.done() and gw.services.tokens.queued == 2
        wall.advance(61)
        done = await asyncio.wait_for(second, 5)
        await settle()
        assert not third.done()  # one slot per minute: the second took it, the third still waits
        wall.advance(61)
        return [first, done, await asyncio.wait_for(third, 5)]

    first, second, third = gw.run(scenario())
    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert "queue;dur=" not in first.headers["server-timing"]
    assert "queue;dur=61000" in second.headers["server-timing"]
    assert gw.services.tokens.queued == 0
    assert until(gw, lambda: "llmgate_limit_queue_seconds_count 2.0" in gw.get("/metrics").text)
    assert "llmgate_limit_queued_requests 0.0" in gw.get("/metrics").text


def test_past_queue_ms_it_gets_the_usual_429(gw: Gateway) -> None:
    secret = new_token(gw, rpm_limit=1, queue_ms=1000)["secret"]
    wall: FakeClock = gw.wall  # type: ignore[attr-defined]

    async def scenario() -> Response:
        await send(gw, secret)
        waiting = send(gw, secret)
        await settle()
        assert not waiting.done()
        wall.advance(1.5)
        return await asyncio.wait_for(waiting, 5)

    response = gw.run(scenario())
    assert response.status_code == 429 and response.json()["error"]["param"] == "token.rpm_limit"
    assert response.headers["retry-after"]


def test_without_queue_ms_it_is_refused_at_once(gw: Gateway) -> None:
    secret = new_token(gw, rpm_limit=1)["secret"]
    assert [chat(gw, secret).status_code for _ in range(2)] == [200, 429]


def test_quota_refusals_never_queue(gw: Gateway) -> None:
    secret = new_token(gw, max_requests=1, queue_ms=60_000)["secret"]
    assert [chat(gw, secret).status_code for _ in range(2)] == [200, 429]


def test_a_client_that_leaves_while_queued_leaves_the_line(gw: Gateway) -> None:
    secret = new_token(gw, rpm_limit=1, queue_ms=120_000)["secret"]
    wall: FakeClock = gw.wall  # type: ignore[attr-defined]

    async def scenario() -> tuple[Response, Response]:
        await send(gw, secret)
        gone = asyncio.Event()
        leaver = send(gw, secret, leave=gone.wait())
        await settle()
        stayer = send(gw, secret)
        await settle()
        assert gw.services.tokens.queued == 2
        gone.set()
        left = await asyncio.wait_for(leaver, 5)
        assert gw.services.tokens.queued == 1
        wall.advance(61)  # the slot goes to the one still waiting, though it came later
        return left, await asyncio.wait_for(stayer, 5)

    left, stayed = gw.run(scenario())
    assert left.status_code == 0 and stayed.status_code == 200  # the one that left got nothing, counted nothing
    entry = next(iter(gw.services.tokens.entries.values()))
    assert entry.counters.request_count == 2


def test_project_queue_ms_queues_across_its_tokens(gw: Gateway) -> None:
    project = manage(gw, "POST", "/projects", json={"name": "queued", "rpm_limit": 1, "queue_ms": 120_000}).json()
    a, b = new_token(gw, project)["secret"], new_token(gw, project)["secret"]
    wall: FakeClock = gw.wall  # type: ignore[attr-defined]

    async def scenario() -> Response:
        await send(gw, a)
        waiting = send(gw, b)
        await settle()
        assert not waiting.done()
        wall.advance(61)
        return await asyncio.wait_for(waiting, 5)

    assert gw.run(scenario()).status_code == 200


def test_queue_ms_through_the_api(gw: Gateway) -> None:
    token = new_token(gw)
    assert token["queue_ms"] == 0
    updated = manage(gw, "PATCH", f"/tokens/{token['id']}", json={"queue_ms": 2500}).json()
    assert updated["queue_ms"] == 2500
    assert manage(gw, "PATCH", f"/tokens/{token['id']}", json={"queue_ms": -1}).status_code == 422


def test_an_end_user_over_their_rpm_is_refused_at_once_and_holds_up_no_one(gw: Gateway) -> None:
    project = manage(gw, "POST", "/projects", json={"name": "users-q", "rpm_limit": 100, "queue_ms": 120_000,
                                                    "per_user": {"rpm_limit": 1}}).json()
    secret = new_token(gw, project)["secret"]

    def as_user(user: str) -> int:
        return gw.post("/v1/chat/completions", json={"model": "m", "messages": [], "user": user},
                       headers={"authorization": f"Bearer {secret}"}, auth=False).status_code

    assert [as_user("ann"), as_user("ann"), as_user("ben")] == [200, 429, 200]
    assert gw.services.tokens.queued == 0
