"""Many long streams at once: does a gateway hold them, at what cost in memory, and what does it add to each?

    python -m benchmarks.capacity [--streams 1000 --chunks 100 --chunk-delay-ms 50] [--hold-s 16] [--rounds 3]
        [--double-js ../shared/bench/mock_upstream.js] [--target NAME=URL ...] [--workers 1] [--json FILE]

Each round puts the same load on every target in turn (the order rotating between rounds): the double directly,
llmgate with its defaults (the usage log on) started here, and any `NAME=URL` given (a floor, nginx). The load is
STREAMS connections opened at once, each asking for streams of CHUNKS chunks DELAY apart, one after the other on
its keep-alive connection, for HOLD seconds, as wrk holds a load (benchmarks/lab/streamload.py, in a process of
its own on the load CPUs). Each connection's first stream is the opening storm (STREAMS connections and requests
in the same instant, which overflow listen queues: the kernel's count is reported): its times are reported
apart, and the targets are judged on the streams held after it. `--hold-s 0` measures the storm alone: one
stream a connection. Opened at once, the streams stay in step round after round (each connection's next stream
starts as its last ends): every chunk of every stream comes in the same instant, a herd no real traffic makes;
`--ramp-s` (a stream's length) opens them evenly over that long, so that starts and chunks are spread out in
time as independent clients' are. For each target and round:

- streams that ended complete, errors; the opening streams' total time (p50, p99); listen-queue overflows;
- each held stream's total time (p50, p99) and its ratio to the direct run's in the same round;
- the delay a chunk gains: the p99 of the chunks' lag (streamload.py) minus the direct run's;
- the gateway's CPU (% of a core) during the run; its RSS idle, at peak (sampled every 0.2 s) and after the
  load (once `--settle` seconds have let idle upstream connections expire), and its open fds idle and after.

The figures are medians across rounds, and each line says whether the issue's targets hold (`--p50-within-s`,
`--p99-ratio`, `--chunk-gain-ms`, `--peak-rss-mb`, `--rss-back`). On a 2-core machine pin the gateway to one core
and the double with the client to the other (the default when taskset exists).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.lab.processes import (
    BenchError,
    Procs,
    cpu_pct,
    default_cpus,
    http_call,
    pinned,
    process_tree,
    terminate_as_exit,
    tree_cpu_ticks,
    tree_memory,
    wait_ready,
)
from benchmarks.lab.scenarios import DIRECT, base_env, gateway_cmd, llmgate_target
from benchmarks.lab.stats import percentile
from llmgate.config_schema import ServerConfig
from tests.upstream_double import free_port, importable_env


@dataclass
class Run:
    """One target's figures in one round."""

    ok: int
    errors: int
    p50_s: float
    p99_s: float
    lag_p99_ms: float
    wall_s: float
    opening_p50_s: float | None = None
    opening_p99_s: float | None = None
    listen_overflows: int | None = None
    cpu_pct: float | None = None
    rss_idle_mb: float | None = None
    rss_peak_mb: float | None = None
    rss_after_mb: float | None = None
    fds_idle: int | None = None
    fds_after: int | None = None


@dataclass
class Target:
    name: str
    url: str
    key: str
    pid: int | None = None
    """The process tree measured (None for an external target: its load only)."""
    runs: list[Run] = field(default_factory=list)


def listen_overflows() -> int:
    """The kernel's count of connections refused by full listen queues (TcpExt ListenOverflows, every socket)."""
    with open("/proc/net/netstat") as f:
        lines = [line.split() for line in f if line.startswith("TcpExt:")]
    return int(dict(zip(lines[0], lines[1], strict=True)).get("ListenOverflows", 0)) if len(lines) == 2 else 0


def _p(values: list[float], pct: float) -> float:
    return percentile(sorted(values), pct) if values else float("nan")


def open_fds(pid: int) -> int:
    """Open file descriptors of the tree."""
    return sum(len(os.listdir(f"/proc/{p}/fd")) for p in process_tree(pid) if os.path.isdir(f"/proc/{p}/fd"))


