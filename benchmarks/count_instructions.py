"""Instructions per request, counted by valgrind: a deterministic A/B for changes too small for wall-clock runs.

One whole chat request through the app in process (the `bench_request.py` harness: one uvloop loop, the
in-process upstream, ASGI messages in and out), N times; `valgrind --tool=cachegrind --cache-sim=no` counts
the instructions of the run with N and with 0 requests, and the difference / N is the figure. Run to run it
varies by ~±3% (the event loop's idle iterations differ), so compare variants several times each. Streams
(aiohttp, no thread) vary least, ~±0.3%; whole answers go through pyreqwest, whose Rust threads make their
figure move with wall time under valgrind.

    uv run python benchmarks/count_instructions.py                 # llmgate
    uv run python benchmarks/count_instructions.py --ref ../shared/bench/ref_gw.py   # the floor, same harness
    uv run python benchmarks/count_instructions.py --stream [--token | --token-budget] [--usage-log [--nulls]]
        # a 20-chunk stream, with a virtual token (created through /manage; unlimited, or with a token budget,
        # which meters its answers) or the usage log on; the upstream then answers `include_usage` with a usage
        # event before [DONE], as the Node double does; with --nulls, also `"usage":null` in every other chunk,
        # as OpenAI and llmgate.upstream_double do

Needs valgrind (Debian `valgrind`). Figures: benchmarks/README.md (sessions 3 and 7).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


_MANAGEMENT_TOKEN = "mt-count-instructions-0123"


def _answer_usage_when_asked(bench_request: Any, nulls: bool = False) -> None:
    """The harness's upstream, answering a stream that asks for `include_usage` with its usage event (and, with
    `nulls`, `"usage":null` in every other chunk, as OpenAI and llmgate's Python double do)."""
    from llmgate.upstream_double import chat_frames

    head, deltas, tail = chat_frames("gpt-4o-mini", 20, False)
    usage_event = chat_frames("gpt-4o-mini", 20, True)[2].split(b"\n\n")[1] + b"\n\n"
    frames = chat_frames("gpt-4o-mini", 20, True) if nulls else (
        head, deltas, tail.replace(b"data: [DONE]", usage_event + b"data: [DONE]"))
    with_usage = bench_request.STREAM_ANSWER.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + bench_request._chunked(frames)

    usual = bench_request.Upstream.answer

    def answer(self: Any, body: bytes) -> bytes:
        return with_usage if b'"include_usage":true' in body else usual(self, body)

    bench_request.Upstream.answer = answer


def _create_token(harness: Any, limits: dict[str, int]) -> str:
    """A project and a virtual token, through the management API in process; the token's secret."""
    def manage(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = harness.loop.run_until_complete(harness.request(
            json.dumps(body).encode(), path=path, credential=_MANAGEMENT_TOKEN, expect=201))
        created: dict[str, Any] = json.loads(answer)
        return created

    project = manage("/manage/projects", {"name": "count-instructions"})
    return str(manage("/manage/tokens", {"project_id": project["id"], **limits})["secret"])


def run(requests: int, ref: str | None, stream: bool = False, token: bool = False, usage_log: bool = False,
        token_budget: bool = False, nulls: bool = False) -> None:
    """The measured program (inside valgrind): warm up, then `requests` requests, then exit at once."""
    sys.path.insert(0, str(HERE))
    import bench_request

    load_settings = bench_request.load_settings
    extra = {"LLMGATE_MANAGEMENT_TOKEN": _MANAGEMENT_TOKEN, **({"LLMGATE_USAGE_LOG": "1"} if usage_log else {})}
    bench_request.load_settings = lambda env: load_settings({**env, **extra})
    _answer_usage_when_asked(bench_request, nulls)
    harness = bench_request.InProcess()
    if token or token_budget:  # the header `request()` sends
        bench_request.MASTER = _create_token(harness, {"budget_tokens": 10**15} if token_budget else {})
    if ref:  # ref_gw's @asgi handler on the same harness and upstream
        port = harness.server.sockets[0].getsockname()[1]
        os.environ.update(UPSTREAM=f"http://127.0.0.1:{port}", HANDLER="asgi", CLIENT="pyreqwest")
        sys.path.insert(0, str(Path(ref).resolve().parent))
        import ref_gw  # type: ignore[import-not-found]

        harness.loop.run_until_complete(ref_gw.startup())
        harness.app = ref_gw.app
        bench_request.MASTER = "sk-test"

    body = bench_request.STREAM_BODY if stream else bench_request.BODY

    async def many(n: int) -> None:
        for _ in range(n):
            await harness.request(body)

    harness.loop.run_until_complete(many(300))
    gc.collect()
    gc.disable()  # a full collection falling in one run and not the other would swamp the difference
    harness.loop.run_until_complete(many(requests))
    harness.loop.run_until_complete(asyncio.sleep(1.5))  # the usage bus writes what it holds (every 1 s)
    os._exit(0)  # no teardown: it would be counted


def count(requests: int, ref: str | None, flags: list[str]) -> int:
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               sys.executable, __file__, "--inner", str(requests), *(["--ref", ref] if ref else []), *flags]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    found = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--ref", help="path of ref_gw.py: count the floor reference instead of llmgate")
    parser.add_argument("--stream", action="store_true", help="a 20-chunk stream instead of a whole answer")
    parser.add_argument("--token", action="store_true", help="with a virtual token instead of the master key")
    parser.add_argument("--token-budget", action="store_true",
                        help="with a virtual token that has a token budget (its answers are metered)")
    parser.add_argument("--usage-log", action="store_true", help="with LLMGATE_USAGE_LOG=1 (SQLite)")
    parser.add_argument("--nulls", action="store_true",
                        help='the usage-asking stream carries `"usage":null` in every chunk, as OpenAI\'s does')
    parser.add_argument("--inner", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner is not None:
        run(args.inner, args.ref, args.stream, args.token, args.usage_log, args.token_budget, args.nulls)
        return
    flags = [f for f, on in (("--stream", args.stream), ("--token", args.token), ("--token-budget", args.token_budget),
                             ("--usage-log", args.usage_log), ("--nulls", args.nulls)) if on]
    per_request = (count(args.requests, args.ref, flags) - count(0, args.ref, flags)) / args.requests
    name = "ref_gw" if args.ref else " ".join(["llmgate", *flags])
    print(f"{name}: {per_request:,.0f} instructions per request")


if __name__ == "__main__":
    main()
