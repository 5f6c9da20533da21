"""Instructions per request, counted by valgrind: a deterministic A/B for changes too small for wall-clock runs.

One whole chat request through the app in process (the `bench_request.py` harness: one uvloop loop, the
in-process upstream, ASGI messages in and out), N times; `valgrind --tool=cachegrind --cache-sim=no` counts
the instructions of the run with N and with 0 requests, and the difference / N is the figure. Run to run it
varies by ~±3% (the event loop's idle iterations differ), so compare variants several times each.

    uv run python benchmarks/count_instructions.py                 # llmgate
    uv run python benchmarks/count_instructions.py --ref ../shared/bench/ref_gw.py   # the floor, same harness

Needs valgrind (Debian `valgrind`). Session 3's figures are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(requests: int, ref: str | None) -> None:
    """The measured program (inside valgrind): warm up, then `requests` requests, then exit at once."""
    sys.path.insert(0, str(HERE))
    import bench_request

    harness = bench_request.InProcess()
    if ref:  # ref_gw's @asgi handler on the same harness and upstream
        port = harness.server.sockets[0].getsockname()[1]
        os.environ.update(UPSTREAM=f"http://127.0.0.1:{port}", HANDLER="asgi", CLIENT="pyreqwest")
        sys.path.insert(0, str(Path(ref).resolve().parent))
        import ref_gw  # type: ignore[import-not-found]

        harness.loop.run_until_complete(ref_gw.startup())
        harness.app = ref_gw.app
        bench_request.MASTER = "sk-test"

    async def many(n: int) -> None:
        for _ in range(n):
            await harness.request(bench_request.BODY)

    harness.loop.run_until_complete(many(200))
    harness.loop.run_until_complete(many(requests))
    os._exit(0)  # no teardown: it would be counted


def count(requests: int, ref: str | None) -> int:
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               sys.executable, __file__, "--inner", str(requests), *(["--ref", ref] if ref else [])]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    found = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--ref", help="path of ref_gw.py: count the floor reference instead of llmgate")
    parser.add_argument("--inner", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner is not None:
        run(args.inner, args.ref)
        return
    per_request = (count(args.requests, args.ref) - count(0, args.ref)) / args.requests
    print(f"{'ref_gw' if args.ref else 'llmgate'}: {per_request:,.0f} instructions per request")


if __name__ == "__main__":
    main()
