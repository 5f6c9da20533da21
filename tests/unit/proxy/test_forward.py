"""The attempt loop (proxy/forward.py) in process: retries, failover, fallbacks, keys, breakers, budgets, streams
that fail before or after their first byte, clients that leave; routing's clock is set by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from llmgate.config import load_settings
from llmgate.errors import NoHealthyDeployment, RateLimited
from llmgate.proxy.attempt import Call
from llmgate.proxy.forward import _nothing_available
from llmgate.proxy.headers import split_request_headers
from llmgate.routing.keys import cool_down
from llmgate.upstreams import Upstreams
from llmgate.usage.event import Exchange
from tests.inprocess.gateway import Gateway, Response
from tests.inprocess.upstream import (
    HANG,
    Reply,
    Sent,
    double,
    hang,
    per_provider,
    refusing,
    replies,
    reply_json,
    reset_seen,
    seen,
)

OK = reply_json({"id": "chatcmpl-1", "choices": []})
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**CHAT, "stream": True}
FRAMES = [b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n', b'data: {"choices":[{"delta":{"content":"b"}}]}\n\n',
          b"data: [DONE]\n\n"]

# Two deployments of `chat`: `a` first (by weight: the choice is weighted random), then `b`.
TWO = """
[routing]
backoff_base_ms = 0
{routing}

[[providers]]
name = "a"
base_url = "http://a.test/v1"
api_key = "sk-a-key-0000000000001"
{a}

[[providers]]
name = "b"
base_url = "http://b.test/v1"
api_key = "sk-b-key-0000000000001"

[[models]]
name = "chat"
deployments = [{{ provider = "a", model = "model-a", weight = 1000000 }},
               {{ provider = "b", model = "model-b", weight = 0.000001 }}]
"""

# One deployment with three keys.
KEYS = ("sk-key-one-00000000001", "sk-key-two-00000000002", "sk-key-three-000000003")
THREE_KEYS = f"""
[routing]
backoff_base_ms = 0
{{routing}}

[[providers]]
name = "only"
base_url = "http://only.test/v1"
api_keys = {list(KEYS)!r}

