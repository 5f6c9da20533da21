"""`llmgate serve`: start-up checks, /health, CORS, and what the logs may (not) contain."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import MASTER_KEY, UPSTREAM_KEY, Gateway, gateway_env, start_gateway, write_config


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmgate", *args], env=env, capture_output=True, text=True,
                          timeout=30)


def test_refuses_to_listen_publicly_without_a_master_key(upstream: str) -> None:
    env = gateway_env(upstream)
    del env["LLMGATE_MASTER_KEY"]
    result = run_cli(env, "serve", "--host", "0.0.0.0", "--port", "1")
    assert result.returncode == 2
    assert "refusing to start" in result.stderr
    assert "neither LLMGATE_MASTER_KEY nor LLMGATE_MANAGEMENT_TOKEN is set" in result.stderr


def test_listens_publicly_with_a_management_token_alone(upstream: str) -> None:
    """No master key but a management token: /v1 needs virtual tokens, so it may listen beyond loopback."""
    env = gateway_env(upstream, LLMGATE_HOST="0.0.0.0", LLMGATE_MANAGEMENT_TOKEN="mt-public-0123456789")
    del env["LLMGATE_MASTER_KEY"]
    with start_gateway(env) as gw:
        assert httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": []}).status_code == 401


def test_open_on_loopback_with_a_loud_warning(upstream: str) -> None:
    env = gateway_env(upstream)
    del env["LLMGATE_MASTER_KEY"]
    with start_gateway(env) as gw:
        response = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": []})
        assert response.status_code == 200
        assert "/v1 access: open: no master key, no management token, no tokens" in gw.logs()


def test_wrong_config_stops_startup_naming_the_key(tmp_path: Path, upstream: str) -> None:
    config = write_config(tmp_path, '[[providers]]\nname = "a"\nbase_url = "http://x"\ntimeouts = { idle_s = "x" }\n')
    result = run_cli(gateway_env(upstream), "serve", "--config", config)
    assert result.returncode == 2
    assert f'llmgate: configuration error: {config}:4: providers[0].timeouts.idle_s: expected a number, got "x"' \
        in result.stderr


def test_env_config_variable_is_read(tmp_path: Path, upstream: str) -> None:
    config = write_config(tmp_path, "[server]\nworkers = 0\n")
    result = run_cli(gateway_env(upstream, LLMGATE_CONFIG=config), "serve")
    assert result.returncode == 2 and f"{config}:2: server.workers: expected an integer >= 1, got 0" in result.stderr


def test_health_needs_no_auth(gateway: Gateway) -> None:
    health = httpx.get(f"{gateway.url}/health").json()
    assert health["status"] == "ok" and health["version"] == "0.1.0" and health["uptime_s"] >= 0


def test_several_workers(upstream: str) -> None:
    with start_gateway(gateway_env(upstream), "--workers", "2") as gw:
        for _ in range(10):
            assert httpx.post(f"{gw.url}/v1/embeddings", json={"model": "m", "input": "x"},
                              headers={"authorization": f"Bearer {MASTER_KEY}"}).status_code == 200


def _thread_names(pid: int) -> list[str]:
    return [(task / "comm").read_text().strip() for task in Path(f"/proc/{pid}/task").iterdir()]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the server's thread names from /proc")
def test_granian_hands_freed_memory_back_in_the_background_unless_the_operator_says_otherwise(
        gateway: Gateway, upstream: str) -> None:
    # jemalloc (granian's allocator) names the thread that purges freed pages; without it, a burst's memory stays
    assert "jemalloc_bg_thd" in _thread_names(gateway.proc.pid)
    with start_gateway(gateway_env(upstream, _RJEM_MALLOC_CONF="background_thread:false")) as gw:
        assert "jemalloc_bg_thd" not in _thread_names(gw.proc.pid)


def test_cors_off_by_default_and_on_when_listed(gateway: Gateway, upstream: str) -> None:
    preflight = {"origin": "https://app.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "authorization, content-type"}
    response = httpx.options(f"{gateway.url}/v1/chat/completions", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    with start_gateway(gateway_env(upstream, LLMGATE_CORS_ORIGINS="https://app.example")) as gw:
        response = httpx.options(f"{gw.url}/v1/chat/completions", headers=preflight)
        assert response.status_code in (200, 204)
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        response = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m"},
                              headers={"origin": "https://app.example", "authorization": f"Bearer {MASTER_KEY}"})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        other = httpx.options(f"{gw.url}/v1/chat/completions", headers={**preflight, "origin": "https://evil.example"})
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


def test_no_line_per_request_and_no_secret_in_logs(upstream: str) -> None:
    with start_gateway(gateway_env(upstream)) as gw:
        startup = gw.logs()
        auth = {"authorization": f"Bearer {MASTER_KEY}"}
        for _ in range(20):
            httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m"}, headers=auth)
        httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m"}, headers={"authorization": "Bearer sk-bad"})
        time.sleep(0.2)
        logs = gw.logs()
    assert logs == startup  # start-up lines only
    assert len([line for line in startup.splitlines() if line.strip()]) <= 7, startup
    assert MASTER_KEY not in logs and UPSTREAM_KEY not in logs and "sk-bad" not in logs
    assert "sk-****3210" in logs  # the provider's key, masked


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_cli_basics(flag: str) -> None:
    result = run_cli({}, flag)
    assert result.returncode == 0 and "llmgate" in result.stdout


def test_more_open_connections_than_granian_defaults_to_are_all_served(gateway: Gateway) -> None:
    # granian's embedded server holds 128 connections by default and counts idle keep-alive ones: the 129th
    # client connection then waited for one of the first 128 to close (here: never, they stay pooled).
    async def run() -> list[int]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200), timeout=20) as client:
            calls = [client.post(f"{gateway.url}/v1/chat/completions", json={"model": "m", "messages": []},
                                 headers={"authorization": f"Bearer {MASTER_KEY}", "x-mock-delay-ms": "300"})
                     for _ in range(200)]
            return [response.status_code for response in await asyncio.gather(*calls)]

    assert asyncio.run(run()) == [200] * 200


def test_localhost_is_served_and_a_name_that_does_not_resolve_is_one_line(upstream: str) -> None:
    """`--host localhost` was a granian traceback (it takes IP addresses only)."""
    with start_gateway(gateway_env(upstream), "--host", "localhost") as gw:
        assert httpx.get(f"{gw.url}/health").status_code == 200
        assert "listening on http://127.0.0.1:" in gw.logs()
    result = run_cli(gateway_env(upstream), "serve", "--host", "no-such-host.invalid", "--port", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("llmgate: configuration error: server.host (LLMGATE_HOST, --host): cannot listen "
                                    "on 'no-such-host.invalid'") and result.stderr.count("\n") == 1
