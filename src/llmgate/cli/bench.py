"""`llmgate bench URL`: a load test of any OpenAI-compatible endpoint (llmgate, a provider, another gateway).

Sends one chat completion (or the JSON body given) again and again over `--concurrency` connections, for
`--requests` requests or `--duration` seconds, and prints requests/s, latency percentiles (and, for streams, the
time to the first byte) and the errors by cause; `--json` writes the same figures. The key is read from the
environment (`--key-env`, default OPENAI_API_KEY), never from the command line, where `ps` would show it.

Exit status: 0 when every request was answered 2xx, 1 when any failed or the endpoint could not be reached,
2 for bad options.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from llmgate.cli.bench_load import BenchReport, LoadPlan, Tally

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_PROMPT = "Say hello in one short sentence."
DEFAULT_DURATION_S = 10.0


class OptionError(Exception):
    """The options cannot make a plan (exit 2)."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("bench", help="load-test an OpenAI-compatible endpoint: rps, latency, errors",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", metavar="URL", help="a base URL (http://host:port or .../v1: chat/completions is added) "
                                             "or the full URL of the endpoint to POST to")
    p.add_argument("-n", "--requests", type=int, help="stop after this many requests")
    p.add_argument("-d", "--duration", type=float,
                   help=f"stop starting requests after this many seconds (default {DEFAULT_DURATION_S:g} when "
                        "--requests is not given); those in flight are waited for")
    p.add_argument("-c", "--concurrency", type=int, default=8, help="connections, each one request at a time (8)")
    p.add_argument("--model", help=f"the model asked for (default {DEFAULT_MODEL})")
    p.add_argument("--prompt", help=f"the user message (default {DEFAULT_PROMPT!r})")
    p.add_argument("--max-tokens", type=int, help="max_tokens of the request (default: not sent)")
    p.add_argument("--stream", action="store_true", help="ask for a stream (time to first byte is reported)")
    p.add_argument("--body", type=Path, metavar="FILE",
                   help="send this JSON object as is instead (- for stdin); streams when its \"stream\" is true")
    p.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="an extra request header (repeatable); put keys in --key-env, not here")
    p.add_argument("--key-env", default="OPENAI_API_KEY", metavar="VAR",
                   help="environment variable holding the bearer key (default OPENAI_API_KEY; unset: none sent)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds a request may take in all (60)")
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON to FILE (- for stdout, no table)")
    p.set_defaults(run=run_bench)