class Sampler(threading.Thread):
    """The tree's peak RSS while the load runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.stopped = pid, threading.Event()
        self.peak = tree_memory(pid)[0]

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            self.peak = max(self.peak, tree_memory(self.pid)[0])
        self.peak = max(self.peak, tree_memory(self.pid)[0])  # a load shorter than a sampling interval too


def warm_up(target: Target, args: argparse.Namespace, load_cpus: str | None) -> None:
    """A short load first: a cold double (Node's JIT) or gateway would make the first round's figures."""
    cmd = pinned(load_cpus, [sys.executable, "-m", "benchmarks.lab.streamload", target.url, target.key,
                             str(min(args.streams, 200)), "5", "10"])
    subprocess.run(cmd, capture_output=True, env=importable_env(os.environ.copy()), timeout=args.timeout, check=False)


def measure(target: Target, args: argparse.Namespace, load_cpus: str | None) -> Run:
    """One load run against `target` (see the module docstring)."""
    cmd = pinned(load_cpus, [sys.executable, "-m", "benchmarks.lab.streamload", target.url, target.key,
                             str(args.streams), str(args.chunks), str(args.chunk_delay_ms), str(args.hold_s),
                             str(args.ramp_s)])
    pid = target.pid
    overflows = listen_overflows()
    idle = tree_memory(pid)[0] if pid else None
    fds_idle = open_fds(pid) if pid else None
    sampler = Sampler(pid) if pid else None
    ticks0, t0 = (tree_cpu_ticks(pid) if pid else {}), time.monotonic()
    if sampler:
        sampler.start()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=importable_env(os.environ.copy()),
                          timeout=args.timeout)
    wall = time.monotonic() - t0
    cpu = cpu_pct(ticks0, tree_cpu_ticks(pid), wall) if pid else None
    if sampler:
        sampler.stopped.set()
        sampler.join()
    if proc.returncode != 0:
        raise BenchError(f"the stream client failed against {target.name}:\n{proc.stderr[-2000:]}")
    raw = json.loads(proc.stdout)
    totals, lags, opening = raw["totals_s"], raw["lags_s"], raw["opening_totals_s"]
    run = Run(raw["ok"], raw["errors"], _p(totals, 50), _p(totals, 99), _p(lags, 99) * 1000, raw["wall_s"],
              _p(opening, 50) if opening else None, _p(opening, 99) if opening else None,
              listen_overflows() - overflows, cpu, idle, sampler.peak if sampler else None, None, fds_idle)
    if pid:
        time.sleep(args.settle)  # idle upstream connections expire from the pools
        run.rss_after_mb, run.fds_after = tree_memory(pid)[0], open_fds(pid)
    return run


def start_double(procs: Procs, args: argparse.Namespace, cpus: str | None) -> str:
    port = free_port()
    if args.double_js:
        cmd = ["node", str(args.double_js)]
        # The load's pace as the double's default too: the floors pass on only their own headers, not x-mock-*.
        env = {**base_env(), "PORT": str(port), "CHUNKS": str(args.chunks),
               "CHUNK_DELAY_MS": f"{args.chunk_delay_ms:g}"}
    else:
        cmd = [sys.executable, "-m", "tests.upstream_double", "--host", "127.0.0.1", "--port", str(port)]
        env = importable_env(base_env())
    proc = procs.start("double", pinned(cpus, cmd), env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, lambda: http_call(url, "GET", "/v1/models"), 30)
    return url


def start_llmgate(procs: Procs, upstream: str, args: argparse.Namespace, cpus: str | None) -> Target:
    spec = llmgate_target("passthrough", upstream, Path(tempfile.mkdtemp(prefix="llmgate-capacity-")), None,
                          {"LLMGATE_DATA_DIR": tempfile.mkdtemp(prefix="llmgate-capacity-data-")})
    port = free_port()
    cmd = [part.replace("{port}", str(port)) for part in gateway_cmd(None)]
    cmd[cmd.index("--workers") + 1] = str(args.workers)
    proc = procs.start("llmgate", pinned(cpus, cmd), importable_env({**base_env(), **spec.env}))
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, lambda: http_call(url, "GET", "/health"), args.timeout)
    return Target(spec.name, url, spec.key, proc.pid)


def bench_dir(args: argparse.Namespace) -> Path:
    """Where the shared bench's floors live (`ref_gw.py`): `--bench-dir`, else beside `--double-js`."""
    where = args.bench_dir or (args.double_js.parent if args.double_js else None)
    if where is None or not (where / "ref_gw.py").exists() or not args.double_js:
        raise BenchError("--floor needs the shared bench's Node double (--double-js; the floors do not pass on the "
                         "load's x-mock-* headers, so its pace is set as the double's default) and ref_gw.py beside "
                         "it or in --bench-dir")
    return Path(where)


def start_floor(procs: Procs, client: str, upstream: str, args: argparse.Namespace, cpus: str | None) -> Target:
    """The floor (ref_gw.py, `HANDLER=asgi CLIENT=client`) served by granian with llmgate's connection settings:
    llmgate's backlog, and no cap on connections below the load (granian's CLI would hold past 1,024)."""
    port = free_port()
    cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--workers", "1", "--loop", "uvloop", "--host",
           "127.0.0.1", "--port", str(port), "--backlog", str(ServerConfig().backlog), "--backpressure",
           str(ServerConfig().max_connections), "--log-level", "warning", "--no-access-log", "ref_gw:app"]
    env = {**base_env(), "UPSTREAM": upstream, "HANDLER": "asgi", "CLIENT": client}
    proc = procs.start(f"floor-{client}", pinned(cpus, cmd), env, cwd=bench_dir(args))
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, lambda: http_call(url, "POST", "/v1/chat/completions", FLOOR_PROBE, "sk-test"), args.timeout)
    return Target(f"floor/{client}", url, "sk-test", proc.pid)


