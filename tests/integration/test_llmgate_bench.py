"""`llmgate bench URL` against a real endpoint: the upstream double directly, and llmgate in front of it.

Every figure asserted comes from the run: the double counts what it received (`/_seen`), and its faults
(`/_mock/...` in the URL) shape the answers: a delay before the first byte, a status, a rejected key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.servers import MASTER_KEY, Gateway
from tests.upstream_double import free_port, run_double


@pytest.fixture(scope="module")
def double() -> Iterator[str]:
    """A double of this module's own, so that its /_seen counts only these runs."""
    with run_double() as url:
        yield url


def seen(double: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{double}/_seen").json()
    return answer


def bench(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMGATE_", "OPENAI_"))}
    if key is not None:
        env["BENCH_KEY"] = key
    return subprocess.run([sys.executable, "-m", "llmgate", "bench", "--key-env", "BENCH_KEY", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def bench_json(*args: str, key: str | None = None, status: int = 0) -> dict[str, Any]:
    run = bench(*args, "--json", "-", key=key)
    assert run.returncode == status, run.stdout + run.stderr
    report: dict[str, Any] = json.loads(run.stdout)
    return report


def test_whole_answers_counted_and_timed(double: str) -> None:
    httpx.post(f"{double}/_reset")
    report = bench_json(double, "--requests", "40", "--concurrency", "4", "--model", "gpt-4o", "--prompt", "hi")
    assert report["url"] == f"{double}/v1/chat/completions" and report["is_stream"] is False
    assert report["requests"] == report["ok"] == 40 and report["errors"] == {} and report["concurrency"] == 4
    assert report["rps"] == pytest.approx(40 / report["duration_s"])
    lat = report["latency"]
    assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert report["first_byte"] is None
    got = seen(double)
    assert got["count"] == 40 and got["last_path"] == "/v1/chat/completions"
    assert json.loads(got["last_body"]) == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_the_upstreams_delay_shows_in_the_latency(double: str) -> None:
    report = bench_json(f"{double}/_mock/delay-ms=30/v1", "-n", "12", "-c", "3")
    assert report["ok"] == 12 and report["latency"]["p50_ms"] >= 30.0  # the double waits 30 ms before answering


def test_streams_report_the_first_byte_before_the_last(double: str) -> None:
    httpx.post(f"{double}/_reset")
    report = bench_json(f"{double}/_mock/chunks=5,chunk-delay-ms=10/v1", "--stream", "-n", "10", "-c", "2")
    assert report["is_stream"] is True and report["ok"] == 10
    first, whole = report["first_byte"], report["latency"]
    assert 0 < first["p50_ms"] < whole["p50_ms"] and whole["p50_ms"] >= 40.0  # five chunks, 10 ms apart
    assert seen(double)["streams_completed"] == 10


def test_errors_by_status_and_exit_1(double: str) -> None:
    report = bench_json(f"{double}/_mock/status=429/v1", "-n", "10", "-c", "2", status=1)
    assert report["ok"] == 0 and report["requests"] == 10 and report["errors"] == {"HTTP 429": 10}
    assert report["latency"] is None and report["rps"] == 0.0
    table = bench(f"{double}/_mock/status=503/v1", "-n", "3")
    assert table.returncode == 1 and "HTTP 503" in table.stdout


def test_the_key_comes_from_the_environment(double: str) -> None:
    bench_json(double, "-n", "2", key="sk-bench-good")
    assert seen(double)["last_auth"] == "Bearer sk-bench-good"
    report = bench_json(f"{double}/_mock/reject-key=bad/v1", "-n", "4", key="sk-bad", status=1)
    assert report["errors"] == {"HTTP 401": 4}


def test_duration_bounds_the_run_and_the_table_is_printed(double: str, tmp_path: Any) -> None:
    out = tmp_path / "run.json"
    run = bench(f"{double}/v1", "--duration", "1", "-c", "2", "--json", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    assert report["duration_s"] >= 1.0 and report["requests"] == report["ok"] > 0
    assert "requests/s (2xx)" in run.stdout and "p99" in run.stdout and f"wrote {out}" in run.stdout


def test_an_unreachable_endpoint_fails_at_once() -> None:
    run = bench(f"http://127.0.0.1:{free_port()}", "--duration", "300")  # not waited out: the subprocess would time out
    assert run.returncode == 1
    assert "llmgate bench: cannot connect to http://127.0.0.1:" in run.stderr and run.stdout == ""


def test_llmgate_itself_under_load(gateway: Gateway) -> None:
    report = bench_json(gateway.url, "-n", "30", "-c", "3", "--stream", key=MASTER_KEY)
    assert report["ok"] == 30 and report["first_byte"]["p50_ms"] > 0
    refused = bench_json(gateway.url, "-n", "3", key="sk-not-the-master-key", status=1)
    assert refused["errors"] == {"HTTP 401": 3}


def test_a_json_file_that_cannot_be_written(double: str, tmp_path: Any) -> None:
    run = bench(double, "-n", "2", "--json", str(tmp_path / "no-such-dir" / "run.json"))
    assert run.returncode == 1 and "llmgate bench: cannot write" in run.stderr
    assert "requests/s (2xx)" in run.stdout  # the figures were shown before
