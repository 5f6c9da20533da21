"""Hedged attempts (proxy/hedge.py) in process: a second attempt once the first is late, the first to answer
used and the other dropped, hedges capped at a share of the alias's requests."""

from __future__ import annotations

import asyncio

import pytest

from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import Reply, Sent, double, hang, per_provider, replies, reply_json, reset_seen, seen

OK = reply_json({"id": "chatcmpl-1", "choices": []})
CHAT = {"model": "hedged", "messages": []}
FRAMES = [b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n', b"data: [DONE]\n\n"]
HEDGED = """
[routing]
backoff_base_ms = 0

[[providers]]
name = "slow"
base_url = "{slow}"

[[providers]]
name = "fast"
base_url = "{fast}"

[[models]]
name = "hedged"
hedge = {{ {hedge} }}
# the slow deployment is (almost always) picked first
deployments = [{{ provider = "slow", weight = 1000000 }}, {{ provider = "fast", weight = 0.000001 }}]
"""


def hedged(hedge: str = "after_ms = 20, max_ratio = 1.0", slow: str = "http://slow.test/v1",
           fast: str = "http://fast.test/v1") -> str:
    return HEDGED.format(hedge=hedge, slow=slow, fast=fast)


@pytest.mark.parametrize("stream", [False, True])
def test_the_hedge_answers_when_the_first_attempt_is_slow(stream: bool) -> None:
    """The double, in process: the slow deployment's base URL makes it wait 2 s before answering."""
    config = hedged("after_ms = 100, max_ratio = 1.0", "http://double.test/_mock/delay-ms=2000/v1",
                    "http://double.test/v1")
    with Gateway(config, double()) as gw:
        reset_seen()
        response = gw.post("/v1/chat/completions", json={**CHAT, "stream": stream})
        data = response.content
        assert response.status_code == 200
        assert response.headers["x-llmgate-deployment"] == "fast/hedged"
        assert response.headers["x-llmgate-hedges"] == "1"
        assert response.headers["x-llmgate-attempts"] == "2"
        assert data.endswith(b"data: [DONE]\n\n") if stream else b"chat.completion" in data
        assert "hedging hedged after" in gw.logs()
        paths = [r["path"] for r in seen()["recent"]]
        assert sorted(paths) == ["/_mock/delay-ms=2000/v1/chat/completions", "/v1/chat/completions"]


@pytest.mark.parametrize("stream", [False, True])
def test_the_late_first_attempt_is_dropped_once_the_hedge_answers(stream: bool) -> None:
    answer = Reply(200, FRAMES) if stream else OK
    with Gateway(hedged(), per_provider(slow=lambda _: hang(), fast=replies(answer))) as gw:
        response = gw.post("/v1/chat/completions", json={**CHAT, "stream": stream})
        assert response.status_code == 200 and response.content == (b"".join(FRAMES) if stream else OK.body)
        slow, fast = gw.sent
        assert (slow.provider, fast.provider) == ("slow", "fast")
        assert slow.dropped and slow.closed  # cancelled: its connection dropped
        assert fast.closed and not fast.dropped


def test_an_attempt_answering_before_the_deadline_is_not_hedged() -> None:
    with Gateway(hedged("after_ms = 5000, max_ratio = 1.0"), replies(OK)) as gw:
        response = gw.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 200 and "x-llmgate-hedges" not in response.headers
        assert [s.provider for s in gw.sent] == ["slow"]


def test_hedges_are_capped_at_their_share_of_the_aliases_requests() -> None:
    async def slow(_: Sent) -> Reply:
        await asyncio.sleep(0.1)  # past the 20 ms deadline, but it answers
        return OK

    with Gateway(hedged("after_ms = 20, max_ratio = 0.5"), per_provider(slow=slow, fast=lambda _: OK)) as gw:
        answered = [gw.post("/v1/chat/completions", json=CHAT).headers["x-llmgate-deployment"] for _ in range(4)]
        # request 1: 1 hedge would be 100% of 1 request; 2: 50% of 2; 3: 2 of 3 is over; 4: 2 of 4 again
        assert answered == ["slow/hedged", "fast/hedged", "slow/hedged", "fast/hedged"]


def test_the_first_attempt_wins_when_it_answers_before_the_hedge() -> None:
    async def slow(_: Sent) -> Reply:
        await asyncio.sleep(0.05)
        return OK

    with Gateway(hedged(), per_provider(slow=slow, fast=lambda _: hang())) as gw:
        response = gw.post("/v1/chat/completions", json=CHAT)
        assert response.headers["x-llmgate-deployment"] == "slow/hedged"
        assert response.headers["x-llmgate-hedges"] == "1" and response.headers["x-llmgate-attempts"] == "2"
        assert gw.sent[1].provider == "fast" and gw.sent[1].dropped


def test_both_attempts_failing_are_both_told_to_routing() -> None:
    async def late_failure(_: Sent) -> Reply:
        await asyncio.sleep(0.05)
        return Reply(503)

    config = hedged().replace("backoff_base_ms = 0", "backoff_base_ms = 0\nmax_attempts = 2")
    with Gateway(config, per_provider(slow=late_failure, fast=lambda _: Reply(500))) as gw:
        response = gw.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 503  # the later failure's answer, passed on
        assert response.headers["x-llmgate-attempts"] == "2" and response.headers["x-llmgate-hedges"] == "1"
        assert gw.health("slow/hedged")["breaker"]["consecutive_failures"] == 1
        assert gw.health("fast/hedged")["breaker"]["consecutive_failures"] == 1


def test_a_hedge_on_another_key_when_the_alias_has_one_deployment() -> None:
    config = """
[[providers]]
name = "only"
base_url = "http://only.test/v1"
api_keys = ["sk-first-key-000000001", "sk-second-key-00000002"]

[[models]]
name = "hedged"
hedge = { after_ms = 20, max_ratio = 1.0 }
deployments = [{ provider = "only" }]
"""
    outcomes = [None, OK]

    async def upstream(_: Sent) -> Reply:
        outcome = outcomes.pop(0)
        return await hang() if outcome is None else outcome

    with Gateway(config, upstream) as gw:
        response = gw.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 200 and response.headers["x-llmgate-hedges"] == "1"
        assert [s.key for s in gw.sent] == ["sk-first-key-000000001", "sk-second-key-00000002"]
        assert gw.sent[0].dropped
