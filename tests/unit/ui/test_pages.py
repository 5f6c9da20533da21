"""The admin UI in process (ui/router.py, auth.py and the pages): sign-in, the session cookie's flags, CSRF,
basic auth, the throttle, and forms whose errors come from the management API's own checks."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.inprocess.gateway import Gateway

TOKEN = "mgmt-token-0123456789abcdef"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def errors_of(html: str) -> dict[str, str]:
    """Field name → the error shown next to it."""
    return dict(re.findall(r'<p class="error" id="f-([a-z_]+)-error">([^<]+)</p>', html))


@pytest.fixture
def gw() -> Iterator[Gateway]:
    with Gateway(env={"LLMGATE_MANAGEMENT_TOKEN": TOKEN, "LLMGATE_ADMIN_USER": "ops",
                      "LLMGATE_ADMIN_PASSWORD": "correct horse battery"}) as gateway:
        yield gateway


def signed_in(gw: Gateway) -> httpx.Client:
    client = gw.http
    assert client.post("/ui/sign-in", data={"token": TOKEN, "next": "/ui/tokens"}).status_code == 303
    return client


def test_the_ui_is_off_without_the_management_api() -> None:
    with Gateway() as gateway:
        assert gateway.http.get("/ui/").status_code == 404


def test_signing_in_sets_a_signed_httponly_strict_cookie_and_signing_out_drops_it() -> None:
    with Gateway(env={"LLMGATE_MANAGEMENT_TOKEN": TOKEN}) as gw:
        client = gw.http
        refused = client.get("/ui/projects")
        assert refused.status_code == 303 and refused.headers["location"] == "/ui/sign-in?next=/ui/projects"
        answer = client.post("/ui/sign-in", data={"token": TOKEN, "next": "/ui/projects"})
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/projects"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("llmgate_ui=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Max-Age=28800" in cookie and "Path=/ui" in cookie and "Secure" not in cookie  # no TLS here
        page = client.get("/ui/projects")
        assert page.status_code == 200 and "<h1>Projects</h1>" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        client.get("/ui/sign-out")
        assert client.get("/ui/projects").status_code == 303


def test_the_cookie_is_secure_behind_tls() -> None:
    with Gateway(env={"LLMGATE_MANAGEMENT_TOKEN": TOKEN}) as gw:
        answer = gw.http.post("/ui/sign-in", data={"token": TOKEN}, headers={"x-forwarded-proto": "https"})
        assert "Secure" in answer.headers["set-cookie"]


def test_a_wrong_token_shows_an_error_next_to_the_field_and_repeated_failures_wait(gw: Gateway) -> None:
    client = gw.http
    for _ in range(5):
        answer = client.post("/ui/sign-in", data={"token": "wrong"})
        assert answer.status_code == 401
        assert errors_of(answer.text) == {"token": "Incorrect management token."}
    assert "ui.sign_in_failed as management_token from 127.0.0.1" in gw.logs()
    throttled = client.post("/ui/sign-in", data={"token": TOKEN})  # even the right one, while it waits
    assert throttled.status_code == 429 and int(throttled.headers.get("retry-after", "60")) > 0
    assert "Too many failed sign-ins" in errors_of(throttled.text)["token"]


def test_a_state_changing_form_without_its_csrf_token_is_refused(gw: Gateway) -> None:
    client = signed_in(gw)
    csrf = csrf_of(client.get("/ui/projects/new").text)
    assert client.post("/ui/projects", data={"name": "a"}).status_code == 403
    assert client.post("/ui/projects", data={"name": "a", "csrf": "forged"}).status_code == 403
    assert gw.get("/manage/projects", headers={"authorization": f"Bearer {TOKEN}"}).json() == []
    assert client.post("/ui/projects", data={"name": "a", "csrf": csrf}).status_code == 303


def test_basic_auth_is_an_alternative(gw: Gateway) -> None:
    client = gw.http
    asked = client.get("/ui/")
    assert asked.status_code == 401 and asked.headers["www-authenticate"].startswith("Basic ")
    assert 'name="token"' in asked.text  # cancelling the browser's prompt leaves the sign-in form
    good = ("ops", "correct horse battery")
    page = client.get("/ui/config", auth=good)
    assert page.status_code == 200 and "<h1>Configuration</h1>" in page.text
    assert client.get("/ui/", auth=("ops", "wrong")).status_code == 401
    csrf = csrf_of(client.get("/ui/projects/new", auth=good).text)
    assert client.post("/ui/projects", data={"name": "b"}, auth=good).status_code == 403
    assert client.post("/ui/projects", data={"name": "b", "csrf": csrf}, auth=good).status_code == 303


def test_form_errors_come_from_the_management_api_next_to_their_field(gw: Gateway) -> None:
    client = signed_in(gw)
    csrf = csrf_of(client.get("/ui/projects/new").text)
    assert client.post("/ui/projects", data={"name": "team", "allowed_models": "m1", "csrf": csrf}).status_code == 303
    taken = client.post("/ui/projects", data={"name": "team", "csrf": csrf})
    assert taken.status_code == 409 and "already exists" in errors_of(taken.text)["name"]
    empty = client.post("/ui/projects", data={"name": "", "csrf": csrf})
    assert empty.status_code == 422 and errors_of(empty.text) == {"name": "Required."}
    project_id = re.search(r"/ui/projects/(proj_[0-9a-f]+)", client.get("/ui/projects").text).group(1)  # type: ignore[union-attr]
    bad = client.post("/ui/tokens", data={"project_id": project_id, "rpm_limit": "0", "csrf": csrf})
    assert bad.status_code == 422 and errors_of(bad.text) == {"rpm_limit": "Enter a whole number of at least 1."}
    outside = client.post("/ui/tokens", data={"project_id": project_id, "allowed_models": "m2", "csrf": csrf})
    assert outside.status_code == 400 and "not allowed" in errors_of(outside.text)["allowed_models"]
    created = client.post("/ui/tokens", data={"project_id": project_id, "max_requests": "5", "csrf": csrf})
    assert created.status_code == 201 and re.search(r'value="lg-[A-Za-z0-9_\-]{20,}"', created.text)


def test_usage_errors_name_the_filter_and_csv_exports_the_table(gw: Gateway) -> None:
    client = signed_in(gw)
    bad = client.get("/ui/usage?from=yesterday")
    assert bad.status_code == 400 and "Invalid `from`" in errors_of(bad.text)["from"]
    csv = client.get("/ui/usage.csv?group_by=model")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("group,requests,errors,")


def test_the_configuration_page_masks_every_secret(gw: Gateway) -> None:
    html = signed_in(gw).get("/ui/config").text
    for secret in (TOKEN, "correct horse battery", gw.env["LLMGATE_MASTER_KEY"], gw.env["OPENAI_API_KEY"]):
        assert secret not in html
    assert "****" in html


def test_a_safe_next_only(gw: Gateway) -> None:
    client = gw.http
    for target in ("https://evil.example/", "//evil.example/ui/", "/manage/projects"):
        answer = client.post("/ui/sign-in", data={"token": TOKEN, "next": target})
        assert answer.headers["location"] == "/ui/"


def new_project(client: httpx.Client, csrf: str, name: str) -> str:
    created = client.post("/ui/projects", data={"name": name, "csrf": csrf})
    assert created.status_code == 303
    return created.headers["location"].split("/")[-1].split("?")[0]


def new_token(client: httpx.Client, csrf: str, project_id: str) -> tuple[str, str]:
    """(token id, secret) of a token made through the form."""
    page = client.post("/ui/tokens", data={"project_id": project_id, "csrf": csrf})
    assert page.status_code == 201
    secret = re.search(r'value="(lg-[^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return re.search(r"/ui/tokens/(tok_[0-9a-f]+)", page.text).group(1), secret  # type: ignore[union-attr]


def test_deleting_a_project_says_how_many_tokens_it_revokes_then_revokes_them(gw: Gateway) -> None:
    client = signed_in(gw)
    csrf = csrf_of(client.get("/ui/projects/new").text)
    project_id = new_project(client, csrf, "doomed")
    tokens = [new_token(client, csrf, project_id) for _ in range(2)]
    confirm = client.get(f"/ui/projects/{project_id}/delete")
    assert "revokes its <strong>2 active tokens</strong>" in confirm.text
    assert 'type="submit" class="danger">Delete project</button>' in confirm.text
    assert client.post(f"/ui/projects/{project_id}/delete", data={"csrf": csrf}).status_code == 303
    for _, secret in tokens:
        assert gw.post("/v1/chat/completions", json={"model": "m", "messages": []},
                       headers={"authorization": f"Bearer {secret}"}).status_code == 401


def test_limits_change_and_rotation_shows_a_new_secret_once(gw: Gateway) -> None:
    client = signed_in(gw)
    csrf = csrf_of(client.get("/ui/projects/new").text)
    token_id, old = new_token(client, csrf, new_project(client, csrf, "rotating"))
    saved = client.post(f"/ui/tokens/{token_id}", data={"rpm_limit": "30", "max_requests": "7", "csrf": csrf})
    assert saved.status_code == 303
    manage = gw.get(f"/manage/tokens/{token_id}", headers={"authorization": f"Bearer {TOKEN}"}).json()
    assert (manage["rpm_limit"], manage["max_requests"]) == (30, 7)
    assert old not in client.get(f"/ui/tokens/{token_id}").text  # never shown again
    rotated = client.post(f"/ui/tokens/{token_id}/rotate", data={"csrf": csrf})
    new = re.search(r'value="(lg-[^"]+)"', rotated.text).group(1)  # type: ignore[union-attr]
    assert rotated.status_code == 200 and new != old
    headers = {"authorization": f"Bearer {old}"}
    assert gw.post("/v1/chat/completions", json={"model": "m", "messages": []}, headers=headers).status_code == 401


def test_htmx_requests_that_lost_their_session_are_sent_to_sign_in() -> None:
    with Gateway(env={"LLMGATE_MANAGEMENT_TOKEN": TOKEN}) as gw:
        answer = gw.http.get("/ui/deployments", headers={"hx-request": "true"})
        assert answer.status_code == 401 and answer.headers["hx-redirect"] == "/ui/sign-in?next=/ui/deployments"


def test_v1_still_goes_straight_to_the_pipeline_with_the_ui_on(gw: Gateway) -> None:
    """The UI is a Litestar router: /v1 keeps skipping Litestar (routes/front.py), so it pays nothing for it."""
    assert any(route.path.startswith("/ui") for route in gw.app.routes)
    assert gw.app.asgi_handler.__qualname__ == "v1_first.<locals>.front"


def test_ui_actions_and_sign_ins_are_in_the_audit_trail(gw: Gateway) -> None:
    gw.http.post("/ui/sign-in", data={"token": "wrong"})
    client = signed_in(gw)
    form = client.get("/ui/projects/new")
    created = client.post("/ui/projects", data={"csrf": csrf_of(form.text), "name": "audited", "allowed_models": ""})
    assert created.status_code == 303
    basic = gw.http.get("/ui/projects", auth=("ops", "wrong horse"))
    assert basic.status_code == 401
    audit = gw.http.get("/manage/audit", headers={"authorization": f"Bearer {TOKEN}"}).json()["data"]
    seen = [(entry["action"], entry["actor"], entry["target"]) for entry in reversed(audit)]
    project = next(target for action, _, target in seen if action == "project.create")
    assert seen == [("ui.sign_in_failed", "admin:management_token", "management_token"),
                    ("ui.sign_in", "admin:management_token", "management_token"),
                    ("project.create", "admin:management_token", project),
                    ("ui.sign_in_failed", "admin:ops", "ops")]  # the name as typed, never the password
    assert all(entry["client"] == "127.0.0.1" for entry in audit)
    assert "wrong horse" not in str(audit)
