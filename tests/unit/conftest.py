"""Gateways in process (tests/inprocess/) in front of the upstream double run in process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import DOUBLE_URL, double


@pytest.fixture(scope="module")
def double_gateway() -> Iterator[Gateway]:
    """llmgate with no config file, its OpenAI provider on the double, the master key required (the in-process
    twin of the session's `gateway`)."""
    with Gateway(upstream=double(), env={"OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}) as gw:
        yield gw


@pytest.fixture(scope="module")
def small_gateway() -> Iterator[Gateway]:
    """A gateway with a 4 KiB body limit, an extra route and two providers."""
    config = f"""
[server]
max_body_bytes = 4096
extra_routes = ["POST /v1/moderations"]

[[providers]]
name = "pinned"
base_url = "{DOUBLE_URL}/pinned/v1"
api_key = "sk-pinned-provider-key-000000"
models = ["special-model"]

[[providers]]
name = "default"
base_url = "{DOUBLE_URL}/v1"
api_key = "env:OPENAI_API_KEY"
"""
    with Gateway(config, double()) as gw:
        yield gw
