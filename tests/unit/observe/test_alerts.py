"""Soft limits: a budget past its alert threshold is logged, counted in /metrics and POSTed to the alert
webhook (retried after a failure), once per period; a local HTTP receiver stands for the webhook."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.inprocess.access import TOKENS_ENV, chat, manage, new_token, until
from tests.inprocess.gateway import FakeClock, Gateway
from tests.inprocess.upstream import DOUBLE_URL, double


class Receiver:
    """A webhook on 127.0.0.1 that fails its first `failures` POSTs with 500."""

    def __init__(self, failures: int) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.attempts += 1
                status = 500 if receiver.attempts <= failures else 200
                if status == 200:
                    receiver.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=1)
    yield r
    r.close()


def test_a_budget_past_its_threshold_alerts_once_per_period(receiver: Receiver) -> None:
    env = {**TOKENS_ENV, "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1", "LLMGATE_ALERT_WEBHOOK_URL": receiver.url}
    with Gateway(upstream=double(), env=env) as gw:
        gw.services.tokens.clock = wall = FakeClock(time.time())
        project = manage(gw, "POST", "/projects", json={"name": "alerting", "budget_tokens": 100,
                                                        "budget_period": "daily", "alert_threshold": 0.5}).json()
        secret = new_token(gw, project)["secret"]
        assert chat(gw, secret).status_code == 200  # 35 of 100: under the threshold
        assert receiver.attempts == 0
        assert [chat(gw, secret).status_code for _ in range(3)] == [200, 200, 429]  # 70 crosses 50; then 105
        assert until(gw, lambda: receiver.bodies, timeout_s=10)
        gw.run(asyncio.sleep(0.3))  # time for a second POST, were one wrongly made
        [alert] = receiver.bodies  # once, though retried after the first POST failed
        assert receiver.attempts == 2
        assert {k: alert[k] for k in ("type", "kind", "id", "budget", "used", "limit", "threshold", "period")} == {
            "type": "budget.threshold", "kind": "project", "id": project["id"], "budget": "budget_tokens",
            "used": 70.0, "limit": 100.0, "threshold": 0.5, "period": "daily"}
        assert alert["resets_at"] == wall.now - wall.now % 86400 + 86400
        assert f"project {project['id']} has used 70% of its budget_tokens" in gw.logs()
        metrics = gw.get("/metrics").text
        assert 'llmgate_budget_alerts_total{budget="budget_tokens",kind="project"} 1.0' in metrics

        wall.advance(86400)  # the next day: a new period, a new alert when crossed again
        assert [chat(gw, secret).status_code for _ in range(2)] == [200, 200]
        assert until(gw, lambda: len(receiver.bodies) == 2, timeout_s=10)


def test_no_webhook_still_logs_and_counts() -> None:
    with Gateway(upstream=double(), env={**TOKENS_ENV, "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}) as gw:
        token = new_token(gw, max_requests=4, alert_threshold=0.75)
        assert [chat(gw, token["secret"]).status_code for _ in range(3)] == [200, 200, 200]
        assert f"token {token['id']} has used 75% of its max_requests" in gw.logs()
        assert 'llmgate_budget_alerts_total{budget="max_requests",kind="token"} 1.0' in gw.get("/metrics").text
