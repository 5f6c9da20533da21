"""The `llmgate` command.

    serve.py     llmgate serve                      run the gateway (granian)
    db.py        llmgate db upgrade                 apply the store's migrations
    manage.py    llmgate project|token|usage|audit  the management API, over HTTP (httpx)
    bench.py     llmgate bench URL                  load-test an endpoint (bench_load.py: the loop)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from llmgate import __version__
from llmgate.cli import bench, db, manage, serve
from llmgate.cli.serve import check_exposure, run_serve

__all__ = ["check_exposure", "main", "run_serve"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `llmgate` console script."""
    parser = argparse.ArgumentParser(prog="llmgate", description="An OpenAI-compatible LLM API gateway.")
    parser.add_argument("--version", action="version", version=f"llmgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve.add_parser(commands)
    db.add_parser(commands)
    manage.add_parsers(commands)
    bench.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except manage.UsageError as exc:
        print(f"llmgate: {exc}", file=sys.stderr)
        return 2
    return code
