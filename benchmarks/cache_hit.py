"""The response cache under load: a hit against a miss in one run (issue 25: "a cache hit is served at ≥ 3x the
throughput of a miss"), and both against the floor, granian answering the same bytes from an empty ASGI app.

    python -m benchmarks.cache_hit [--double-js ../shared/bench/mock_upstream.js] [--rounds 5] [--duration 3]
        [--concurrency 32] [--stream] [--turns 100] [--env LLMGATE_USAGE_LOG=0] [--json FILE]

One llmgate (`llmgate serve`, the defaults: usage log on, to SQLite; `LLMGATE_CACHE_TTL_S=600`) in front of the
upstream double, pinned to the first CPU, the double and wrk to the others. Three loads, their order rotating
between rounds:

  hit    the same chat request again and again: answered from the cache (`--turns`: after that many earlier
         exchanges, a longer body to read and key)
  miss   the same request with `cache-control: no-cache`: everything a miss does (key, forward, capture, store)
         but the lookup
  floor  granian (one worker, uvloop) serving the same answer and headers from an ASGI app that does nothing else

The double answers in microseconds on another core, so a miss costs the gateway its own CPU, not a wait:
requests/s and the gateway's CPU a request (its process tree's utime+stime over the run, divided by the requests)
both measure the work. Ratios are paired within a round and their medians reported; the CPU ratio moves less than
requests/s when other processes share the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.lab.loadgen import CHAT_PATH, WRK_DIR, parse_wrk, result_from_wrk, wrk_path
from benchmarks.lab.processes import (
    CLK_TCK,
    BenchError,
    Procs,
    default_cpus,
    http_call,
    pinned,
    terminate_as_exit,
    tree_cpu_ticks,
    wait_ready,
)
from benchmarks.lab.scenarios import MASTER_KEY, base_env, gateway_cmd, llmgate_target
from tests.upstream_double import free_port, importable_env

LOADS = ("hit", "miss", "floor")
_FLOOR_ANSWER = "LLMGATE_FLOOR_ANSWER"
"""The file the floor app answers from: JSON {"headers": [[name, value], ...], "body": "..."}."""


def _floor_answer() -> tuple[list[tuple[bytes, bytes]], bytes]:
    path = os.environ.get(_FLOOR_ANSWER)
    if not path:
        return [(b"content-type", b"application/json")], b"{}"
    data = json.loads(Path(path).read_text())
    return [(k.encode(), v.encode()) for k, v in data["headers"]], data["body"].encode()


_HEADERS, _BODY = _floor_answer()


async def floor_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor: read the request, answer the recorded hit's headers and body; nothing else."""
    if scope["type"] != "http":
        return
    message = await receive()
    while message.get("more_body", False):
        message = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


@dataclass
class Run:
    """One load's run in one round."""

    requests: int
    rps: float
    cpu_us: float
    """The gateway's CPU a request, µs."""
    p50_ms: float
    errors: int


@dataclass
class Load:
    name: str
    url: str
    pid: int
    headers: dict[str, str] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)


_PROMPT = "Say hello in one short sentence please."


def chat_body(stream: bool, turns: int) -> bytes:
    """The lab's chat request (wrk/report.lua's), after `turns` earlier user/assistant exchanges when asked."""
    messages = []
    for turn in range(turns):
        messages += [{"role": "user", "content": f"Tell me something about topic {turn}, in a few sentences."},
                     {"role": "assistant", "content": f"Here are a few sentences about topic {turn}. " * 4}]
    messages.append({"role": "user", "content": _PROMPT})
    body: dict[str, Any] = {"model": "gpt-4o-mini"}
    if stream:
        body["stream"] = True
    body["messages"] = messages
    return json.dumps(body, separators=(",", ":")).encode()


