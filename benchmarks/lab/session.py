"""One lab invocation: the double, the targets, the rounds, the report and the gate."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.lab.footprint import footprint
from benchmarks.lab.gate import Tolerances, compare, persistent
from benchmarks.lab.loadgen import KINDS, LoadGenerator, wrk_path
from benchmarks.lab.processes import Proc, Procs, default_cpus, http_call, pinned, terminate_as_exit, wait_ready
from benchmarks.lab.report import StepProgress, gate_table, machine_info, print_report
from benchmarks.lab.runner import Options, Runner, build_cases
from benchmarks.lab.scenarios import SCENARIOS, build_targets
from benchmarks.lab.summary import build_document, ceiling_check
from tests.upstream_double import free_port, importable_env


def split_list(text: str) -> list[str]:
    """"a, b,c" → ["a", "b", "c"]."""
    return [x.strip() for x in text.split(",") if x.strip()]


def meta(args: argparse.Namespace, tool: str, gw_cpus: str | None, load_cpus: str | None) -> dict[str, Any]:
    """The run's description for the JSON document (the machine is added by the session)."""
    return {
        "created_unix": time.time(),
        "config": {
            "scenarios": split_list(args.scenarios), "kinds": split_list(args.kinds),
            "concurrency": [int(c) for c in split_list(args.concurrency)], "duration_s": args.duration,
            "rounds": args.rounds, "warmup_s": args.warmup, "idle_s": args.idle_seconds,
            "double": args.upstream or (str(args.double_js) if args.double_js else "tests.upstream_double"),
            "gateway_app": args.gateway_app, "gateway_cpus": gw_cpus, "load_cpus": load_cpus,
            "targets": args.target,
        },
        "load_generator": tool,
    }


def default_logdir() -> Path:
    """A fresh temporary directory for the processes' logs."""
    return Path(tempfile.mkdtemp(prefix="llmgate-bench-"))


def pin_self(load_cpus: str | None) -> None:
    """The built-in generator runs in this process: put it on the load side's CPUs."""
    if load_cpus:
        cpus: set[int] = set()
        for part in load_cpus.split(","):
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
        os.sched_setaffinity(0, cpus)


