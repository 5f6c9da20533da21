"""The /v1 allowlist (pipeline/endpoints.py): the default endpoints, extra routes from the config."""

from __future__ import annotations

import pytest

from llmgate.config import ConfigError
from llmgate.pipeline.endpoints import DEFAULT_ENDPOINTS, build_endpoints


def test_routes_allowlist_extends_from_config() -> None:
    routes = build_endpoints(("POST /v1/moderations", "GET /v1/files/", "POST /v1/chat/completions"))
    assert set(routes) == set(DEFAULT_ENDPOINTS) | {"/moderations", "/files"}
    assert routes["/moderations"].methods["POST"].body == "raw"
    assert "/moderations" not in DEFAULT_ENDPOINTS  # the defaults are not mutated
    assert routes["/chat/completions"].methods["POST"].body == "view"  # an extra route never replaces a default


def test_routes_reject_bad_extra_route() -> None:
    with pytest.raises(ConfigError):
        build_endpoints(("DELETE moderations",))