[[models]]
name = "chat"
deployments = [{{{{ provider = "only" }}}}]
"""


def two(routing: str = "", a: str = "") -> str:
    return TWO.format(routing=routing, a=a)


def three_keys(routing: str = "") -> str:
    return THREE_KEYS.format(routing=routing)


def providers(gw: Gateway) -> list[str]:
    return [sent.provider for sent in gw.sent]


def keys(gw: Gateway) -> list[str | None]:
    return [sent.key for sent in gw.sent]


@pytest.mark.parametrize("failure", [Reply(500, b'{"error":"boom"}'), Reply(503), ConnectionRefusedError(),
                                     ConnectionResetError()], ids=["500", "503", "refused", "reset"])
@pytest.mark.parametrize("body", [CHAT, STREAM], ids=["whole", "stream"])
def test_a_failed_attempt_is_retried_on_the_next_deployment(failure: Reply | Exception, body: dict) -> None:
    answer = Reply(200, FRAMES) if body.get("stream") else OK
    with Gateway(two(), per_provider(a=replies(failure), b=replies(answer))) as gw:
        response = gw.post("/v1/chat/completions", json=body)
        assert response.status_code == 200
        assert response.content == (b"".join(FRAMES) if body.get("stream") else OK.body)
        assert response.headers["x-llmgate-deployment"] == "b/model-b"
        assert response.headers["x-llmgate-attempts"] == "2"
        assert providers(gw) == ["a", "b"]
        assert [sent.json()["model"] for sent in gw.sent] == ["model-a", "model-b"]  # renamed per deployment
        assert all(sent.closed for sent in gw.sent)


@pytest.mark.parametrize("body", [CHAT, STREAM], ids=["whole", "stream"])
def test_no_first_byte_within_the_providers_timeout_is_retried(body: dict) -> None:
    answer = Reply(200, FRAMES) if body.get("stream") else OK
    slow = 'timeouts = { first_byte_s = 0.05 }'
    with Gateway(two(a=slow), per_provider(a=lambda _: hang(), b=replies(answer))) as gw:
        response = gw.post("/v1/chat/completions", json=body)
        assert response.status_code == 200 and response.headers["x-llmgate-deployment"] == "b/model-b"
        (silent, _) = gw.sent
        assert silent.provider == "a" and silent.dropped and silent.closed  # the hung request was abandoned
        assert gw.health("a/model-a")["breaker"]["consecutive_failures"] == 1


def test_a_stream_that_sends_headers_but_no_byte_is_retried() -> None:
    slow = 'timeouts = { first_byte_s = 0.05 }'
    with Gateway(two(a=slow), per_provider(a=replies(Reply(200, [HANG])), b=replies(Reply(200, FRAMES)))) as gw:
        response = gw.post("/v1/chat/completions", json=STREAM)
        assert response.status_code == 200 and response.content == b"".join(FRAMES)
        assert providers(gw) == ["a", "b"] and gw.sent[0].dropped


def test_other_4xx_are_the_callers_own_and_pass_through_at_once() -> None:
    invalid = reply_json({"error": {"message": "bad"}}, 422, [("x-upstream", "kept")])
    with Gateway(two(), per_provider(a=replies(invalid))) as gw:
        response = gw.post("/v1/chat/completions", json=CHAT)
        assert (response.status_code, response.content) == (422, invalid.body)
        assert response.headers["x-upstream"] == "kept" and response.headers["x-llmgate-attempts"] == "1"
        assert providers(gw) == ["a"]
        assert gw.health("a/model-a")["breaker"]["consecutive_failures"] == 0  # not the deployment's fault


def test_a_429_rests_the_key_as_long_as_asked_and_the_next_key_answers() -> None:
    limited = reply_json({"error": {"message": "slow down"}}, 429, [("retry-after", "120")])
    with Gateway(three_keys(), replies(limited, OK, OK, OK, OK)) as gw:
        first = gw.post("/v1/chat/completions", json=CHAT)
        assert first.status_code == 200 and first.headers["x-llmgate-attempts"] == "2"
        assert keys(gw) == [KEYS[0], KEYS[1]]
        states = {k["key"]: k for k in gw.health("only/chat")["keys"]}
        assert states["sk-****0001"]["state"] == "cooling_down" and states["sk-****0001"]["cooling_down_for_s"] == 120
        assert gw.health("only/chat")["breaker"]["consecutive_failures"] == 0  # the key's fault, not the deployment's
        gw.post("/v1/chat/completions", json=CHAT)
        gw.post("/v1/chat/completions", json=CHAT)
        assert keys(gw)[2:] == [KEYS[2], KEYS[1]]  # the resting key is left out
        gw.clock.advance(120)
        gw.post("/v1/chat/completions", json=CHAT)
        assert keys(gw)[-1] == KEYS[0]  # rested: back, least recently used first


def test_a_429_cooldown_is_capped_and_defaults_when_the_upstream_does_not_say() -> None:
    asked_too_much = Reply(429, b"{}", [("retry-after", "99999")])
    routing = "cooldown_s = 7\nmax_cooldown_s = 60"
    with Gateway(three_keys(routing), replies(asked_too_much, Reply(429, b"{}"), OK)) as gw:
        assert gw.post("/v1/chat/completions", json=CHAT).status_code == 200
        cooling = [k["cooling_down_for_s"] for k in gw.health("only/chat")["keys"]]
        assert cooling[:2] == [60, 7]


@pytest.mark.parametrize("status", [401, 403])
def test_a_rejected_key_is_disabled_logged_masked_once_and_not_used_again(status: int) -> None:
    with Gateway(three_keys(), replies(Reply(status, b"{}"), OK, OK, OK)) as gw:
        assert gw.post("/v1/chat/completions", json=CHAT).status_code == 200
        for _ in range(2):
            gw.post("/v1/chat/completions", json=CHAT)
        assert keys(gw) == [KEYS[0], KEYS[1], KEYS[2], KEYS[1]]
        gw.clock.advance(10_000)
        assert [k["state"] for k in gw.health("only/chat")["keys"]] == ["disabled", "ok", "ok"]
        assert gw.logs().count(f"rejected key sk-****0001 with {status}") == 1
        assert KEYS[0] not in gw.logs()


@pytest.mark.parametrize("body", [CHAT, STREAM], ids=["whole", "stream"])
def test_a_5xx_on_the_only_deployment_is_retried_there_with_another_key_first(body: dict) -> None:
    answer = Reply(200, FRAMES) if body.get("stream") else OK
    with Gateway(three_keys(), replies(Reply(500), Reply(502), answer)) as gw:
        response = gw.post("/v1/chat/completions", json=body)
        assert response.status_code == 200 and response.headers["x-llmgate-attempts"] == "3"
        assert keys(gw) == list(KEYS)


def test_every_attempt_failing_ends_with_the_last_upstream_answer() -> None:
    failures = [reply_json({"error": {"message": f"down {i}"}}, 503) for i in range(4)]
    with Gateway(three_keys(), replies(*failures)) as gw:
        response = gw.post("/v1/chat/completions", json=CHAT)
        assert (response.status_code, response.content) == (503, failures[-1].body)
        assert response.headers["x-llmgate-attempts"] == "4"  # max_attempts
        assert keys(gw) == [*KEYS, KEYS[0]]  # every key once, then the same ones again


def test_connection_errors_everywhere_end_with_a_502_of_our_own() -> None:
    with Gateway(three_keys("max_attempts = 2"), replies(ConnectionRefusedError(), ConnectionRefusedError())) as gw:
        response = gw.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 502 and response.headers["x-llmgate-attempts"] == "2"
        assert response.json()["error"]["message"] == "Could not reach the upstream provider `only`."


def test_max_attempts_bounds_the_retries() -> None:
    with Gateway(two("max_attempts = 2"), lambda _: Reply(500)) as gw:
        response = gw.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 500 and response.headers["x-llmgate-attempts"] == "2"
        assert providers(gw) == ["a", "b"]


def test_no_attempt_starts_once_the_time_budget_is_spent() -> None:
    def slow_failure(_: Sent) -> Reply:
        gw.clock.advance(6)  # each attempt takes 6 s of routing's time
        return Reply(500)

    with Gateway(two("budget_s = 10\nmax_attempts = 10"), slow_failure) as gw:
        response = gw.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 500 and response.headers["x-llmgate-attempts"] == "2"


FALLBACK = """
[routing]
backoff_base_ms = 0

