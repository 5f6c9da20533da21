"""The defaults a new user gets: /v1 open only while nothing could tell callers apart, and usage counted."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import Gateway, gateway_env, start_gateway

MT = "mt-defaults-0123456789abcdef"
MANAGE = {"authorization": f"Bearer {MT}"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def env_without_master_key(upstream: str, **extra: str) -> dict[str, str]:
    env = gateway_env(upstream, **extra)
    del env["LLMGATE_MASTER_KEY"]
    return env


def issue_token(gw: Gateway) -> dict[str, str]:
    project = httpx.post(f"{gw.url}/manage/projects", json={"name": f"p-{time.monotonic_ns()}"}, headers=MANAGE)
    assert project.status_code == 201, project.text
    token = httpx.post(f"{gw.url}/manage/tokens", json={"project_id": project.json()["id"]}, headers=MANAGE)
    assert token.status_code == 201, token.text
    result: dict[str, str] = token.json()
    return result


def chat(gw: Gateway, secret: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}"} if secret else {}
    return httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT, headers=headers, timeout=10)


def test_open_only_with_no_credential_of_any_kind(upstream: str) -> None:
    with start_gateway(env_without_master_key(upstream)) as gw:
        assert chat(gw).status_code == 200
        assert httpx.get(f"{gw.url}/health").json()["access"] == "open"
        assert "/v1 access: open: no master key, no management token, no tokens" in gw.logs()


def test_a_management_token_means_a_token_is_required(upstream: str) -> None:
    """The issue's case: tokens handed out on a gateway with no master key; a request with none is refused."""
    with start_gateway(env_without_master_key(upstream, LLMGATE_MANAGEMENT_TOKEN=MT)) as gw:
        assert "/v1 access: closed: a management token" in gw.logs()
        assert httpx.get(f"{gw.url}/health").json()["access"] == "closed"
        missing = chat(gw)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
        assert "didn't provide an API key" in missing.json()["error"]["message"]
        assert chat(gw, "sk-anything").status_code == 401
        anthropic = httpx.post(f"{gw.url}/v1/messages", json=MESSAGES, headers={"anthropic-version": "2023-06-01"})
        assert anthropic.status_code == 401
        assert anthropic.json()["type"] == "error" and anthropic.json()["error"]["type"] == "authentication_error"
        models = httpx.get(f"{gw.url}/v1/models")
        assert models.status_code == 401
        token = issue_token(gw)
        assert chat(gw, token["secret"]).status_code == 200
        httpx.delete(f"{gw.url}/manage/tokens/{token['id']}", headers=MANAGE).raise_for_status()
        assert chat(gw, token["secret"]).status_code == 401
        assert chat(gw).status_code == 401


def test_a_token_issued_elsewhere_closes_a_running_open_gateway(upstream: str, tmp_path: Path) -> None:
    """Two gateways on one store: the open one closes, without a restart, once the other issues a token."""
    data = str(tmp_path)
    open_env = env_without_master_key(upstream, LLMGATE_DATA_DIR=data, LLMGATE_USAGE_FLUSH_S="0.1")
    admin_env = env_without_master_key(upstream, LLMGATE_DATA_DIR=data, LLMGATE_MANAGEMENT_TOKEN=MT)
    with start_gateway(open_env) as open_gw, start_gateway(admin_env) as admin_gw:
        assert chat(open_gw).status_code == 200
        token = issue_token(admin_gw)
        deadline = time.monotonic() + 5
        while chat(open_gw).status_code == 200:
            assert time.monotonic() < deadline, "the open gateway did not close after a token was issued"
            time.sleep(0.05)
        assert chat(open_gw).status_code == 401
        assert chat(open_gw, token["secret"]).status_code == 200
        assert httpx.get(f"{open_gw.url}/health").json()["access"] == "closed"
        assert "/v1 access: a virtual token exists; closed from now on" in open_gw.logs()


def test_a_known_token_closes_an_open_gateway_at_once(upstream: str, tmp_path: Path) -> None:
    """A request carrying a token the store holds closes /v1 before the next check comes round."""
    data = str(tmp_path)
    open_env = env_without_master_key(upstream, LLMGATE_DATA_DIR=data, LLMGATE_USAGE_FLUSH_S="3600")
    admin_env = env_without_master_key(upstream, LLMGATE_DATA_DIR=data, LLMGATE_MANAGEMENT_TOKEN=MT)
    with start_gateway(open_env) as open_gw, start_gateway(admin_env) as admin_gw:
        token = issue_token(admin_gw)
        assert chat(open_gw, token["secret"]).status_code == 200
        assert chat(open_gw).status_code == 401


def test_usage_is_logged_by_default(upstream: str) -> None:
    with start_gateway(gateway_env(upstream, LLMGATE_MANAGEMENT_TOKEN=MT, LLMGATE_USAGE_FLUSH_S="0.05")) as gw:
        assert "usage log: on" in gw.logs()
        token = issue_token(gw)
        assert chat(gw, token["secret"]).status_code == 200
        deadline = time.monotonic() + 5
        while True:
            summary = httpx.get(f"{gw.url}/manage/usage", headers=MANAGE).json()
            if summary["data"] and summary["data"][0]["requests"] >= 1:
                break
            assert time.monotonic() < deadline, summary
            time.sleep(0.05)
        assert summary["recording"] is True and summary["note"] is None


def test_usage_log_off_says_so(upstream: str) -> None:
    env = gateway_env(upstream, LLMGATE_MANAGEMENT_TOKEN=MT, LLMGATE_USAGE_LOG="0")
    with start_gateway(env) as gw:
        assert "usage log: off" in gw.logs()
        summary = httpx.get(f"{gw.url}/manage/usage", headers=MANAGE).json()
        assert summary["recording"] is False and "LLMGATE_USAGE_LOG=0" in summary["note"]
        assert summary["data"] == []
        cli_env = {"PATH": "/usr/bin:/bin", "LLMGATE_URL": gw.url, "LLMGATE_MANAGEMENT_TOKEN": MT}
        result = subprocess.run([sys.executable, "-m", "llmgate", "usage"], env=cli_env, capture_output=True,
                                text=True, timeout=30)
        assert result.returncode == 1
        assert result.stdout == ""  # no empty table that reads as "no traffic"
        assert "usage log is off" in result.stderr and "LLMGATE_USAGE_LOG=0" in result.stderr
