"""Logs under granian: JSON lines that carry the request's ids, and no secret, ever, in a full scenario at DEBUG.

The scenario uses every kind of secret llmgate handles (master key, management token, metrics token, the
encryption key, provider keys of several shapes, a project's own upstream key, virtual tokens, a database
password) through successes and failures (rejected and unreachable providers, broken and abandoned streams,
wrong and revoked credentials, a config reload), then greps everything the gateway printed for each secret.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.servers import MASTER_KEY, UPSTREAM_KEY, Gateway, free_port, gateway_env, start_gateway, write_config

MANAGEMENT_TOKEN = "mgmt-9a8b7c6d5e4f3a2b1c0d"
METRICS_TOKEN = "prom-0f1e2d3c4b5a69788796"
SECRET_KEY = "enc-key-5f4e3d2c1b0a99887766"
REJECTED_KEY = "gsk_rejected0123456789abcdefXYZ"  # the double answers 401 to keys containing "rejected"
REFUSED_KEY = "AIzaRefused0123456789abcdefghij"
RESET_KEY = "sk-ant-api03-reset-0123456789abcdef"
PROJECT_KEY = "proj-upstream-key-7d6c5b4a3f2e1d0c"


@dataclass
class Scenario:
    gateway: Gateway
    secrets: list[str]
    request_ids: dict[str, str]
    """What each request in the scenario was told its id was (x-request-id), by what it did."""
    upstream_ids: dict[str, str]


def run_scenario(gw: Gateway) -> Scenario:
    url, master = gw.url, {"authorization": f"Bearer {MASTER_KEY}"}
    manage = {"authorization": f"Bearer {MANAGEMENT_TOKEN}"}
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    ids, upstream_ids = {}, {}
    secrets = [MASTER_KEY, UPSTREAM_KEY, MANAGEMENT_TOKEN, METRICS_TOKEN, SECRET_KEY, REJECTED_KEY, REFUSED_KEY,
               RESET_KEY, PROJECT_KEY, "pg-secret-password-42"]
    with httpx.Client(base_url=url, timeout=30) as client:
        project = client.post("/manage/projects", headers=manage, json={
            "name": "logged", "upstream_keys": {"openai": PROJECT_KEY}}).json()
        issued = [client.post("/manage/tokens", headers=manage, json={"project_id": project["id"]}).json()
                  for _ in range(2)]
        tokens = [token["secret"] for token in issued]
        secrets += tokens
        for token in tokens:
            assert client.post("/v1/chat/completions", json={**chat, "model": "gpt-4o-mini"},
                               headers={"authorization": f"Bearer {token}"}).status_code == 200
        assert client.delete(f"/manage/tokens/{issued[0]['id']}", headers=manage).status_code == 200
        for token in tokens:  # one revoked now
            client.post("/v1/chat/completions", json={**chat, "model": "gpt-4o-mini"},
                        headers={"authorization": f"Bearer {token}"})
        response = client.post("/v1/chat/completions", json={**chat, "model": "rejecting"}, headers=master)
        ids["rejected"] = response.headers["x-request-id"]
        response = client.post("/v1/chat/completions", json={**chat, "model": "unreachable"}, headers=master)
        assert response.status_code == 502
        ids["unreachable"] = response.headers["x-request-id"]
        with client.stream("POST", "/v1/chat/completions", headers={**master, "x-mock-chunks": "5"},
                           json={**chat, "model": "resetting", "stream": True}) as stream:
            stream.read()
            ids["reset"] = stream.headers["x-request-id"]
            upstream_ids["reset"] = stream.headers["x-upstream-request-id"]
        with client.stream("POST", "/v1/chat/completions", json={**chat, "model": "gpt-4o-mini", "stream": True},
                           headers={**master, "x-mock-chunks": "50", "x-mock-chunk-delay-ms": "50"}) as stream:
            next(stream.iter_raw())  # then leave: the gateway closes the upstream (logged at DEBUG)
        client.post("/v1/chat/completions", json={**chat, "model": "gpt-4o-mini"},
                    headers={"authorization": f"Bearer {MASTER_KEY}-wrong"})
        client.post("/v1/chat/completions", json={**chat, "model": "gpt-4o-mini"}, headers={"x-api-key": MASTER_KEY})
        client.get("/manage/projects", headers={"authorization": f"Bearer {MANAGEMENT_TOKEN}x"})
        assert client.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200
        client.get("/metrics", headers={"authorization": f"Bearer {MASTER_KEY}"})
        assert client.get("/health/deployments", headers=master).status_code == 200
        os.kill(gw.proc.pid, signal.SIGHUP)  # reload the config: logged
        time.sleep(1.5)  # the reload, and the usage events reaching their sinks
    return Scenario(gw, secrets, ids, upstream_ids)


@pytest.fixture(scope="module", params=["json", "human"])
def scenario(request: pytest.FixtureRequest, upstream: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Scenario]:
    config = write_config(tmp_path_factory.mktemp("logged"), f"""