NGINX_CONF = """worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx.err warn;
events {{ worker_connections {connections}; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  upstream double {{ server {upstream}; keepalive 1024; }}
  server {{
    listen 127.0.0.1:{port} backlog={backlog};
    location /v1/ {{
      if ($http_authorization != "Bearer sk-test") {{ return 401 '{{"error":{{"message":"unauthorized"}}}}'; }}
      proxy_pass http://double;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer sk-upstream";
      proxy_buffering off;
    }}
  }}
}}
"""
"""The shared bench's nginx.conf (a native reverse proxy doing a gateway's minimum), with room for the load's
connections, a client's and an upstream one for each stream."""


def start_nginx(procs: Procs, upstream: str, args: argparse.Namespace, cpus: str | None) -> Target:
    """nginx (one worker) in front of the double, as the native reference."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="llmgate-capacity-nginx-"))
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, connections=2 * args.streams + 256, port=port,
                                      upstream=upstream.removeprefix("http://"), backlog=ServerConfig().backlog))
    proc = procs.start("nginx", pinned(cpus, ["nginx", "-c", str(conf), "-g", "daemon off;"]), base_env())
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, lambda: http_call(url, "POST", "/v1/chat/completions", FLOOR_PROBE, "sk-test"), args.timeout)
    return Target("nginx", url, "sk-test", proc.pid)


FLOOR_PROBE = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'


def summarize(targets: list[Target], args: argparse.Namespace) -> dict[str, Any]:
    """Medians across rounds, ratios to direct paired within each round, and the targets' verdicts."""
    direct = targets[0]
    out: dict[str, Any] = {}
    for t in targets:
        row: dict[str, Any] = {"rounds": len(t.runs), "errors": sum(r.errors for r in t.runs)}
        for name in ("ok", "p50_s", "p99_s", "lag_p99_ms", "opening_p50_s", "opening_p99_s", "listen_overflows",
                     "cpu_pct", "rss_idle_mb", "rss_peak_mb", "rss_after_mb",
                     "fds_idle", "fds_after"):
            values = [v for r in t.runs if (v := getattr(r, name)) is not None]
            row[name] = statistics.median(values) if values else None
        if t is not direct:
            pairs = list(zip(t.runs, direct.runs, strict=False))
            row["p50_minus_direct_s"] = statistics.median(r.p50_s - d.p50_s for r, d in pairs)
            row["p99_ratio"] = statistics.median(r.p99_s / d.p99_s for r, d in pairs)
            row["chunk_gain_ms"] = statistics.median(r.lag_p99_ms - d.lag_p99_ms for r, d in pairs)
            row["holds"] = verdicts(row, args)
        out[t.name] = row
    return out


def verdicts(row: dict[str, Any], args: argparse.Namespace) -> dict[str, bool]:
    """Each target of issue 27's capacity test, held or not (memory ones only for a process measured here)."""
    held = {"no errors": row["errors"] == 0,
            f"p50 within {args.p50_within_s} s of direct": row["p50_minus_direct_s"] <= args.p50_within_s,
            f"p99 within {args.p99_ratio}x of direct": row["p99_ratio"] <= args.p99_ratio,
            f"chunk gain p99 <= {args.chunk_gain_ms} ms": row["chunk_gain_ms"] <= args.chunk_gain_ms}
    if row["rss_peak_mb"] is not None:
        held[f"peak RSS <= {args.peak_rss_mb} MB"] = row["rss_peak_mb"] <= args.peak_rss_mb
        held[f"RSS after within {args.rss_back:.0%} of idle"] = (
            row["rss_after_mb"] <= row["rss_idle_mb"] * (1 + args.rss_back))
        held["fds back to idle"] = row["fds_after"] <= row["fds_idle"]
    return held


