"""The HTTP sink against a real HTTP server (http.server in a thread): batches, bearer, retries, spill."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from llmgate.usage.event import UsageEvent
from llmgate.usage.sinks.http import HttpSink
from tests.upstream_double import free_port


class Collector(ThreadingHTTPServer):
    """Records each POST (auth header, decoded body); answers `fail_first` POSTs with 503."""

    def __init__(self, fail_first: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fail_first = fail_first
        self.posts: list[tuple[str | None, list[dict[str, object]]]] = []
        self.attempts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/ingest"


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.attempts += 1
        if self.server.attempts <= self.server.fail_first:
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"busy")
            return
        self.server.posts.append((self.headers.get("authorization"), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def collector(fail_first: int = 0) -> Iterator[Collector]:
    server = Collector(fail_first)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def events(count: int, start: int = 0) -> list[UsageEvent]:
    return [UsageEvent(request_id=f"req-{n}", time=1.0, method="POST", endpoint="/v1/embeddings", status=200,
                       total_tokens=n) for n in range(start, start + count)]


async def write_and_close(sink: HttpSink, *batches: list[UsageEvent]) -> None:
    for batch in batches:
        await sink.write(batch)
    await asyncio.sleep(0.2)  # let the sink's own task post them, as it does between bus batches
    await sink.close()


def test_batches_are_posted_as_json_arrays_with_the_bearer(tmp_path: Path) -> None:
    with collector() as server:
        sink = HttpSink(server.url, str(tmp_path / "spill.jsonl"), token="sink-secret-123")
        asyncio.run(write_and_close(sink, events(3), events(2, start=3)))
    assert [auth for auth, _ in server.posts] == ["Bearer sink-secret-123"] * 2
    assert [[e["request_id"] for e in batch] for _, batch in server.posts] == [
        ["req-0", "req-1", "req-2"], ["req-3", "req-4"]]
    assert sink.posted == 5 and sink.spilled == 0 and not (tmp_path / "spill.jsonl").exists()


def test_failed_posts_are_retried_with_backoff(tmp_path: Path) -> None:
    with collector(fail_first=2) as server:
        sink = HttpSink(server.url, str(tmp_path / "spill.jsonl"), retries=3, backoff_base_s=0.01)
        asyncio.run(write_and_close(sink, events(4)))
    assert server.attempts == 3
    assert len(server.posts) == 1 and len(server.posts[0][1]) == 4


def test_gives_up_to_the_spill_file_when_the_endpoint_is_down(tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    sink = HttpSink(f"http://127.0.0.1:{free_port()}/ingest", str(spill), retries=2, backoff_base_s=0.01,
                    timeout_s=2)

    async def scenario() -> None:
        await sink.write(events(3))
        await asyncio.sleep(0.5)  # 3 refused connections, 0.01 s + 0.02 s apart
        await sink.write(events(2, start=3))
        await sink.close()  # tries the last batch once more, then spills it

    asyncio.run(scenario())
    spilled = [json.loads(line)["request_id"] for line in spill.read_text().splitlines()]
    assert spilled == ["req-0", "req-1", "req-2", "req-3", "req-4"]
    assert sink.spilled == 5 and sink.posted == 0


def test_too_many_waiting_batches_go_straight_to_the_spill_file(tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    sink = HttpSink(f"http://127.0.0.1:{free_port()}/ingest", str(spill), retries=0, max_pending=1,
                    timeout_s=1)

    async def scenario() -> None:
        await sink.write(events(1))
        await sink.write(events(1, start=1))  # the first still waits (its task has not run): spilled now
        assert [json.loads(line)["request_id"] for line in spill.read_text().splitlines()] == ["req-1"]
        await sink.close()

    asyncio.run(scenario())
    assert sink.spilled == 2
