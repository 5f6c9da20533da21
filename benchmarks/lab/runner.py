"""Rounds of measurement, interleaved finely: each case runs on every target back to back, order rotated.

First every spawned gateway is started `rounds` times (time to the first 200 each time; the last start is kept
running), checked with one request of each kind and warmed up. Then, for each round and each case
(kind x concurrency), one short load run per target, targets in a rotating order: the runs whose ratio is taken
are seconds apart, so a neighbour's burst of CPU on a shared machine hits both sides of most pairs alike
(restarting gateways between rounds put tens of seconds between the two sides of a pair, and the gate flaked).
Last, the memory of each gateway's process tree after load and its idle CPU over one common window.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from benchmarks.lab.loadgen import BODIES, CHAT_PATH, CpuWatch, Kind, LoadGenerator, LoadResult
from benchmarks.lab.processes import (
    BenchError,
    Proc,
    Procs,
    cpu_pct,
    http_call,
    pinned,
    tree_cpu_ticks,
    tree_memory,
    wait_ready,
)
from benchmarks.lab.scenarios import Target, base_env
from tests.upstream_double import free_port


@dataclass(frozen=True)
class Case:
    kind: Kind
    concurrency: int

    @property
    def name(self) -> str:
        return f"{self.kind}-c{self.concurrency}"


@dataclass
class GatewayStats:
    """Measured after a spawned gateway's last round."""

    rss_mb: float
    pss_mb: float | None
    processes: int
    idle_cpu_pct: float


@dataclass
class TargetRound:
    target: str
    round: int
    cases: dict[str, LoadResult] = field(default_factory=dict)
    startup_ms: float | None = None
    stats: GatewayStats | None = None
    error: str = ""


@dataclass
class Options:
    rounds: int
    duration_s: float
    warmup_s: float
    idle_s: float
    start_timeout_s: float
    gw_cpus: str | None


class Progress(Protocol):
    """What the runner tells the screen (report.StepProgress draws it with rich)."""

    def step(self, label: str, seconds: float) -> None: ...

    def done(self, label: str, detail: str) -> None: ...


def build_cases(kinds: list[Kind], concurrency: list[int]) -> list[Case]:
    return [Case(kind, c) for kind in kinds for c in concurrency]


def rotated(targets: list[Target], round_: int) -> list[Target]:
    """Round r starts with target r-1 (mod n): over n rounds each target runs once in each position. Empty when
    no target came up (each has its error; the report says so)."""
    if not targets:
        return []
    k = (round_ - 1) % len(targets)
    return targets[k:] + targets[:k]