[[providers]]
name = "broken"
base_url = "http://broken.test/v1"

[[providers]]
name = "spare"
base_url = "http://spare.test/v1"

[[models]]
name = "primary"
deployments = [{ provider = "broken" }]
fallbacks = ["backup"]

[[models]]
name = "backup"
deployments = [{ provider = "spare" }]
"""


def test_the_fallback_alias_answers_when_every_deployment_fails() -> None:
    with Gateway(FALLBACK, per_provider(broken=lambda _: Reply(503), spare=replies(OK))) as gw:
        response = gw.post("/v1/chat/completions", json={"model": "primary", "messages": []})
        assert response.status_code == 200
        assert response.headers["x-llmgate-deployment"] == "spare/backup"
        assert response.headers["x-llmgate-attempts"] == "2"
        assert [(s.provider, s.json()["model"]) for s in gw.sent] == [("broken", "primary"), ("spare", "backup")]


def test_a_breaker_opens_refuses_then_lets_one_probe_through() -> None:
    routing = "max_attempts = 2\nbreaker_failures = 2\nbreaker_open_s = 30"
    outcomes: list[Reply] = [Reply(500), Reply(500)]
    with Gateway(three_keys(routing), lambda _: outcomes.pop(0)) as gw:
        assert gw.post("/v1/chat/completions", json=CHAT).status_code == 500
        assert gw.health("only/chat")["breaker"]["state"] == "open"
        refused = gw.post("/v1/chat/completions", json=CHAT)
        assert refused.status_code == 503 and refused.headers["x-llmgate-attempts"] == "0"
        assert refused.json()["error"]["code"] == "no_healthy_deployment"
        assert refused.json()["error"]["message"] == "No healthy deployment can serve `chat` right now."
        gw.clock.advance(29)
        assert gw.post("/v1/chat/completions", json=CHAT).status_code == 503
        assert len(gw.sent) == 2
        gw.clock.advance(1)
        outcomes.append(Reply(500))  # the probe fails: open again, for another 30 s
        assert gw.post("/v1/chat/completions", json=CHAT).status_code == 500
        assert len(gw.sent) == 3 and gw.health("only/chat")["breaker"]["state"] == "open"
        gw.clock.advance(30)
        outcomes.append(OK)  # this probe succeeds: closed
        assert gw.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert gw.health("only/chat")["breaker"]["state"] == "closed"


def test_while_the_half_open_probe_is_out_other_requests_are_refused() -> None:
    routing = "max_attempts = 1\nbreaker_failures = 1\nbreaker_open_s = 30"
    probe_started, probe_may_answer = asyncio.Event(), asyncio.Event()

    async def upstream(sent: Sent) -> Reply:
        if len(gw.sent) == 1:
            return Reply(500)
        probe_started.set()
        await probe_may_answer.wait()
        return OK

    async def main() -> tuple[int, int]:
        probe = asyncio.ensure_future(gw.send("POST", "/v1/chat/completions", json=CHAT))
        await probe_started.wait()
        other = await gw.send("POST", "/v1/chat/completions", json=CHAT)
        probe_may_answer.set()
        return (await probe).status_code, other.status_code

    with Gateway(three_keys(routing), upstream) as gw:
        assert gw.post("/v1/chat/completions", json=CHAT).status_code == 500
        gw.clock.advance(30)
        assert gw.run(main()) == (200, 503)
        assert gw.health("only/chat")["breaker"]["state"] == "closed"


def test_a_stream_failing_after_its_first_byte_ends_with_an_error_event_and_is_not_retried() -> None:
    broken = Reply(200, [FRAMES[0], ConnectionResetError("reset by peer")], [("content-type", "text/event-stream")])
    with Gateway(two(), per_provider(a=replies(broken), b=replies(Reply(200, FRAMES)))) as gw:
        response = gw.post("/v1/chat/completions", json=STREAM)
        assert response.status_code == 200 and response.headers["x-llmgate-deployment"] == "a/model-a"
        assert response.chunks[0] == FRAMES[0]
        assert response.chunks[-1].startswith(b'data: {"error":') and b"mid-stream" in response.chunks[-1]
        assert response.complete and providers(gw) == ["a"]  # bytes went out: nothing is retried
        assert gw.health("a/model-a")["breaker"]["consecutive_failures"] == 1


def test_a_stream_silent_past_its_idle_timeout_ends_with_a_timeout_event() -> None:
    idle = 'timeouts = { idle_s = 0.05 }'
    with Gateway(two(a=idle), per_provider(a=replies(Reply(200, [FRAMES[0], HANG])))) as gw:
        response = gw.post("/v1/chat/completions", json=STREAM)
        assert response.status_code == 200 and response.chunks[0] == FRAMES[0]
        assert b"The upstream sent nothing for 0.05 s." in response.chunks[-1]
        assert gw.sent[0].dropped


@pytest.mark.parametrize("body", [CHAT, STREAM], ids=["whole", "stream"])
def test_a_client_that_leaves_while_waiting_closes_the_upstream_request(body: dict) -> None:
    asked = asyncio.Event()

    async def upstream(_: Sent) -> Reply:
        asked.set()
        return await hang()

    async def main() -> None:
        response = await gw.send("POST", "/v1/chat/completions", json=body, leave=asked.wait())
        assert response.status_code == 0  # nothing reached the client

    with Gateway(two(), upstream) as gw:
        gw.run(main())
        (sent,) = gw.sent
        assert sent.dropped and sent.closed
        assert gw.health("a/model-a")["breaker"]["consecutive_failures"] == 0  # the client left: no one's failure


def test_a_client_that_leaves_mid_stream_closes_the_upstream_stream() -> None:
    endless = Reply(200, [FRAMES[0], HANG])

    async def main() -> None:
        response = await gw.send("POST", "/v1/chat/completions", json=STREAM, leave=lambda r: bool(r.chunks))
        assert response.chunks == [FRAMES[0]] and not response.complete

    with Gateway(two(), per_provider(a=replies(endless))) as gw:
        gw.run(main())
        assert gw.sent[0].dropped and gw.sent[0].closed


def test_a_client_that_leaves_frees_the_half_open_probe() -> None:
    routing = "max_attempts = 1\nbreaker_failures = 1\nbreaker_open_s = 30"
    outcomes: list[object] = [Reply(500), None, OK]
    probing = asyncio.Event()

    async def upstream(_: Sent) -> Reply:
        outcome = outcomes.pop(0)
        if outcome is None:
            probing.set()
            return await hang()
        return outcome  # type: ignore[return-value]

    with Gateway(three_keys(routing), upstream) as gw:
        assert gw.post("/v1/chat/completions", json=CHAT).status_code == 500
        gw.clock.advance(30)
        gw.run(gw.send("POST", "/v1/chat/completions", json=CHAT, leave=probing.wait()))
        assert gw.sent[1].dropped
        assert gw.post("/v1/chat/completions", json=CHAT).status_code == 200  # the next request may probe


def test_every_key_resting_still_sends_the_request_once() -> None:
    limited = Reply(429, b"{}", [("retry-after", "300")])
    with Gateway(three_keys(), replies(limited, limited, limited, OK)) as gw:
        assert gw.post("/v1/chat/completions", json=CHAT).status_code == 429
        response = gw.post("/v1/chat/completions", json=CHAT)  # the upstream decides, not us
        assert response.status_code == 200 and response.headers["x-llmgate-attempts"] == "1"


def test_keepalives_then_every_attempt_failing_ends_the_stream_with_the_error() -> None:
    async def upstream(_: Sent) -> Reply:
        await asyncio.sleep(0.05)
        return reply_json({"error": {"message": "down"}}, 503)

    with Gateway(two("max_attempts = 2"), upstream, env={"LLMGATE_STREAM_KEEPALIVE_S": "0.02"}) as gw:
        response = gw.post("/v1/chat/completions", json=STREAM)
        assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
        assert b": keep-alive\n\n" in response.chunks
        assert response.chunks[-1] == b'data: {"error": {"message": "down"}}\n\n'


ANTHROPIC = """
[routing]
backoff_base_ms = 0

