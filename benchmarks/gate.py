"""The pytest-benchmark gate: run the micro and path suites, compare their p95 ratios with a saved baseline.

    uv run python -m benchmarks.gate                          # compare with benchmarks/baseline/micro.json
    uv run python -m benchmarks.gate --save benchmarks/baseline/micro.json   # refresh the baseline

Each session (a fresh `pytest --benchmark-enable` process) records every benchmark's p95 and its ratio to a
reference measured in the same session (benchmarks/conftest.py). `--sessions` of them run back to back and the
median of each ratio is kept. A benchmark over its limit (see benchmarks/lab/microgate.py) is measured again
(`--sessions` more) before it is declared a regression; exit 1 names each that regressed twice.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.lab.microgate import compare_micro, median_document, persistent_micro, ratios_of_session
from benchmarks.lab.report import machine_info

ROOT = Path(__file__).resolve().parents[1]
SUITES = ["benchmarks/bench_hot_path.py", "benchmarks/bench_request.py", "benchmarks/bench_translation.py"]


def session(max_time_s: float, select: list[str] | None, attempt: int = 1) -> dict[str, dict[str, Any]]:
    """One pytest-benchmark session; {benchmark: ratios} (only `select`ed benchmarks, when given). A session
    that fails is shown and run once more (the suites also run, untimed, in the test suite, which catches a
    real breakage); a second failure stops the gate."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-enable",
               f"--benchmark-json={out}", f"--benchmark-max-time={max_time_s}", "--benchmark-min-rounds=50",
               "--benchmark-disable-gc", *SUITES]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            failure = f"benchmark session failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
            if attempt > 1:
                raise SystemExit(failure)
            print(f"!!! {failure}\n!!! running that session once more", flush=True)
            return session(max_time_s, select, attempt + 1)
        ratios = ratios_of_session(json.loads(out.read_text()))
    return {k: v for k, v in ratios.items() if select is None or k in select}


def measure(sessions: int, max_time_s: float, select: list[str] | None = None) -> dict[str, Any]:
    runs = []
    for i in range(sessions):
        print(f"  session {i + 1}/{sessions}", flush=True)
        runs.append(session(max_time_s, select))
    return median_document(runs, machine_info(None))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", type=Path, default=ROOT / "benchmarks" / "baseline" / "micro.json")
    p.add_argument("--save", type=Path, default=None, help="measure and write a new baseline here; no comparison")
    p.add_argument("--sessions", type=int, default=3, help="sessions whose median is taken (default 3)")
    p.add_argument("--max-time", type=float, default=0.3, help="pytest-benchmark seconds per benchmark (0.3)")
    p.add_argument("--tolerance", type=float, default=0.10, help="relative p95-ratio growth allowed (0.10)")
    p.add_argument("--floor-ns", type=float, default=200.0, help="p95 growth always allowed, ns (default 200)")
    p.add_argument("--json", type=Path, default=None, help="also write this run's medians here")
    args = p.parse_args(argv)
    print(f"pytest-benchmark gate: {args.sessions} session(s) of {', '.join(SUITES)}")
    current = measure(args.sessions, args.max_time)
    if args.json:
        args.json.write_text(json.dumps(current, indent=2))
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(current, indent=2) + "\n")
        print(f"wrote the baseline {args.save} ({len(current['benchmarks'])} benchmarks)")
        return 0
    baseline = json.loads(args.baseline.read_text())
    first, missing = compare_micro(baseline, current, args.tolerance, args.floor_ns)
    for c in first:
        print("  " + c.describe())
    for name in missing:
        print(f"  not compared (missing in this run): {name}")
    over = [c.name for c in first if c.failed]
    if not over:
        print("pytest-benchmark gate: no regression")
        return 0
    print(f"over the limit, measuring those again before deciding: {', '.join(over)}")
    second, _ = compare_micro(baseline, measure(args.sessions, args.max_time, over), args.tolerance, args.floor_ns)
    for c in second:
        print("  " + c.describe())
    failed = persistent_micro(first, second)
    if not failed:
        print("pytest-benchmark gate: no regression (the re-measurement was within the limits)")
        return 0
    for c in failed:
        print(f"REGRESSION {c.describe()}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
