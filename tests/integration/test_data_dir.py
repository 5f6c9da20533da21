"""`llmgate serve` where it cannot write its data directory: one sentence naming the setting, before granian
starts; given a directory it can write, it serves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import gateway_env, start_gateway
from tests.upstream_double import free_port

NOBODY = 65534
DATA_DIR_SENTENCE = ("llmgate: cannot write the data directory ./data (Permission denied): set LLMGATE_DATA_DIR to a "
                     "directory this user can write (it holds the SQLite store and the usage spill file)")


def unprivileged() -> dict[str, Any]:
    """subprocess arguments that run a child as a user permission bits apply to: this user unless it is root, else
    uid/gid 65534 (skips when that user cannot run this interpreter, e.g. one installed under /root)."""
    if os.geteuid() != 0:
        return {}
    as_nobody: dict[str, Any] = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    try:
        probe = subprocess.run([sys.executable, "-c", "import llmgate"], capture_output=True, timeout=30,
                               cwd="/", **as_nobody)
    except PermissionError:
        pytest.skip(f"uid {NOBODY} cannot execute {sys.executable} (a directory on its path is closed to it)")
    if probe.returncode != 0:
        pytest.skip(f"uid {NOBODY} cannot import llmgate with {sys.executable}: {probe.stderr.decode()[-300:]}")
    return as_nobody


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory under the system temp dir (pytest's tmp_path is closed to other users)."""
    path = Path(tempfile.mkdtemp(prefix="llmgate-datadir-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def serve(env: dict[str, str], **popen: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmgate", "serve", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=30, **popen)


def test_unprivileged_user_in_a_directory_it_cannot_write(shared_dir: Path) -> None:
    user = unprivileged()
    readonly = shared_dir / "readonly"
    readonly.mkdir(mode=0o555)
    readonly.chmod(0o555)  # mkdir's mode is masked by the umask
    env = gateway_env("http://127.0.0.1:9")
    del env["LLMGATE_DATA_DIR"]  # the default, ./data, in a directory this user cannot write
    result = serve(env, cwd=readonly, **user)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == DATA_DIR_SENTENCE, result.stderr
    assert "Traceback" not in result.stderr and "PermissionError" not in result.stderr
    assert not (readonly / "data").exists()

    writable = shared_dir / "data"
    writable.mkdir()
    if user:
        os.chown(writable, NOBODY, NOBODY)
    env["LLMGATE_DATA_DIR"] = str(writable)  # the setting the sentence names: the gateway then serves
    with start_gateway(env, cwd=readonly, **user) as gw:
        assert httpx.get(f"{gw.url}/health").status_code == 200
    assert (writable / "llmgate.db").is_file()


def test_a_data_dir_under_a_regular_file_stops_start_up_for_root_too(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    env = gateway_env("http://127.0.0.1:9", LLMGATE_DATA_DIR=str(blocker / "data"))
    result = serve(env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"llmgate: cannot write the data directory {blocker / 'data'} (Not a directory): set LLMGATE_DATA_DIR to a "
        "directory this user can write (it holds the SQLite store and the usage spill file)"), result.stderr


def test_a_spill_path_it_cannot_write_names_its_own_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    spill = blocker / "spill.jsonl"
    result = serve(gateway_env("http://127.0.0.1:9", LLMGATE_USAGE_SPILL_PATH=str(spill)))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"llmgate: cannot write the directory {blocker} of the usage spill file {spill} (Not a directory): set "
        "LLMGATE_USAGE_SPILL_PATH to a file in a directory this user can write"), result.stderr
