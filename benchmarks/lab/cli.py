"""The lab's command: the upstream double direct, llmgate in front of it and any other endpoint, side by side.

    python -m benchmarks.lab [--scenarios all] [--rounds 3] [--json FILE] [--plot FILE.png] [--gate BASELINE.json]

Run from the repository's root (the double is tests/upstream_double.py). Exit status: 0 when every run was valid
(and, with --gate, nothing regressed), 1 otherwise; 2 for bad options.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.lab.plot import plot_cdfs
from benchmarks.lab.scenarios import SCENARIOS
from benchmarks.lab.session import Session, validate

DEFAULT_KINDS = "nonstream,stream"


def build_parser() -> argparse.ArgumentParser:
    """The lab's options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.lab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", default="passthrough",
                   help=f"comma-separated, or 'all': {', '.join(SCENARIOS)} (default passthrough)")
    p.add_argument("--kinds", default=DEFAULT_KINDS,
                   help="request kinds: nonstream, stream (chunks back to back), paced (chunks 2 ms apart, each "
                        "its own write; needs a double that paces paced-* models) (default nonstream,stream)")
    p.add_argument("--concurrency", default="1,32", help="comma-separated connection counts (default 1,32)")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per load run (default 3)")
    p.add_argument("--rounds", type=int, default=1, help="rounds, targets interleaved; medians (default 1)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per target and round (default 1)")
    p.add_argument("--idle-seconds", type=float, default=5.0, help="idle CPU window after load (default 5)")
    p.add_argument("--loadgen", choices=("auto", "wrk", "builtin"), default="auto",
                   help="auto: wrk when installed, else the built-in async generator")
    p.add_argument("--double-js", type=Path, default=None,
                   help="run this Node upstream double (mock_upstream.js) instead of tests/upstream_double.py")
    p.add_argument("--upstream", default=None, metavar="URL",
                   help="use the double already running at URL (no /v1) instead of starting one")
    p.add_argument("--gw-cpus", default=None, help="taskset CPU list for gateways (default: the first CPU)")
    p.add_argument("--load-cpus", default=None, help="taskset CPU list for load and double (default: the rest)")
    p.add_argument("--no-pin", action="store_true", help="do not pin anything to CPUs")
    p.add_argument("--target", action="append", default=[], metavar="NAME=URL",
                   help="also measure an OpenAI-compatible endpoint at URL (no /v1), e.g. another llmgate")
    p.add_argument("--target-key", default="sk-test", help="bearer for --target URLs (default sk-test)")
    p.add_argument("--gateway-app", default=None, metavar="MODULE:FACTORY",
                   help="serve llmgate from this app factory under granian instead of `llmgate serve`")
    p.add_argument("--gateway-env", action="append", default=[], metavar="VAR=VALUE",
                   help="an extra environment variable for every llmgate started (repeatable)")
    p.add_argument("--no-footprint", action="store_true", help="skip the import-time and installed-size report")
    p.add_argument("--start-timeout", type=float, default=30.0, help="readiness timeout, s (default 30)")
    p.add_argument("--logdir", type=Path, default=None, help="process logs and raw wrk output (default: temp)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write every figure here")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="latency CDFs (needs matplotlib)")
    g = p.add_argument_group("gate")
    g.add_argument("--gate", type=Path, default=None, metavar="BASELINE.json",
                   help="compare with a saved --json run; exit 1 naming each figure that regressed")
    g.add_argument("--tolerance", type=float, default=0.10, help="relative, latency and throughput (default 0.10)")
    g.add_argument("--floor-us", type=float, default=50.0, help="latency growth always allowed, µs (default 50)")
    g.add_argument("--memory-tolerance", type=float, default=0.10, help="relative RSS growth allowed (0.10)")
    g.add_argument("--memory-floor-mb", type=float, default=5.0, help="RSS growth always allowed, MB (default 5)")
    g.add_argument("--startup-tolerance", type=float, default=0.25, help="relative start-up growth (0.25)")
    g.add_argument("--cpu-tolerance", type=float, default=0.25,
                   help="paced streams: relative growth of CPU per request, as a ratio to the double's (0.25)")
    g.add_argument("--max-other-cpu", type=float, default=15.0,
                   help="%% of a core other processes may use during a run before it counts as disturbed (15)")
    g.add_argument("--startup-floor-ms", type=float, default=100.0, help="start-up growth always allowed (100)")
    return p


def run_bench(args: argparse.Namespace) -> int:
    """Measure, report, write --json/--plot, and gate; the exit status."""
    problem = validate(args)
    if problem:
        print(f"benchmarks.lab: {problem}", file=sys.stderr)
        return 2
    session = Session.create(args)
    with session:
        doc = session.measure()
        session.report(doc)
        if args.json:
            args.json.write_text(json.dumps(doc, indent=2))
            session.console.print(f"wrote {args.json}")
        if args.plot:
            plot_cdfs(doc, args.plot)
            session.console.print(f"wrote {args.plot}")
        ok = bool(doc["valid"])
        if args.gate:
            ok = session.gate(doc, json.loads(args.gate.read_text())) and ok
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.lab`."""
    return run_bench(build_parser().parse_args(argv))
