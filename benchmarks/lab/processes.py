"""Processes the bench starts (each in its own group, stopped on every exit path) and what /proc says of them."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class BenchError(Exception):
    """A target could not be measured (did not start, answered wrongly, the load generator failed)."""


# ---------------------------------------------------------------------------------------------- /proc


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name; index = field number - 3 (state is 0)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants, from the ppid field of every /proc/<n>/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry))[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree = [pid]
    for p in tree:  # grows while iterating: breadth-first walk
        tree.extend(children.get(p, []))
    return tree


def tree_cpu_ticks(pid: int) -> dict[int, int]:
    """utime+stime (clock ticks, all threads) of every process in the tree."""
    ticks = {}
    for p in process_tree(pid):
        try:
            f = _stat_fields(p)
            ticks[p] = int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            continue
    return ticks


def cpu_pct(before: dict[int, int], after: dict[int, int], seconds: float) -> float:
    """CPU used between two tree_cpu_ticks samples, % of one core (a process born in between counts whole)."""
    ticks = sum(t - before.get(p, 0) for p, t in after.items())
    return 100.0 * ticks / CLK_TCK / seconds


def machine_busy_ticks() -> int:
    """Busy clock ticks of all CPUs since boot: everything but idle and iowait (steal included)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(f) - f[3] - f[4]  # user nice system idle iowait irq softirq steal


def tree_memory(pid: int) -> tuple[float, float | None, int]:
    """(RSS MB, PSS MB or None if unreadable, process count) summed over the tree."""
    rss, pss, n, pss_ok = 0, 0, 0, True
    for p in process_tree(pid):
        try:
            rss += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE_SIZE
            n += 1
        except (OSError, IndexError, ValueError):
            continue
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pss_ok = False
    return rss / 2**20, (pss / 2**20 if pss_ok else None), n


# ---------------------------------------------------------------------------------------------- children


class Proc:
    """A child in its own session (process group), output to a log file; stop() ends the whole group."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path | None, log: Path) -> None:
        self.name, self.log = name, log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("    | " + line for line in text[-lines:]) or "    | (empty)"

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL it after 5 s; also SIGKILL any of the group left behind."""
        pgid = self.popen.pid  # start_new_session: the child leads its own group
        for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(wait_s)
            except subprocess.TimeoutExpired:
                continue
            with contextlib.suppress(ProcessLookupError):  # the leader is gone; make sure its workers are too
                os.killpg(pgid, signal.SIGKILL)
            break
        if self.popen.poll() is None:
            self.popen.wait()


class Procs:
    """Every process the bench started, stopped in reverse order on exit (also on Ctrl-C or errors)."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.live: list[Proc] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> Proc:
        proc = Proc(name, cmd, env, cwd, self.logdir / f"{name}.log")
        self.live.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.live:
            self.live.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(self.live[:]):
            self.stop(proc)


@contextmanager
def terminate_as_exit() -> Iterator[None]:
    """SIGTERM/SIGHUP raise SystemExit so `finally` blocks clean up as they do on Ctrl-C."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def pinned(cpus: str | None, cmd: list[str]) -> list[str]:
    """`cmd` under `taskset -c cpus`, or as is when no CPU list is given (taskset missing, or pinning off)."""
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


def default_cpus() -> tuple[str | None, str | None]:
    """(gateway CPUs, load CPUs): the first usable CPU for the gateway and the rest for load, when taskset
    exists and there are two or more CPUs; otherwise no pinning."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2 or not shutil.which("taskset"):
        return None, None
    return str(usable[0]), ",".join(str(c) for c in usable[1:])


# ---------------------------------------------------------------------------------------------- HTTP probes


def http_call(
    base: str, method: str, path: str, body: bytes | None = None, key: str = "", timeout_s: float = 5.0
) -> tuple[int, bytes]:
    """One blocking request (stdlib only); (status, body)."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=timeout_s)
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    try:
        conn.request(method, u.path.rstrip("/") + path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(proc: Proc, probe: Callable[[], tuple[int, bytes]], timeout_s: float) -> float:
    """Poll until probe answers 200; returns seconds since spawn. BenchError with the log tail otherwise."""
    last = "no answer"
    deadline = proc.started + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise BenchError(
                f"{proc.name} exited with code {proc.popen.returncode} before answering "
                f"200 (log {proc.log}):\n{proc.tail()}"
            )
        try:
            status, body = probe()
            if status == 200:
                return time.monotonic() - proc.started
            last = f"HTTP {status}: {body[:200]!r}"
        except OSError as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.01)
    raise BenchError(f"{proc.name} not ready after {timeout_s:.0f} s (last: {last}; log {proc.log}):\n{proc.tail()}")
