"""Time to the first byte of a streamed answer's body at c=1: each provider's double directly against llmgate in
front of it, the translated kinds beside the OpenAI passthrough (the reference hop).

    uv run python -m benchmarks.ttfb [--requests 300] [--runs 3] [--kinds openai,anthropic,gemini,vertex,bedrock]

It starts, pinned with taskset (llmgate on the first CPU; the doubles and this client on the others):
  - the OpenAI/Anthropic double (tests/upstream_double.py), Anthropic's Messages stream for the `anthropic` kind;
  - the Gemini/Vertex double (tests/google_double_server.py: `streamGenerateContent?alt=sse`), with the OAuth 2
    token endpoint the Vertex provider's service account (written here, a fresh RSA key) points at;
  - the Bedrock double (tests/bedrock_double.py: SigV4 verified, ConverseStream in event-stream framing);
  - llmgate (`llmgate serve`, the defaults: the usage log on, to SQLite) with one provider of each kind.
Then, for each of N rounds, each kind in turn: one streamed request straight to the double (in the double's own
dialect, signed or authorised as the provider would) and one through llmgate (OpenAI chat), each on its own
kept-alive connection. The time is from the request's send to the first bytes of the body read. Per run: p50 and
p99 of each side, their differences, the median of the per-round differences, and the medians of llmgate's
`Server-Timing` (`upstream-ttfb`: from the attempt's start, signing included, to the upstream's first chunk;
`overhead`: its own time before the answer's head). After each run's rounds, llmgate's CPU time per request of
each kind (N requests in a row; the scheduler's accounting of all its threads, the usage log's writer included):
the figure that the machine's other load sways least. With several runs, the median of each figure over the runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.lab.processes import (
    BenchError,
    Procs,
    default_cpus,
    http_call,
    pinned,
    process_tree,
    terminate_as_exit,
    wait_ready,
)
from benchmarks.lab.scenarios import MASTER_KEY, UPSTREAM_KEY, base_env, gateway_cmd
from tests.upstream_double import free_port, importable_env

KINDS = ("openai", "anthropic", "gemini", "vertex", "bedrock", "bedrock-split")
"""`bedrock`: each event one write, as Bedrock sends them; `bedrock-split`: the double's first frames cut across
three writes of 37 bytes (the tests' incremental decoding: the first byte comes well before the first event)."""
GEMINI_KEY = "AIza-test-gemini-key-000000000000"  # the Google double's (tests/google_double.py KEY)
ANTHROPIC_KEY = "sk-ant-bench-0000000000000000"
BEDROCK_MODEL = "anthropic.claude-bench-v1"
VERTEX_PATH = "/v1/projects/my-project/locations/us-central1/publishers/google/models/vertex-gemini"
HI = [{"role": "user", "content": "hi there"}]
_TIMING = re.compile(r"([\w-]+);dur=([\d.]+)")

CONFIG = """\
[[providers]]
name = "openai"
base_url = "{openai}/v1"
api_key = "{openai_key}"
models = ["gpt-*"]

[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "{openai}/v1"
api_key = "{anthropic_key}"
models = ["claude-*"]

[[providers]]
name = "gemini"
kind = "gemini"
base_url = "{google}"
api_key = "{gemini_key}"
models = ["gemini-*"]

[[providers]]
name = "vertex"
kind = "vertex"
project = "my-project"
location = "us-central1"
base_url = "{google}"
credentials_file = "{service_account}"
models = ["vertex-*"]

[[providers]]
name = "bedrock"
kind = "bedrock"
region = "us-east-1"
base_url = "{bedrock}"
models = ["anthropic.*"]
"""


@dataclass
class Probe:
    """One streamed request, ready to send again and again (`sign`: fresh headers per request, outside the
    timing)."""

    url: str
    path: str
    body: bytes
    headers: dict[str, str]
    sign: Callable[[], dict[str, str]] | None = None
    conn: http.client.HTTPConnection | None = None
    server_timing: list[dict[str, float]] = field(default_factory=list)
    """llmgate's `Server-Timing` of each answer (ms by name): its own time and the upstream's first byte."""

    def connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            parts = urllib.parse.urlsplit(self.url)
            self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def once(self) -> tuple[float, bytes]:
        """(seconds to the body's first bytes, the whole body)."""
        headers = self.sign() if self.sign is not None else self.headers
        conn = self.connection()
        start = time.perf_counter()
        conn.request("POST", self.path, self.body, headers)
        response = conn.getresponse()
        first = response.read1(65536)
        elapsed = time.perf_counter() - start
        if timing := response.getheader("server-timing"):
            self.server_timing.append({name: float(ms) for name, ms in _TIMING.findall(timing)})
        whole = first + response.read()
        if response.status != 200 or not first:
            raise BenchError(f"POST {self.url}{self.path} answered {response.status}: {whole[:400]!r}")
        return elapsed, whole


def _json(body: object) -> bytes:
    return json.dumps(body).encode()


def gateway_probe(gateway: str, model: str, extra: dict[str, str] | None = None) -> Probe:
    """An OpenAI SDK's streamed chat request to llmgate (`extra` headers go up to the double with it)."""
    body = _json({"model": model, "messages": HI, "stream": True})
    return Probe(gateway, "/v1/chat/completions", body,
                 {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json", **(extra or {})})


def bedrock_signer(url: str, body: bytes, extra: dict[str, str]) -> Callable[[], dict[str, str]]:
    """Headers signed by botocore with the double's test credentials, anew for each request (a signature's
    time stamp must be recent)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from tests.bedrock_double import ACCESS_KEY, REGION, SECRET_KEY, SESSION_TOKEN

    auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN), "bedrock", REGION)

    def sign() -> dict[str, str]:
        request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
        auth.add_auth(request)
        return {**dict(request.headers.items()), **extra}

    return sign


def vertex_token(service_account: Path) -> str:
    """An access token for the service account, from the double's token endpoint (as the provider gets its own)."""
    import google.auth.transport.requests
    from google.oauth2 import service_account as accounts

    credentials = accounts.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
        str(service_account), scopes=["https://www.googleapis.com/auth/cloud-platform"])
    credentials.refresh(google.auth.transport.requests.Request())
    return str(credentials.token)


def probes(kind: str, urls: dict[str, str], service_account: Path) -> tuple[Probe, Probe]:
    """(straight to the double, through llmgate) for one kind."""
    gateway = urls["llmgate"]
    if kind == "openai":
        direct = Probe(urls["openai"], "/v1/chat/completions",
                       _json({"model": "gpt-4o-mini", "messages": HI, "stream": True}),
                       {"authorization": f"Bearer {UPSTREAM_KEY}", "content-type": "application/json"})
        return direct, gateway_probe(gateway, "gpt-4o-mini")
    if kind == "anthropic":
        direct = Probe(urls["openai"], "/v1/messages",
                       _json({"model": "claude-x", "max_tokens": 64, "messages": HI, "stream": True}),
                       {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01",
                        "content-type": "application/json"})
        return direct, gateway_probe(gateway, "claude-x")
    contents = _json({"contents": [{"role": "user", "parts": [{"text": "hi there"}]}]})
    if kind == "gemini":
        direct = Probe(urls["google"], "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", contents,
                       {"x-goog-api-key": GEMINI_KEY, "content-type": "application/json"})
        return direct, gateway_probe(gateway, "gemini-2.5-flash")
    if kind == "vertex":
        direct = Probe(urls["google"], VERTEX_PATH + ":streamGenerateContent?alt=sse", contents,
                       {"authorization": f"Bearer {vertex_token(service_account)}",
                        "content-type": "application/json"})
        return direct, gateway_probe(gateway, "vertex-gemini")
    if kind in ("bedrock", "bedrock-split"):
        path = f"/model/{BEDROCK_MODEL}/converse-stream"
        body = _json({"messages": [{"role": "user", "content": [{"text": "hi there"}]}]})
        writes = {"x-double-writes": "frames"} if kind == "bedrock" else {}
        direct = Probe(urls["bedrock"], path, body, {}, bedrock_signer(urls["bedrock"] + path, body, writes))
        return direct, gateway_probe(gateway, BEDROCK_MODEL, writes)
    raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")


def service_account_files(workdir: Path) -> tuple[Path, Callable[[str], Path]]:
    """(the public key's PEM file for the double, a writer of the service-account JSON naming a token URI)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.google_token_endpoint import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = workdir / "sa-public.pem"
    pem.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return pem, lambda token_uri: service_account(workdir, key, token_uri)


def start_double(procs: Procs, name: str, cmd: list[str], env: dict[str, str], cpus: str | None) -> str:
    """A double on a free port, pinned; its base URL once `GET /_seen` answers."""
    port = free_port()
    proc = procs.start(name, pinned(cpus, [part.replace("{port}", str(port)) for part in cmd]),
                       importable_env({**base_env(), **env}))
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, lambda: http_call(url, "GET", "/_seen"), 30)
    return url


def granian(app: str, factory: bool = False) -> list[str]:
    return [sys.executable, "-m", "granian", "--interface", "asgi", *(["--factory"] if factory else []),
            "--loop", "uvloop", "--host", "127.0.0.1", "--port", "{port}", "--no-log", app]


def start_all(procs: Procs, workdir: Path, client_cpus: str | None) -> tuple[dict[str, str], Path]:
    """Every double and llmgate; (their URLs by name, the service-account file)."""
    from tests.bedrock_double import AWS_ENV

    gateway_cpus, load_cpus = default_cpus()
    if load_cpus is not None:
        os.sched_setaffinity(0, {int(cpu) for cpu in (client_cpus or load_cpus).split(",")})
    pem, write_account = service_account_files(workdir)
    urls = {
        "openai": start_double(procs, "openai-double", [sys.executable, "-m", "tests.upstream_double", "--host",
                                                        "127.0.0.1", "--port", "{port}"], {}, load_cpus),
        "google": start_double(procs, "google-double", granian("tests.google_double_server:app", factory=True),
                               {"GOOGLE_DOUBLE_PUBLIC_KEY": str(pem)}, load_cpus),
        "bedrock": start_double(procs, "bedrock-double", granian("tests.bedrock_double:app"), {}, load_cpus),
    }
    _, seen = http_call(urls["google"], "GET", "/_seen")
    account = write_account(json.loads(seen)["token_uri"])
    config = workdir / "ttfb.toml"
    config.write_text(CONFIG.format(openai=urls["openai"], google=urls["google"], bedrock=urls["bedrock"],
                                    openai_key=UPSTREAM_KEY, anthropic_key=ANTHROPIC_KEY, gemini_key=GEMINI_KEY,
                                    service_account=account))
    port = free_port()
    env = {**base_env(), **AWS_ENV, "LLMGATE_CONFIG": str(config), "LLMGATE_MASTER_KEY": MASTER_KEY,
           "LLMGATE_DATA_DIR": str(workdir / "data"), "LLMGATE_LOG_LEVEL": "WARNING"}
    gateway = procs.start("llmgate", pinned(gateway_cpus, [p.replace("{port}", str(port)) for p in gateway_cmd(None)]),
                          env, cwd=workdir)
    urls["llmgate"] = f"http://127.0.0.1:{port}"
    wait_ready(gateway, lambda: http_call(urls["llmgate"], "GET", "/health"), 60)
    return urls, account


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figures(direct: list[float], gateway: list[float]) -> dict[str, float]:
    """One run of one kind, in ms: p50/p99 of each side, their differences, the median per-round difference."""
    ms = 1000.0
    return {"direct_p50": _pct(direct, 0.5) * ms, "llmgate_p50": _pct(gateway, 0.5) * ms,
            "direct_p99": _pct(direct, 0.99) * ms, "llmgate_p99": _pct(gateway, 0.99) * ms,
            "diff_p50": (_pct(gateway, 0.5) - _pct(direct, 0.5)) * ms,
            "diff_p99": (_pct(gateway, 0.99) - _pct(direct, 0.99)) * ms,
            "diff_paired": statistics.median(g - d for d, g in zip(direct, gateway, strict=True)) * ms}


def check(kind: str, direct: Probe, gateway: Probe) -> None:
    """One request each way; the streams must be whole (llmgate's ends in [DONE], with the double's text)."""
    _, whole = gateway.once()
    if not whole.rstrip().endswith(b"data: [DONE]") or b'"content"' not in whole:
        raise BenchError(f"{kind}: llmgate's stream is not a whole OpenAI stream: {whole[-400:]!r}")
    direct.once()


def measure(pairs: dict[str, tuple[Probe, Probe]], requests: int, warmup: int) -> dict[str, dict[str, float]]:
    """One run: `requests` rounds, each kind in turn, direct then llmgate."""
    for _ in range(warmup):
        for direct, gateway in pairs.values():
            direct.once()
            gateway.once()
    times: dict[str, tuple[list[float], list[float]]] = {kind: ([], []) for kind in pairs}
    for _, gateway in pairs.values():
        gateway.server_timing.clear()
    for _ in range(requests):
        for kind, (direct, gateway) in pairs.items():
            times[kind][0].append(direct.once()[0])
            times[kind][1].append(gateway.once()[0])
    result = {kind: figures(*sides) for kind, sides in times.items()}
    for kind, (_, gateway) in pairs.items():
        for name in ("upstream-ttfb", "overhead"):
            result[kind][name] = statistics.median(t.get(name, 0.0) for t in gateway.server_timing)
    return result


def cpu_ns(pid: int) -> int:
    """CPU time (ns, every thread of every process in the tree) from the scheduler's own accounting: finer than
    the clock ticks of /proc/<pid>/stat."""
    total = 0
    for process in process_tree(pid):
        try:
            threads = os.listdir(f"/proc/{process}/task")
        except OSError:
            continue
        for thread in threads:
            try:
                total += int(Path(f"/proc/{process}/task/{thread}/schedstat").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                continue
    return total


def cpu_per_request(pairs: dict[str, tuple[Probe, Probe]], gateway_pid: int, requests: int) -> dict[str, float]:
    """llmgate's CPU time per streamed request of each kind (µs), over `requests` requests in a row."""
    out = {}
    for kind, (_, gateway) in pairs.items():
        time.sleep(0.2)  # the usage log's writes of the kind before fall outside
        before = cpu_ns(gateway_pid)
        for _ in range(requests):
            gateway.once()
        time.sleep(0.2)  # ... and this kind's inside
        out[kind] = (cpu_ns(gateway_pid) - before) / requests / 1000
    return out


def median_of(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {kind: {name: statistics.median(run[kind][name] for run in runs) for name in runs[0][kind]}
            for kind in runs[0]}


def table(result: dict[str, dict[str, float]]) -> str:
    """A markdown table, in ms (llmgate's CPU per request in µs, when measured)."""
    lines = ["| kind | direct p50 | llmgate p50 | diff p50 | direct p99 | llmgate p99 | diff p99 | paired diff "
             "| Server-Timing upstream-ttfb / overhead p50 | llmgate CPU/request |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for kind, f in result.items():
        cpu = f"{f['cpu_us']:.0f} µs" if "cpu_us" in f else "-"
        lines.append(f"| {kind} | {f['direct_p50']:.2f} | {f['llmgate_p50']:.2f} | **{f['diff_p50']:+.2f}** | "
                     f"{f['direct_p99']:.2f} | {f['llmgate_p99']:.2f} | {f['diff_p99']:+.2f} | "
                     f"{f['diff_paired']:+.2f} | {f['upstream-ttfb']:.2f} / {f['overhead']:.2f} | {cpu} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI: start everything, measure, print a table per run and the median of the runs."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ttfb", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="rounds per run (each kind, each side)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--client-cpus", help="pin this client here (default: with the doubles, off llmgate's CPU)")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument("--hold", action="store_true", help="keep everything running after the runs (Ctrl-C ends)")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    affinity = os.sched_getaffinity(0)  # this process moves to the load's CPUs while it measures
    pairs: dict[str, tuple[Probe, Probe]] = {}
    with terminate_as_exit(), tempfile.TemporaryDirectory(prefix="llmgate-ttfb-") as tmp:
        workdir = Path(tmp)
        procs = Procs(workdir)
        try:
            urls, account = start_all(procs, workdir, args.client_cpus)
            gateway_pid = next(proc.pid for proc in procs.live if proc.name == "llmgate")
            pairs.update((kind, probes(kind, urls, account)) for kind in kinds)
            for kind, (direct, gateway) in pairs.items():
                check(kind, direct, gateway)
            runs = []
            for n in range(args.runs):
                runs.append(measure(pairs, args.requests, args.warmup))
                for kind, cpu in cpu_per_request(pairs, gateway_pid, args.requests).items():
                    runs[-1][kind]["cpu_us"] = cpu
                print(f"run {n + 1}/{args.runs} (ms, c=1, {args.requests} rounds)\n{table(runs[-1])}\n", flush=True)
            result = median_of(runs)
            print(f"median of {len(runs)} runs (ms)\n{table(result)}")
            if args.json is not None:
                args.json.write_text(json.dumps({"runs": runs, "median": result, "urls": urls}, indent=2))
            if args.hold:
                print(f"holding: {urls}", flush=True)
                while True:
                    time.sleep(3600)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            for probe in (probe for pair in pairs.values() for probe in pair):
                probe.close()
            procs.stop_all()
            os.sched_setaffinity(0, affinity)
    return 0


if __name__ == "__main__":
    sys.exit(main())