@dataclass
class Runner:
    options: Options
    procs: Procs
    loadgen: LoadGenerator
    double: Proc | None
    progress: Progress
    rounds: list[TargetRound] = field(default_factory=list)

    def run(self, targets: list[Target], cases: list[Case]) -> list[TargetRound]:
        rounds = {(t.name, r): TargetRound(t.name, r) for t in targets for r in range(1, self.options.rounds + 1)}
        live: dict[str, Proc | None] = {}
        try:
            for t in targets:
                self._check_double()
                try:
                    live[t.name] = self._bring_up(t, cases, rounds)
                except (BenchError, OSError, subprocess.TimeoutExpired) as e:
                    for r in range(1, self.options.rounds + 1):
                        rounds[t.name, r].error = str(e)
                    self.progress.done(f"start   {t.name}", f"!!! FAILED: {str(e).splitlines()[0]}")
            up = [t for t in targets if t.name in live]
            step = 0
            for r in range(1, self.options.rounds + 1):
                for case in cases:
                    step += 1
                    for t in rotated(up, step):
                        self._run_case(t, case, live[t.name], rounds[t.name, r])
            gateways = {name: gw for name, gw in live.items() if gw is not None}
            if gateways:
                last = self.options.rounds
                for name, stats in self._idle_stats(gateways).items():
                    rounds[name, last].stats = stats
        finally:
            for gw in live.values():
                if gw:
                    self.procs.stop(gw)
        self.rounds = list(rounds.values())
        return self.rounds

    def _bring_up(self, t: Target, cases: list[Case], rounds: dict[tuple[str, int], TargetRound]) -> Proc | None:
        """Start a spawned target `rounds` times (start-up samples), keep the last; check and warm up any target."""
        gw: Proc | None = None
        if t.kind == "spawn":
            for r in range(1, self.options.rounds + 1):
                if gw:
                    self.procs.stop(gw)
                gw, rounds[t.name, r].startup_ms = self._start(t)
            if t.prepare:
                t.prepare(t)
        smoke_check(t)
        self._warm_up(t, cases, gw)
        return gw

    def _run_case(self, t: Target, case: Case, gw: Proc | None, result: TargetRound) -> None:
        label = f"round {result.round}  {t.name:<22} {case.name}"
        self.progress.step(label, self.options.duration_s)
        try:
            self._check_double()
            if gw is not None and not gw.alive():
                raise BenchError(f"{t.name} exited with code {gw.popen.returncode} (log {gw.log}):\n{gw.tail()}")
            r = self.loadgen.run(t.url, t.key, case.kind, case.concurrency, self.options.duration_s,
                                 self._watch(gw, t), f"{t.name.replace('/', '_')}.r{result.round}.{case.name}")
        except (BenchError, OSError, subprocess.TimeoutExpired) as e:
            result.error = str(e)
            self.progress.done(label, f"!!! FAILED: {str(e).splitlines()[0]}")
            return
        result.cases[case.name] = r
        other = "" if r.other_cpu_pct is None else f"  (other load {r.other_cpu_pct:3.0f}% of a core)"
        self.progress.done(label, f"{r.rps:8.0f} rps  p50 {r.p50_ms:6.2f}  p95 {r.p95_ms:6.2f}  p99 {r.p99_ms:6.2f} ms"
                                  + other + (f"  !!! {r.errors} errors" if r.errors else ""))

    def _watch(self, gw: Proc | None, t: Target | None = None) -> CpuWatch:
        is_ours = t is None or t.kind != "external"
        return CpuWatch(gw.pid if gw else None, self.double.pid if self.double else None, is_ours)

    def _check_double(self) -> None:
        if self.double and not self.double.alive():
            raise SystemExit(f"!!! the upstream double died (log {self.double.log}):\n{self.double.tail()}")

    def _start(self, t: Target) -> tuple[Proc, float]:
        port = free_port()
        cmd = [part.replace("{port}", str(port)) for part in t.cmd]
        data_dir = Path(self.procs.logdir) / f"data-{t.name.replace('/', '_')}-{time.monotonic_ns()}"
        data_dir.mkdir()
        env = {**base_env(), "LLMGATE_DATA_DIR": str(data_dir), **t.env}
        self.progress.step(f"start   {t.name}", 1.0)
        proc = self.procs.start(t.name.replace("/", "_"), pinned(self.options.gw_cpus, cmd), env, data_dir)
        t.url = f"http://127.0.0.1:{port}"
        key = t.env.get("LLMGATE_MASTER_KEY", t.key)  # a virtual token is created only once it answers
        seconds = wait_ready(proc, lambda: http_call(t.url, "POST", CHAT_PATH, BODIES["nonstream"], key),
                             self.options.start_timeout_s)
        self.progress.done(f"start   {t.name}", f"first 200 after {seconds * 1000:.0f} ms")
        return proc, seconds * 1000

    def _warm_up(self, t: Target, cases: list[Case], gw: Proc | None) -> None:
        if self.options.warmup_s <= 0:
            return
        kinds = sorted({c.kind for c in cases})
        conc = max(c.concurrency for c in cases)
        for kind in kinds:
            seconds = self.options.warmup_s / len(kinds)
            label = f"warm-up {t.name} {kind}"
            self.progress.step(label, seconds)
            r = self.loadgen.run(t.url, t.key, kind, conc, seconds, self._watch(gw), f"warmup.{kind}")
            self.progress.done(label, f"{r.rps:.0f} rps" + (f"  !!! {r.errors} errors" if r.errors else ""))

    def _idle_stats(self, gateways: dict[str, Proc]) -> dict[str, GatewayStats]:
        """Memory of each tree right after load; then idle CPU of each over one common window."""
        memory = {name: tree_memory(gw.pid) for name, gw in gateways.items()}
        time.sleep(0.5)  # let the load generator's connections close
        self.progress.step("idle CPU", self.options.idle_s)
        before = {name: tree_cpu_ticks(gw.pid) for name, gw in gateways.items()}
        t0 = time.monotonic()
        time.sleep(self.options.idle_s)
        wall = time.monotonic() - t0
        out = {}
        for name, gw in gateways.items():
            rss, pss, n = memory[name]
            out[name] = GatewayStats(rss_mb=rss, pss_mb=pss, processes=n,
                                     idle_cpu_pct=cpu_pct(before[name], tree_cpu_ticks(gw.pid), wall))
        self.progress.done("idle CPU", ", ".join(f"{n} {s.idle_cpu_pct:.2f} %" for n, s in out.items())
                           + f" over {self.options.idle_s:g} s")
        return out


def smoke_check(t: Target) -> None:
    """One request of each kind must succeed and look right before any load (an error page is no rps)."""
    status, body = http_call(t.url, "POST", CHAT_PATH, BODIES["nonstream"], t.key)
    if status != 200 or b'"choices"' not in body:
        raise BenchError(f"{t.name}: non-streaming chat answered {status}: {body[:300]!r}")
    status, body = http_call(t.url, "POST", CHAT_PATH, BODIES["stream"], t.key)
    if status != 200 or b"data: [DONE]" not in body:
        raise BenchError(f"{t.name}: streaming chat answered {status}: {body[:300]!r}")
