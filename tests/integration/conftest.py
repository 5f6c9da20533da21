"""A gateway with two providers on the double: `anthropic` (kind anthropic, the claude-* models) and `openai`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Gateway, free_port, gateway_env, start_gateway, write_config

ANTHROPIC_UPSTREAM_KEY = "sk-ant-upstream-test-00112233445566"


@pytest.fixture(scope="session")
def two_dialect_gateway(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = write_config(Path(tmp_path_factory.mktemp("two-dialects")), f"""
[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "{upstream}/v1"
api_key = "env:ANTHROPIC_UPSTREAM_KEY"
models = ["claude-x", "claude-sonnet-test"]

[[providers]]
name = "dead-anthropic"
kind = "anthropic"
base_url = "http://127.0.0.1:{free_port()}/v1"
api_key = "sk-ant-dead-0000000000000000"
models = ["claude-dead"]
timeouts = {{ connect_s = 2 }}

[[providers]]
name = "openai"
base_url = "{upstream}/v1"
api_key = "env:OPENAI_API_KEY"
""")
    env = gateway_env(upstream, LLMGATE_CONFIG=config, ANTHROPIC_UPSTREAM_KEY=ANTHROPIC_UPSTREAM_KEY)
    with start_gateway(env) as gw:
        yield gw