[[providers]]
name = "claude-a"
kind = "anthropic"
base_url = "http://claude-a.test"
api_key = "sk-ant-a-00000000000001"

[[providers]]
name = "claude-b"
kind = "anthropic"
base_url = "http://claude-b.test"
api_key = "sk-ant-b-00000000000001"

[[models]]
name = "claude"
deployments = [{ provider = "claude-a", model = "claude-x", weight = 1000000 },
               { provider = "claude-b", model = "claude-y", weight = 0.000001 }]
"""
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-y", "stop_reason": "end_turn",
           "content": [{"type": "text", "text": "hello"}], "usage": {"input_tokens": 3, "output_tokens": 1}}


def test_a_translated_call_fails_over_through_the_same_loop() -> None:
    with Gateway(ANTHROPIC, per_provider(**{"claude-a": replies(Reply(529, b"{}")),
                                           "claude-b": replies(reply_json(MESSAGE))})) as gw:
        response = gw.post("/v1/chat/completions", json={"model": "claude", "messages": [
            {"role": "user", "content": "hi"}]})
        assert response.status_code == 200 and response.headers["x-llmgate-attempts"] == "2"
        assert response.headers["x-llmgate-deployment"] == "claude-b/claude-y"
        assert response.json()["choices"][0]["message"]["content"] == "hello"  # OpenAI's shape
        assert [(s.path, s.key, s.json()["model"]) for s in gw.sent] == [
            ("/v1/messages", "sk-ant-a-00000000000001", "claude-x"),
            ("/v1/messages", "sk-ant-b-00000000000001", "claude-y")]


def test_a_request_body_streaming_up_is_sent_once() -> None:
    multipart = (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nchat\r\n'
                 b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n\r\n', b"xx\r\n--b--\r\n")
    with Gateway(two(), lambda _: Reply(500)) as gw:
        response = gw.post("/v1/audio/transcriptions", content=multipart,
                           headers={"content-type": "multipart/form-data; boundary=b"})
        assert response.status_code == 500 and response.headers["x-llmgate-attempts"] == "1"
        assert gw.sent[0].body == b"".join(multipart)


# Fault injection against the upstream double, run in process: deployments that rate-limit, fail, refuse, reset
# and stall; the clients see none of it.
DOUBLE = "http://double.test"
FAULTS = {  # provider name → path prefix making the double misbehave that way
    "limited": "/_mock/status=429,retry-after=300",
    "e500": "/_mock/status=500",
    "e503": "/_mock/status=503",
    "reset": "/_mock/reset-after-chunks=0",
    "slow": "/_mock/delay-ms=3000",
}


@pytest.fixture(scope="module")
def faulty() -> Iterator[Gateway]:
    """One alias over seven deployments, only the last of which is healthy."""
    providers = [f'[[providers]]\nname = "{name}"\nbase_url = "{DOUBLE}{prefix}/v1"\n'
                 f'api_key = "sk-{name}-key-0123456789"\n' for name, prefix in FAULTS.items()]
    providers.append('timeouts = { first_byte_s = 0.3 }\n')  # for "slow", the last one above
    providers.append('[[providers]]\nname = "refused"\nbase_url = "http://refused.test/v1"\n')
    providers.append(f'[[providers]]\nname = "good"\nbase_url = "{DOUBLE}/v1"\napi_key = "sk-good-key-0123456789"\n')
    names = [*FAULTS, "refused", "good"]
    deployments = ", ".join(f'{{ provider = "{n}", model = "gpt-4o" }}' for n in names)
    config = f"""
