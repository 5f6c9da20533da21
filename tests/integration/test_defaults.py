"""The defaults a new user gets from `llmgate serve`: usage counted, and saying so (who may call /v1 by default:
tests/unit/access/test_authenticate.py)."""

from __future__ import annotations

import subprocess
import sys
import time

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
