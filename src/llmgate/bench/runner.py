"""Rounds of measurement: every target in each round, the order rotated so drift hits all alike.

A round, for each target: start it fresh (spawned gateways: time to the first 200), one request of each kind
must answer correctly, a short warm-up, then one load run per case (kind x concurrency). After a spawned
gateway's last round: the memory of its process tree after load and its idle CPU. The double runs the whole
time; the "direct" target measures it (and the load generator's own ceiling) in every round.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from llmgate.bench.loadgen import BODIES, CHAT_PATH, CpuWatch, Kind, LoadGenerator, LoadResult
from llmgate.bench.processes import (
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
from llmgate.bench.scenarios import Target, base_env
from llmgate.upstream_double import free_port


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
    """Round r starts with target r-1 (mod n): over n rounds each target runs once in each position."""
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
        for round_ in range(1, self.options.rounds + 1):
            for target in rotated(targets, round_):
                self.rounds.append(self.measure(target, cases, round_))
        return self.rounds

    def measure(self, t: Target, cases: list[Case], round_: int) -> TargetRound:
        result = TargetRound(target=t.name, round=round_)
        gw: Proc | None = None
        try:
            self._check_double()
            if t.kind == "spawn":
                gw, result.startup_ms = self._start(t)
            smoke_check(t)
            self._warm_up(t, cases, gw)
            for case in cases:
                label = f"round {round_}  {t.name:<22} {case.name}"
                self.progress.step(label, self.options.duration_s)
                r = self.loadgen.run(t.url, t.key, case.kind, case.concurrency, self.options.duration_s,
                                     self._watch(gw), f"{t.name.replace('/', '_')}.r{round_}.{case.name}")
                result.cases[case.name] = r
                self.progress.done(label, f"{r.rps:8.0f} rps  p50 {r.p50_ms:6.2f}  p95 {r.p95_ms:6.2f}  "
                                          f"p99 {r.p99_ms:6.2f} ms" + (f"  !!! {r.errors} errors" if r.errors else ""))
            if gw and round_ == self.options.rounds:
                result.stats = self._idle_stats(gw)
        except (BenchError, OSError, subprocess.TimeoutExpired) as e:
            result.error = str(e)
            self.progress.done(f"round {round_}  {t.name}", f"!!! FAILED: {str(e).splitlines()[0]}")
        finally:
            if gw:
                self.procs.stop(gw)
        return result

    def _watch(self, gw: Proc | None) -> CpuWatch:
        return CpuWatch(gw.pid if gw else None, self.double.pid if self.double else None)

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
        seconds = wait_ready(proc, lambda: http_call(t.url, "POST", CHAT_PATH, BODIES["nonstream"], t.key),
                             self.options.start_timeout_s)
        self.progress.done(f"start   {t.name}", f"first 200 after {seconds * 1000:.0f} ms")
        if t.prepare:
            t.prepare(t)
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

    def _idle_stats(self, gw: Proc) -> GatewayStats:
        rss, pss, n = tree_memory(gw.pid)
        time.sleep(0.5)  # let the load generator's connections close
        self.progress.step("idle CPU", self.options.idle_s)
        before, t0 = tree_cpu_ticks(gw.pid), time.monotonic()
        time.sleep(self.options.idle_s)
        idle = cpu_pct(before, tree_cpu_ticks(gw.pid), time.monotonic() - t0)
        self.progress.done("idle CPU", f"{idle:.2f} % over {self.options.idle_s:g} s; RSS {rss:.1f} MB")
        return GatewayStats(rss_mb=rss, pss_mb=pss, processes=n, idle_cpu_pct=idle)


def smoke_check(t: Target) -> None:
    """One request of each kind must succeed and look right before any load (an error page is no rps)."""
    status, body = http_call(t.url, "POST", CHAT_PATH, BODIES["nonstream"], t.key)
    if status != 200 or b'"choices"' not in body:
        raise BenchError(f"{t.name}: non-streaming chat answered {status}: {body[:300]!r}")
    status, body = http_call(t.url, "POST", CHAT_PATH, BODIES["stream"], t.key)
    if status != 200 or b"data: [DONE]" not in body:
        raise BenchError(f"{t.name}: streaming chat answered {status}: {body[:300]!r}")