[routing]
max_attempts = 2

[[providers]]
name = "rejecting"
base_url = "{upstream}/_mock/reject-key=rejected/v1"
api_key = "env:REJECTED_KEY"
models = ["rejecting"]

[[providers]]
name = "unreachable"
base_url = "http://127.0.0.1:{free_port()}/v1"
api_key = "{REFUSED_KEY}"
models = ["unreachable"]

[[providers]]
name = "resetting"
base_url = "{upstream}/_mock/reset-after-chunks=2/v1"
api_key = "{RESET_KEY}"
models = ["resetting"]

[[providers]]
name = "openai"
base_url = "{upstream}/v1"
api_key = "env:OPENAI_API_KEY"
""")
    env = gateway_env(upstream, LLMGATE_CONFIG=config, LLMGATE_LOG_LEVEL="DEBUG",
                      LLMGATE_LOG_JSON="1" if request.param == "json" else "0",
                      LLMGATE_MANAGEMENT_TOKEN=MANAGEMENT_TOKEN, LLMGATE_METRICS_TOKEN=METRICS_TOKEN,
                      LLMGATE_SECRET_KEY=SECRET_KEY, LLMGATE_USAGE_LOG="1", REJECTED_KEY=REJECTED_KEY,
                      # read from the environment, never used: it must not be logged either
                      PGPASSWORD="pg-secret-password-42")
    with start_gateway(env) as gw:
        yield run_scenario(gw)


def test_no_secret_is_ever_logged(scenario: Scenario) -> None:
    logs = scenario.gateway.logs()
    assert "DEBUG" in logs and "WARNING" in logs and "ERROR" in logs  # the scenario did log, at every level
    leaked = [secret for secret in scenario.secrets if secret in logs]
    assert leaked == [], f"secrets in the logs: {leaked}\n{logs}"


def test_request_lines_carry_the_request_ids(scenario: Scenario) -> None:
    logs = scenario.gateway.logs()
    ids = scenario.request_ids
    if "INFO    -" in logs:  # the human format: `time level request-id [upstream id] message`
        assert f"{ids['unreachable']} upstream unreachable unreachable" in logs
        assert f"{ids['rejected']} provider rejecting rejected key" in logs
        assert f"{ids['reset']} upstream {scenario.upstream_ids['reset']} upstream stream broke" in logs
        return
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert len(lines) >= 10
    assert all({"time", "level", "message", "request_id", "module", "function", "line"} <= set(line)
               for line in lines)
    by_message = {line["message"].split(":")[0]: line for line in lines}
    unreachable = by_message["upstream unreachable unreachable"]
    assert unreachable["request_id"] == ids["unreachable"] and unreachable["level"] == "WARNING"
    rejected = next(line for line in lines if line["message"].startswith("provider rejecting rejected key"))
    assert rejected["request_id"] == ids["rejected"] and rejected["level"] == "ERROR"
    broke = by_message["upstream stream broke mid-response"]
    assert broke["request_id"] == ids["reset"] and broke["upstream_request_id"] == scenario.upstream_ids["reset"]
    started = next(line for line in lines if line["message"].startswith("llmgate 0.1.0 listening"))
    assert started["request_id"] == "-" and "upstream_request_id" not in started
    reloaded = by_message["config reloaded"]
    assert reloaded["request_id"] == "-"  # lines outside a request never borrow one's id