def wrk_script(workdir: Path, name: str, body: bytes, stream: bool, headers: dict[str, str]) -> Path:
    """A wrk script: the lab's chat request (and its report) with `body`, and `headers` added."""
    lines = [f'local report = dofile("{WRK_DIR}/report.lua")', f"report.setup_chat({str(stream).lower()})",
             f"wrk.body = [==[{body.decode()}]==]"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    lines.append("done = report.done")
    path = workdir / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def measure(load: Load, script: Path, args: argparse.Namespace, load_cpus: str | None) -> Run:
    """`args.duration` s of wrk at `args.concurrency` against `load`, with the CPU its process tree used."""
    import subprocess

    seconds = max(1, round(args.duration))
    cmd = pinned(load_cpus, [args.wrk, "-t1", f"-c{args.concurrency}", f"-d{seconds}s", "--latency",
                             "--timeout=10s", "-s", str(script), load.url + CHAT_PATH])
    before = tree_cpu_ticks(load.pid)
    proc = subprocess.run(cmd, env={**os.environ, "WRK_KEY": MASTER_KEY}, capture_output=True, text=True,
                          timeout=seconds + 60)
    after = tree_cpu_ticks(load.pid)
    if proc.returncode != 0:
        raise BenchError(f"wrk exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    result = result_from_wrk(parse_wrk(proc.stdout))
    ticks = sum(t - before.get(p, 0) for p, t in after.items())
    cpu_us = ticks / CLK_TCK * 1e6 / max(result.requests, 1)
    return Run(result.requests, result.rps, cpu_us, result.p50_ms, result.errors)


def start_llmgate(procs: Procs, upstream: str, args: argparse.Namespace, cpus: str | None) -> Load:
    extra = {"LLMGATE_CACHE_TTL_S": "600", "LLMGATE_DATA_DIR": tempfile.mkdtemp(prefix="llmgate-cache-bench-")}
    extra.update(dict(pair.split("=", 1) for pair in args.env))
    spec = llmgate_target("passthrough", upstream, Path(extra["LLMGATE_DATA_DIR"]), None, extra)
    port = free_port()
    cmd = [part.replace("{port}", str(port)) for part in gateway_cmd(None)]
    proc = procs.start("llmgate", pinned(cpus, cmd), importable_env({**base_env(), **spec.env}))
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, lambda: http_call(url, "GET", "/health"), 30)
    return Load("hit", url, proc.pid)


def start_double(procs: Procs, args: argparse.Namespace, cpus: str | None) -> str:
    port = free_port()
    if args.double_js:
        cmd, env = ["node", str(args.double_js)], {**base_env(), "PORT": str(port)}
    else:
        cmd = [sys.executable, "-m", "tests.upstream_double", "--host", "127.0.0.1", "--port", str(port)]
        env = importable_env(base_env())
    proc = procs.start("double", pinned(cpus, cmd), env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, lambda: http_call(url, "GET", "/v1/models"), 30)
    return url


def record_hit(url: str, body: bytes, workdir: Path) -> Path:
    """Ask twice: the second answer must be a hit. Its headers and body become the floor's answer."""
    import httpx

    headers = {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"}
    for _ in range(2):
        response = httpx.post(url + CHAT_PATH, content=body, headers=headers, timeout=10)
    if response.headers.get("x-llmgate-cache") != "hit":
        raise BenchError(f"the second identical request was not a hit: {response.status_code} "
                         f"{dict(response.headers)} {response.text[:300]}")
    bypass = httpx.post(url + CHAT_PATH, content=body, headers={**headers, "cache-control": "no-cache"}, timeout=10)
    if bypass.headers.get("x-llmgate-cache") != "bypass":
        raise BenchError(f"cache-control: no-cache was not a bypass: {dict(bypass.headers)}")
    kept = [(k, v) for k, v in response.headers.items() if k not in ("date", "server", "content-length")]
    path = workdir / "floor-answer.json"
    path.write_text(json.dumps({"headers": kept, "body": response.text}))
    return path


def start_floor(procs: Procs, answer: Path, cpus: str | None) -> Load:
    port = free_port()
    cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop", "--workers", "1",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
           "benchmarks.cache_hit:floor_app"]
    proc = procs.start("floor", pinned(cpus, cmd), importable_env({**base_env(), _FLOOR_ANSWER: str(answer)}))
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, lambda: http_call(url, "POST", CHAT_PATH, b"{}"), 30)
    return Load("floor", url, proc.pid)


def paired(a: Load, b: Load, key: str) -> float | None:
    """The median over rounds of a's figure over b's."""
    ratios = [getattr(x, key) / getattr(y, key) for x, y in zip(a.runs, b.runs, strict=True) if getattr(y, key)]
    return statistics.median(ratios) if ratios else None


