"""SIGHUP reloads the config under load without dropping a request; a bad config is rejected, the old kept."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from tests.servers import MASTER_KEY, gateway_env, start_gateway, write_config

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


def config(upstream: str, provider: str) -> str:
    return f"""
[[providers]]
name = "{provider}"
base_url = "{upstream}/{provider}/v1"

[[models]]
name = "m"
deployments = [{{ provider = "{provider}" }}]
"""


def deployment(url: str) -> str:
    response = httpx.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": []}, headers=AUTH)
    assert response.status_code == 200
    return response.headers["x-llmgate-deployment"]


@pytest.mark.parametrize("mode", [("--no-single-process",), ()], ids=["supervised", "single-process"])
def test_sighup_reload_under_load(upstream: str, tmp_path, mode: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    path = write_config(tmp_path, config(upstream, "one"))
    with start_gateway(gateway_env(upstream), "--config", path, *mode) as gw:
        assert deployment(gw.url) == "one/m"
        failures: list[str] = []
        done = threading.Event()
        count = [0]

        def load() -> None:  # streams of 5 chunks 20 ms apart: always some in flight during the reload
            with httpx.Client(timeout=10) as client:
                while not done.is_set():
                    body = {"model": "m", "messages": [], "stream": True}
                    headers = {**AUTH, "x-mock-chunks": "5", "x-mock-chunk-delay-ms": "20"}
                    with client.stream("POST", f"{gw.url}/v1/chat/completions", json=body,
                                       headers=headers) as response:
                        data = response.read()
                    if response.status_code != 200 or not data.endswith(b"data: [DONE]\n\n"):
                        failures.append(f"{response.status_code} {data[-100:]!r}")
                    count[0] += 1

        threads = [threading.Thread(target=load) for _ in range(8)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            write_config(tmp_path, config(upstream, "two"))
            gw.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while deployment(gw.url) != "two/m" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert deployment(gw.url) == "two/m"
            time.sleep(0.3)
            bad = '\n[[models]]\nname = "x"\ndeployments = [{ provider = "nope" }]\n'
            write_config(tmp_path, config(upstream, "two") + bad)
            gw.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "config reload rejected" not in gw.logs() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
        finally:
            done.set()
            for thread in threads:
                thread.join()
        assert failures == [] and count[0] > 20
        assert "config reload rejected, keeping the running config" in gw.logs()
        assert "no provider is named 'nope'" in gw.logs()
        assert deployment(gw.url) == "two/m"
        assert gw.proc.poll() is None
