"""Fixtures: the upstream double and llmgate itself, each a real server in a subprocess (granian)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.servers import Gateway, gateway_env, start_gateway
from tests.upstream_double import run_double

# No per-example deadline: CI machines are shared, and a slow example is not a wrong one.
settings.register_profile("llmgate", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("llmgate")


@pytest.fixture(scope="session")
def upstream() -> Iterator[str]:
    """Base URL of a running upstream double (no /v1)."""
    with run_double() as url:
        yield url


@pytest.fixture(scope="session")
def gateway(upstream: str) -> Iterator[Gateway]:
    """llmgate in front of the double, master key required."""
    with start_gateway(gateway_env(upstream)) as gw:
        yield gw


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for this session (skips when PostgreSQL is not installed)."""
    from tests.services import run_postgres

    with run_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server for this session (skips when Redis is not installed)."""
    from tests.services import run_redis

    with run_redis() as url:
        yield url
