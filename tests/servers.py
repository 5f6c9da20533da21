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
from typing import IO

import httpx

from llmgate.upstream_double import free_port, stop_process

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
               LLMGATE_DATA_DIR=_data_dir())
    env.update(extra)
    return env


@contextlib.contextmanager
def start_gateway(env: dict[str, str], *args: str, timeout_s: float = 15.0) -> Iterator[Gateway]:
    """Run `python -m llmgate serve` on a free port; yield once GET /health answers 200."""
    port = free_port()
    cmd = [sys.executable, "-m", "llmgate", "serve", "--port", str(port), *args]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=err, stderr=err, start_new_session=True)
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
