"""Side-by-side load benchmark: llmgate against the reference floor and the upstream double, in one run.

What it measures, with wrk as the load generator (scripts in benchmarks/wrk/):

  direct   the upstream double called straight: the floor of every gateway, and wrk's own capacity check
  ref_gw   the reference floor, /work/shared/bench/ref_gw.py (Litestar @asgi + msgspec + pyreqwest) on granian
  llmgate  `python -m llmgate serve --workers 1`
  NAME     any `--target NAME=URL` already running elsewhere (load figures only)

For each target: a warm-up, then wrk (-t1, --latency) for non-streaming and streaming chat at each
concurrency (default 1 and 32), `--duration` seconds each: rps, p50/p95/p99 latency, errors. Socket errors
or non-2xx responses make a run invalid, and are reported loudly. For each gateway it spawns, after the load:
resident memory of the whole process tree (RSS, and PSS which does not double-count forked workers),
startup time (spawn to first 200 on a fresh start) and idle CPU over 5 s (utime+stime of the tree).

Placement: gateways on CPU 0, the upstream double and wrk on CPU 1 (`--gw-cpus`, `--load-cpus`); one
gateway runs at a time, started fresh for each run. `--runs N` repeats the whole set, targets interleaved
and their order rotated each run so drift hits all alike; the tables show medians across valid runs.

Every wrk run also records the CPU (% of one core) of the gateway tree, of wrk + the double ("load"), and
of everything else on the machine ("other": other tenants, steal). Load at ~100% of its core means wrk/the
double limited the run (the "direct" row shows that capacity); other above --max-other-cpu means the run was
disturbed: it is rerun (--retries) after waiting for a quiet machine, and flagged if it stays disturbed.
"Non-2xx" is wrk's status-error counter (status > 399).

Run (from the repo root):
    uv run python benchmarks/load.py                                   # defaults: 8 s per case, 1 run
    uv run python benchmarks/load.py --duration 3 --only direct,ref_gw  # quick
    uv run python benchmarks/load.py --runs 3 --json /tmp/load.json
    uv run python benchmarks/load.py --target other=http://127.0.0.1:4000 --target-key sk-1234
Exit status: 0 if every run was valid, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WRK_DIR = Path(__file__).resolve().parent / "wrk"
SHARED_BENCH = REPO.parent / "shared" / "bench"
CHAT_PATH = "/v1/chat/completions"
PROMPT = [{"role": "user", "content": "Say hello in one short sentence please."}]
CHAT_BODY = json.dumps({"model": "gpt-4o-mini", "messages": PROMPT}).encode()
STREAM_BODY = json.dumps({"model": "gpt-4o-mini", "stream": True, "messages": PROMPT}).encode()
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
REFERENCE = "ref_gw"
DIRECT = "direct"


class BenchError(Exception):
    """A target could not be measured (did not start, answered wrongly, wrk failed)."""


# ---------------------------------------------------------------------------------------------- results


@dataclass
class Target:
    """One thing to put load on. kind: "direct" (the double), "spawn" (we start it), "external" (a URL)."""

    name: str
    kind: str
    key: str
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None  # None for a spawned target: a fresh temporary directory per start
    url: str = ""  # base URL: given for external, the double's for direct, filled in on spawn


@dataclass(frozen=True)
class Case:
    name: str
    script: Path
    concurrency: int


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    non_2xx: int
    wrk_cpu_pct: float  # of one core
    double_cpu_pct: float  # of one core
    gw_cpu_pct: float | None  # the gateway process tree, of one core (None: not ours)
    # busy CPU on the machine not from gateway, double or wrk (other tenants, steal, irq); None for an
    # external target, whose own CPU would be in it
    other_cpu_pct: float | None
    attempts: int = 1  # > 1: earlier attempts were disturbed by other load; this is the least disturbed

    @property
    def errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts + self.non_2xx

    def error_text(self) -> str:
        parts = {
            "connect": self.connect_errors,
            "read": self.read_errors,
            "write": self.write_errors,
            "timeout": self.timeouts,
            "non-2xx": self.non_2xx,
        }
        return ", ".join(f"{k} {v}" for k, v in parts.items() if v) or "none"


@dataclass
class GatewayStats:
    startup_ms: float
    rss_mb: float
    pss_mb: float | None
    idle_cpu_pct: float
    processes: int


@dataclass
class TargetRun:
    target: str
    run: int
    cases: dict[str, WrkResult] = field(default_factory=dict)
    stats: GatewayStats | None = None
    error: str = ""


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


def machine_busy_pct(seconds: float) -> float:
    """Busy CPU of the whole machine over the next `seconds`, as % of one core."""
    b0, t0 = machine_busy_ticks(), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (machine_busy_ticks() - b0) / CLK_TCK / (time.monotonic() - t0)


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


# ---------------------------------------------------------------------------------------------- processes


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
    """Every process this script started, stopped in reverse order on exit (also on Ctrl-C or errors)."""

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpus: str, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *cmd]


# ---------------------------------------------------------------------------------------------- HTTP probes


def http_call(base: str, method: str, path: str, body: bytes | None = None, key: str = "") -> tuple[int, bytes]:
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=5)
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    try:
        conn.request(method, u.path.rstrip("/") + path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(proc: Proc, probe: Callable[[], tuple[int, bytes]], timeout: float) -> float:
    """Poll until probe answers 200; returns seconds since spawn. BenchError with the log tail otherwise."""
    last = "no answer"
    deadline = proc.started + timeout
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
    raise BenchError(f"{proc.name} not ready after {timeout:.0f} s (last: {last}; log {proc.log}):\n{proc.tail()}")


def smoke_check(t: Target) -> None:
    """One request of each kind must succeed and look right before any load (an error page is no rps)."""
    status, body = http_call(t.url, "POST", CHAT_PATH, CHAT_BODY, t.key)
    if status != 200 or b'"choices"' not in body:
        raise BenchError(f"{t.name}: non-streaming chat answered {status}: {body[:300]!r}")
    status, body = http_call(t.url, "POST", CHAT_PATH, STREAM_BODY, t.key)
    if status != 200 or b"data: [DONE]" not in body:
        raise BenchError(f"{t.name}: streaming chat answered {status}: {body[:300]!r}")


# ---------------------------------------------------------------------------------------------- wrk


def parse_wrk(output: str) -> dict[str, float]:
    """The RESULT and LATENCY_US lines printed by benchmarks/wrk/report.lua, as one dict."""
    values: dict[str, float] = {}
    for line in output.splitlines():
        tag, _, rest = line.partition(" ")
        if tag in ("RESULT", "LATENCY_US"):
            for pair in rest.split():
                k, _, v = pair.partition("=")
                values[k] = float(v)
    if "requests" not in values or "p50" not in values:
        raise BenchError(f"wrk printed no RESULT/LATENCY_US lines:\n{output[-2000:]}")
    return values


@dataclass
class Bench:
    """What every step needs: options, the process registry, the double."""

    args: argparse.Namespace
    procs: Procs
    double: Proc | None = None
    double_url: str = ""

    def wrk(self, t: Target, script: Path, conc: int, seconds: int, gw: Proc | None, label: str) -> WrkResult:
        cmd = pinned(
            self.args.load_cpus,
            [
                self.args.wrk,
                "-t1",
                f"-c{conc}",
                f"-d{seconds}s",
                "--latency",
                f"--timeout={self.args.wrk_timeout}s",
                "-s",
                str(script),
                t.url.rstrip("/") + CHAT_PATH,
            ],
        )
        env = {**os.environ, "WRK_KEY": t.key}
        dbl0 = tree_cpu_ticks(self.double.pid) if self.double else {}
        gw0 = tree_cpu_ticks(gw.pid) if gw else {}
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy0, t0 = machine_busy_ticks(), time.monotonic()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
        wall = time.monotonic() - t0
        busy_pct = 100.0 * (machine_busy_ticks() - busy0) / CLK_TCK / wall
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        dbl_pct = cpu_pct(dbl0, tree_cpu_ticks(self.double.pid), wall) if self.double else 0.0
        gw_pct = cpu_pct(gw0, tree_cpu_ticks(gw.pid), wall) if gw else None
        (self.procs.logdir / f"{label}.wrk.txt").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise BenchError(f"wrk exited {proc.returncode} for {t.name}:\n{proc.stdout}{proc.stderr}")
        v = parse_wrk(proc.stdout)
        dur = v["duration_us"] / 1e6
        wrk_cpu = (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / wall * 100
        return WrkResult(
            requests=int(v["requests"]),
            duration_s=dur,
            rps=v["requests"] / dur,
            p50_ms=v["p50"] / 1e3,
            p90_ms=v["p90"] / 1e3,
            p95_ms=v["p95"] / 1e3,
            p99_ms=v["p99"] / 1e3,
            max_ms=v["max"] / 1e3,
            mean_ms=v["mean"] / 1e3,
            connect_errors=int(v["connect"]),
            read_errors=int(v["read"]),
            write_errors=int(v["write"]),
            timeouts=int(v["timeout"]),
            non_2xx=int(v["non2xx"]),
            wrk_cpu_pct=wrk_cpu,
            double_cpu_pct=dbl_pct,
            gw_cpu_pct=gw_pct,
            other_cpu_pct=None if t.kind == "external" else max(0.0, busy_pct - wrk_cpu - dbl_pct - (gw_pct or 0.0)),
        )

    # ------------------------------------------------------------------ the upstream double

    def start_double(self) -> None:
        a = self.args
        port = free_port()
        env = dict(os.environ)
        if a.double == "node":
            cmd = ["node", str(a.double_js)]
            env["PORT"] = str(port)
        else:
            cmd = [
                sys.executable,
                "-m",
                "llmgate.upstream_double",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
        self.double_url = f"http://127.0.0.1:{port}"
        self.double = self.procs.start(f"double-{a.double}", pinned(a.load_cpus, cmd), env, REPO)
        wait_ready(self.double, lambda: http_call(self.double_url, "GET", "/v1/models"), a.start_timeout)

    def check_double(self) -> None:
        if self.double and not self.double.alive():
            raise SystemExit(f"!!! the upstream double died (log {self.double.log}):\n{self.double.tail()}")

    # ------------------------------------------------------------------ one target, one run

    def start_gateway(self, t: Target) -> tuple[Proc, float]:
        port = free_port()
        cmd = [part.replace("{port}", str(port)) for part in t.cmd]
        env = {**os.environ, **{k: v.replace("{upstream}", self.double_url) for k, v in t.env.items()}}
        cwd = t.cwd or Path(tempfile.mkdtemp(prefix=f"{t.name}-", dir=self.procs.logdir))
        proc = self.procs.start(t.name, pinned(self.args.gw_cpus, cmd), env, cwd)
        t.url = f"http://127.0.0.1:{port}"
        seconds = wait_ready(
            proc, lambda: http_call(t.url, "POST", CHAT_PATH, CHAT_BODY, t.key), self.args.start_timeout
        )
        return proc, seconds * 1000

    def warm_up(self, t: Target, cases: list[Case], gw: Proc | None, run: int) -> None:
        seconds = max(1, self.args.warmup // 2)
        conc = max(c.concurrency for c in cases)
        for script in (WRK_DIR / "chat.lua", WRK_DIR / "stream.lua"):
            r = self.wrk(t, script, conc, seconds, gw, f"{t.name}.run{run}.warmup-{script.stem}")
            if r.errors:
                print(f"  !!! {t.name}: warm-up ({script.stem}) had errors: {r.error_text()}")

    def idle_stats(self, gw: Proc, startup_ms: float) -> GatewayStats:
        rss, pss, n = tree_memory(gw.pid)
        time.sleep(0.5)  # let wrk's connections close
        before, t0 = tree_cpu_ticks(gw.pid), time.monotonic()
        time.sleep(self.args.idle_seconds)
        idle = cpu_pct(before, tree_cpu_ticks(gw.pid), time.monotonic() - t0)
        return GatewayStats(startup_ms=startup_ms, rss_mb=rss, pss_mb=pss, idle_cpu_pct=idle, processes=n)

    def run_case(self, t: Target, case: Case, gw: Proc | None, run: int) -> WrkResult:
        """One wrk run; rerun (up to --retries) after waiting for quiet if other load disturbed it."""
        best: WrkResult | None = None
        for attempt in range(1, self.args.retries + 2):
            if attempt > 1:
                print(f"  (retrying {t.name} {case.name}: attempt {attempt})")
                self.wait_quiet(t.name)
            label = f"{t.name}.run{run}.{case.name}" + (f".try{attempt}" if attempt > 1 else "")
            r = self.wrk(t, case.script, case.concurrency, self.args.duration, gw, label)
            print_progress(t.name, case.name, r, self.args.max_other_cpu)
            if best is None or (r.other_cpu_pct or 0.0) < (best.other_cpu_pct or 0.0):
                best = r
            best.attempts = attempt
            if not disturbed(r.other_cpu_pct, self.args.max_other_cpu) or r.errors:
                break
        assert best is not None
        return best

    def wait_quiet(self, name: str) -> None:
        """Before a target: wait (up to --quiet-wait s) for a near-idle machine; say so if it never is."""
        start = time.monotonic()
        while (busy := machine_busy_pct(1.0)) > self.args.max_other_cpu:
            waited = time.monotonic() - start
            if waited >= self.args.quiet_wait:
                print(
                    f"  !!! {name}: machine still {busy:.0f}% busy (of one core) after {waited:.0f} s: other tenants?"
                )
                return
            if waited < 1.5:
                print(f"  (machine {busy:.0f}% busy before {name}; waiting up to {self.args.quiet_wait:g} s for quiet)")

    def measure(self, t: Target, cases: list[Case], run: int) -> TargetRun:
        result = TargetRun(target=t.name, run=run)
        gw: Proc | None = None
        startup_ms = 0.0
        try:
            self.check_double()
            self.wait_quiet(t.name)
            if t.kind == "spawn":
                gw, startup_ms = self.start_gateway(t)
            smoke_check(t)
            self.warm_up(t, cases, gw, run)
            for case in cases:
                result.cases[case.name] = self.run_case(t, case, gw, run)
            if gw:
                result.stats = self.idle_stats(gw, startup_ms)
                s = result.stats
                print(
                    f"  {t.name:<12} RSS {s.rss_mb:.1f} MB ({s.processes} procs), "
                    f"startup {s.startup_ms:.0f} ms, "
                    f"idle CPU {s.idle_cpu_pct:.1f} %"
                )
        except (BenchError, OSError, subprocess.TimeoutExpired) as e:
            result.error = str(e)
            print(f"\n!!! {t.name} (run {run}) FAILED: {e}\n")
        finally:
            if gw:
                self.procs.stop(gw)
        return result


def disturbed(other_cpu_pct: float | None, max_other: float) -> bool:
    return other_cpu_pct is not None and other_cpu_pct > max_other


def print_progress(target: str, case: str, r: WrkResult, max_other: float) -> None:
    gw = f"gw cpu {r.gw_cpu_pct:3.0f}%, " if r.gw_cpu_pct is not None else ""
    print(
        f"  {target:<12} {case:<14} {r.rps:9.0f} rps  p50 {r.p50_ms:7.2f}  p95 {r.p95_ms:7.2f}  "
        f"p99 {r.p99_ms:7.2f} ms  ({gw}wrk {r.wrk_cpu_pct:3.0f}% + double {r.double_cpu_pct:3.0f}%, "
        f"other {_pct(r.other_cpu_pct):>4})"
    )
    if disturbed(r.other_cpu_pct, max_other):
        print(f"  !!! {target} {case}: {r.other_cpu_pct:.0f}% of a core went to something else: disturbed run")
    if r.errors:
        print(f"  !!! INVALID: {target} {case}: {r.errors} errors of {r.requests} requests ({r.error_text()})")


# ---------------------------------------------------------------------------------------------- targets


def build_targets(args: argparse.Namespace) -> tuple[list[Target], list[str]]:
    """The targets to measure, and printed reasons for those skipped. Add a scenario: append a Target."""
    targets = [Target(DIRECT, "direct", key="sk-test")]
    skipped = []
    ref = args.ref_gw
    if ref.is_file():
        targets.append(
            Target(
                REFERENCE,
                "spawn",
                key="sk-test",
                cwd=ref.parent,
                cmd=[
                    str(args.granian),
                    "--interface",
                    "asgi",
                    "--workers",
                    "1",
                    "--loop",
                    "uvloop",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "{port}",
                    f"{ref.stem}:app",
                ],
                env={"HANDLER": "asgi", "CLIENT": "pyreqwest", "UPSTREAM": "{upstream}"},
            )
        )
    else:
        skipped.append(f"{REFERENCE}: {ref} does not exist")
    targets.append(
        Target(
            "llmgate",
            "spawn",
            key=args.llmgate_key,
            cmd=[
                sys.executable,
                "-m",
                "llmgate",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--workers",
                "1",
            ],
            env={
                "OPENAI_BASE_URL": "{upstream}/v1",
                "OPENAI_API_KEY": "sk-upstream",
                "LLMGATE_MASTER_KEY": args.llmgate_key,
            },
        )
    )
    for spec in args.target:
        name, sep, url = spec.partition("=")
        if not sep or not url.startswith("http"):
            raise SystemExit(f"--target wants NAME=URL, got {spec!r}")
        targets.append(Target(name, "external", key=args.target_key, url=url))
    if args.only:
        wanted = set(args.only.split(","))
        skipped += [f"{t.name}: not in --only" for t in targets if t.name not in wanted]
        targets = [t for t in targets if t.name in wanted]
    return targets, skipped


def build_cases(concurrency: list[int]) -> list[Case]:
    return [
        Case(f"{kind}-c{c}", WRK_DIR / f"{script}.lua", c)
        for kind, script in (("nonstream", "chat"), ("stream", "stream"))
        for c in concurrency
    ]


# ---------------------------------------------------------------------------------------------- summary


@dataclass
class Summary:
    """Medians across valid runs for one (target, case); invalid runs are counted, not averaged in."""

    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    runs: int
    invalid_runs: int
    gw_cpu_pct: float | None
    load_cpu_pct: float
    other_cpu_pct: float | None


def summarize(results: list[WrkResult]) -> Summary:
    valid = [r for r in results if not r.errors] or results  # all invalid: still show figures, flagged

    def med(key: Callable[[WrkResult], float]) -> float:
        return statistics.median(key(r) for r in valid)

    gw = [r.gw_cpu_pct for r in valid if r.gw_cpu_pct is not None]
    other = [r.other_cpu_pct for r in valid if r.other_cpu_pct is not None]
    return Summary(
        rps=med(lambda r: r.rps),
        p50_ms=med(lambda r: r.p50_ms),
        p95_ms=med(lambda r: r.p95_ms),
        p99_ms=med(lambda r: r.p99_ms),
        errors=sum(r.errors for r in results),
        runs=len(results),
        invalid_runs=sum(1 for r in results if r.errors),
        gw_cpu_pct=statistics.median(gw) if gw else None,
        load_cpu_pct=med(lambda r: r.wrk_cpu_pct + r.double_cpu_pct),
        other_cpu_pct=statistics.median(other) if other else None,
    )


def summaries(runs: list[TargetRun], names: list[str], cases: list[Case]) -> dict[str, dict[str, Summary]]:
    out: dict[str, dict[str, Summary]] = {}
    for case in cases:
        out[case.name] = {}
        for name in names:
            rs = [tr.cases[case.name] for tr in runs if tr.target == name and case.name in tr.cases]
            if rs:
                out[case.name][name] = summarize(rs)
    return out


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}%"


def print_case_table(case: str, rows: dict[str, Summary], max_other: float) -> None:
    ref, direct = rows.get(REFERENCE), rows.get(DIRECT)
    print(f"\n== {case} ==")
    print(
        f"{'target':<12} {'rps':>9} {'p50':>7} {'p95':>7} {'p99':>7} {'errors':>6} | {'rps/ref':>7} "
        f"{'Δp50 ref':>8} | {'Δp50 dir':>8} {'Δp95 dir':>8} {'Δp99 dir':>8} | {'gw cpu':>6} {'load cpu':>8} "
        f"{'other':>5}"
    )
    for name, s in rows.items():
        vs_ref = None if ref is None or name == DIRECT else s.rps / ref.rps
        d_ref = None if ref is None or name == DIRECT else s.p50_ms - ref.p50_ms
        d_dir = [
            None if direct is None or name == DIRECT else getattr(s, k) - getattr(direct, k)
            for k in ("p50_ms", "p95_ms", "p99_ms")
        ]
        flag = f"  !!! INVALID in {s.invalid_runs}/{s.runs} runs" if s.errors else ""
        flag += "  (disturbed: other load on the machine)" if disturbed(s.other_cpu_pct, max_other) else ""
        print(
            f"{name:<12} {s.rps:9.0f} {s.p50_ms:7.2f} {s.p95_ms:7.2f} {s.p99_ms:7.2f} {s.errors:6d} | "
            f"{_fmt(vs_ref, '7.2f'):>7} {_fmt(d_ref, '+8.2f'):>8} | "
            + " ".join(f"{_fmt(d, '+8.2f'):>8}" for d in d_dir)
            + f" | {_pct(s.gw_cpu_pct):>6} {_pct(s.load_cpu_pct):>8} {_pct(s.other_cpu_pct):>5}{flag}"
        )


def gateway_summary(runs: list[TargetRun], names: list[str]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for name in names:
        stats = [tr.stats for tr in runs if tr.target == name and tr.stats]
        if stats:
            pss = [s.pss_mb for s in stats if s.pss_mb is not None]
            out[name] = {
                "rss_mb": statistics.median(s.rss_mb for s in stats),
                "pss_mb": statistics.median(pss) if pss else None,
                "startup_ms": statistics.median(s.startup_ms for s in stats),
                "idle_cpu_pct": statistics.median(s.idle_cpu_pct for s in stats),
                "processes": stats[-1].processes,
            }
    return out


def print_gateway_table(gws: dict[str, dict[str, float | None]], idle_seconds: float) -> None:
    if not gws:
        return
    print(f"\n== gateways (medians; RSS/PSS of the process tree after load; idle CPU over {idle_seconds:g} s) ==")
    print(f"{'target':<12} {'RSS MB':>7} {'PSS MB':>7} {'procs':>5} {'startup ms':>10} {'idle CPU %':>10}")
    for name, g in gws.items():
        idle = g["idle_cpu_pct"] or 0.0
        note = "  <- busy while idle" if idle > 1.0 else ""
        print(
            f"{name:<12} {_fmt(g['rss_mb'], '7.1f')} {_fmt(g['pss_mb'], '7.1f'):>7} "
            f"{_fmt(g['processes'], '5.0f')} "
            f"{_fmt(g['startup_ms'], '10.0f')} {idle:10.2f}{note}"
        )


SATURATED = 85.0  # % of one core above which a side counts as the limit


def verdict(s: Summary) -> str:
    """Which side limited a gateway's run, from the CPU each side used."""
    if s.load_cpu_pct >= SATURATED:
        return f"!!! load side at {s.load_cpu_pct:.0f}% of its core: wrk/double may be the bottleneck"
    if s.gw_cpu_pct is not None and s.gw_cpu_pct >= SATURATED:
        return f"gateway core at {s.gw_cpu_pct:.0f}%, load side at {s.load_cpu_pct:.0f}%: the gateway is the limit"
    gw = "unknown" if s.gw_cpu_pct is None else f"{s.gw_cpu_pct:.0f}%"
    return (
        f"neither core saturated (gateway {gw}, load side {s.load_cpu_pct:.0f}%, "
        f"other {_fmt(s.other_cpu_pct, '.0f')}%): latency-bound or disturbed"
    )


