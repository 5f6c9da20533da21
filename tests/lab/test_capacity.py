"""The capacity test (benchmarks/capacity.py) briefly end to end, and its client's chunk timing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.lab import streamload

REPO = Path(__file__).resolve().parents[2]


class _Transport:
    closed = False

    def write(self, data: bytes) -> None:
        self.sent = data

    def close(self) -> None:
        self.closed = True


def test_frames_are_timed_as_they_arrive_even_split_across_reads() -> None:
    loop = asyncio.new_event_loop()
    try:
        done = loop.create_future()
        stream = streamload._Stream(b"req", done)
        stream.connection_made(_Transport())  # type: ignore[arg-type]
        stream.data_received(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1a\r\ndata: {\"a\":1}\n")
        assert stream.arrivals == [] and stream.status_ok
        stream.data_received(b"\n\r\n")  # the frame's end came in the next read
        stream.data_received(b"1a\r\ndata: {\"a\":2}\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
        assert len(stream.arrivals) == 3 and stream.finished
        assert stream.arrivals == sorted(stream.arrivals) and stream.arrivals[1] == stream.arrivals[2]
        stream.connection_lost(None)
        assert done.done()
    finally:
        loop.close()


def test_an_error_status_is_not_a_stream() -> None:
    loop = asyncio.new_event_loop()
    try:
        stream = streamload._Stream(b"req", loop.create_future())
        stream.data_received(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\n{}")
        assert not stream.status_ok and not stream.finished
    finally:
        loop.close()


def test_a_held_connection_asks_for_the_next_stream_when_one_ends_and_reports_the_first_apart() -> None:
    loop = asyncio.new_event_loop()
    try:
        result = streamload.StreamLoad(1)
        stream = streamload._Stream(b"req", loop.create_future(), until=time.monotonic() + 60, result=result,
                                    delay_s=0.01)
        transport = _Transport()
        stream.connection_made(transport)  # type: ignore[arg-type]
        response = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1a\r\ndata: {\"a\":1}\n\n\r\n"
                    b"1a\r\ndata: {\"a\":2}\n\n\r\ne\r\ndata: [DONE]\n\n\r\n")
        for _ in range(3):
            transport.sent = b""
            stream.data_received(response)
            assert transport.sent == b""  # [DONE] alone is not the response's end: its chunked terminator is
            stream.data_received(b"0\r\n\r\n")
            assert transport.sent == b"req" and stream.waiting
        assert stream.served == 3 and result.errors == 0
        assert len(result.opening_totals_s) == 1 and result.ok == 2 and len(result.totals_s) == 2
        assert len(result.lags_s) == 2  # one paced chunk after the first, in each measured stream
        stream.connection_lost(None)  # the other side closed while the fourth was awaited: an error
        assert stream.done.done() and stream.waiting
    finally:
        loop.close()


def test_a_held_connection_closes_once_its_time_is_up_and_on_an_error_status() -> None:
    loop = asyncio.new_event_loop()
    try:
        result = streamload.StreamLoad(1)
        stream = streamload._Stream(b"req", loop.create_future(), until=time.monotonic() - 1, result=result)
        transport = _Transport()
        stream.connection_made(transport)  # type: ignore[arg-type]
        stream.data_received(b"HTTP/1.1 200 OK\r\n\r\n1a\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
        assert transport.closed and not stream.waiting and result.opening_totals_s
        refused = streamload._Stream(b"req", loop.create_future(), until=time.monotonic() + 60, result=result)
        transport = _Transport()
        refused.connection_made(transport)  # type: ignore[arg-type]
        refused.data_received(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\n\r\n{}")
        assert transport.closed and refused.waiting  # counted as an error when the connection is lost
    finally:
        loop.close()


@pytest.mark.timeout(180)
def test_capacity_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMGATE_", "OPENAI_"))}
    env["PYTHONPATH"] = str(REPO)
    out = tmp_path / "capacity.json"
    run = subprocess.run([sys.executable, "-m", "benchmarks.capacity", "--streams", "30", "--chunks", "4",
                          "--chunk-delay-ms", "20", "--hold-s", "1", "--ramp-s", "0.3", "--rounds", "1",
                          "--settle", "0.2", "--timeout", "90",
                          "--json", str(out)], capture_output=True, text=True, cwd=REPO, env=env, timeout=170)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(out.read_text())["summary"]
    direct, gateway = summary["direct"], summary["llmgate/passthrough"]
    # 30 connections, ~0.1 s a stream for 1 s: the opening streams, then several held ones each
    assert direct["errors"] == gateway["errors"] == 0 and gateway["ok"] >= 30 and direct["ok"] >= 30
    assert direct["p50_s"] >= 4 * 0.02  # the pace was kept: 4 chunks 20 ms apart, then the end
    assert gateway["rss_peak_mb"] >= gateway["rss_idle_mb"] > 0 and gateway["fds_after"] > 0
    assert set(gateway["holds"]) >= {"no errors", "peak RSS <= 250.0 MB", "fds back to idle"}
    assert "llmgate/passthrough" in run.stdout and "holds" in run.stdout


def test_the_nginx_reference_config_has_room_for_the_load_and_is_valid(tmp_path: Path) -> None:
    from benchmarks import capacity

    conf = capacity.NGINX_CONF.format(dir=tmp_path, connections=10_256, port=18999, upstream="127.0.0.1:18998",
                                      backlog=2048)
    assert "worker_connections 10256;" in conf and "server 127.0.0.1:18998;" in conf
    assert "listen 127.0.0.1:18999 backlog=2048;" in conf and "proxy_buffering off;" in conf
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        return  # the text is checked above; `nginx -t` needs nginx (installed for benchmarks, not by CI)
    (tmp_path / "nginx.conf").write_text(conf)
    check = subprocess.run([nginx, "-t", "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0, check.stderr
