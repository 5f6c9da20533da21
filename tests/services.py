"""Real PostgreSQL and Redis servers for tests, started on 127.0.0.1 in temp dirs (skipped when not installed).

PostgreSQL refuses to run as root, so under root the data dir belongs to the `postgres` user (created by the
Debian package) and the server runs as that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.servers import free_port


def _pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _unavailable(reason: str) -> NoReturn:
    """Skip, saying how to install; in CI (.ci/run installs both) a missing server is a failure, not a skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, but CI=true: .ci/run should have installed it")
    pytest.skip(reason)


def _as_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        _unavailable("PostgreSQL cannot run as root and there is no `postgres` user")
    return ["runuser", "-u", "postgres", "--"]


class PostgresCluster:
    """A throwaway PostgreSQL cluster that a test can stop and start again (same port, same data)."""

    def __init__(self, bindir: str, prefix: list[str], root: str, port: int) -> None:
        self.bindir, self.prefix, self.root, self.port = bindir, prefix, root, port
        self.data = os.path.join(root, "data")
        self.url = f"postgresql://postgres@127.0.0.1:{port}/llmgate"

    def run(self, *cmd: str) -> None:
        subprocess.run([*self.prefix, *cmd], check=True, capture_output=True)

    def start(self) -> None:
        self.run(f"{self.bindir}/pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.root, "log"), "-o",
                 f"-h 127.0.0.1 -p {self.port} -k {self.root} -F", "start")

    def stop(self, mode: str = "fast") -> None:
        subprocess.run([*self.prefix, f"{self.bindir}/pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"],
                       capture_output=True)


@contextlib.contextmanager
def run_postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster; yields its URL (database `llmgate`, trust auth on 127.0.0.1)."""
    with run_postgres_cluster() as cluster:
        yield cluster.url


@contextlib.contextmanager
def run_postgres_cluster() -> Iterator[PostgresCluster]:
    """`run_postgres`, yielding the cluster itself (to stop and start it)."""
    bindir = _pg_bin()
    if bindir is None:
        _unavailable("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does it in CI)")
    prefix = _as_user()
    root = tempfile.mkdtemp(prefix="llmgate-pg-")
    if prefix:
        shutil.chown(root, "postgres", "postgres")
    cluster = PostgresCluster(bindir, prefix, root, free_port())
    try:
        cluster.run(f"{bindir}/initdb", "-D", cluster.data, "-U", "postgres", "-A", "trust", "--no-sync")
        cluster.start()
        cluster.run(f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "llmgate")
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def run_redis() -> Iterator[str]:
    """A throwaway redis-server without persistence; yields its URL."""
    with run_redis_process() as (url, _):
        yield url


@contextlib.contextmanager
def run_redis_process() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`run_redis`, also yielding the server's process (to stop, freeze or restart it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("redis-server is not installed (Debian: apt-get install redis-server; .ci/run does it in CI)")
    port = free_port()
    root = tempfile.mkdtemp(prefix="llmgate-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                             "no", "--dir", root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.send_signal(signal.SIGCONT)  # a frozen one too
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(root, ignore_errors=True)
