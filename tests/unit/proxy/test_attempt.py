"""What an attempt's outcome means for routing (failure_kind, record_failure) and what a Call sends to each
deployment (path, headers, body). Pure: no I/O; routing's `now` passed in."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmgate.config import load_settings
from llmgate.proxy.attempt import Call, Failure, failure_kind, record_failure
from llmgate.proxy.headers import split_request_headers
from llmgate.routing.select import Deployment
from llmgate.upstreams import Upstreams
from llmgate.usage.event import Exchange
from tests.inprocess.gateway import FakeClock

CONFIG = """
[routing]
cooldown_s = 30
max_cooldown_s = 600
breaker_failures = 2

[[providers]]
name = "openai"
base_url = "http://openai.test/v1"
api_keys = ["sk-first-0000000000001", "sk-second-000000000002"]

[[providers]]
name = "azure"
kind = "azure"
base_url = "http://azure.test"
api_key = "azure-key-000000000001"
api_version = "2024-10-21"
stream_usage = false

[[models]]
name = "alias"
deployments = [{ provider = "openai", model = "upstream-name" }]

[[models]]
name = "same"
deployments = [{ provider = "openai" }]

[[models]]
name = "gpt-4o"
deployments = [{ provider = "azure", model = "my-deployment" }]
"""


@pytest.fixture
def upstreams(tmp_path: Path) -> Upstreams:
    (tmp_path / "llmgate.toml").write_text(CONFIG)
    return Upstreams(load_settings({"LLMGATE_CONFIG": str(tmp_path / "llmgate.toml")}), {}, clock=FakeClock(100.0))


def deployment(upstreams: Upstreams, model: str) -> Deployment:
    return upstreams.table.resolve(model, "/chat/completions").entries[0][0]


def call_for(upstreams: Upstreams, model: str, body: bytes, query: str = "",
             headers: list[tuple[bytes, bytes]] | None = None) -> Call:
    exchange = Exchange(b"rid-1", "POST", "/v1/chat/completions")
    return Call(upstreams, None, None, None, "POST", "/chat/completions", query,  # type: ignore[arg-type]
                split_request_headers(headers or []), body, exchange, model, False, "chat")


@pytest.mark.parametrize(("status", "kind"), [
    (200, None), (201, None), (304, None), (400, None), (404, None), (422, None),
    (429, "rate_limited"), (401, "bad_key"), (403, "bad_key"), (500, "server"), (503, "server"), (529, "server"),
])
def test_failure_kind(status: int, kind: str | None) -> None:
    assert failure_kind(status) == kind


def test_a_429_rests_its_key_as_asked_capped_and_does_not_count_against_the_deployment(upstreams: Upstreams) -> None:
    target = deployment(upstreams, "alias")
    first, second = target.keys.keys
    asked = Failure(target, first, "rate_limited", 429, [(b"retry-after", b"99999")])
    assert record_failure(asked, "alias", 100.0, upstreams.routing) is False
    assert first.cooldown_until == 100.0 + 600  # capped at max_cooldown_s
    silent = Failure(target, second, "rate_limited", 429, [])
    record_failure(silent, "alias", 100.0, upstreams.routing)
    assert second.cooldown_until == 100.0 + 30  # cooldown_s when the upstream does not say
    assert target.breaker.consecutive == 0 and target.breaker.state == "closed"


def test_a_rejected_key_is_disabled(upstreams: Upstreams) -> None:
    target = deployment(upstreams, "alias")
    key = target.keys.keys[0]
    assert record_failure(Failure(target, key, "bad_key", 401), "alias", 100.0, upstreams.routing) is False
    assert key.disabled and target.keys.choose(100.0) is target.keys.keys[1]


@pytest.mark.parametrize("kind", ["server", "transport", "timeout"])
def test_the_deployments_own_failures_open_its_breaker(upstreams: Upstreams, kind: str) -> None:
    target = deployment(upstreams, "alias")
    key = target.keys.keys[0]
    assert record_failure(Failure(target, key, kind), "alias", 100.0, upstreams.routing) is True  # type: ignore[arg-type]
    assert target.breaker.state == "closed"
    record_failure(Failure(target, key, kind), "alias", 101.0, upstreams.routing)  # type: ignore[arg-type]
    assert target.breaker.state == "open" and not target.breaker.allows(101.0)
    assert key.failures == 2 and not key.disabled and key.cooldown_until == 0.0


def test_the_model_is_renamed_only_where_a_deployment_knows_it_by_another_name(upstreams: Upstreams) -> None:
    body = b'{ "model" : "alias", "messages": [], "n": 1 }'
    renamed = call_for(upstreams, "alias", body).upstream_body(deployment(upstreams, "alias"))
    assert renamed == b'{"model":"upstream-name","messages":[],"n":1}'
    same = call_for(upstreams, "same", b'{"model": "same"}')
    assert same.upstream_body(deployment(upstreams, "same")) == b'{"model": "same"}'  # the caller's bytes


def test_the_usage_body_goes_only_to_providers_that_stream_usage(upstreams: Upstreams) -> None:
    call = call_for(upstreams, "same", b'{"model":"same","stream":true}')
    call.usage_body = b'{"model":"same","stream":true,"stream_options":{"include_usage":true}}'
    assert call.upstream_body(deployment(upstreams, "same")) == call.usage_body
    assert call.asked_for_usage(deployment(upstreams, "same"))
    azure = deployment(upstreams, "gpt-4o")  # stream_usage is off there
    assert not call.asked_for_usage(azure)
    assert call.upstream_body(azure) == b'{"model":"my-deployment","stream":true}'


def test_paths_and_headers_per_provider(upstreams: Upstreams) -> None:
    call = call_for(upstreams, "gpt-4o", b'{"model":"gpt-4o"}', query="x=1",
                    headers=[(b"authorization", b"Bearer caller-secret-key"), (b"x-custom", b"kept")])
    azure = deployment(upstreams, "gpt-4o")
    assert call.upstream_path(azure) == "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21&x=1"
    headers = call.upstream_headers(azure, azure.keys.keys[0])
    assert ("api-key", "azure-key-000000000001") in headers and ("x-custom", "kept") in headers
    assert ("x-client-request-id", "rid-1") in headers
    assert not any("caller-secret-key" in value for _, value in headers)
    openai = deployment(upstreams, "alias")
    assert call.upstream_path(openai) == "/chat/completions?x=1"


def test_a_projects_own_key_replaces_the_providers(upstreams: Upstreams) -> None:
    call = call_for(upstreams, "alias", b'{"model":"alias"}')
    call.own_keys = {"openai": "sk-project-own-00000001"}
    target = deployment(upstreams, "alias")
    headers = call.upstream_headers(target, target.keys.keys[0])
    assert ("authorization", "Bearer sk-project-own-00000001") in headers
    assert not any("sk-first" in value for _, value in headers)


def test_a_call_reads_routings_clock_and_counts_its_budget_from_it(upstreams: Upstreams) -> None:
    call = call_for(upstreams, "alias", b"{}")
    assert call.started_at == 100.0 and call.clock is upstreams.clock
    assert call.may_retry and call.max_attempts == upstreams.routing.max_attempts


def test_a_body_streaming_up_gets_one_attempt(upstreams: Upstreams) -> None:
    async def chunks():  # pragma: no cover - never iterated here
        yield b""

    body = chunks()
    call = call_for(upstreams, "alias", body)  # type: ignore[arg-type]
    assert not call.may_retry and call.max_attempts == 1
    assert call.upstream_body(deployment(upstreams, "alias")) is body  # passed on as it comes, not renamed