def endpoint_url(url: str) -> str:
    """The URL to POST to: a base URL (no path, or one ending in /v1) gets the chat completions path."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OptionError(f"{url!r} is not an http:// or https:// URL")
    path = parts.path.rstrip("/")
    if path == "":
        path = "/v1/chat/completions"
    elif path.endswith("/v1"):
        path += "/chat/completions"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def request_body(args: argparse.Namespace) -> tuple[bytes, bool]:
    """(the body's bytes, whether it asks for a stream) from --body or --model/--prompt/--max-tokens/--stream."""
    if args.body is None:
        body: dict[str, Any] = {"model": args.model or DEFAULT_MODEL,
                                "messages": [{"role": "user", "content": args.prompt or DEFAULT_PROMPT}]}
        if args.max_tokens is not None:
            body["max_tokens"] = args.max_tokens
        if args.stream:
            body["stream"] = True
        return json.dumps(body).encode(), args.stream
    given = [name for name, value in (("--model", args.model), ("--prompt", args.prompt),
                                      ("--max-tokens", args.max_tokens), ("--stream", args.stream or None))
             if value is not None]
    if given:
        raise OptionError(f"--body is sent as it is: leave out {', '.join(given)}")
    try:
        raw = sys.stdin.buffer.read() if str(args.body) == "-" else args.body.read_bytes()
        parsed = json.loads(raw)
    except OSError as exc:
        raise OptionError(f"--body {args.body}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise OptionError(f"--body {args.body} is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise OptionError(f"--body {args.body} must hold a JSON object")
    return raw, parsed.get("stream") is True


def request_headers(args: argparse.Namespace) -> dict[str, str]:
    """content-type, the bearer from --key-env (when set) and every -H."""
    headers = {"content-type": "application/json"}
    key = os.environ.get(args.key_env)
    if key:
        headers["authorization"] = f"Bearer {key}"
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise OptionError(f"-H wants 'NAME: VALUE', got {item!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def build_plan(args: argparse.Namespace) -> LoadPlan:
    """The options as a plan; OptionError naming what is wrong."""
    import msgspec

    from llmgate.cli.bench_load import LoadPlan

    body, is_stream = request_body(args)
    duration = args.duration if args.duration is not None or args.requests is not None else DEFAULT_DURATION_S
    fields = {"url": endpoint_url(args.url), "body": body, "headers": request_headers(args),
              "concurrency": args.concurrency, "requests": args.requests, "duration_s": duration,
              "timeout_s": args.timeout, "is_stream": is_stream}
    try:
        return msgspec.convert(fields, LoadPlan)
    except msgspec.ValidationError as exc:
        options = {"$.concurrency": "--concurrency", "$.requests": "--requests", "$.duration_s": "--duration",
                   "$.timeout_s": "--timeout"}
        problem, _, path = str(exc).partition(" - at ")
        raise OptionError(f"{options.get(path.strip('`'), path)}: {problem.lower()}") from None


def run_bench(args: argparse.Namespace) -> int:
    """Plan, load with a progress bar, then the table or the JSON; the exit status."""
    from rich.console import Console

    from llmgate.cli.bench_load import summarize

    try:
        plan = build_plan(args)
    except OptionError as exc:
        print(f"llmgate bench: {exc}", file=sys.stderr)
        return 2
    try:
        tally, elapsed = _load_with_progress(plan, Console(stderr=True))
    except KeyboardInterrupt:
        print("llmgate bench: interrupted", file=sys.stderr)
        return 130
    if tally.unreachable:
        print(f"llmgate bench: cannot connect to {plan.url}: {tally.unreachable}", file=sys.stderr)
        return 1
    report = summarize(plan, tally, elapsed)
    try:
        _write(args.json, report)
    except OSError as exc:
        print(f"llmgate bench: cannot write {args.json}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0 if report.ok == report.requests > 0 else 1


def _load_with_progress(plan: LoadPlan, console: Console) -> tuple[Tally, float]:
    """run_load() under a progress bar (on a terminal only): requests done of --requests, or seconds of --duration."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from llmgate.cli.bench_load import run_load

    kind = "streams" if plan.is_stream else "requests"
    columns = (TextColumn(f"{plan.url} c={plan.concurrency}"), BarColumn(),
               TextColumn(f"{{task.fields[finished]}} {kind}, {{task.fields[errors]}} errors"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        by_count = plan.requests is not None
        task = bar.add_task("load", total=plan.requests if by_count else plan.duration_s, finished=0, errors=0)

        def tick(tally: Tally) -> None:
            done = tally.finished if by_count else min(bar.tasks[0].elapsed or 0.0, plan.duration_s or 0.0)
            bar.update(task, completed=done, finished=tally.finished, errors=sum(tally.errors.values()))

        return run_load(plan, tick)


def report_tables(report: BenchReport) -> list[Table]:
    """The run, its latency percentiles and its errors by cause, as rich tables."""
    from rich.table import Table

    kind = "streams" if report.is_stream else "requests"
    run = Table(title="run", title_justify="left", show_header=False)
    for name, value in (("concurrency", f"{report.concurrency}"), (kind, f"{report.requests:,}"),
                        ("answered 2xx", f"{report.ok:,}"), ("errors", f"{sum(report.errors.values()):,}"),
                        ("duration", f"{report.duration_s:.2f} s"), ("requests/s (2xx)", f"{report.rps:,.1f}")):
        run.add_row(name, value)
    tables = [run]
    rows = [("latency", report.latency), ("first byte", report.first_byte)]
    if any(p is not None for _, p in rows):
        lat = Table(title="ms, 2xx answers", title_justify="left")
        for col in ("", "p50", "p90", "p99", "max", "mean"):
            lat.add_column(col, justify="left" if not col else "right")
        for name, p in rows:
            if p is not None:
                lat.add_row(name, *(f"{v:.2f}" for v in (p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms, p.mean_ms)))
        tables.append(lat)
    if report.errors:
        errors = Table(title="errors", title_justify="left")
        errors.add_column("cause")
        errors.add_column("count", justify="right")
        for cause, count in report.errors.items():
            errors.add_row(cause, f"{count:,}")
        tables.append(errors)
    return tables


def _write(target: str | None, report: BenchReport) -> None:
    """The tables on stdout (and the JSON to a file), or only the JSON on stdout with `--json -`."""
    import msgspec
    from rich.console import Console

    document = msgspec.json.format(msgspec.json.encode(report)) + b"\n"
    if target == "-":
        sys.stdout.buffer.write(document)
        return
    out = Console()
    out.print(f"llmgate bench {report.url}", highlight=False, soft_wrap=True)
    for table in report_tables(report):
        out.print(table)
    if target:
        Path(target).write_bytes(document)
        out.print(f"wrote {target}")