def print_wrk_check(table: dict[str, dict[str, Summary]], cases: list[Case]) -> None:
    """Is the load side (wrk + double on the load CPUs) fast enough that gateways are what is measured?"""
    top = max((c for c in cases if c.name.startswith("nonstream")), key=lambda c: c.concurrency, default=None)
    direct = table.get(top.name, {}).get(DIRECT) if top else None
    if top is None or direct is None:
        print("\nwrk check: no direct measurement (include 'direct' to check wrk is not the bottleneck)")
        return
    print(
        f"\nwrk check: wrk against the double directly ({top.name}, the 'direct' row): {direct.rps:.0f} rps, "
        f"p50 {direct.p50_ms:.2f} ms, p99 {direct.p99_ms:.2f} ms, wrk + double at {direct.load_cpu_pct:.0f}% "
        "of their core: the load side's capacity."
    )
    for case in (c for c in cases if c.concurrency == top.concurrency):
        for name, s in table.get(case.name, {}).items():
            if name != DIRECT:
                share = s.rps / direct.rps if case.name == top.name else None
                rate = f"{share:.0%} of direct; " if share is not None else ""
                print(f"  {name:<12} {case.name:<14} {rate}{verdict(s)}")


# ---------------------------------------------------------------------------------------------- machine


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unavailable"


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    packages: dict[str, str | None] = {}
    for pkg in ("granian", "litestar", "pyreqwest", "msgspec", "uvloop", "llmgate"):
        try:
            packages[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            packages[pkg] = None
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": packages,
        "wrk": _version([args.wrk, "-v"]),
        "node": _version(["node", "--version"]) if args.double == "node" else None,
        "double": args.double,
        "gateway_cpus": args.gw_cpus,
        "load_cpus": args.load_cpus,
    }


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=int, default=8, help="seconds per wrk run (default 8)")
    p.add_argument("--concurrency", default="1,32", help="comma-separated connection counts (default 1,32)")
    p.add_argument("--runs", type=int, default=1, help="repeat the whole set N times; medians (default 1)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up seconds per target, half each kind (default 2)")
    p.add_argument("--idle-seconds", type=float, default=5.0, help="idle CPU window after load (default 5)")
    p.add_argument(
        "--double",
        choices=("node", "python"),
        default=None,
        help="upstream double: node (mock_upstream.js, default when node and the file exist) "
        "or python (python -m llmgate.upstream_double)",
    )
    p.add_argument("--double-js", type=Path, default=SHARED_BENCH / "mock_upstream.js")
    p.add_argument("--ref-gw", type=Path, default=SHARED_BENCH / "ref_gw.py", help="the reference floor")
    p.add_argument("--granian", type=Path, default=None, help="granian executable (default: next to python)")
    p.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    p.add_argument("--wrk-timeout", type=int, default=10, help="wrk's per-request timeout, s (default 10)")
    p.add_argument("--gw-cpus", default="0", help="taskset CPU list for gateways (default 0)")
    p.add_argument("--load-cpus", default="1", help="taskset CPU list for the double and wrk (default 1)")
    p.add_argument("--llmgate-key", default="sk-bench-master", help="LLMGATE_MASTER_KEY and the bearer sent")
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="also measure something already running at URL (repeatable)",
    )
    p.add_argument("--target-key", default="sk-test", help="bearer for --target URLs (default sk-test)")
    p.add_argument("--only", default="", help="comma-separated target names to run (e.g. direct,ref_gw)")
    p.add_argument(
        "--max-other-cpu",
        type=float,
        default=15.0,
        help="machine busy %% (of one core) above which it counts as disturbed (default 15)",
    )
    p.add_argument("--retries", type=int, default=2, help="reruns of a case disturbed by other load (default 2)")
    p.add_argument("--quiet-wait", type=float, default=30.0, help="max s to wait for quiet per target")
    p.add_argument("--start-timeout", type=float, default=30.0, help="readiness timeout, s (default 30)")
    p.add_argument("--logdir", type=Path, default=None, help="process logs and raw wrk output (default: a temp dir)")
    p.add_argument("--json", type=Path, default=None, help="write all figures and the machine description here")
    args = p.parse_args(argv)
    args.ref_gw = (REPO / args.ref_gw).resolve() if not args.ref_gw.is_absolute() else args.ref_gw
    args.concurrency_list = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if args.double is None:
        args.double = "node" if shutil.which("node") and args.double_js.is_file() else "python"
    if args.granian is None:
        local = Path(sys.executable).parent / "granian"
        args.granian = local if local.exists() else Path(shutil.which("granian") or "granian")
    return args


