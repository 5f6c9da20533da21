"""End users: the body's `user` field or the end-user header, recorded in usage and limited per user within a
project (through the API or `[projects.<id>.per_user]`); `GET /manage/usage?group_by=user`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.inprocess.access import TOKENS_ENV, manage, new_token, until
from tests.inprocess.gateway import Gateway, Response
from tests.inprocess.upstream import DOUBLE_URL, double

ENV = {**TOKENS_ENV, "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}


@pytest.fixture
def gw() -> Iterator[Gateway]:
    with Gateway(upstream=double(), env=ENV) as gateway:
        yield gateway


def chat_as(gw: Gateway, secret: str, user: str | None = None, header: str | None = None) -> Response:
    body: dict[str, Any] = {"model": "m", "messages": []}
    if user is not None:
        body["user"] = user
    headers = {"authorization": f"Bearer {secret}"}
    if header is not None:
        headers["x-llmgate-user"] = header
    return gw.post("/v1/chat/completions", json=body, headers=headers, auth=False)


def test_per_user_limits_through_the_api(gw: Gateway) -> None:
    project = manage(gw, "POST", "/projects", json={"name": "users", "per_user": {"max_requests": 2}}).json()
    assert project["per_user"] == {"max_requests": 2}
    secret = new_token(gw, project)["secret"]
    assert [chat_as(gw, secret, user="alice").status_code for _ in range(3)] == [200, 200, 429]
    error = chat_as(gw, secret, user="alice").json()["error"]
    assert error["param"] == "user.max_requests" and "end user" in error["message"]
    assert chat_as(gw, secret, header="bob").status_code == 200  # another end user, named by the header
    assert chat_as(gw, secret, header="alice").status_code == 429  # the header names the same alice
    assert chat_as(gw, secret).status_code == 200  # no end user named: the project's limits only


def test_per_user_limits_from_the_config_by_project_name() -> None:
    config = "[projects.team-a.per_user]\nrpm_limit = 1\n"
    with Gateway(config, upstream=double(), env=ENV) as gw:
        project = manage(gw, "POST", "/projects", json={"name": "team-a"}).json()
        secret = new_token(gw, project)["secret"]
        assert [chat_as(gw, secret, user="carol").status_code for _ in range(2)] == [200, 429]
        response = chat_as(gw, secret, user="carol")
        assert response.json()["error"]["param"] == "user.rpm_limit" and response.headers["retry-after"]
        assert chat_as(gw, secret, user="dave").status_code == 200


def test_usage_groups_by_end_user(gw: Gateway) -> None:
    secret = new_token(gw)["secret"]
    for user, header in (("alice", None), ("alice", None), (None, "bob"), ("erin", "ignored-when-body-says")):
        assert chat_as(gw, secret, user=user, header=header).status_code == 200
    gw.post("/v1/chat/completions", json={"model": "m", "messages": []})  # the master key, no end user

    def groups() -> dict[Any, int]:
        data = manage(gw, "GET", "/usage?group_by=user")
        return {g["group"]: g["requests"] for g in data.json()["data"]}

    assert until(gw, lambda: sum(groups().values()) == 5)
    assert groups() == {None: 1, "alice": 2, "bob": 1, "erin": 1}
    only = manage(gw, "GET", "/usage?user=alice").json()["data"]
    assert only[0]["requests"] == 2
    assert manage(gw, "GET", "/usage?group_by=users").status_code == 400


def test_with_the_usage_log_off_the_header_still_names_the_end_user_for_limits() -> None:
    with Gateway(upstream=double(), env={**ENV, "LLMGATE_USAGE_LOG": "0"}) as gw:
        project = manage(gw, "POST", "/projects", json={"name": "quiet", "per_user": {"max_requests": 1}}).json()
        secret = new_token(gw, project)["secret"]
        assert [chat_as(gw, secret, header="frank").status_code for _ in range(2)] == [200, 429]
        assert chat_as(gw, secret, header="gina").status_code == 200


def test_an_end_user_named_by_the_header_pays_its_answers_to_its_own_budget(gw: Gateway) -> None:
    """The tokens an answer used go to the end user admission counted the request for, the header's too."""
    project = manage(gw, "POST", "/projects", json={"name": "paying", "per_user": {"budget_tokens": 35}}).json()
    secret = new_token(gw, project)["secret"]
    assert [chat_as(gw, secret, header="hank").status_code for _ in range(2)] == [200, 429]
    assert chat_as(gw, secret, header="hank").json()["error"]["param"] == "user.budget_tokens"
    assert chat_as(gw, secret, header="ivy").status_code == 200
