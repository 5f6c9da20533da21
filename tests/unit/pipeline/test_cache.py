"""The response cache's step (pipeline/cache.py) end to end in process: hit, miss, bypass and no-store, a stream
replayed byte for byte, single-flight, the scope of a project, what is never kept, and a hit's usage."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.inprocess.access import TOKENS_ENV, manage, new_token, until
from tests.inprocess.gateway import AUTH, Gateway, Response
from tests.inprocess.upstream import DOUBLE_URL, Reply, Sent, double, reply_json

CACHED = {"OPENAI_BASE_URL": f"{DOUBLE_URL}/v1", "LLMGATE_CACHE_TTL_S": "600"}
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def ask(gw: Gateway, body: dict[str, Any] | None = None, **headers: str) -> Response:
    return gw.post("/v1/chat/completions", json=body or BODY, headers={**AUTH, **headers})


def test_a_second_identical_request_is_a_hit_served_without_the_upstream() -> None:
    with Gateway(upstream=double(), env=CACHED) as gw:
        first = ask(gw)
        # the same request: keys in another order, another `user` and `metadata`
        again = ask(gw, {"temperature": 0, "messages": BODY["messages"], "model": "gpt-4o-mini", "user": "u2",
                         "metadata": {"k": "v"}})
        assert (first.status_code, again.status_code) == (200, 200)
        assert first.headers["x-llmgate-cache"] == "miss" and again.headers["x-llmgate-cache"] == "hit"
        assert again.content == first.content and again.headers["content-type"] == "application/json"
        assert again.headers["x-request-id"] != first.headers["x-request-id"]  # its own request id
        assert len(gw.sent) == 1
        other = ask(gw, {**BODY, "temperature": 1})  # a field that changes the answer: another key
        assert other.headers["x-llmgate-cache"] == "miss" and len(gw.sent) == 2


def test_no_cache_bypasses_the_lookup_and_no_store_keeps_nothing() -> None:
    with Gateway(upstream=double(), env=CACHED) as gw:
        ask(gw)
        fresh = ask(gw, **{"cache-control": "no-cache"})
        assert fresh.headers["x-llmgate-cache"] == "bypass" and len(gw.sent) == 2
        assert ask(gw).headers["x-llmgate-cache"] == "hit" and len(gw.sent) == 2
        body = {**BODY, "temperature": 0.5}
        kept_nothing = ask(gw, body, **{"cache-control": "no-store"})
        assert kept_nothing.headers["x-llmgate-cache"] == "miss"
        assert ask(gw, body).headers["x-llmgate-cache"] == "miss" and len(gw.sent) == 4
        assert ask(gw, body, **{"cache-control": "no-store"}).headers["x-llmgate-cache"] == "hit"  # may read


def test_a_stream_is_replayed_byte_for_byte_and_is_not_the_non_stream_answer() -> None:
    chunks = [b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n', 0.01,
              b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n', b"data: [DONE]\n\n"]

    def upstream(sent: Sent) -> Reply:
        if sent.json().get("stream"):
            return Reply(200, list(chunks), [("content-type", "text/event-stream")])
        return reply_json({"id": "whole", "choices": []})

    with Gateway(upstream=upstream, env={**CACHED, "LLMGATE_USAGE_LOG": "0"}) as gw:
        body = {**BODY, "stream": True}
        first = ask(gw, body)
        again = ask(gw, body)
        assert first.headers["x-llmgate-cache"] == "miss" and again.headers["x-llmgate-cache"] == "hit"
        assert again.content == first.content == b"".join(c for c in chunks if isinstance(c, bytes))
        assert again.headers["content-type"] == "text/event-stream" and again.complete
        whole = ask(gw)
        assert whole.headers["x-llmgate-cache"] == "miss" and whole.json()["id"] == "whole"
        assert len(gw.sent) == 2


def test_ten_identical_requests_at_once_make_one_upstream_call() -> None:
    async def slow(sent: Sent) -> Reply:
        await asyncio.sleep(0.05)
        return reply_json({"id": "one", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4,
                                                                 "total_tokens": 7}})

    with Gateway(upstream=slow, env=CACHED) as gw:
        async def ten() -> list[Response]:
            return await asyncio.gather(*(gw.send("POST", "/v1/chat/completions", json=BODY) for _ in range(10)))

        answers = gw.run(ten())
        assert len(gw.sent) == 1
        assert {a.status_code for a in answers} == {200} and {a.json()["id"] for a in answers} == {"one"}
        assert sorted(a.headers["x-llmgate-cache"] for a in answers) == ["hit"] * 9 + ["miss"]


def test_waiters_go_upstream_themselves_when_the_first_fails() -> None:
    calls: list[int] = []

    async def first_fails(sent: Sent) -> Reply:
        calls.append(1)
        await asyncio.sleep(0.02)
        return reply_json({"error": {"message": "bad"}}, status=400) if len(calls) == 1 else \
            reply_json({"id": "ok", "choices": []})

    with Gateway(upstream=first_fails, env=CACHED) as gw:
        async def three() -> list[Response]:
            return await asyncio.gather(*(gw.send("POST", "/v1/chat/completions", json=BODY) for _ in range(3)))

        statuses = sorted(a.status_code for a in gw.run(three()))
        assert statuses == [200, 200, 400] and len(calls) == 3


@pytest.mark.parametrize("failure", ["error", "broken stream", "client left", "several choices"])
def test_what_is_not_a_complete_single_answer_is_not_kept(failure: str) -> None:
    stream = failure in ("broken stream", "client left")
    broken = [b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n', ConnectionResetError("gone")]
    whole = [b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n', 1.0, b"data: [DONE]\n\n"]  # left by then

    def upstream(sent: Sent) -> Reply:
        if failure == "error":
            return reply_json({"error": {"message": "no"}}, status=400)
        if stream:
            return Reply(200, list(broken if failure == "broken stream" else whole),
                         [("content-type", "text/event-stream")])
        return reply_json({"id": "n", "choices": [{}, {}]})

    body = {**BODY, "stream": stream} if failure != "several choices" else {**BODY, "n": 2}
    with Gateway(upstream=upstream, env={**CACHED, "LLMGATE_USAGE_LOG": "0"}) as gw:
        if failure == "client left":
            gw.run(gw.send("POST", "/v1/chat/completions", json=body, leave=lambda r: bool(r.chunks)))
        else:
            first = ask(gw, body)
            assert first.headers["x-llmgate-cache"] == ("bypass" if failure == "several choices" else "miss")
        assert ask(gw, body).headers["x-llmgate-cache"] != "hit"
        assert len(gw.sent) == 2


def test_only_the_aliases_with_a_ttl_are_cached() -> None:
    config = f"""
