"""A soak: llmgate at saturation for N minutes against the upstream double, with a mix of streamed and whole chat
completions, embeddings, clients that leave before their answer, and virtual tokens; reporting what a leak or a
lost event would show: RSS growth after warm-up, open file descriptors, errors, and requests against usage rows.

    python -m benchmarks.soak --minutes 2 [--concurrency 32] [--json soak.json]

Not part of the test suite's run (tests/lab/test_soak.py runs it for a few seconds to check its plumbing). The
figures depend on the machine and on what else runs on it: say which when quoting them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field

import aiohttp
import httpx

from benchmarks.lab.processes import tree_memory
from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway
from tests.upstream_double import run_double

MT = "mt-soak-0123456789abcdef"
MIX = ("stream", "whole", "embeddings", "stream", "whole", "leave", "stream", "whole", "embeddings", "leave-stream")
"""One request of each kind in turn: streams, whole answers, embeddings, and clients that leave (one in five)."""
CHAT = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
STREAM = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}'
EMBED = b'{"model":"text-embedding-3-small","input":"hello"}'
LEAVE_AFTER_S = 0.5


@dataclass
class Tally:
    """What the clients saw."""

    sent: int = 0
    answered: dict[str, int] = field(default_factory=dict)
    """kind → answers with a 2xx status"""
    errors: dict[str, int] = field(default_factory=dict)
    """"HTTP <status>" or the exception's name → count"""
    left: int = 0
    """requests the client gave up on (on purpose: the mix's `leave` kinds)"""


@dataclass
class Report:
    seconds: float
    concurrency: int
    requests: int
    rps: float
    answered: dict[str, int]
    errors: dict[str, int]
    left: int
    upstream_abandoned: int
    """requests the upstream double saw abandoned (closed by the gateway when their client left)"""
    usage_rows: int
    rss_mb_after_warmup: float
    rss_mb_end: float
    rss_growth_pct: float
    fds_after_warmup: int
    fds_end: int
    samples: list[dict[str, float]]


async def one(session: aiohttp.ClientSession, url: str, kind: str, key: str, tally: Tally) -> None:
    tally.sent += 1
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    path, body = {"embeddings": ("/v1/embeddings", EMBED), "whole": ("/v1/chat/completions", CHAT),
                  "leave": ("/v1/chat/completions", CHAT)}.get(kind, ("/v1/chat/completions", STREAM))
    if kind.startswith("leave"):
        # The client leaves after LEAVE_AFTER_S, long after its request reached the upstream even at saturation:
        # the gateway must close the upstream request then, well before the upstream would answer.
        headers["x-mock-delay-ms"] = "3000"
    timeout = aiohttp.ClientTimeout(total=LEAVE_AFTER_S if kind.startswith("leave") else 60)
    try:
        async with session.post(url + path, data=body, headers=headers, timeout=timeout) as response:
            await response.read()
            if 200 <= response.status < 300:
                tally.answered[kind] = tally.answered.get(kind, 0) + 1
            else:
                name = f"HTTP {response.status}"
                tally.errors[name] = tally.errors.get(name, 0) + 1
    except TimeoutError:
        if kind.startswith("leave"):
            tally.left += 1
        else:
            tally.errors["timeout"] = tally.errors.get("timeout", 0) + 1
    except aiohttp.ClientError as exc:
        name = type(exc).__name__
        tally.errors[name] = tally.errors.get(name, 0) + 1


async def load(url: str, keys: list[str], concurrency: int, seconds: float, tally: Tally) -> None:
    deadline = time.monotonic() + seconds

    async def worker(n: int) -> None:
        turn = n
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            while time.monotonic() < deadline:
                await one(session, url, MIX[turn % len(MIX)], keys[turn % len(keys)], tally)
                turn += 1

    await asyncio.gather(*(worker(n) for n in range(concurrency)))


def footprint(pid: int) -> tuple[float, int]:
    """The gateway's RSS (MB, its process tree) and open file descriptors."""
    return tree_memory(pid)[0], len(os.listdir(f"/proc/{pid}/fd"))


