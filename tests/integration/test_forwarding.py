"""What goes up and what comes down: headers, bodies, errors, limits, extra routes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.servers import MASTER_KEY, UPSTREAM_KEY, Gateway, gateway_env, start_gateway, write_config

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


def seen(upstream: str) -> dict:
    return httpx.get(f"{upstream}/_seen").json()


def test_request_body_is_forwarded_byte_for_byte(gateway: Gateway, upstream: str) -> None:
    body = b'{ "model" : "gpt-4o-mini",\n "messages": [{"role":"user","content":"h\\u00e9llo \xc3\xa9"}], "n": 1 }'
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=body,
                          headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 200
    assert seen(upstream)["last_body"] == body.decode()


def test_headers_going_up(gateway: Gateway, upstream: str) -> None:
    headers = {**AUTH, "OpenAI-Organization": "org-42", "OpenAI-Beta": "assistants=v2", "x-custom": "kept",
               "cookie": "session=secret", "x-request-id": "caller-1"}
    httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "m"}, headers=headers)
    up = seen(upstream)["last_headers"]
    assert up["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert (up["openai-organization"], up["openai-beta"], up["x-custom"]) == ("org-42", "assistants=v2", "kept")
    assert up["x-client-request-id"] == "caller-1"
    assert "cookie" not in up and "x-api-key" not in up
    assert MASTER_KEY not in str(up)


def test_x_api_key_caller_does_not_leak_upstream(gateway: Gateway, upstream: str) -> None:
    httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "m"}, headers={"x-api-key": MASTER_KEY})
    assert MASTER_KEY not in str(seen(upstream)["last_headers"])


def test_headers_coming_down(gateway: Gateway) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "m"}, headers=AUTH)
    assert response.headers["openai-processing-ms"]
    assert response.headers["x-ratelimit-limit-requests"]
    assert response.headers["x-upstream-request-id"].startswith("up-")


def test_server_timing_breaks_down_the_gateways_part(gateway: Gateway) -> None:
    for body in ({"model": "m"}, {"model": "m", "stream": True}):
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body,
                              headers={**AUTH, "x-mock-delay-ms": "40"})
        timing = {name: float(dur) for name, dur in
                  (part.split(";dur=") for part in response.headers["server-timing"].split(", "))}
        assert set(timing) == {"auth", "route", "upstream-ttfb", "overhead"}
        assert timing["upstream-ttfb"] >= 40  # the double waited 40 ms before answering
        assert 0 <= timing["auth"] < timing["upstream-ttfb"] and 0 <= timing["overhead"] < timing["upstream-ttfb"]


def test_upstream_error_body_and_status_unchanged(gateway: Gateway, upstream: str) -> None:
    # a model of its own: the 5xx are retried and count against that model's breaker, not the one of `m`
    for status in ("400", "404", "422", "500", "503"):
        direct = httpx.post(f"{upstream}/v1/chat/completions", json={"model": "errors"},
                            headers={"x-mock-status": status})
        through = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "errors"},
                             headers={**AUTH, "x-mock-status": status})
        assert (through.status_code, through.content) == (direct.status_code, direct.content)


def test_query_string_is_forwarded(gateway: Gateway, upstream: str) -> None:
    httpx.post(f"{gateway.url}/v1/chat/completions?api-version=2024-10-21", json={"model": "m"}, headers=AUTH)
    assert seen(upstream)["last_path"] == "/v1/chat/completions?api-version=2024-10-21"


@pytest.mark.parametrize("path", ["/v1/chat/completions/", "/v1//chat/completions", "//v1/chat/completions"])
def test_trailing_and_double_slashes_are_the_same_route(gateway: Gateway, path: str) -> None:
    response = httpx.post(f"{gateway.url}{path}", json={"model": "m"}, headers=AUTH)
    assert response.status_code == 200


def test_a_host_header_no_url_could_hold_is_400(gateway: Gateway) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "m"},
                          headers={**AUTH, "host": "evil.example/path?x"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "Host header" in response.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path", "status"), [
    ("POST", "/v1/fine_tuning/jobs", 404), ("GET", "/v1", 404), ("DELETE", "/v1/models", 405),
    ("PUT", "/v1/embeddings", 405), ("POST", "/v1/models", 405),
])
def test_outside_the_allowlist(gateway: Gateway, method: str, path: str, status: int) -> None:
    response = httpx.request(method, f"{gateway.url}{path}", headers=AUTH)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_404_and_405_come_before_auth(gateway: Gateway) -> None:
    assert httpx.post(f"{gateway.url}/v1/nope").status_code == 404
    assert httpx.get(f"{gateway.url}/v1/chat/completions").status_code == 405
    assert httpx.get(f"{gateway.url}/v1/models").status_code == 401


@pytest.fixture(scope="module")
def small_gateway(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway with a 4 KiB body limit, an extra route and two providers."""
    config = write_config(tmp_path_factory.mktemp("cfg"), f"""
[server]
max_body_bytes = 4096
extra_routes = ["POST /v1/moderations"]

[[providers]]
name = "pinned"
base_url = "{upstream}/pinned/v1"
api_key = "sk-pinned-provider-key-000000"
models = ["special-model"]

[[providers]]
name = "default"
base_url = "{upstream}/v1"
api_key = "env:OPENAI_API_KEY"
""")
    with start_gateway(gateway_env(upstream), "--config", config) as gw:
        yield gw


def test_body_over_the_limit_is_413(small_gateway: Gateway) -> None:
    big = b'{"model":"m","input":"' + b"x" * 5000 + b'"}'
    response = httpx.post(f"{small_gateway.url}/v1/embeddings", content=big, headers=AUTH)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no content-length: the limit holds while reading
        for _ in range(10):
            yield b"x" * 1000

    response = httpx.post(f"{small_gateway.url}/v1/embeddings", content=chunks(), headers=AUTH)
    assert response.status_code == 413


def test_models_route_to_their_provider(small_gateway: Gateway, upstream: str) -> None:
    httpx.post(f"{small_gateway.url}/v1/chat/completions", json={"model": "special-model"}, headers=AUTH)
    up = seen(upstream)
    assert (up["last_path"], up["last_auth"]) == ("/pinned/v1/chat/completions", "Bearer sk-pinned-provider-key-000000")
    httpx.post(f"{small_gateway.url}/v1/chat/completions", json={"model": "other"}, headers=AUTH)
    assert seen(upstream)["last_path"] == "/v1/chat/completions"


def test_models_list_merges_declared_and_upstream(small_gateway: Gateway) -> None:
    ids = [m["id"] for m in httpx.get(f"{small_gateway.url}/v1/models", headers=AUTH).json()["data"]]
    assert ids[0] == "special-model" and "gpt-4o-mini" in ids


def test_extra_route_passes_through(small_gateway: Gateway, upstream: str) -> None:
    response = httpx.post(f"{small_gateway.url}/v1/moderations", json={"input": "hi"}, headers=AUTH)
    assert seen(upstream)["last_path"] == "/v1/moderations"
    direct = httpx.post(f"{upstream}/v1/moderations", json={"input": "hi"})
    assert (response.status_code, response.content) == (direct.status_code, direct.content)