[routing]
max_attempts = 8
breaker_failures = 3
breaker_open_s = 600
backoff_base_ms = 1
backoff_max_ms = 5

{"".join(providers)}
[[models]]
name = "gpt-4o"
deployments = [{deployments}]
"""
    with Gateway(config, refusing("refused")) as gw:
        yield gw


async def _one(gw: Gateway, i: int) -> str | None:
    """None when the request fully succeeded, else what went wrong."""
    stream = i % 2 == 0
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    if not stream:
        response = await gw.send("POST", "/v1/chat/completions", json=body)
        ok = response.status_code == 200 and response.json()["choices"]
        return None if ok else f"{response.status_code} {response.text[:200]}"
    response = await gw.send("POST", "/v1/chat/completions", json=body, headers={"x-mock-chunks": "3"})
    data = response.content
    ok = response.status_code == 200 and data.endswith(b"data: [DONE]\n\n") and b'"error"' not in data
    return None if ok else f"{response.status_code} {data[-200:]!r}"


async def _load(gw: Gateway, total: int, concurrency: int) -> list[str]:
    gate = asyncio.Semaphore(concurrency)

    async def run(i: int) -> str | None:
        async with gate:
            return await _one(gw, i)

    results = await asyncio.gather(*(run(i) for i in range(total)))
    return [r for r in results if r is not None]


def test_one_healthy_deployment_left_serves_every_request(faulty: Gateway) -> None:
    errors = faulty.run(_load(faulty, 1000, 32))
    assert errors == []
    health = faulty.get("/health/deployments").json()["deployments"]
    by_name = {d["provider"]: d for d in health}
    limited = by_name["limited"]
    assert limited["breaker"]["state"] == "closed"  # a 429 rests the key, it is not the deployment's fault
    assert limited["keys"][0]["state"] == "cooling_down" and limited["keys"][0]["cooling_down_for_s"] > 200
    assert limited["keys"][0]["key"] == "sk-****6789"
    for name in ("e500", "e503", "reset", "slow", "refused"):
        assert by_name[name]["breaker"]["state"] == "open", name
        assert not by_name[name]["healthy"]
    good = by_name["good"]
    assert good["healthy"] and good["breaker"]["state"] == "closed" and good["keys"][0]["state"] == "ok"
    assert "sk-good-key-0123456789" not in str(health)


def test_the_response_says_which_deployment_answered(faulty: Gateway) -> None:
    response = faulty.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": []})
    assert response.headers["x-llmgate-deployment"] == "good/gpt-4o"
    assert response.headers["x-llmgate-attempts"] == "1"  # every other deployment is resting by now


def test_health_deployments_needs_the_master_key(faulty: Gateway) -> None:
    assert faulty.get("/health/deployments", auth=False).status_code == 401
    assert faulty.get("/health", auth=False).status_code == 200


def _chat(gw: Gateway, model: str, stream: bool = False, **headers: str) -> Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return gw.post("/v1/chat/completions", json=body, headers=headers)


def _catch_all(keys: tuple[str, ...], base_url: str = f"{DOUBLE}/v1") -> str:
    """One provider that passes every model through (no `models`, no alias), with these keys."""
    return f"""
