"""Project limits and budgets across the project's tokens, budget periods that reset, end users, soft limits and
queued rate limits, end to end through the in-process gateway with the token cache's clock set by hand."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.inprocess.access import TOKENS_ENV, chat, manage, new_token, project
from tests.inprocess.gateway import FakeClock, Gateway
from tests.inprocess.upstream import DOUBLE_URL, double

TOKENS = 35  # the double's usage per chat completion


@pytest.fixture
def gw() -> Iterator[Gateway]:
    with Gateway(upstream=double(), env={**TOKENS_ENV, "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}) as gateway:
        gateway.services.tokens.clock = gateway.wall = FakeClock(time.time())  # type: ignore[attr-defined]
        yield gateway


def statuses(gw: Gateway, secrets: list[str], n: int, **kw: Any) -> list[int]:
    return [chat(gw, secrets[i % len(secrets)], **kw).status_code for i in range(n)]


def test_project_max_requests_holds_across_its_tokens(gw: Gateway) -> None:
    p = project(gw, max_requests=3)
    a, b = new_token(gw, p)["secret"], new_token(gw, p)["secret"]
    assert statuses(gw, [a, b], 5) == [200, 200, 200, 429, 429]
    error = chat(gw, b).json()["error"]
    assert (error["code"], error["param"]) == ("request_limit_reached", "project.max_requests")
    assert p["name"] in error["message"]
    other = new_token(gw)["secret"]  # another project's token is not limited by it
    assert chat(gw, other).status_code == 200


def test_project_rpm_names_the_project_and_says_when_to_retry(gw: Gateway) -> None:
    p = project(gw, rpm_limit=2)
    a, b = new_token(gw, p)["secret"], new_token(gw, p)["secret"]
    assert statuses(gw, [a, b], 3) == [200, 200, 429]
    response = chat(gw, a)
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("requests", "project.rpm_limit")
    assert response.headers["x-ratelimit-limit-requests"] == "2" and int(response.headers["retry-after"]) >= 1
    gw.wall.advance(61)  # type: ignore[attr-defined]
    assert chat(gw, a).status_code == 200


def test_daily_project_token_budget_resets_at_midnight_utc(gw: Gateway) -> None:
    p = project(gw, budget_tokens=2 * TOKENS, budget_period="daily")
    secret = new_token(gw, p)["secret"]
    assert statuses(gw, [secret], 3) == [200, 200, 429]
    response = chat(gw, secret)
    error = response.json()["error"]
    midnight = gw.wall.now - gw.wall.now % 86400 + 86400  # type: ignore[attr-defined]
    assert (error["code"], error["param"]) == ("token_budget_exhausted", "project.budget_tokens")
    assert "daily budget of 70 tokens" in error["message"] and "resets at" in error["message"]
    assert int(response.headers["retry-after"]) == math.ceil(midnight - gw.wall.now)  # type: ignore[attr-defined]
    assert response.headers["x-ratelimit-reset-tokens"]
    shown = manage(gw, "GET", f"/projects/{p['id']}").json()["budget"]
    assert shown["tokens"] == {"used": 2 * TOKENS, "limit": 2 * TOKENS}
    assert shown["requests"]["used"] == 2 and shown["resets_at"] == midnight and shown["period"] == "daily"
    gw.wall.now = midnight  # type: ignore[attr-defined]
    assert chat(gw, secret).status_code == 200
    shown = manage(gw, "GET", f"/projects/{p['id']}").json()["budget"]
    assert shown["tokens"]["used"] == TOKENS and shown["resets_at"] == midnight + 86400


def test_project_counts_are_written_back_for_the_period(gw: Gateway) -> None:
    p = project(gw, budget_tokens=1000, budget_period="12h")
    secret = new_token(gw, p)["secret"]
    assert statuses(gw, [secret], 2) == [200, 200]
    gw.run(gw.services.tokens.flush())
    stored = gw.run(gw.services.store.get_project(p["id"]))
    assert stored is not None and (stored.request_count, stored.tokens_used) == (2, 2 * TOKENS)
    gw.wall.advance(12 * 3600 + 1)  # type: ignore[attr-defined]
    assert chat(gw, secret).status_code == 200
    gw.run(gw.services.tokens.flush())
    stored = gw.run(gw.services.store.get_project(p["id"]))
    assert stored is not None and (stored.request_count, stored.tokens_used) == (1, TOKENS)


def test_token_budget_period_resets_and_shows_resets_at(gw: Gateway) -> None:
    token = new_token(gw, max_requests=2, budget_period="weekly")
    assert token["resets_at"] is not None and token["budget_period"] == "weekly"
    assert statuses(gw, [token["secret"]], 3) == [200, 200, 429]
    error = chat(gw, token["secret"]).json()["error"]
    assert error["param"] == "token.max_requests" and "resets at" in error["message"]
    shown = manage(gw, "GET", f"/tokens/{token['id']}").json()
    assert shown["request_count"] == 2
    gw.wall.now = shown["resets_at"]  # type: ignore[attr-defined]
    assert chat(gw, token["secret"]).status_code == 200


def test_bad_budget_period_is_a_clear_422(gw: Gateway) -> None:
    response = manage(gw, "POST", "/projects", json={"name": "bad", "budget_period": "fortnightly"})
    assert response.status_code == 422 and "budget_period" in response.text and "daily" in response.text
    token = new_token(gw)
    response = manage(gw, "PATCH", f"/tokens/{token['id']}", json={"budget_period": "0d"})
    assert response.status_code == 422 and "budget_period" in response.text


def test_changing_project_limits_applies_at_once(gw: Gateway) -> None:
    p = project(gw)
    secret = new_token(gw, p)["secret"]
    assert statuses(gw, [secret], 2) == [200, 200]
    # a project is counted only while it has limits (else its tokens pay nothing for it): from now on
    assert manage(gw, "PATCH", f"/projects/{p['id']}", json={"max_requests": 1}).status_code == 200
    assert statuses(gw, [secret], 2) == [200, 429]
    assert manage(gw, "PATCH", f"/projects/{p['id']}", json={"max_requests": None}).status_code == 200
    assert chat(gw, secret).status_code == 200


def test_a_project_without_limits_keeps_its_tokens_on_the_short_path(gw: Gateway) -> None:
    secret = new_token(gw)["secret"]
    assert chat(gw, secret).status_code == 200
    entry = next(iter(gw.services.tokens.entries.values()))
    assert entry.project is None and not entry.has_extras
    assert not gw.services.tokens.projects
