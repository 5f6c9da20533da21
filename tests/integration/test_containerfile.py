"""The Containerfile, read as a builder reads it (no container engine here): a data directory owned by the
runtime user and declared a volume, LLMGATE_DATA_DIR pointing at it, a health check that works against a real
gateway, and docs that build it in the image format that keeps it."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.docs import DOCS, README, pages, section
from tests.servers import Gateway
from tests.upstream_double import free_port

ROOT = Path(__file__).resolve().parents[2]


def runtime_stage() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the last stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", (ROOT / "Containerfile").read_text())
    instructions = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, args = line.strip().partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in stage:
        if keyword == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(args))  # type: ignore[misc]
    return env


def healthcheck_command() -> list[str]:
    (args,) = [args for keyword, args in runtime_stage() if keyword == "HEALTHCHECK"]
    command: list[str] = json.loads(args[args.index("CMD") + len("CMD"):])
    return command


def test_the_data_dir_is_the_runtime_users_and_a_volume() -> None:
    stage = runtime_stage()
    keywords = [keyword for keyword, _ in stage]
    (user,) = [args for keyword, args in stage if keyword == "USER"]
    data_dir = env_of(stage)["LLMGATE_DATA_DIR"]
    assert data_dir.startswith("/")
    (volume,) = [args for keyword, args in stage if keyword == "VOLUME"]
    assert json.loads(volume) == [data_dir]
    runs = [args for keyword, args in stage if keyword == "RUN"]
    assert any(re.search(rf"useradd\b.*\b{user}$", step.split("&&")[0].strip()) for step in runs), runs
    prepared = [i for i, (keyword, args) in enumerate(stage) if keyword == "RUN"
                and f"mkdir -p {data_dir}" in args and f"chown {user}:{user} {data_dir}" in args]
    # Changes under a VOLUME made after it is declared are discarded: the directory is made before.
    assert prepared and prepared[0] < keywords.index("VOLUME") < keywords.index("USER")


def test_the_health_check_asks_a_running_gateway(gateway: Gateway) -> None:
    command = healthcheck_command()
    assert command[0] == "python"
    port = gateway.url.rsplit(":", 1)[1]
    run = [sys.executable, *command[1:]]
    assert subprocess.run(run, env={"LLMGATE_PORT": port}, capture_output=True, timeout=30).returncode == 0
    nothing_there = subprocess.run(run, env={"LLMGATE_PORT": str(free_port())}, capture_output=True, timeout=30)
    assert nothing_there.returncode != 0


def test_the_docs_build_in_the_format_that_keeps_the_health_check() -> None:
    container = section(DOCS / "operations.md", "## Container")
    everywhere = "".join(path.read_text() for path in (README, *pages()))
    builds = [line for line in everywhere.splitlines() if re.match(r"\s*(podman|buildah) (build|bud)\b", line)]
    assert any(line in container for line in builds)
    assert builds and all("--format docker" in line for line in builds), builds
