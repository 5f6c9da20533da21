"""Usage sinks in a running gateway: failing sinks do not fail requests or the other sinks, SIGTERM writes
every queued event, the raw body log holds whole streams and no secret."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.servers import MASTER_KEY, UPSTREAM_KEY, gateway_env, start_gateway
from tests.upstream_double import free_port, stop_process

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
HI = [{"role": "user", "content": "hi"}]


def usage_rows(data_dir: Path) -> list[tuple[str, int, int | None]]:
    with sqlite3.connect(data_dir / "llmgate.db") as db:
        return db.execute("SELECT request_id, status, total_tokens FROM usage ORDER BY time").fetchall()


def send(url: str, count: int) -> list[str]:
    """`count` chat requests, every third one streamed; their request ids."""
    ids = []
    with httpx.Client(base_url=url, headers=AUTH, timeout=10) as client:
        for n in range(count):
            response = client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HI,
                                                                 "stream": n % 3 == 0})
            assert response.status_code == 200, response.text
            ids.append(response.headers["x-request-id"])
    return ids


@pytest.mark.parametrize("mode", [("--no-single-process",), ()], ids=["supervised", "single-process"])
def test_sigterm_writes_every_queued_event(upstream: str, tmp_path: Path, mode: tuple[str, ...]) -> None:
    """Nothing is flushed while serving (a 60 s flush interval); stopping the server writes all N rows. In
    single-process mode the gateway serves from `llmgate serve`'s own process, with no worker under it."""
    env = gateway_env(upstream, LLMGATE_USAGE_LOG="1", LLMGATE_USAGE_FLUSH_S="60", LLMGATE_DATA_DIR=str(tmp_path))
    with start_gateway(env, *mode) as gw:
        workers = Path(f"/proc/{gw.proc.pid}/task/{gw.proc.pid}/children").read_text().split()
        assert (len(workers) == 0) == (not mode), workers
        ids = send(gw.url, 60)
        assert usage_rows(tmp_path) == []  # still queued in memory
        stop_process(gw.proc)  # SIGTERM, as a supervisor would
        assert gw.proc.returncode == 0, gw.logs()
    rows = usage_rows(tmp_path)
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert all(status == 200 and tokens for _, status, tokens in rows)


def test_failing_sinks_fail_no_request_nor_the_store(upstream: str, tmp_path: Path) -> None:
    """The HTTP sink's endpoint is down and the JSONL sink's disk is full (/dev/full: ENOSPC)."""
    spill = tmp_path / "spill.jsonl"
    env = gateway_env(upstream, LLMGATE_USAGE_HTTP_URL=f"http://127.0.0.1:{free_port()}/ingest",
                      LLMGATE_USAGE_HTTP_RETRIES="1", LLMGATE_USAGE_HTTP_TIMEOUT_S="2",
                      LLMGATE_USAGE_JSONL="/dev/full", LLMGATE_USAGE_SPILL_PATH=str(spill),
                      LLMGATE_USAGE_FLUSH_S="0.05", LLMGATE_DATA_DIR=str(tmp_path))
    with start_gateway(env) as gw:
        ids = send(gw.url, 30)
        stop_process(gw.proc)
        logs = gw.logs()
    assert sorted(r[0] for r in usage_rows(tmp_path)) == sorted(ids)  # the store sink got every event
    spilled = [json.loads(line)["request_id"] for line in spill.read_text().splitlines()]
    assert sorted(spilled) == sorted(ids)  # what the HTTP sink gave up on, nothing lost
    assert "usage sink jsonl failed" in logs and "No space left on device" in logs
    assert f"written to {spill}" in logs  # given up after its retries, or at shutdown: said either way


def test_raw_log_holds_whole_streams_and_no_secret(upstream: str, tmp_path: Path) -> None:
    raw = tmp_path / "raw.jsonl"
    env = gateway_env(upstream, LLMGATE_RAW_LOG="1", LLMGATE_RAW_LOG_PATH=str(raw), LLMGATE_USAGE_FLUSH_S="0.05",
                      LLMGATE_DATA_DIR=str(tmp_path))
    body = {"model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": f"is {UPSTREAM_KEY} or {MASTER_KEY} a key?"}]}
    with start_gateway(env) as gw:
        with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=10,
                          headers={**AUTH, "x-mock-chunks": "3", "api-key": UPSTREAM_KEY}) as response:
            received = b"".join(response.iter_raw())
            request_id = response.headers["x-request-id"]
        refused = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "gpt-4o-mini"}, timeout=10,
                             headers={**AUTH, "x-mock-status": "400"})
        stop_process(gw.proc)
    text = raw.read_text()
    assert MASTER_KEY not in text and UPSTREAM_KEY not in text
    [line] = [json.loads(x) for x in text.splitlines() if json.loads(x)["request_id"] == request_id]
    assert "authorization" not in line["request_headers"] and "api-key" not in line["request_headers"]
    assert line["request_headers"]["x-mock-chunks"] == "3"
    assert line["request_body"]["messages"][0]["content"] == "is sk-****3210 or sk-****cdef a key?"
    chunks = line["response_body"]
    assert all(f'"content":"tok{i} "' in chunks for i in range(3)) and chunks.endswith("data: [DONE]\n\n")
    assert b'"usage"' not in received and '"usage"' in chunks  # the chunk llmgate asked for, logged, not sent
    [error] = [json.loads(x) for x in text.splitlines()
               if json.loads(x)["request_id"] == refused.headers["x-request-id"]]
    assert error["status"] == 400 and error["response_body"] == refused.json()  # an upstream error, body and all
