"""Redis and PostgreSQL failing under load (findings 8 and 9 of issue 28), against a real gateway on real
servers: virtual-token requests keep being answered at once, and nothing is lost (every request the clients saw
answered is a usage row once the store is back)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.servers import Gateway, gateway_env, sample, scrape, start_gateway
from tests.services import PostgresCluster, run_postgres_cluster, run_redis_process

MT = "mt-faults-0123456789abcdef"
MANAGE = {"authorization": f"Bearer {MT}"}


@dataclass
class Load:
    """Clients sending virtual-token requests back to back, on their threads, until stopped."""

    url: str
    secret: str
    clients: int = 6
    statuses: list[tuple[float, int, float]] = field(default_factory=list)
    """(when it was sent, status, seconds it took)"""
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        headers = {"authorization": f"Bearer {self.secret}"}
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    status = client.post(f"{self.url}/v1/chat/completions", json={"model": "m"},
                                         headers=headers).status_code
                except httpx.HTTPError:
                    status = 0
                self.statuses.append((started, status, time.monotonic() - started))

    def between(self, start: float, end: float) -> list[tuple[float, int, float]]:
        return [s for s in self.statuses if start <= s[0] < end]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresCluster]:
    with run_postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with run_redis_process() as (url, proc):
        yield url, proc


@pytest.fixture(scope="module")
def gw(upstream: str, postgres: PostgresCluster, redis: tuple[str, subprocess.Popen[bytes]]) -> Iterator[Gateway]:
    env = gateway_env(upstream, LLMGATE_MANAGEMENT_TOKEN=MT, LLMGATE_DATABASE_URL=postgres.url,
                      LLMGATE_REDIS_URL=redis[0], LLMGATE_TOKEN_CACHE_TTL_S="1", LLMGATE_USAGE_FLUSH_S="0.1")
    with start_gateway(env) as gateway:
        yield gateway


def new_token(gw: Gateway) -> tuple[str, str]:
    """A new project and its token: (project id, secret)."""
    project = httpx.post(f"{gw.url}/manage/projects", json={"name": f"p-{time.monotonic_ns()}"},
                         headers=MANAGE).json()
    token = httpx.post(f"{gw.url}/manage/tokens", json={"project_id": project["id"], "rpm_limit": 100_000},
                       headers=MANAGE).json()
    return project["id"], token["secret"]


def usage_rows(gw: Gateway, project_id: str) -> int:
    response = httpx.get(f"{gw.url}/manage/usage", params={"project": project_id}, headers=MANAGE, timeout=10)
    data = response.json()["data"] if response.status_code == 200 else []
    return sum(group["requests"] for group in data)


def wait_for_rows(gw: Gateway, project_id: str, expected: int, timeout_s: float = 20) -> int:
    deadline = time.monotonic() + timeout_s
    while (rows := usage_rows(gw, project_id)) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return rows


def test_a_frozen_then_stopped_redis_does_not_hold_requests(gw: Gateway,
                                                            redis: tuple[str, subprocess.Popen[bytes]]) -> None:
    project_id, secret = new_token(gw)
    _, proc = redis
    with Load(gw.url, secret) as load:
        time.sleep(1)
        frozen_at = time.monotonic()
        proc.send_signal(signal.SIGSTOP)  # kill -STOP: connections stay up, nothing answers
        time.sleep(2)
        thawed_at = time.monotonic()
        proc.send_signal(signal.SIGCONT)
        time.sleep(1)
    during = load.between(frozen_at, thawed_at)
    assert {status for _, status, _ in load.statuses} == {200}
    assert len(during) > 20  # served all along, not ~1 per client per 5 s
    slow = [took for _, _, took in during if took > 1.0]
    assert not slow, f"{len(slow)} request(s) waited on the frozen Redis"
    assert wait_for_rows(gw, project_id, len(load.statuses)) == len(load.statuses)


def test_postgres_down_cached_tokens_work_new_ones_get_503_and_no_usage_is_lost(gw: Gateway,
                                                                                postgres: PostgresCluster) -> None:
    project_id, secret = new_token(gw)
    _, never_used = new_token(gw)  # issued, never cached: it cannot be checked while the store is down
    spilled_before = sample(scrape(gw.url), "llmgate_usage_events_spilled_total")
    with Load(gw.url, secret) as load:
        time.sleep(1)
        postgres.stop()
        try:
            time.sleep(0.5)
            refused = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m"},
                                 headers={"authorization": f"Bearer {never_used}"}, timeout=10)
            time.sleep(2.5)  # past the token cache's TTL (1 s): served from the cache all the same
        finally:
            postgres.start()
        time.sleep(1)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "store_unavailable" and refused.headers["retry-after"] == "1"
    statuses = [status for _, status, _ in load.statuses]
    assert set(statuses) == {200} and len(statuses) > 50
    assert wait_for_rows(gw, project_id, len(statuses)) == len(statuses)  # spilled, then replayed
    assert sample(scrape(gw.url), "llmgate_usage_events_spilled_total") > spilled_before
    assert sample(scrape(gw.url), "llmgate_usage_events_dropped_total") == 0


def test_redis_killed_and_restarted_on_its_port(gw: Gateway, redis: tuple[str, subprocess.Popen[bytes]]) -> None:
    """Stopped (connection refused): counted here at once; started again: shared again."""
    url, proc = redis
    project_id, secret = new_token(gw)
    port = url.rsplit(":", 1)[1].split("/")[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    binary = shutil.which("redis-server")
    assert binary is not None
    with Load(gw.url, secret) as load:
        time.sleep(1.5)
        restarted = subprocess.Popen([binary, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                      "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(2)
        finally:
            restarted.terminate()
            restarted.wait(5)
    statuses = [status for _, status, _ in load.statuses]
    assert set(statuses) == {200} and max(took for _, _, took in load.statuses) < 1.0
    assert wait_for_rows(gw, project_id, len(statuses)) == len(statuses)
    assert "Redis answers again" in gw.logs()
