"""GET /manage/audit (admin/audit.py) and what the management actions record: who, from where, what, before →
after, never a secret; filtered and paginated; read-only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.inprocess.access import TOKENS_ENV, manage
from tests.inprocess.gateway import Gateway

KEY = "sk-project-upstream-key-0123456789"


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with Gateway(env=TOKENS_ENV) as gateway:
        yield gateway


def trail(gw: Gateway, query: str = "") -> list[dict[str, Any]]:
    response = manage(gw, "GET", f"/audit{query}")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["data"]
    return entries


def test_every_project_and_token_action_is_recorded_without_secrets(gw: Gateway) -> None:
    project = manage(gw, "POST", "/projects", json={"name": "audited", "allowed_models": ["m"],
                                                    "upstream_keys": {"openai": KEY}}).json()
    manage(gw, "PATCH", f"/projects/{project['id']}", json={"name": "audited-2", "upstream_keys": {"openai": KEY}})
    token = manage(gw, "POST", "/tokens", json={"project_id": project["id"], "rpm_limit": 10}).json()
    manage(gw, "PATCH", f"/tokens/{token['id']}", json={"rpm_limit": 20, "max_requests": 5})
    rotated = manage(gw, "POST", f"/tokens/{token['id']}/rotate").json()
    manage(gw, "DELETE", f"/tokens/{token['id']}")
    manage(gw, "DELETE", f"/projects/{project['id']}")

    entries = [e for e in trail(gw) if e["target"] in (project["id"], token["id"])][::-1]
    assert [e["action"] for e in entries] == ["project.create", "project.update", "token.create", "token.update",
                                              "token.rotate", "token.revoke", "project.delete"]
    assert {(e["actor"], e["client"]) for e in entries} == {("management_token", "127.0.0.1")}
    create, update, token_create, token_update = entries[:4]
    assert create["changes"]["name"] == {"after": "audited"}
    assert create["changes"]["upstream_keys"] == {"after": {"openai": "****"}}
    assert update["changes"]["name"] == {"before": "audited", "after": "audited-2"}
    assert update["changes"]["upstream_keys"]["after"] == {"openai": "**** (replaced)"}
    assert token_create["changes"]["rpm_limit"] == {"after": 10}
    assert token_create["changes"]["project_id"] == {"after": project["id"]}
    assert token_update["changes"] == {"max_requests": {"before": None, "after": 5},
                                       "rpm_limit": {"before": 10, "after": 20}}
    assert entries[-1]["changes"] == {"name": {"before": "audited-2"}, "revoked_tokens": {"after": 1}}
    text = json.dumps(entries)
    for secret in (KEY, token["secret"], rotated["secret"], token["prefix"], rotated["prefix"]):
        assert secret not in text


def test_filters_and_pages(gw: Gateway) -> None:
    ids = [manage(gw, "POST", "/projects", json={"name": f"paged-{i}"}).json()["id"] for i in range(5)]
    creates = trail(gw, "?action=project.create&limit=1000")
    assert [e["target"] for e in creates][:5] == ids[::-1]
    assert [e["target"] for e in trail(gw, f"?target={ids[2]}")] == [ids[2]]
    assert trail(gw, "?actor=jwt:nobody") == []
    first = manage(gw, "GET", "/audit?action=project.create&limit=2").json()
    second = manage(gw, "GET", f"/audit?action=project.create&limit=2&cursor={first['next_cursor']}").json()
    assert [e["target"] for e in first["data"] + second["data"]] == ids[::-1][:4]
    at = creates[0]["at"]
    assert [e["target"] for e in trail(gw, f"?action=project.create&from={at}")] == [ids[-1]]
    assert ids[-1] not in [e["target"] for e in trail(gw, f"?action=project.create&to={at}")]
    last = manage(gw, "GET", "/audit?limit=1000").json()
    assert last["next_cursor"] is None


def test_bad_queries_say_which_parameter(gw: Gateway) -> None:
    response = manage(gw, "GET", "/audit?from=yesterday")
    assert response.status_code == 400 and response.json()["error"]["param"] == "from"
    response = manage(gw, "GET", "/audit?limit=0")
    assert response.status_code == 422 and response.json()["error"]["param"] == "limit"


def test_no_route_changes_the_trail(gw: Gateway) -> None:
    for method in ("DELETE", "POST", "PATCH", "PUT"):
        assert manage(gw, method, "/audit").status_code == 405, method
    assert gw.get("/manage/audit", auth=False).status_code == 401


def test_config_reload_and_ui_sign_ins_are_recorded(tmp_path: Any) -> None:
    config = '[[providers]]\nname = "a"\nbase_url = "http://upstream.test/v1"\n'
    with Gateway(config=config, env=TOKENS_ENV) as gw:
        gw.write_config(config + '[[providers]]\nname = "b"\nbase_url = "http://upstream.test/v1"\n')
        assert gw.reload()
        gw.run(gw.services.audit.sign_in("ada", "10.0.0.9", succeeded=False))
        gw.run(gw.services.audit.sign_in("ada", "10.0.0.9", succeeded=True))
        entries = trail(gw)
    sign_in, failed, reload = entries[:3]
    assert (reload["action"], reload["actor"]) == ("config.reload", "system")
    assert reload["changes"] == {"providers": {"before": ["a"], "after": ["a", "b"]}}
    assert (failed["action"], failed["actor"], failed["client"], failed["target"]) == \
        ("ui.sign_in_failed", "admin:ada", "10.0.0.9", "ada")
    assert sign_in["action"] == "ui.sign_in"