def run_all(bench: Bench, targets: list[Target], cases: list[Case]) -> list[TargetRun]:
    runs: list[TargetRun] = []
    for run in range(1, bench.args.runs + 1):
        k = (run - 1) % len(targets)
        order = targets[k:] + targets[:k]  # rotate so no target always goes first or last
        print(f"\n--- run {run}/{bench.args.runs}: {', '.join(t.name for t in order)}")
        for t in order:
            if t.kind == "direct":
                t.url = bench.double_url
            runs.append(bench.measure(t, cases, run))
    return runs


def report(
    args: argparse.Namespace,
    targets: list[Target],
    cases: list[Case],
    runs: list[TargetRun],
    skipped: list[str],
) -> bool:
    names = [t.name for t in targets]
    table = summaries(runs, names, cases)
    print(
        f"\n===== results: medians of {args.runs} run(s), {args.duration} s each; ms; "
        "Δ = difference in ms (ref: vs ref_gw, dir: vs direct); cpu = % of one core"
    )
    for case in cases:
        print_case_table(case.name, table[case.name], args.max_other_cpu)
    gws = gateway_summary(runs, names)
    print_gateway_table(gws, args.idle_seconds)
    print_wrk_check(table, cases)
    failed = [tr for tr in runs if tr.error]
    invalid = [(tr.target, tr.run, c) for tr in runs for c, r in tr.cases.items() if r.errors]
    for reason in skipped:
        print(f"skipped {reason}")
    for tr in failed:
        print(f"!!! FAILED {tr.target} run {tr.run}: {tr.error.splitlines()[0]}")
    if invalid:
        print(
            f"!!! {len(invalid)} INVALID wrk run(s) (socket errors or non-2xx): "
            + ", ".join(f"{t} run {r} {c}" for t, r, c in invalid)
        )
    noisy = [
        (tr.target, tr.run, c, r.other_cpu_pct or 0.0)
        for tr in runs
        for c, r in tr.cases.items()
        if disturbed(r.other_cpu_pct, args.max_other_cpu)
    ]
    if noisy:
        print(
            f"note: {len(noisy)} wrk run(s) shared the machine with other load (> {args.max_other_cpu:g}% of a "
            "core; figures less reliable): " + ", ".join(f"{t} run {r} {c} ({o:.0f}%)" for t, r, c, o in noisy)
        )
    ok = not failed and not invalid
    if args.json:
        doc = {
            "machine": machine_info(args),
            "valid": ok,
            "disturbed": [{"target": t, "run": r, "case": c, "other_cpu_pct": o} for t, r, c, o in noisy],
            "skipped": skipped,
            "config": {
                "duration_s": args.duration,
                "concurrency": args.concurrency_list,
                "runs": args.runs,
                "warmup_s": args.warmup,
                "idle_seconds": args.idle_seconds,
                "ref_gw": str(args.ref_gw),
                "targets": [{"name": t.name, "kind": t.kind, "cmd": t.cmd, "env": t.env} for t in targets],
            },
            "medians": {case: {n: asdict(s) for n, s in rows.items()} for case, rows in table.items()},
            "gateways": gws,
            "runs": [
                {**asdict(tr), "cases": {c: {**asdict(r), "errors": r.errors} for c, r in tr.cases.items()}}
                for tr in runs
            ],
        }
        args.json.write_text(json.dumps(doc, indent=2))
        print(f"wrote {args.json}")
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    targets, skipped = build_targets(args)
    for reason in skipped:
        print(f"skipping {reason}")
    if not targets:
        raise SystemExit("nothing to measure")
    cases = build_cases(args.concurrency_list)
    logdir = args.logdir or Path(tempfile.mkdtemp(prefix="llmgate-load-"))
    logdir.mkdir(parents=True, exist_ok=True)
    procs = Procs(logdir)
    print(
        f"gateways on CPU {args.gw_cpus}, {args.double} double + wrk on CPU {args.load_cpus}; "
        f"cases {', '.join(c.name for c in cases)}, {args.duration} s each; logs in {logdir}"
    )
    with terminate_as_exit():
        try:
            bench = Bench(args, procs)
            bench.start_double()
            runs = run_all(bench, targets, cases)
        except BenchError as e:
            print(f"!!! {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"\ninterrupted: stopping {len(procs.live)} process(es) started here", file=sys.stderr)
            return 130
        finally:
            procs.stop_all()
    return 0 if report(args, targets, cases, runs, skipped) else 1


if __name__ == "__main__":
    sys.exit(main())
