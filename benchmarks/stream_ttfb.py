"""Does a gateway stream, or buffer? Time to first and last byte of a slow stream, direct and through gateways.

The upstream double sends 20 chunks 50 ms apart (set by its environment, since a gateway may not forward
the client's x-mock-* headers). A streaming gateway's first byte comes ~50 ms after the request, like the
direct call's; a buffering one's comes with the last, ~1 s later.

    uv run python benchmarks/stream_ttfb.py     # the double direct, llmgate, and ../shared/bench/ref_gw.py if present
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from llmgate.upstream_double import free_port, run_double, stop_process

REF_GW = Path(__file__).resolve().parents[2] / "shared" / "bench" / "ref_gw.py"
BODY = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}'


def measure(url: str, key: str, runs: int) -> tuple[float, float, int]:
    """Median time to first byte and to last byte (ms), and the number of reads the client saw."""
    firsts, lasts, reads = [], [], 0
    for _ in range(runs):
        start = time.monotonic()
        first = None
        reads = 0
        with httpx.stream("POST", f"{url}/v1/chat/completions", content=BODY, timeout=30,
                          headers={"authorization": f"Bearer {key}", "content-type": "application/json"}) as reply:
            for _chunk in reply.iter_raw():
                first = first if first is not None else time.monotonic() - start
                reads += 1
        firsts.append((first or 0) * 1000)
        lasts.append((time.monotonic() - start) * 1000)
    return statistics.median(firsts), statistics.median(lasts), reads


def wait_ready(url: str, key: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.post(f"{url}/v1/chat/completions", json={"model": "m"}, timeout=2,
                          headers={"authorization": f"Bearer {key}"}).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref-gw", type=Path, default=REF_GW, help="the floor reference (skipped if absent)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with run_double(env={"CHUNK_DELAY_MS": "50", "CHUNKS": "20"}) as upstream:
        env = {**os.environ, "OPENAI_BASE_URL": f"{upstream}/v1", "OPENAI_API_KEY": "sk-upstream",
               "LLMGATE_MASTER_KEY": "sk-test", "UPSTREAM": upstream, "HANDLER": "asgi", "CLIENT": "pyreqwest"}
        commands = {"llmgate": lambda port: [sys.executable, "-m", "llmgate", "serve", "--port", str(port)]}
        if args.ref_gw.exists():
            commands["ref_gw"] = lambda port: [sys.executable, "-m", "granian", "--interface", "asgi", "--loop",
                                               "uvloop", "--port", str(port), "ref_gw:app"]
        print(f"{'target':10} {'first byte ms':>14} {'last byte ms':>13} {'reads':>6}")
        print("{:10} {:14.0f} {:13.0f} {:6d}".format("direct", *measure(upstream, "direct", args.runs)))
        for name, command in commands.items():
            port = free_port()
            server = subprocess.Popen(command(port), env=env, cwd=args.ref_gw.parent, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                wait_ready(f"http://127.0.0.1:{port}", "sk-test")
                print("{:10} {:14.0f} {:13.0f} {:6d}".format(name, *measure(f"http://127.0.0.1:{port}", "sk-test",
                                                                               args.runs)))
            finally:
                stop_process(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
