"""`python3 scripts/run.py serve`: the pid the user started is the gateway itself, so SIGHUP reloads it and
SIGTERM drains it, with nothing left behind serving."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.servers import MASTER_KEY, gateway_env, start_command, write_config
from tests.upstream_double import free_port

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


def uv_directory() -> str:
    """A directory holding the uv binary, for the script's PATH: without one it would install uv with pip into
    whatever interpreter runs it (here, the environment under test). Skips when there is none."""
    if found := os.environ.get("UV") or shutil.which("uv"):
        return str(Path(found).parent)
    for python in filter(None, (shutil.which("python3"), "/usr/bin/python3")):
        probe = subprocess.run([python, "-c", "import uv; print(uv.find_uv_bin())"], capture_output=True, text=True)
        if probe.returncode == 0:
            return str(Path(probe.stdout.strip()).parent)
    pytest.skip("no uv on PATH or importable: scripts/run.py would install one with pip")


def config(upstream: str, provider: str) -> str:
    return f'[[providers]]\nname = "{provider}"\nbase_url = "{upstream}/{provider}/v1"\n\n' \
           f'[[models]]\nname = "m"\ndeployments = [{{ provider = "{provider}" }}]\n'


def deployment(url: str) -> str:
    response = httpx.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": []}, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.headers["x-llmgate-deployment"]


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.timeout(240)  # the first sync of a fresh environment compiles its bytecode
def test_signals_to_the_started_pid_reach_the_gateway(upstream: str, tmp_path: Path) -> None:
    path = write_config(tmp_path, config(upstream, "one"))
    usage = tmp_path / "usage.jsonl"
    env = gateway_env(upstream, LLMGATE_CONFIG=path, LLMGATE_USAGE_JSONL=str(usage), LLMGATE_USAGE_FLUSH_S="60",
                      PATH=f"{uv_directory()}{os.pathsep}{os.environ.get('PATH', '')}")
    port = free_port()
    cmd = [sys.executable, str(ROOT / "scripts" / "run.py"), "serve", "--port", str(port)]
    with start_command(cmd, port, env, timeout_s=180) as gw:
        cmdline = Path(f"/proc/{gw.proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"serve" in cmdline and not any(arg.endswith(b"run.py") for arg in cmdline), cmdline
        assert deployment(gw.url) == "one/m"

        write_config(tmp_path, config(upstream, "two"))
        os.kill(gw.proc.pid, signal.SIGHUP)
        wait_for(lambda: "config reloaded" in gw.logs())
        assert "config reloaded: 1 provider(s), 1 alias(es)" in gw.logs()
        assert deployment(gw.url) == "two/m"
        assert gw.proc.poll() is None

        os.kill(gw.proc.pid, signal.SIGTERM)  # the usage event is still queued (60 s flush): drained on the way out
        assert gw.proc.wait(timeout=15) == 0, gw.logs()
        assert not accepts(port)
        with pytest.raises(ProcessLookupError):  # no orphan left in the session it started
            os.killpg(gw.proc.pid, 0)
    events = [json.loads(line) for line in usage.read_text().splitlines()]
    assert [(e["model"], e["deployment"]) for e in events] == [("m", "one/m"), ("m", "two/m")]
