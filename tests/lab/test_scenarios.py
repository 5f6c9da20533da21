"""How each scenario configures llmgate."""

from __future__ import annotations

import tomllib
from functools import partial
from pathlib import Path

import pytest

from benchmarks.lab.scenarios import MASTER_KEY, build_targets, create_token, gateway_cmd, llmgate_target

UP = "http://127.0.0.1:18080"


def test_targets_in_order_direct_scenarios_externals() -> None:
    targets = build_targets(["passthrough", "token"], UP, ["litellm=http://127.0.0.1:4000/"], "sk-1", None)
    assert [(t.name, t.kind) for t in targets] == [("direct", "direct"), ("llmgate/passthrough", "spawn"),
                                                    ("llmgate/token", "spawn"), ("litellm", "external")]
    assert targets[0].url == UP and targets[3].url == "http://127.0.0.1:4000" and targets[3].key == "sk-1"
    with pytest.raises(ValueError, match="NAME=URL"):
        build_targets([], UP, ["no-url"], "k", None)


def test_passthrough_uses_the_master_key_against_the_double(tmp_path: Path) -> None:
    t = llmgate_target("passthrough", UP, tmp_path, None, {"X": "1"})
    assert t.key == MASTER_KEY and t.prepare is None
    assert t.env["OPENAI_BASE_URL"] == f"{UP}/v1" and t.env["LLMGATE_MASTER_KEY"] == MASTER_KEY and t.env["X"] == "1"
    assert "LLMGATE_CONFIG" not in t.env and "LLMGATE_USAGE_LOG" not in t.env


def test_routing_writes_an_alias_over_two_deployments_with_three_keys_each(tmp_path: Path) -> None:
    t = llmgate_target("routing", UP, tmp_path, None, {})
    config = tomllib.loads(Path(t.env["LLMGATE_CONFIG"]).read_text())
    assert [p["base_url"] for p in config["providers"]] == [f"{UP}/v1", f"{UP}/second/v1"]
    assert all(len(p["api_keys"]) == 3 for p in config["providers"])
    assert config["models"][0]["name"] == "gpt-4o-mini" and len(config["models"][0]["deployments"]) == 2


def test_token_and_usage_log_scenarios(tmp_path: Path) -> None:
    token = llmgate_target("token", UP, tmp_path, None, {})
    assert token.env["LLMGATE_MANAGEMENT_TOKEN"] and token.prepare is create_token
    budget = llmgate_target("token-budget", UP, tmp_path, None, {})
    assert budget.env["LLMGATE_MANAGEMENT_TOKEN"] and isinstance(budget.prepare, partial)
    assert budget.prepare.func is create_token and budget.prepare.keywords == {"limits": {"budget_tokens": 10**15}}
    assert llmgate_target("no-usage-log", UP, tmp_path, None, {}).env["LLMGATE_USAGE_LOG"] == "0"
    jwt = llmgate_target("jwt", UP, tmp_path, None, {})
    assert "[[auth.jwt]]" in Path(jwt.env["LLMGATE_CONFIG"]).read_text() and jwt.prepare is not None
    with pytest.raises(ValueError, match="unknown scenario"):
        llmgate_target("nope", UP, tmp_path, None, {})


def test_gateway_command_is_serve_or_an_app_factory() -> None:
    assert gateway_cmd(None)[1:4] == ["-m", "llmgate", "serve"]
    cmd = gateway_cmd("pkg.mod:factory")
    assert cmd[1:3] == ["-m", "granian"] and "--factory" in cmd and cmd[-1] == "pkg.mod:factory"