def print_report(summary: dict[str, Any], args: argparse.Namespace) -> None:
    held = f"held {args.hold_s:g} s, the streams after each connection's first" if args.hold_s else "one each"
    held += f", opened over {args.ramp_s:g} s" if args.ramp_s else ", opened at once"
    print(f"\n{args.streams} streams x {args.chunks} chunks {args.chunk_delay_ms:g} ms apart ({held}), "
          f"{args.rounds} round(s), medians")
    print(f"{'target':<24}{'ok':>7}{'err':>6}{'p50 s':>8}{'p99 s':>8}{'+p50 s':>8}{'p99 x':>7}{'gain ms':>9}"
          f"{'cpu %':>7}{'rss idle/peak/after MB':>24}{'fds':>11}{'opening p50/p99 s':>19}{'overflows':>10}")
    for name, row in summary.items():
        def f(key: str, fmt: str, row: dict[str, Any] = row) -> str:
            value = row.get(key)
            return "-" if value is None else format(value, fmt)

        rss = "/".join(f(k, ".0f") for k in ("rss_idle_mb", "rss_peak_mb", "rss_after_mb"))
        fds = f"{f('fds_idle', '.0f')}/{f('fds_after', '.0f')}"
        print(f"{name:<24}{f('ok', '.0f'):>7}{f('errors', '.0f'):>6}{f('p50_s', '.2f'):>8}{f('p99_s', '.2f'):>8}"
              f"{f('p50_minus_direct_s', '+.2f'):>8}{f('p99_ratio', '.2f'):>7}{f('chunk_gain_ms', '.1f'):>9}"
              f"{f('cpu_pct', '.0f'):>7}{rss:>24}{fds:>11}"
              f"{f('opening_p50_s', '.2f') + '/' + f('opening_p99_s', '.2f'):>19}{f('listen_overflows', '.0f'):>10}")
        for what, ok in row.get("holds", {}).items():
            print(f"    {'holds' if ok else 'MISSED':<7}{what}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.capacity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--chunks", type=int, default=100)
    p.add_argument("--chunk-delay-ms", type=float, default=50.0)
    p.add_argument("--hold-s", type=float, default=16.0,
                   help="how long each connection asks for streams back to back (16); 0: one stream a connection")
    p.add_argument("--ramp-s", type=float, default=0.0,
                   help="open the connections evenly over this long (0: at once, every stream in step with the "
                        "others; a stream's length: spread out, as independent clients)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=1, help="llmgate's workers (default 1)")
    p.add_argument("--double-js", type=Path, help="the Node double (../shared/bench/mock_upstream.js); else Python's")
    p.add_argument("--target", action="append", default=[], help="NAME=URL of another gateway to load too")
    p.add_argument("--floor", action="append", default=[], choices=["pyreqwest", "aiohttp"],
                   help="start the shared bench's floor (ref_gw.py HANDLER=asgi) with this client, on the gateway's "
                        "CPU")
    p.add_argument("--nginx", action="store_true", help="start nginx (one worker) as the native reference")
    p.add_argument("--bench-dir", type=Path, help="the shared bench (ref_gw.py); default: --double-js's folder")
    p.add_argument("--target-key", default="sk-test", help="the bearer the other targets take (default sk-test)")
    p.add_argument("--no-llmgate", action="store_true", help="only the double and the --target ones")
    p.add_argument("--gateway-cpus", help="CPUs for llmgate (default: the first one)")
    p.add_argument("--load-cpus", help="CPUs for the double and the client (default: the others)")
    p.add_argument("--settle", type=float, default=20.0, help="seconds after the load before RSS and fds (20)")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--json", type=Path, help="write the summary and every run here")
    g = p.add_argument_group("targets (issue 27)")
    g.add_argument("--p50-within-s", type=float, default=0.1)
    g.add_argument("--p99-ratio", type=float, default=1.1)
    g.add_argument("--chunk-gain-ms", type=float, default=10.0)
    g.add_argument("--peak-rss-mb", type=float, default=250.0)
    g.add_argument("--rss-back", type=float, default=0.10)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    gw_default, load_default = default_cpus()
    gw_cpus, load_cpus = args.gateway_cpus or gw_default, args.load_cpus or load_default
    procs = Procs(Path(tempfile.mkdtemp(prefix="llmgate-capacity-logs-")))
    with terminate_as_exit():
        try:
            upstream = start_double(procs, args, load_cpus)
            targets = [Target(DIRECT, upstream, "sk-direct")]
            if not args.no_llmgate:
                targets.append(start_llmgate(procs, upstream, args, gw_cpus))
            targets += [start_floor(procs, client, upstream, args, gw_cpus) for client in args.floor]
            if args.nginx:
                targets.append(start_nginx(procs, upstream, args, gw_cpus))
            for spec in args.target:
                name, _, url = spec.partition("=")
                targets.append(Target(name, url.rstrip("/"), args.target_key))
            for t in targets:
                warm_up(t, args, load_cpus)
            for round_no in range(args.rounds):
                shift = round_no % len(targets)
                for t in targets[shift:] + targets[:shift]:
                    print(f"round {round_no + 1}: {t.name} ...", flush=True)
                    t.runs.append(measure(t, args, load_cpus))
            summary = summarize(targets, args)
        except BenchError as error:
            print(f"capacity: {error}", file=sys.stderr)
            return 2
        finally:
            procs.stop_all()
    print_report(summary, args)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "summary": summary,
                                         "runs": {t.name: [vars(r) for r in t.runs] for t in targets}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
