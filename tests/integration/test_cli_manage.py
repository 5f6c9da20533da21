"""`llmgate project|token|audit ...` against a running gateway, as a user would type them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from llmgate.store.migrations import migrations
from tests.servers import Gateway, gateway_env, start_gateway

MT = "mt-cli-0123456789"


@pytest.fixture(scope="module")
def gw(upstream: str) -> Iterator[Gateway]:
    with start_gateway(gateway_env(upstream, LLMGATE_MANAGEMENT_TOKEN=MT)) as gateway:
        yield gateway


def cli(gw: Gateway, *args: str, token: str | None = MT) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "LLMGATE_URL": gw.url, **({"LLMGATE_MANAGEMENT_TOKEN": token} if token else {})}
    return subprocess.run([sys.executable, "-m", "llmgate", *args], env=env, capture_output=True, text=True,
                          timeout=30)


def test_project_and_token_lifecycle(gw: Gateway) -> None:
    made = cli(gw, "project", "create", "cli-app", "--model", "gpt-4o-mini", "--json")
    assert made.returncode == 0, made.stderr
    project = json.loads(made.stdout)
    table = cli(gw, "project", "list")
    assert table.returncode == 0 and "cli-app" in table.stdout and table.stdout.startswith("ID")
    created = cli(gw, "token", "create", "--project", project["id"], "--rpm", "10", "--expires-in", "1h")
    assert created.returncode == 0 and "shown once" in created.stdout
    secret = created.stdout.rsplit(": ", 1)[1].strip()
    assert httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "gpt-4o-mini"},
                      headers={"authorization": f"Bearer {secret}"}).status_code == 200
    tokens = json.loads(cli(gw, "token", "list", "--project", project["id"], "--json").stdout)
    assert [t["rpm_limit"] for t in tokens] == [10]
    rotated = json.loads(cli(gw, "token", "rotate", tokens[0]["id"], "--json").stdout)
    assert rotated["secret"] != secret
    assert cli(gw, "token", "revoke", tokens[0]["id"]).returncode == 0
    assert json.loads(cli(gw, "token", "get", tokens[0]["id"], "--json").stdout)["is_active"] is False
    assert cli(gw, "project", "update", project["id"], "--description", "d", "--json").returncode == 0
    assert cli(gw, "project", "delete", project["id"]).returncode == 0


def test_audit_in_the_terminal(gw: Gateway) -> None:
    project = json.loads(cli(gw, "project", "create", "audit-cli", "--json").stdout)
    assert cli(gw, "project", "update", project["id"], "--name", "audit-cli-2").returncode == 0
    table = cli(gw, "audit", "--target", project["id"])
    assert table.returncode == 0 and table.stdout.startswith("ID")
    lines = table.stdout.splitlines()
    assert "project.update" in lines[1] and "management_token" in lines[1]
    assert "name: audit-cli → audit-cli-2" in lines[1] and "project.create" in lines[2]
    page = json.loads(cli(gw, "audit", "--action", "project.update", "--limit", "1", "--json").stdout)
    assert [e["target"] for e in page["data"]] == [project["id"]]
    paged = cli(gw, "audit", "--limit", "1")
    assert "more entries: --cursor" in paged.stderr


def test_budgets_periods_and_queue_ms_from_the_cli(gw: Gateway) -> None:
    made = cli(gw, "project", "create", "cli-budgets", "--budget-tokens", "1000", "--budget-period", "daily",
               "--rpm", "30", "--queue-ms", "1500", "--alert-threshold", "0.8", "--per-user", '{"rpm_limit": 3}',
               "--json")
    assert made.returncode == 0, made.stderr
    project = json.loads(made.stdout)
    assert (project["budget_tokens"], project["budget_period"], project["rpm_limit"], project["queue_ms"],
            project["alert_threshold"], project["per_user"]) == (1000, "daily", 30, 1500, 0.8, {"rpm_limit": 3})
    assert project["budget"]["resets_at"] is not None
    token = json.loads(cli(gw, "token", "create", "--project", project["id"], "--max-requests", "5",
                           "--budget-period", "12h", "--queue-ms", "250", "--json").stdout)
    assert (token["budget_period"], token["queue_ms"], token["max_requests"]) == ("12h", 250, 5)
    bad = cli(gw, "project", "update", project["id"], "--budget-period", "fortnightly")
    assert bad.returncode == 1 and "budget_period" in bad.stderr
    usage = cli(gw, "usage", "--group-by", "user")
    assert usage.returncode == 0, usage.stderr


def test_errors_have_clear_messages_and_exit_codes(gw: Gateway) -> None:
    missing = cli(gw, "project", "get", "proj_nope")
    assert missing.returncode == 1 and "404" in missing.stderr and "proj_nope" in missing.stderr
    no_token = cli(gw, "project", "list", token=None)
    assert no_token.returncode == 2 and "LLMGATE_MANAGEMENT_TOKEN" in no_token.stderr
    wrong = cli(gw, "project", "list", token="wrong")
    assert wrong.returncode == 1 and "401" in wrong.stderr
    bad = cli(gw, "token", "create", "--project", "p", "--expires-in", "soon")
    assert bad.returncode == 2 and "--expires-in" in bad.stderr
    unreachable = cli(gw, "project", "list", "--url", "http://127.0.0.1:9")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr


def test_db_upgrade(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"PATH": "/usr/bin:/bin", "LLMGATE_DATA_DIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-m", "llmgate", "db", "upgrade"], env=env, capture_output=True,
                           text=True, timeout=30)
    versions = [version for version, _ in migrations("sqlite")]  # every migration file, however many there are
    assert first.returncode == 0 and f"applied migrations {versions}" in first.stdout and 6 in versions
    again = subprocess.run([sys.executable, "-m", "llmgate", "db", "upgrade"], env=env, capture_output=True,
                           text=True, timeout=30)
    assert again.returncode == 0 and "up to date" in again.stdout