def validate(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, or None."""
    scenarios = SCENARIOS if args.scenarios == "all" else tuple(split_list(args.scenarios))
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        return f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}"
    args.scenarios = ",".join(scenarios)
    bad_kinds = [k for k in split_list(args.kinds) if k not in KINDS]
    if bad_kinds or not split_list(args.kinds):
        return f"--kinds takes {', '.join(KINDS)}, got {args.kinds!r}"
    if args.loadgen == "wrk" and not wrk_path():
        return "--loadgen wrk: wrk is not installed"
    if args.gate and not args.gate.is_file():
        return f"--gate {args.gate}: no such file"
    if args.rounds < 1 or args.duration <= 0:
        return "--rounds must be >= 1 and --duration > 0"
    return None


@dataclass
class Session:
    args: argparse.Namespace
    console: Console
    procs: Procs
    loadgen: LoadGenerator
    gw_cpus: str | None
    load_cpus: str | None
    double: Proc | None = None
    double_url: str = ""
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @classmethod
    def create(cls, args: argparse.Namespace) -> Session:
        gw_cpus, load_cpus = (None, None) if args.no_pin else default_cpus()
        gw_cpus, load_cpus = args.gw_cpus or gw_cpus, args.load_cpus or load_cpus
        wrk = wrk_path()
        tool = "wrk" if args.loadgen == "wrk" or (args.loadgen == "auto" and wrk) else "builtin"
        logdir = args.logdir or default_logdir()
        logdir.mkdir(parents=True, exist_ok=True)
        if tool == "builtin":
            pin_self(load_cpus)
        loadgen = LoadGenerator(tool, load_cpus, logdir, wrk or "wrk")  # type: ignore[arg-type]
        # Without a terminal (CI logs, files) rich would wrap at 80 columns; the case tables need ~150.
        console = Console() if sys.stdout.isatty() else Console(width=160)
        return cls(args, console, Procs(logdir), loadgen, gw_cpus, load_cpus)

    def __enter__(self) -> Session:
        self._stack.enter_context(terminate_as_exit())
        self._stack.callback(self.procs.stop_all)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def start_double(self) -> None:
        if self.args.upstream:  # already running: its own CPU is not counted on the load side
            self.double_url = self.args.upstream.rstrip("/")
            return
        port = free_port()
        env = importable_env({**os.environ, "PORT": str(port)})
        if self.args.double_js:
            cmd = ["node", str(self.args.double_js)]
        else:
            cmd = [sys.executable, "-m", "tests.upstream_double", "--host", "127.0.0.1", "--port", str(port)]
        self.double_url = f"http://127.0.0.1:{port}"
        self.double = self.procs.start("double", pinned(self.load_cpus, cmd), env)
        wait_ready(self.double, lambda: http_call(self.double_url, "GET", "/v1/models"), self.args.start_timeout)

    def measure(self) -> dict[str, Any]:
        """One full measurement (all rounds) → the JSON document."""
        a = self.args
        if not self.double_url:
            self.start_double()
            tool = self.loadgen.tool
            pin = f"gateways on CPU {self.gw_cpus}, load + double on {self.load_cpus}" if self.gw_cpus else "no pinning"
            self.console.print(f"load generator: {tool}{' (installed)' if tool == 'wrk' else ' (wrk not found)'}; "
                               f"{pin}; logs in {self.procs.logdir}")
        extra_env = dict(item.split("=", 1) for item in a.gateway_env)
        targets = build_targets(split_list(a.scenarios), self.double_url, a.target, a.target_key, a.gateway_app,
                                extra_env)
        cases = build_cases(split_list(a.kinds), [int(c) for c in split_list(a.concurrency)])  # type: ignore[arg-type]
        options = Options(a.rounds, a.duration, a.warmup, a.idle_seconds, a.start_timeout, self.gw_cpus)
        with StepProgress(self.console) as progress:
            rounds = Runner(options, self.procs, self.loadgen, self.double, progress).run(targets, cases)
        doc_meta = meta(a, self.loadgen.tool, self.gw_cpus, self.load_cpus)
        doc_meta["machine"] = machine_info(wrk_path())
        if not a.no_footprint:
            doc_meta["footprint"] = footprint()
        return build_document(rounds, [t.name for t in targets], [c.name for c in cases], doc_meta, a.max_other_cpu)

    def report(self, doc: dict[str, Any]) -> None:
        print_report(self.console, doc, self.args.idle_seconds)
        for warning in ceiling_check(doc):
            self.console.print(f"[yellow]warning[/yellow]: {warning}")

    def gate(self, doc: dict[str, Any], baseline: dict[str, Any]) -> bool:
        """Compare with the baseline; measure again once before declaring a regression. True: none."""
        a = self.args
        tol = Tolerances(a.tolerance, a.floor_us, a.memory_tolerance, a.memory_floor_mb, a.startup_tolerance,
                         a.startup_floor_ms, a.cpu_tolerance)
        first, missing = compare(baseline, doc, tol)
        self.console.print(gate_table(first))
        for m in missing:
            self.console.print(f"gate: not compared: {m}")
        if not any(c.failed or c.inconclusive for c in first):
            self.console.print("[green]gate: no regression[/green]")
            return True
        names = ", ".join(c.figure for c in first if c.failed or c.inconclusive)
        self.console.print(f"gate: over the limit, measuring again before deciding: {names}")
        second_doc = self.measure()
        second, _ = compare(baseline, second_doc, tol)
        self.console.print(gate_table(second))
        failed = persistent(first, second)
        busy = [c for c in second if c.inconclusive]
        for c in busy:
            self.console.print(f"[yellow]gate: INCONCLUSIVE[/yellow] (the machine was busy with other work in every "
                               f"pair of runs) {c.describe()}")
        if not failed:
            self.console.print("[green]gate: no regression (the re-measurement was within the limits"
                               + (", or too disturbed to judge" if busy else "") + ")[/green]")
            return True
        for c in failed:
            self.console.print(f"[red]gate: REGRESSION[/red] {c.describe()}")
        print("benchmarks.lab: regression in " + "; ".join(c.figure for c in failed), file=sys.stderr)
        return False

