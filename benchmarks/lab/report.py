"""What the bench shows: a progress bar per step while it runs, then the tables (rich); the machine's description.

rich is imported by the lab only; the gateway never loads this module.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import threading
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from benchmarks.lab.gate import Comparison
from benchmarks.lab.scenarios import DIRECT

KEY_PACKAGES = ("llmgate", "granian", "litestar", "msgspec", "pyreqwest", "aiohttp", "uvloop")


class StepProgress:
    """One bar per step (a load run, a start-up, the idle window), filled over the step's expected seconds; each
    finished step also leaves a line, so a log without a terminal still shows progress."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                             console=console, transient=True)
        self._task: Any = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> StepProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._end_step()
        self.bars.stop()

    def step(self, label: str, seconds: float) -> None:
        self._end_step()
        self._task = self.bars.add_task(label, total=max(seconds, 0.1))
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, args=(self._task, self._stop), daemon=True)
        self._ticker.start()

    def done(self, label: str, detail: str) -> None:
        self._end_step()
        self.console.print(f"  {label:<48} {detail}", highlight=False)

    def _tick(self, task: Any, stop: threading.Event) -> None:
        t0 = time.monotonic()
        while not stop.wait(0.1):
            self.bars.update(task, completed=time.monotonic() - t0)

    def _end_step(self) -> None:
        if self._task is not None:
            self._stop.set()
            if self._ticker:
                self._ticker.join()
            self.bars.remove_task(self._task)
            self._task = None


def _f(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def case_table(case: str, rows: dict[str, dict[str, Any]]) -> Table:
    """One case: every target's rps and latencies, overhead over direct at p50/p95/p99, ratios."""
    others = [n for n in rows if n != DIRECT]
    table = Table(title=f"{case}  (ms; overhead = target - direct, paired per round; medians)", title_justify="left")
    for col in ("target", "rps", "p50", "p95", "p99", "ttfb p50", "ttfb p95", "+p50", "+p95", "+p99",
                "rps/direct", "p95/direct"):
        table.add_column(col, justify="left" if col == "target" else "right", no_wrap=col == "target")
    for other in others[1:]:
        table.add_column(f"rps/{other.removeprefix('llmgate/')}", justify="right")
    for name, row in rows.items():
        vs = row.get("vs_direct") or {}
        cells = [name, f"{row['rps']:,.0f}", *(f"{row[f'{p}_ms']:.2f}" for p in ("p50", "p95", "p99")),
                 _f(row.get("ttfb_p50_ms"), ".2f"), _f(row.get("ttfb_p95_ms"), ".2f"),
                 *(_f(vs.get(f"overhead_{p}_ms"), "+.2f") for p in ("p50", "p95", "p99")),
                 _f(vs.get("rps_ratio"), ".2f"), _f(vs.get("p95_ratio"), ".2f")]
        cells += [_f((row.get("rps_vs") or {}).get(o), ".2f") for o in others[1:]]
        if row["errors"]:
            cells[0] += f" !!! {row['errors']} errors"
        table.add_row(*cells)
    return table


def gateway_table(gateways: dict[str, dict[str, Any]], idle_s: float) -> Table:
    table = Table(title=f"gateways (RSS/PSS of the process tree after load; idle CPU over {idle_s:g} s after load)",
                  title_justify="left")
    for col in ("target", "start-up to first 200 ms", "RSS MB", "PSS MB", "processes", "idle CPU %"):
        table.add_column(col, justify="left" if col == "target" else "right")
    for name, g in gateways.items():
        table.add_row(name, f"{g['startup_ms']:.0f}", _f(g.get("rss_mb"), ".1f"), _f(g.get("pss_mb"), ".1f"),
                      _f(g.get("processes"), ".0f"), _f(g.get("idle_cpu_pct"), ".2f"))
    return table


def footprint_table(footprint: dict[str, Any]) -> Table:
    table = Table(title="top imports (cumulative)", title_justify="left")
    table.add_column("module")
    table.add_column("cumulative ms", justify="right")
    for name, ms in footprint["top_imports"]:
        table.add_row(name, f"{ms:.1f}")
    return table


def gate_table(comparisons: list[Comparison]) -> Table:
    table = Table(title="gate: this run against the baseline", title_justify="left")
    for col in ("", "figure", "baseline", "now", "limit"):
        table.add_column(col, justify="left" if col in ("", "figure") else "right")
    for c in comparisons:
        verdict = "[red]FAIL[/red]" if c.failed else "[yellow]BUSY[/yellow]" if c.inconclusive else "ok"
        table.add_row(verdict, c.figure, f"{c.baseline:.3f}{c.unit}",
                      f"{c.current:.3f}{c.unit}", f"{c.limit:.3f}{c.unit}")
    return table


def print_report(console: Console, doc: dict[str, Any], idle_s: float) -> None:
    for case, rows in doc["cases"].items():
        console.print(case_table(case, rows))
    if doc["gateways"]:
        console.print(gateway_table(doc["gateways"], idle_s))
    if doc.get("footprint"):
        fp = doc["footprint"]
        console.print(f"import of {fp.get('module', 'llmgate.app')}: {fp['import_ms']:.0f} ms (python -X importtime, "
                      f"median of 3); installed environment: {fp['installed_mb']:.0f} MB", highlight=False)
        console.print(footprint_table(fp))
    for failure in doc["failures"]:
        console.print(f"[red]!!! FAILED[/red] {failure['target']} round {failure['round']}: "
                      f"{failure['error'].splitlines()[0]}")
    for bad in doc["invalid"]:
        console.print(f"[red]!!! INVALID[/red] {bad['target']} round {bad['round']} {bad['case']}: "
                      f"{bad['errors']} errors")


def _version(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def machine_info(wrk: str | None) -> dict[str, Any]:
    """CPU model, cores, kernel, Python, and the versions of llmgate and its key dependencies."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    packages: dict[str, str | None] = {}
    for pkg in KEY_PACKAGES:
        try:
            packages[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            packages[pkg] = None
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "load_average": list(os.getloadavg()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": packages,
        "wrk": _version([wrk, "-v"]) if wrk else None,
    }
