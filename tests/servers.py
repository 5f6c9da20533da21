"""Real servers for tests: llmgate itself under granian in a subprocess (the upstream double has its own runner)."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from tests.upstream_double import free_port, stop_process

MASTER_KEY = "sk-master-test-0123456789abcdef"
UPSTREAM_KEY = "sk-upstream-test-fedcba9876543210"


@dataclass
class Gateway:
    """A running `llmgate serve`: its URL and what it printed."""

    url: str
    proc: subprocess.Popen[bytes]
    stderr: IO[bytes] = field(repr=False)

    def logs(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")


def gateway_env(upstream: str, **extra: str) -> dict[str, str]:
    """A clean environment for llmgate: no stray LLMGATE_*/OPENAI_* from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMGATE_", "OPENAI_"))}
    env.update(OPENAI_BASE_URL=f"{upstream}/v1", OPENAI_API_KEY=UPSTREAM_KEY, LLMGATE_MASTER_KEY=MASTER_KEY,
               LLMGATE_DATA_DIR=_data_dir(), LLMGATE_AUTH_FAIL_BURST="0")  # as tests/inprocess/gateway.py
    env.update(extra)
    return env


@contextlib.contextmanager
def start_gateway(env: dict[str, str], *args: str, timeout_s: float = 15.0, **popen: Any) -> Iterator[Gateway]:
    """Run `python -m llmgate serve` on a free port; yield once GET /health answers 200. `popen`: more arguments
    for subprocess.Popen (cwd, user, ...)."""
    port = free_port()
    with _serve([sys.executable, "-m", "llmgate", "serve", "--port", str(port), *args], port, env, timeout_s,
                **popen) as gw:
        yield gw


@contextlib.contextmanager
def start_command(cmd: list[str], port: int, env: dict[str, str], timeout_s: float = 15.0,
                  **popen: Any) -> Iterator[Gateway]:
    """Run `cmd`, which serves a gateway on `port`; yield once GET /health answers 200."""
    with _serve(cmd, port, env, timeout_s, **popen) as gw:
        yield gw


@contextlib.contextmanager
def start_test_app(env: dict[str, str], target: str, timeout_s: float = 15.0) -> Iterator[Gateway]:
    """Run a test-only app factory (`module:function`, building on llmgate's create_app) under granian, as
    `llmgate serve` runs llmgate's; yield once GET /health answers 200."""
    port = free_port()
    cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--loop", "uvloop", "--host",
           "127.0.0.1", "--port", str(port), "--no-log", target]
    with _serve(cmd, port, {**env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}, timeout_s) as gw:
        yield gw


@contextlib.contextmanager
def _serve(cmd: list[str], port: int, env: dict[str, str], timeout_s: float, **popen: Any) -> Iterator[Gateway]:
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=err, stderr=err, start_new_session=True, **popen)
        gateway = Gateway(f"http://127.0.0.1:{port}", proc, err)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"llmgate exited with {proc.returncode}:\n{gateway.logs()}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{gateway.url}/health", timeout=0.5).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"llmgate did not answer /health in {timeout_s} s:\n{gateway.logs()}")
                time.sleep(0.05)
            yield gateway
        finally:
            stop_process(proc)


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "llmgate.toml"
    path.write_text(text)
    return str(path)


def _data_dir() -> str:
    """A fresh data dir for one gateway's SQLite store, removed when the test session ends."""
    path = tempfile.mkdtemp(prefix="llmgate-data-")
    atexit.register(shutil.rmtree, path, True)
    return path


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, token: str | None = None) -> Samples:
    """GET /metrics, parsed: value by (sample name, labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    response.raise_for_status()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def sample(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when absent (a series appears with its first event)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape_until(url: str, name: str, labels: dict[str, str], expected: float, token: str | None = None,
                 timeout_s: float = 10.0) -> Samples:
    """Scrape until the sample reaches `expected` (usage events reach the metrics within LLMGATE_USAGE_FLUSH_S);
    the last scrape either way, so the caller's assertion shows what was there."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = scrape(url, token)
        if sample(samples, name, **labels) >= expected or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)