async def sample_while(pid: int, seconds: float, every_s: float, samples: list[dict[str, float]]) -> None:
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        rss, fds = footprint(pid)
        samples.append({"at_s": round(elapsed, 1), "rss_mb": round(rss, 1), "fds": fds})
        await asyncio.sleep(every_s)


def new_token(gw: Gateway) -> str:
    manage = {"authorization": f"Bearer {MT}"}
    project = httpx.post(f"{gw.url}/manage/projects", json={"name": "soak"}, headers=manage).json()
    return httpx.post(f"{gw.url}/manage/tokens", json={"project_id": project["id"]}, headers=manage).json()["secret"]


def usage_rows(gw: Gateway, expected: int, timeout_s: float = 30) -> int:
    """Rows in the usage table, once they stop growing toward `expected` (the bus writes every 0.5 s)."""
    deadline = time.monotonic() + timeout_s
    rows = -1
    while time.monotonic() < deadline:
        data = httpx.get(f"{gw.url}/manage/usage", headers={"authorization": f"Bearer {MT}"}, timeout=30).json()
        rows = sum(group["requests"] for group in data["data"])
        if rows >= expected:
            break
        time.sleep(0.5)
    return rows


def soak(minutes: float, concurrency: int) -> Report:
    """Run the soak (see the module docstring) and say what it saw."""
    seconds = minutes * 60
    warmup_s = min(10.0, seconds / 5)
    with run_double() as upstream, start_gateway(gateway_env(upstream, LLMGATE_MANAGEMENT_TOKEN=MT,
                                                             LLMGATE_USAGE_FLUSH_S="0.5")) as gw:
        keys = [new_token(gw), MASTER_KEY]
        tally = Tally()
        samples: list[dict[str, float]] = []

        async def run() -> None:
            await asyncio.gather(load(gw.url, keys, concurrency, seconds, tally),
                                 sample_while(gw.proc.pid, seconds, max(seconds / 20, 0.5), samples))

        asyncio.run(run())
        time.sleep(1)  # the last requests' usage events reach the bus
        rss_end, fds_end = footprint(gw.proc.pid)
        rows = usage_rows(gw, tally.sent)
        abandoned = httpx.get(f"{upstream}/_seen").json()["abandoned"]
    after = next((s for s in samples if s["at_s"] >= warmup_s), samples[-1])
    return Report(seconds=seconds, concurrency=concurrency, requests=tally.sent, rps=round(tally.sent / seconds, 1),
                  answered=tally.answered, errors=tally.errors, left=tally.left,
                  upstream_abandoned=abandoned, usage_rows=rows,
                  rss_mb_after_warmup=after["rss_mb"], rss_mb_end=round(rss_end, 1),
                  rss_growth_pct=round((rss_end - after["rss_mb"]) / after["rss_mb"] * 100, 2),
                  fds_after_warmup=int(after["fds"]), fds_end=fds_end, samples=samples)


def summary(report: Report) -> str:
    lost = report.requests - report.usage_rows
    return "\n".join([
        f"soak: {report.seconds:.0f} s, {report.concurrency} clients, {report.requests} requests "
        f"({report.rps}/s): {sum(report.answered.values())} answered, {report.left} left on purpose "
        f"({report.upstream_abandoned} closed upstream), errors {report.errors or 'none'}",
        f"  by kind: {report.answered}",
        f"  RSS {report.rss_mb_after_warmup} MB after warm-up -> {report.rss_mb_end} MB at the end "
        f"({report.rss_growth_pct:+.2f}%); open fds {report.fds_after_warmup} -> {report.fds_end}",
        f"  usage rows {report.usage_rows} for {report.requests} requests ({lost} missing)",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", help="write the report here as JSON")
    args = parser.parse_args(argv)
    report = soak(args.minutes, args.concurrency)
    print(summary(report))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(asdict(report), out, indent=1)
    return 0 if not report.errors and report.usage_rows == report.requests else 1


if __name__ == "__main__":
    sys.exit(main())
