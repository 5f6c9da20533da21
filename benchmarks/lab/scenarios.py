"""What the bench puts load on: the double directly, llmgate in each scenario, and any other endpoint by URL.

Scenarios (each a fresh llmgate in front of the same double; streaming is a request kind measured in all):

  passthrough   the master key with the defaults (the usage log on, to SQLite), no config file: one provider,
                every model passed through
  routing       an alias over two deployments with three keys each (TOML config)
  token         a virtual token (a project and a token created through /manage after start-up), unlimited
  token-budget  a virtual token with a (never reached) token budget, whose answers are metered for it too
  jwt           a JWT caller: an [[auth.jwt]] issuer whose JWKS this process serves (tests/jwks.py), one RS256
                token naming a project created after start-up (compare with `token`: the issue's 10% target)
  no-usage-log  the master key with the usage log off (`LLMGATE_USAGE_LOG=0`): the pure pass-through edge, its
                streams unparsed
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from benchmarks.lab.processes import BenchError, http_call

SCENARIOS = ("passthrough", "routing", "token", "token-budget", "jwt", "no-usage-log")
DIRECT = "direct"
MASTER_KEY = "sk-bench-master-0123456789"
MANAGEMENT_TOKEN = "mt-bench-0123456789"
UPSTREAM_KEY = "sk-bench-upstream"

ROUTED_TOML = """\
# The lab's routing scenario: one alias, two deployments, three keys each.
[[providers]]
name = "first"
base_url = "{upstream}/v1"
api_keys = ["sk-first-1", "sk-first-2", "sk-first-3"]

[[providers]]
name = "second"
base_url = "{upstream}/second/v1"
api_keys = ["sk-second-1", "sk-second-2", "sk-second-3"]

[[models]]
name = "gpt-4o-mini"
deployments = [{{ provider = "first" }}, {{ provider = "second" }}]
"""


@dataclass
class Target:
    """One thing to put load on. kind: "direct" (the double), "spawn" (started here), "external" (a URL)."""

    name: str
    kind: str
    key: str
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""
    prepare: Callable[[Target], None] | None = None
    """Called once the spawned gateway answers (e.g. create a virtual token and set `key`)."""


def gateway_cmd(app: str | None) -> list[str]:
    """How llmgate is started: `llmgate serve` (production's path), or granian on an app factory (`--gateway-app
    MODULE:FACTORY`, e.g. a build with test-only middleware). `{port}` is filled in at each start."""
    if app is None:
        return [sys.executable, "-m", "llmgate", "serve", "--host", "127.0.0.1", "--port", "{port}", "--workers", "1"]
    return [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--loop", "uvloop", "--workers", "1",
            "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning", "--no-access-log", app]


def base_env() -> dict[str, str]:
    """The bench's environment without the caller's LLMGATE_*/OPENAI_* (a stray setting would skew a scenario)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("LLMGATE_", "OPENAI_"))}


def create_token(target: Target, limits: dict[str, int] | None = None) -> None:
    """The token scenarios' set-up: a project and a virtual token (unlimited by default), through the management
    API."""
    status, body = http_call(target.url, "POST", "/manage/projects", json.dumps({"name": "bench"}).encode(),
                             MANAGEMENT_TOKEN)
    if status != 201:
        raise BenchError(f"{target.name}: creating a project answered {status}: {body[:300]!r}")
    project = json.loads(body)["id"]
    token = {"project_id": project, **(limits or {})}
    status, body = http_call(target.url, "POST", "/manage/tokens", json.dumps(token).encode(), MANAGEMENT_TOKEN)
    if status != 201:
        raise BenchError(f"{target.name}: creating a token answered {status}: {body[:300]!r}")
    target.key = json.loads(body)["secret"]


JWT_TOML = """\
# The lab's jwt scenario: callers sign in with an issuer whose keys the bench serves.
[[auth.jwt]]
issuer = "{issuer}"
audiences = ["{audience}"]
jwks_url = "{jwks}"
"""


def jwt_target_env(workdir: Path) -> tuple[dict[str, str], Callable[[Target], None]]:
    """The jwt scenario: an issuer serving its JWKS from this process (for the bench's life), the config naming it,
    and the set-up that creates the project and signs the caller's token."""
    from tests.jwks import AUDIENCE, Issuer

    issuer = Issuer().__enter__()  # a daemon thread; it serves until the bench process ends
    config = workdir / "jwt.toml"
    config.write_text(JWT_TOML.format(issuer=issuer.iss, audience=AUDIENCE, jwks=f"{issuer.url}/keys"))

    def prepare(target: Target) -> None:
        status, body = http_call(target.url, "POST", "/manage/projects", json.dumps({"name": "bench"}).encode(),
                                 MANAGEMENT_TOKEN)
        if status != 201:
            raise BenchError(f"{target.name}: creating a project answered {status}: {body[:300]!r}")
        target.key = issuer.token(llmgate_project="bench", exp_in_s=12 * 3600)

    return {"LLMGATE_CONFIG": str(config), "LLMGATE_MANAGEMENT_TOKEN": MANAGEMENT_TOKEN}, prepare


def llmgate_target(scenario: str, upstream: str, workdir: Path, app: str | None, extra_env: dict[str, str]) -> Target:
    """llmgate configured for `scenario`, in front of the double at `upstream` (no /v1)."""
    env = {"OPENAI_BASE_URL": f"{upstream}/v1", "OPENAI_API_KEY": UPSTREAM_KEY, "LLMGATE_MASTER_KEY": MASTER_KEY,
           "LLMGATE_LOG_LEVEL": "WARNING", **extra_env}
    prepare: Callable[[Target], None] | None = None
    if scenario == "routing":
        config = workdir / "routed.toml"
        config.write_text(ROUTED_TOML.format(upstream=upstream))
        env["LLMGATE_CONFIG"] = str(config)
    elif scenario == "token":
        env["LLMGATE_MANAGEMENT_TOKEN"] = MANAGEMENT_TOKEN
        prepare = create_token
    elif scenario == "token-budget":
        env["LLMGATE_MANAGEMENT_TOKEN"] = MANAGEMENT_TOKEN
        prepare = partial(create_token, limits={"budget_tokens": 10**15})
    elif scenario == "jwt":
        jwt_env, prepare = jwt_target_env(workdir)
        env.update(jwt_env)
    elif scenario == "no-usage-log":
        env["LLMGATE_USAGE_LOG"] = "0"
    elif scenario != "passthrough":
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    return Target(f"llmgate/{scenario}", "spawn", MASTER_KEY, gateway_cmd(app), env, prepare=prepare)


def build_targets(
    scenarios: list[str], upstream: str, externals: list[str], external_key: str, app: str | None,
    extra_env: dict[str, str] | None = None,
) -> list[Target]:
    """direct first, then llmgate per scenario, then every `NAME=URL` endpoint given."""
    workdir = Path(tempfile.mkdtemp(prefix="llmgate-bench-config-"))
    targets = [Target(DIRECT, "direct", "sk-direct", url=upstream)]
    targets += [llmgate_target(s, upstream, workdir, app, extra_env or {}) for s in scenarios]
    for spec in externals:
        name, sep, url = spec.partition("=")
        if not sep or not url.startswith("http"):
            raise ValueError(f"--target wants NAME=URL, got {spec!r}")
        targets.append(Target(name, "external", external_key, url=url.rstrip("/")))
    return targets
