"""Master-key authentication, and the access a new gateway starts with (in process, against the double)."""

import time
from pathlib import Path

import pytest

from llmgate.access.authenticate import MASTER, OPEN, Authenticator
from llmgate.errors import Unauthorized
from tests.inprocess.access import chat, until
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import DOUBLE_URL, double


def test_master_key_accepted() -> None:
    assert Authenticator("sk-master").authenticate("sk-master", 0.0) is MASTER


@pytest.mark.parametrize("credential", [None, "", "sk-maste", "sk-masterr", "SK-MASTER", "sk-mästér"])
def test_wrong_or_missing_key_rejected(credential: str | None) -> None:
    with pytest.raises(Unauthorized) as info:
        Authenticator("sk-master").authenticate(credential, 0.0)
    assert info.value.status == 401
    assert ("didn't provide" in info.value.message) is (not credential)


def test_open_when_no_master_key_no_management_token_and_no_tokens() -> None:
    assert Authenticator(None, has_tokens=False).authenticate(None, 0.0) is OPEN
    assert Authenticator("", has_tokens=False).authenticate("anything", 0.0) is OPEN
    assert Authenticator(None, has_tokens=False).access_mode() == "open: no master key, no management token, no tokens"


@pytest.mark.parametrize(("master", "management", "tokens", "why"), [
    (None, True, False, "closed: a management token"),
    (None, False, True, "closed: virtual tokens"),
    ("sk-master", True, True, "closed: a master key, a management token, virtual tokens"),
])
def test_closed_once_anything_tells_callers_apart(master: str | None, management: bool, tokens: bool,
                                                  why: str) -> None:
    auth = Authenticator(master, has_management_token=management, has_tokens=tokens)
    assert not auth.is_open and auth.access_mode() == why
    for credential, message in ((None, "didn't provide"), ("", "didn't provide"), ("sk-guess", "Incorrect")):
        with pytest.raises(Unauthorized) as info:
            auth.authenticate(credential, 0.0)
        assert info.value.status == 401 and message in info.value.message


def test_closed_until_the_store_has_answered() -> None:
    """Before the store says it holds no token, a gateway with no credential configured is not open."""
    assert not Authenticator(None).is_open


# The defaults a new user gets, in process: /v1 open only while nothing could tell callers apart.
MT = "mt-defaults-0123456789abcdef"
MANAGE = {"authorization": f"Bearer {MT}"}
MESSAGES = {"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def without_master_key(**extra: str) -> dict[str, str | None]:
    return {"LLMGATE_MASTER_KEY": None, "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1", **extra}


def issue_token(gw: Gateway) -> dict[str, str]:
    project = gw.post("/manage/projects", json={"name": f"p-{time.monotonic_ns()}"}, headers=MANAGE, auth=False)
    assert project.status_code == 201, project.text
    token = gw.post("/manage/tokens", json={"project_id": project.json()["id"]}, headers=MANAGE, auth=False)
    assert token.status_code == 201, token.text
    result: dict[str, str] = token.json()
    return result


def test_open_only_with_no_credential_of_any_kind() -> None:
    with Gateway(upstream=double(), env=without_master_key()) as gw:
        assert chat(gw, None).status_code == 200
        assert gw.get("/health", auth=False).json()["access"] == "open"
        assert "/v1 access: open: no master key, no management token, no tokens" in gw.logs()


def test_a_management_token_means_a_token_is_required() -> None:
    """The issue's case: tokens handed out on a gateway with no master key; a request with none is refused."""
    with Gateway(upstream=double(), env=without_master_key(LLMGATE_MANAGEMENT_TOKEN=MT)) as gw:
        assert "/v1 access: closed: a management token" in gw.logs()
        assert gw.get("/health", auth=False).json()["access"] == "closed"
        missing = chat(gw, None)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
        assert "didn't provide an API key" in missing.json()["error"]["message"]
        assert chat(gw, "sk-anything").status_code == 401
        anthropic = gw.post("/v1/messages", json=MESSAGES, headers={"anthropic-version": "2023-06-01"}, auth=False)
        assert anthropic.status_code == 401
        assert anthropic.json()["type"] == "error" and anthropic.json()["error"]["type"] == "authentication_error"
        models = gw.get("/v1/models", auth=False)
        assert models.status_code == 401
        token = issue_token(gw)
        assert chat(gw, token["secret"]).status_code == 200
        assert gw.request("DELETE", f"/manage/tokens/{token['id']}", headers=MANAGE, auth=False).status_code == 200
        assert chat(gw, token["secret"]).status_code == 401
        assert chat(gw, None).status_code == 401


def test_a_token_issued_elsewhere_closes_a_running_open_gateway(tmp_path: Path) -> None:
    """Two gateways on one store: the open one closes, without a restart, once the other issues a token."""
    data = str(tmp_path)
    open_env = without_master_key(LLMGATE_DATA_DIR=data, LLMGATE_USAGE_FLUSH_S="0.1")
    admin_env = without_master_key(LLMGATE_DATA_DIR=data, LLMGATE_MANAGEMENT_TOKEN=MT)
    with Gateway(upstream=double(), env=open_env) as open_gw, Gateway(upstream=double(), env=admin_env) as admin_gw:
        assert chat(open_gw, None).status_code == 200
        token = issue_token(admin_gw)
        # the open gateway's loop runs (its periodic check among its tasks) until it answers 401
        assert until(open_gw, lambda: chat(open_gw, None).status_code != 200), \
            "the open gateway did not close after a token was issued"
        assert chat(open_gw, None).status_code == 401
        assert chat(open_gw, token["secret"]).status_code == 200
        assert open_gw.get("/health", auth=False).json()["access"] == "closed"
        assert "/v1 access: a virtual token exists; closed from now on" in open_gw.logs()


def test_a_known_token_closes_an_open_gateway_at_once(tmp_path: Path) -> None:
    """A request carrying a token the store holds closes /v1 before the next check comes round."""
    data = str(tmp_path)
    open_env = without_master_key(LLMGATE_DATA_DIR=data, LLMGATE_USAGE_FLUSH_S="3600")
    admin_env = without_master_key(LLMGATE_DATA_DIR=data, LLMGATE_MANAGEMENT_TOKEN=MT)
    with Gateway(upstream=double(), env=open_env) as open_gw, Gateway(upstream=double(), env=admin_env) as admin_gw:
        token = issue_token(admin_gw)
        assert chat(open_gw, token["secret"]).status_code == 200
        assert chat(open_gw, None).status_code == 401
