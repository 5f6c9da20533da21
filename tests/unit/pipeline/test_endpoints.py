"""The /v1 allowlist (pipeline/endpoints.py): the default endpoints, extra routes from the config; 404 and 405
before authentication."""

from __future__ import annotations

import pytest

from llmgate.config import ConfigError
from llmgate.pipeline.endpoints import DEFAULT_ENDPOINTS, build_endpoints
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import ask_double, seen


def test_routes_allowlist_extends_from_config() -> None:
    routes = build_endpoints(("POST /v1/moderations", "GET /v1/files/", "POST /v1/chat/completions"))
    assert set(routes) == set(DEFAULT_ENDPOINTS) | {"/moderations", "/files"}
    assert routes["/moderations"].methods["POST"].body == "raw"
    assert "/moderations" not in DEFAULT_ENDPOINTS  # the defaults are not mutated
    assert routes["/chat/completions"].methods["POST"].body == "view"  # an extra route never replaces a default


def test_routes_reject_bad_extra_route() -> None:
    with pytest.raises(ConfigError):
        build_endpoints(("DELETE moderations",))


# Through the app, against the double run in process.
@pytest.mark.parametrize(("method", "path", "status"), [
    ("POST", "/v1/fine_tuning/jobs", 404), ("GET", "/v1", 404), ("DELETE", "/v1/models", 405),
    ("PUT", "/v1/embeddings", 405), ("POST", "/v1/models", 405),
])
def test_outside_the_allowlist(double_gateway: Gateway, method: str, path: str, status: int) -> None:
    response = double_gateway.request(method, path)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_404_and_405_come_before_auth(double_gateway: Gateway) -> None:
    assert double_gateway.post("/v1/nope", auth=False).status_code == 404
    assert double_gateway.get("/v1/chat/completions", auth=False).status_code == 405
    assert double_gateway.get("/v1/models", auth=False).status_code == 401


def test_extra_route_passes_through(small_gateway: Gateway) -> None:
    response = small_gateway.post("/v1/moderations", json={"input": "hi"})
    assert seen()["last_path"] == "/v1/moderations"
    direct = small_gateway.run(ask_double("POST", "/v1/moderations", {"content-type": "application/json"},
                                          b'{"input": "hi"}'))
    assert (response.status_code, response.content) == (direct[0], direct[2])