[[providers]]
name = "up"
base_url = "{DOUBLE_URL}/v1"
api_key = "k"

[[models]]
name = "cached"
cache = {{ ttl_s = 600 }}
deployments = [{{ provider = "up", model = "gpt-4o-mini" }}]

[[models]]
name = "plain"
deployments = [{{ provider = "up", model = "gpt-4o-mini" }}]
"""
    with Gateway(config, upstream=double()) as gw:
        assert gw.services.cache is not None
        ask(gw, {**BODY, "model": "cached"})
        assert ask(gw, {**BODY, "model": "cached"}).headers["x-llmgate-cache"] == "hit"
        ask(gw, {**BODY, "model": "plain"})
        plain = ask(gw, {**BODY, "model": "plain"})
        assert "x-llmgate-cache" not in plain.headers and len(gw.sent) == 3


def test_no_cache_configured_means_no_cache_at_all() -> None:
    with Gateway(upstream=double(), env={"OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}) as gw:
        assert gw.services.cache is None and gw.services.v1_services().cache is None
        ask(gw)
        assert "x-llmgate-cache" not in ask(gw).headers and len(gw.sent) == 2


def _chat_as(gw: Gateway, secret: str) -> Response:
    return gw.post("/v1/chat/completions", json=BODY, auth=False, headers={"authorization": f"Bearer {secret}"})


@pytest.mark.parametrize("scope", ["project", "global"])
def test_answers_are_shared_within_a_project_unless_the_scope_is_global(scope: str) -> None:
    config = f'[cache]\nttl_s = 600\nscope = "{scope}"\n'
    env = {**TOKENS_ENV, "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}
    with Gateway(config, upstream=double(), env=env) as gw:
        one, other = new_token(gw), new_token(gw)
        same_project = new_token(gw, project={"id": one["project_id"]})
        assert _chat_as(gw, one["secret"]).headers["x-llmgate-cache"] == "miss"
        assert _chat_as(gw, same_project["secret"]).headers["x-llmgate-cache"] == "hit"
        expected = "miss" if scope == "project" else "hit"
        assert _chat_as(gw, other["secret"]).headers["x-llmgate-cache"] == expected


def test_a_hit_is_logged_as_cached_with_its_tokens_at_no_cost_and_counted_in_metrics() -> None:
    config = '[cache]\nttl_s = 600\n\n[prices."gpt-4o-mini"]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n'
    env = {**TOKENS_ENV, "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1", "LLMGATE_USAGE_FLUSH_S": "0.05"}
    with Gateway(config, upstream=double(), env=env) as gw:
        token = new_token(gw, budget_tokens=1_000_000)
        _chat_as(gw, token["secret"])
        hit = _chat_as(gw, token["secret"])
        assert hit.headers["x-llmgate-cache"] == "hit"
        summary = until(gw, lambda: (groups := manage(gw, "GET", "/usage").json()["data"])
                        and groups[0]["requests"] == 2 and groups)
        assert summary, manage(gw, "GET", "/usage").json()
        group = summary[0]
        assert group["cached_requests"] == 1 and group["total_tokens"] == 2 * 35  # the hit's tokens still shown
        prompt, completion = group["prompt_tokens"] // 2, group["completion_tokens"] // 2
        assert group["cost"] == pytest.approx((prompt * 1.0 + completion * 2.0) / 1e6)  # the miss's cost alone
        stored = until(gw, lambda: (t := manage(gw, "GET", f"/tokens/{token['id']}").json())["request_count"] == 2
                       and t)
        assert stored and stored["tokens_used"] == 35  # the hit used no upstream tokens
        metrics = gw.get("/metrics").text
        assert 'llmgate_cache_requests_total{result="hit"} 1.0' in metrics
        assert 'llmgate_cache_requests_total{result="miss"} 1.0' in metrics
        assert "llmgate_cache_bytes " in metrics and "llmgate_cache_bytes 0.0" not in metrics


def test_two_instances_share_answers_through_redis(redis_url: str) -> None:
    env = {**CACHED, "LLMGATE_REDIS_URL": redis_url}
    body = {**BODY, "messages": [{"role": "user", "content": f"shared {id(env)}"}]}
    with Gateway(upstream=double(), env=env) as first:
        assert ask(first, body).headers["x-llmgate-cache"] == "miss"
    with Gateway(upstream=double(), env=env) as second:
        hit = ask(second, body)
        assert hit.headers["x-llmgate-cache"] == "hit" and json.loads(hit.content)["id"] == "chatcmpl-mock"
        assert second.sent == []


def test_a_redis_that_is_down_makes_every_request_a_miss_not_an_error() -> None:
    from tests.servers import free_port

    with Gateway(upstream=double(), env={**CACHED, "LLMGATE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}) as gw:
        answers = [ask(gw), ask(gw)]
        assert [(a.status_code, a.headers["x-llmgate-cache"]) for a in answers] == [(200, "miss")] * 2
        assert len(gw.sent) == 2 and "response cache: Redis" in gw.logs()


def test_a_hit_reports_the_tokens_kept_with_its_answer_without_reading_its_body_for_them() -> None:
    from llmgate.cache.key import KeyRequest
    from llmgate.cache.store import Answer, Usage

    env = {**TOKENS_ENV, **CACHED, "LLMGATE_USAGE_FLUSH_S": "0.05"}
    raw = json.dumps(BODY).encode()
    with Gateway(upstream=double(), env=env) as gw:
        cache = gw.services.cache
        assert cache is not None
        # the key of this request: passed through (route "*") by the master key (no project)
        key = cache.keys.key(KeyRequest(endpoint="/v1/chat/completions", model="*:gpt-4o-mini", stream=False),
                             raw)
        assert key is not None
        # an answer whose bytes say nothing of usage: the tokens can only come from what was kept beside them
        answer = Answer([(b"content-type", b"application/json")], b'{"id":"chatcmpl-kept"}', "openai", Usage(7, 3, 10))
        gw.run(cache.store.put(key, answer, 600))
        hit = gw.post("/v1/chat/completions", content=raw, headers={**AUTH, "content-type": "application/json"})
        assert hit.headers["x-llmgate-cache"] == "hit" and hit.content == b'{"id":"chatcmpl-kept"}'
        assert gw.sent == []
        summary = until(gw, lambda: (groups := manage(gw, "GET", "/usage").json()["data"]) and groups)
        assert summary and summary[0]["cached_requests"] == 1
        assert (summary[0]["prompt_tokens"], summary[0]["completion_tokens"], summary[0]["total_tokens"]) == (7, 3, 10)