[routing]
backoff_base_ms = 1
backoff_max_ms = 5

[[providers]]
name = "only"
base_url = "{base_url}"
api_keys = {list(keys)!r}
"""


def test_one_models_failures_rest_only_that_model() -> None:
    config = _catch_all(("sk-one-000000000001", "sk-two-000000000002", "sk-three-00000000003"))
    with Gateway(config, double()) as gw:
        answers = [_chat(gw, "model-a", **{"x-mock-status": "500"}) for _ in range(5)]
        assert answers[0].status_code == 500  # the upstream's answer, passed on after its retries
        refused = _chat(gw, "model-a")  # model-a's breaker is open: refused without asking the upstream
        assert refused.status_code == 503 and refused.headers["x-llmgate-attempts"] == "0"
        assert refused.json()["error"]["code"] == "no_healthy_deployment"
        assert refused.json()["error"]["message"] == "No healthy deployment can serve `model-a` right now."
        served = _chat(gw, "model-b")  # another model on the same (catch-all) deployment is still served
        assert served.status_code == 200 and served.headers["x-llmgate-attempts"] == "1"
        assert _chat(gw, "model-b", stream=True).status_code == 200
        embedded = gw.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"})
        assert embedded.status_code == 200
        health = gw.get("/health/deployments").json()["deployments"]
    (only,) = health
    assert only["name"] == "only" and only["healthy"] and only["breaker"]["state"] == "closed"
    models = {m["model"]: m for m in only["models"]}
    assert models["model-a"]["breaker"]["state"] == "open" and not models["model-a"]["healthy"]
    assert models["model-a"]["recent"]["errors"] >= 5
    assert models["model-b"]["breaker"]["state"] == "closed" and models["model-b"]["healthy"]
    assert models["text-embedding-3-small"]["recent"] == {"errors": 0, "requests": 1}


@pytest.mark.parametrize("stream", [False, True])
def test_a_5xx_on_the_only_deployment_is_retried_on_another_key(stream: bool) -> None:
    keys = ("sk-bad-0000000000001", "sk-bad-0000000000002", "sk-good-000000000003")
    with Gateway(_catch_all(keys), double()) as gw:
        reset_seen()
        response = _chat(gw, "gpt-4o", stream, **{"x-mock-fail-key": "sk-bad"})
        used = [r["auth"] for r in seen()["recent"]]
    assert response.status_code == 200 and response.headers["x-llmgate-attempts"] == "3"
    assert used == [f"Bearer {k}" for k in keys]  # each retry on a key this request had not tried yet


def test_every_attempt_failing_ends_with_the_upstreams_answer() -> None:
    keys = ("sk-one-000000000001", "sk-two-000000000002", "sk-three-00000000003")
    with Gateway(_catch_all(keys), double()) as gw:
        reset_seen()
        response = _chat(gw, "gpt-4o", **{"x-mock-status": "503"})
        used = [r["auth"] for r in seen()["recent"]]
    assert response.status_code == 503 and response.json()["error"]["message"] == "mock error 503"
    assert response.headers["x-llmgate-attempts"] == "4"  # max_attempts
    assert used == [f"Bearer {k}" for k in (*keys, keys[0])]  # every key once, then the same ones again


def test_a_connection_error_on_the_only_deployment_is_retried() -> None:
    with Gateway(_catch_all(("sk-one-000000000001",), "http://refused.test/v1"), refusing("only")) as gw:
        response = _chat(gw, "gpt-4o")
    assert response.status_code == 502 and response.headers["x-llmgate-attempts"] == "4"
    assert response.json()["error"]["message"] == "Could not reach the upstream provider `only`."


# llmgate's own answers when nothing can serve a request: they name the model the client asked for.

def call_for(router: Upstreams, model: str | None) -> Call:
    exchange = Exchange(b"rid", "POST", "/v1/chat/completions")
    return Call(router, None, None, None, "POST", "/chat/completions", "", split_request_headers([]), b"{}",  # type: ignore[arg-type]
                exchange, model, False, "chat")


@pytest.fixture
def router() -> Upstreams:
    """No config file: one provider from OPENAI_API_KEY, the catch-all (its route is named `*`)."""
    return Upstreams(load_settings({"OPENAI_API_KEY": "sk-up-0123456789abcdef"}), {})


def test_no_healthy_deployment_names_the_model_asked(router: Upstreams) -> None:
    route = router.table.resolve("gpt-x", "/chat/completions")
    assert route.name == "*"
    breaker = route.entries[0][0].breaker_for("gpt-x")
    for _ in range(router.table.routing.breaker_failures):
        breaker.record_failure(0.0)
    error = _nothing_available(call_for(router, "gpt-x"), route)
    assert isinstance(error, NoHealthyDeployment) and error.status == 503
    assert error.message == "No healthy deployment can serve `gpt-x` right now."
    unnamed = _nothing_available(call_for(router, None), router.table.default_route)  # e.g. a multipart body
    assert unnamed.message == "No healthy deployment can serve this request right now."


def test_every_key_rate_limited_names_the_model_asked(router: Upstreams) -> None:
    route = router.table.resolve("gpt-y", "/chat/completions")
    cool_down(route.entries[0][0].keys.keys[0], 1e12, 30)  # resting until long after the test
    error = _nothing_available(call_for(router, "gpt-y"), route)
    assert isinstance(error, RateLimited) and error.status == 429
    assert error.message.startswith("Every API key for `gpt-y` is rate limited; retry in ")
