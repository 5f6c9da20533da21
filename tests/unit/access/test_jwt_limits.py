"""A JWT caller gets its project's limits and budgets (access/jwt.py → access/admission.py → pipeline/settle.py):
refused past them, sharing them with the project's virtual tokens and across instances with Redis, its user claim
limited as an end user, its usage in the project's counts; in process, against a JWKS served on 127.0.0.1."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmgate.access.token_entry import TokenEntry
from tests.inprocess.access import TOKENS_ENV, chat, manage, new_token, project
from tests.inprocess.gateway import FakeClock, Gateway, Response
from tests.inprocess.upstream import DOUBLE_URL, double
from tests.jwks import Issuer
from tests.unit.access.test_jwt import jwt_config

TOKENS = 35  # the double's usage per chat completion
ENV = {**TOKENS_ENV, "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as running:
        yield running


def start(issuer: Issuer, **env: str) -> Gateway:
    return Gateway(config=jwt_config(issuer), upstream=double(), env={**ENV, **env})


@pytest.fixture
def gw(issuer: Issuer) -> Iterator[Gateway]:
    with start(issuer) as gateway:
        gateway.services.tokens.clock = gateway.wall = FakeClock(time.time())  # type: ignore[attr-defined]
        yield gateway


def statuses(gw: Gateway, callers: list[str], n: int) -> list[int]:
    return [chat(gw, callers[i % len(callers)]).status_code for i in range(n)]


def entry_of(gw: Gateway, token: str) -> TokenEntry:
    principal = gw.services.authenticator.authenticate(token, time.time())
    assert principal is not None and principal.kind == "jwt" and principal.entry is not None
    return principal.entry


def error_of(response: Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def test_a_jwt_caller_is_refused_past_its_projects_rpm(gw: Gateway, issuer: Issuer) -> None:
    p = project(gw, rpm_limit=2)
    token = issuer.token(llmgate_project=p["name"])
    assert statuses(gw, [token], 3) == [200, 200, 429]
    response = chat(gw, token)
    assert (response.status_code, error_of(response)["param"]) == (429, "project.rpm_limit")
    assert response.headers["x-ratelimit-limit-requests"] == "2" and int(response.headers["retry-after"]) >= 1
    other = issuer.token(llmgate_project=project(gw)["name"])  # another project's caller is not limited by it
    assert chat(gw, other).status_code == 200
    gw.wall.advance(61)  # type: ignore[attr-defined]
    assert chat(gw, token).status_code == 200


def test_a_jwt_caller_is_refused_past_its_projects_token_budget(gw: Gateway, issuer: Issuer) -> None:
    p = project(gw, budget_tokens=2 * TOKENS, budget_period="daily")
    token = issuer.token(llmgate_project=p["id"])
    assert statuses(gw, [token], 3) == [200, 200, 429]
    response = chat(gw, token)
    error = error_of(response)
    midnight = gw.wall.now - gw.wall.now % 86400 + 86400  # type: ignore[attr-defined]
    assert (response.status_code, error["code"], error["param"]) == (429, "token_budget_exhausted",
                                                                     "project.budget_tokens")
    assert p["name"] in error["message"] and "resets at" in error["message"]
    assert int(response.headers["retry-after"]) == math.ceil(midnight - gw.wall.now)  # type: ignore[attr-defined]
    assert response.headers["x-ratelimit-reset-tokens"]
    gw.wall.now = midnight  # type: ignore[attr-defined]
    assert chat(gw, token).status_code == 200


def test_jwt_and_virtual_token_callers_share_one_project_budget(gw: Gateway, issuer: Issuer) -> None:
    p = project(gw, budget_tokens=3 * TOKENS)
    secret, token = new_token(gw, p)["secret"], issuer.token(llmgate_project=p["name"])
    assert statuses(gw, [secret, token], 3) == [200, 200, 200]  # token, JWT, token: 105 tokens, all the budget
    assert [chat(gw, caller).status_code for caller in (token, secret)] == [429, 429]
    assert error_of(chat(gw, token))["param"] == error_of(chat(gw, secret))["param"] == "project.budget_tokens"


def test_a_per_user_limit_applies_to_the_jwts_user_claim(gw: Gateway, issuer: Issuer) -> None:
    p = project(gw, per_user={"budget_tokens": TOKENS})
    alice = issuer.token(llmgate_project=p["name"], email="alice@example.com")
    assert statuses(gw, [alice], 2) == [200, 429]  # settle paid alice's answer to alice's budget
    assert error_of(chat(gw, alice))["param"] == "user.budget_tokens"
    # the claim, not the body's `user`, names the end user
    body = {"model": "gpt-4o-mini", "messages": [], "user": "someone-else"}
    response = gw.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {alice}"}, auth=False)
    assert (response.status_code, error_of(response)["param"]) == (429, "user.budget_tokens")
    bob = issuer.token(llmgate_project=p["name"], email="bob@example.com")
    assert chat(gw, bob).status_code == 200


def test_jwt_traffic_is_counted_in_the_projects_budget_and_written_back(gw: Gateway, issuer: Issuer) -> None:
    p = project(gw, budget_tokens=10 * TOKENS, max_requests=10, budget_period="monthly")
    token = issuer.token(llmgate_project=p["name"])
    assert statuses(gw, [token], 2) == [200, 200]
    shown = manage(gw, "GET", f"/projects/{p['id']}").json()["budget"]
    assert shown["tokens"] == {"used": 2 * TOKENS, "limit": 10 * TOKENS}
    assert shown["requests"] == {"used": 2, "limit": 10} and shown["period"] == "monthly"
    store = gw.services.store
    gw.run(gw.services.tokens.flush())  # the project's deltas go to the store; no token row for a JWT caller
    stored = gw.run(store.get_project(p["id"]))
    assert stored is not None and (stored.request_count, stored.tokens_used) == (2, 2 * TOKENS)
    assert gw.run(store.list_tokens(project_id=p["id"])) == []


def test_a_project_without_limits_costs_its_jwt_callers_nothing_extra(gw: Gateway, issuer: Issuer) -> None:
    p = project(gw)
    token = issuer.token(llmgate_project=p["name"])
    assert chat(gw, token).status_code == 200
    entry = entry_of(gw, token)
    assert (entry.has_extras, entry.counts_tokens, entry.project) == (False, False, None)
    assert p["id"] not in gw.services.tokens.projects


def test_a_project_limit_set_or_lifted_reaches_its_jwt_callers(gw: Gateway, issuer: Issuer) -> None:
    p = project(gw)
    token = issuer.token(llmgate_project=p["name"])
    assert chat(gw, token).status_code == 200
    assert manage(gw, "PATCH", f"/projects/{p['id']}", json={"rpm_limit": 1}).status_code == 200
    assert statuses(gw, [token], 2) == [200, 429]
    assert entry_of(gw, token).has_extras
    assert manage(gw, "PATCH", f"/projects/{p['id']}", json={"rpm_limit": None}).status_code == 200
    assert statuses(gw, [token], 2) == [200, 200]
    assert not entry_of(gw, token).has_extras


def test_a_jwt_callers_project_budget_is_shared_across_gateways_with_redis(issuer: Issuer, redis_url: str,
                                                                         tmp_path: Path) -> None:
    env = {"LLMGATE_REDIS_URL": redis_url, "LLMGATE_DATA_DIR": str(tmp_path)}  # one store, one Redis
    with start(issuer, **env) as one, start(issuer, **env) as two:
        counted_tokens = [_count_token_ids(gw) for gw in (one, two)]
        p = project(one, budget_tokens=3 * TOKENS)
        token = issuer.token(llmgate_project=p["name"])
        secret = new_token(one, p)["secret"]
        assert [chat(gw, token).status_code for gw in (one, two)] == [200, 200]
        assert chat(two, secret).status_code == 200  # a token of the project pays into the same budget
        response = chat(one, token)
        assert (response.status_code, error_of(response)["param"]) == (429, "project.budget_tokens")
        assert chat(two, token).status_code == 429
        assert counted_tokens[1] and "" not in counted_tokens[0] + counted_tokens[1]  # nothing counted for token ""


def _count_token_ids(gw: Gateway) -> list[str]:
    """The token ids this gateway counts in Redis from now on (a spy around the real call)."""
    shared = gw.services.tokens.shared
    assert shared is not None
    seen: list[str] = []
    real = shared.admit

    async def admit(token_id: str, *args: Any) -> Any:
        seen.append(token_id)
        return await real(token_id, *args)

    shared.admit = admit  # type: ignore[method-assign,assignment]
    return seen