def summarize(loads: dict[str, Load]) -> dict[str, Any]:
    hit, miss, floor = loads["hit"], loads["miss"], loads["floor"]
    out: dict[str, Any] = {name: {"rps": statistics.median(r.rps for r in load.runs),
                                  "cpu_us": statistics.median(r.cpu_us for r in load.runs),
                                  "errors": sum(r.errors for r in load.runs)} for name, load in loads.items()}
    out["ratios"] = {"hit/miss requests/s": paired(hit, miss, "rps"),
                     "miss/hit CPU a request": paired(miss, hit, "cpu_us"),
                     "hit/floor CPU a request": paired(hit, floor, "cpu_us"),
                     "miss/floor CPU a request": paired(miss, floor, "cpu_us")}
    return out


def print_report(summary: dict[str, Any], args: argparse.Namespace) -> None:
    kind = "streams" if args.stream else "whole answers"
    size = len(chat_body(args.stream, args.turns))
    print(f"\nc={args.concurrency}, {kind}, a request body of {size} bytes, {args.rounds} rounds of "
          f"{args.duration:g} s (medians)")
    print(f"{'load':<8}{'requests/s':>12}{'CPU µs/request':>16}{'errors':>8}")
    for name in LOADS:
        row = summary[name]
        print(f"{name:<8}{row['rps']:>12.0f}{row['cpu_us']:>16.1f}{row['errors']:>8}")
    print("paired per round, medians:")
    for label, value in summary["ratios"].items():
        print(f"  {label:<26} {'-' if value is None else f'{value:.2f}x'}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cache_hit", description=__doc__.split("\n\n")[0])
    p.add_argument("--double-js", type=Path, help="the Node double (../shared/bench/mock_upstream.js); else Python's")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=3.0, help="seconds a run")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--stream", action="store_true", help="streamed chat requests (the cache replays the SSE bytes)")
    p.add_argument("--turns", type=int, default=0, help="earlier exchanges in the conversation (0: one message; "
                   "100: a body of ~16 KB)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="more llmgate settings")
    p.add_argument("--gateway-cpus", help="CPUs for llmgate and the floor (default: the first)")
    p.add_argument("--load-cpus", help="CPUs for the double and wrk (default: the others)")
    p.add_argument("--json", type=Path, help="write every run's figures here")
    args = p.parse_args(argv)
    args.wrk = wrk_path()
    if args.wrk is None:
        p.error("wrk is not installed (Debian: apt-get install wrk)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    gw_default, load_default = default_cpus()
    gw_cpus, load_cpus = args.gateway_cpus or gw_default, args.load_cpus or load_default
    workdir = Path(tempfile.mkdtemp(prefix="llmgate-cache-bench-logs-"))
    procs = Procs(workdir)
    with terminate_as_exit():
        try:
            upstream = start_double(procs, args, load_cpus)
            gateway = start_llmgate(procs, upstream, args, gw_cpus)
            body = chat_body(args.stream, args.turns)
            answer = record_hit(gateway.url, body, workdir)
            loads = {"hit": gateway, "miss": Load("miss", gateway.url, gateway.pid, {"cache-control": "no-cache"}),
                     "floor": start_floor(procs, answer, gw_cpus)}
            scripts = {name: wrk_script(workdir, name, body, args.stream, load.headers) for name, load in loads.items()}
            for name, load in loads.items():  # warm up: Node's JIT, the gateway's first connections
                measure(load, scripts[name], argparse.Namespace(**{**vars(args), "duration": 1}), load_cpus)
            for round_no in range(args.rounds):
                order = list(LOADS[round_no % 3:] + LOADS[:round_no % 3])
                for name in order:
                    run = measure(loads[name], scripts[name], args, load_cpus)
                    loads[name].runs.append(run)
                    print(f"round {round_no + 1}: {name:<5} {run.rps:8.0f} requests/s  {run.cpu_us:6.1f} µs CPU a "
                          f"request  ({run.errors} errors)", flush=True)
                time.sleep(0.2)
            summary = summarize(loads)
        except BenchError as error:
            print(f"cache_hit: {error} (logs in {workdir})", file=sys.stderr)
            return 2
        finally:
            procs.stop_all()
    print_report(summary, args)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "summary": summary,
                                         "runs": {n: [asdict(r) for r in load.runs] for n, load in loads.items()}},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
