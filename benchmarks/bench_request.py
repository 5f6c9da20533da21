"""Path benchmark: one whole request through the app, in process, against an in-process upstream.

How, since pytest-benchmark has no async support: one uvloop event loop lives for the whole module. On it run
(1) a minimal HTTP/1.1 upstream (an asyncio Protocol answering every POST with the upstream double's chat
completion, keep-alive) and (2) llmgate's Litestar app, whose lifespan is started once through ASGI `lifespan`
messages. Each benchmark round is `loop.run_until_complete(one request)`: the request is handed to the app as
ASGI messages (no client socket, no granian), the app forwards it over its real pooled upstream client to the
in-process upstream, and the answer's messages are collected.

Reference: the same request sent straight to the upstream with llmgate's own upstream client
(`UpstreamClient.fetch`) on the same loop, so the ratio is "through llmgate" / "direct", as end to end.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
import uvloop

from llmgate.app import create_app
from llmgate.config import load_settings
from llmgate.proxy.client import UpstreamClient
from tests.upstream_double import chat_body, chat_frames

# Building the app in process shows Litestar's deprecation notes about controllers' parameter declarations
# (/manage, /health/deployments): not what this file measures, and owned by those modules.
pytestmark = pytest.mark.filterwarnings("ignore::litestar.exceptions.base_exceptions.LitestarDeprecationWarning")
MASTER = "sk-bench-master-0123456789"
BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}).encode()
STREAM_BODY = json.dumps({"model": "gpt-4o-mini", "stream": True,
                          "messages": [{"role": "user", "content": "Say hello."}]}).encode()


def _chunked(frames: tuple[bytes, tuple[bytes, ...], bytes]) -> bytes:
    head, deltas, tail = frames
    parts = [p for p in (head, *deltas, tail) if p]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


_WHOLE = chat_body("gpt-4o-mini")
ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(_WHOLE)) + _WHOLE
STREAM_ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                 + _chunked(chat_frames("gpt-4o-mini", 20, False)))


class Upstream(asyncio.Protocol):
    """Answers each request (head + content-length body) with ANSWER, or STREAM_ANSWER for `"stream":true`."""

    open_transports: ClassVar[set[Any]] = set()  # closed at teardown, while the loop still runs

    def __init__(self) -> None:
        self.buf = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.open_transports.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open_transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = self.buf[:end].lower()
            length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0]) if b"content-length:" in head \
                else 0
            if len(self.buf) < end + 4 + length:
                return
            body, self.buf = self.buf[end + 4:end + 4 + length], self.buf[end + 4 + length:]
            self.transport.write(self.answer(body))

    def answer(self, body: bytes) -> bytes:
        """The whole HTTP answer to a request with `body` (count_instructions.py answers `include_usage` too)."""
        return STREAM_ANSWER if b"\"stream\": true" in body else ANSWER


class InProcess:
    """The long-lived loop, the upstream on it, and the app with its lifespan started."""

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self.server = self.loop.run_until_complete(self.loop.create_server(Upstream, "127.0.0.1", 0))
        port = self.server.sockets[0].getsockname()[1]
        settings = load_settings({"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": "sk-up",
                                  "LLMGATE_MASTER_KEY": MASTER, "LLMGATE_LOG_LEVEL": "WARNING",
                                  "LLMGATE_DATA_DIR": self._data_dir()})
        self.app = create_app(settings)
        self.client = UpstreamClient(settings.providers[0])
        self.loop.run_until_complete(self.client.open())
        self._lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._lifespan = self.loop.create_task(self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                                        self._lifespan_in.get, self._lifespan_out.put))
        self._lifespan_in.put_nowait({"type": "lifespan.startup"})
        started = self.loop.run_until_complete(self._lifespan_out.get())
        assert started["type"] == "lifespan.startup.complete", started

    @staticmethod
    def _data_dir() -> str:
        import tempfile

        return tempfile.mkdtemp(prefix="llmgate-bench-request-")

    async def request(self, body: bytes, path: str = "/v1/chat/completions", credential: str | None = None,
                      expect: int = 200) -> bytes:
        """One POST through the app (by default a chat completion with the master key); the answer's body bytes."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[dict[str, Any]] = loop.create_future()
        sent: list[bytes] = []
        status: list[int] = []
        messages = iter([{"type": "http.request", "body": body, "more_body": False}])

        def receive() -> asyncio.Future[dict[str, Any]]:
            # As granian's: a plain call returning a future (the disconnect watch waits on it, not on a task).
            message = next(messages, None)
            if message is None:
                return done  # resolves to the disconnect once the answer is complete
            ready = loop.create_future()
            ready.set_result(message)
            return ready

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body":
                sent.append(message.get("body", b""))
                if not message.get("more_body") and not done.done():
                    done.set_result({"type": "http.disconnect"})

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
                 "server": ("127.0.0.1", 8000), "state": {},
                 "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                             (b"authorization", f"Bearer {credential or MASTER}".encode()),
                             (b"content-length", str(len(body)).encode())]}
        await self.app(scope, receive, send)  # type: ignore[arg-type]
        assert status == [expect], (status, b"".join(sent)[:300])
        return b"".join(sent)

    async def direct(self) -> bytes:
        status, _headers, answer = await self.client.fetch(
            "POST", "/chat/completions", [("content-type", "application/json"), ("authorization", "Bearer sk-up")],
            BODY)
        assert status == 200
        return answer

    def close(self) -> None:
        """Everything closed and collected while the loop still runs: a uvloop handle freed after the loop has
        closed raises in its finalizer (an unraisable-exception warning, an error under filterwarnings=error)."""
        self._lifespan_in.put_nowait({"type": "lifespan.shutdown"})
        self.loop.run_until_complete(self._lifespan)
        self.loop.run_until_complete(self.client.close())
        self.server.close()
        for transport in list(Upstream.open_transports):
            transport.close()
        self.loop.run_until_complete(self.server.wait_closed())
        self.loop.run_until_complete(asyncio.sleep(0.05))  # let the closes complete
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        gc.collect()
        self.loop.close()


@pytest.fixture(scope="module")
def inproc() -> Iterator[InProcess]:
    running = InProcess()
    try:
        yield running
    finally:
        running.close()


def test_direct_upstream_call_reference(record: Callable[..., None], inproc: InProcess) -> None:
    assert b'"choices"' in inproc.loop.run_until_complete(inproc.direct())
    record(lambda: inproc.loop.run_until_complete(inproc.direct()), is_reference="direct_upstream_call")


def test_whole_request_in_process(record: Callable[..., None], inproc: InProcess) -> None:
    assert inproc.loop.run_until_complete(inproc.request(BODY)) == _WHOLE
    record(lambda: inproc.loop.run_until_complete(inproc.request(BODY)), reference="direct_upstream_call")


def test_whole_streamed_request_in_process(record: Callable[..., None], inproc: InProcess) -> None:
    answer = inproc.loop.run_until_complete(inproc.request(STREAM_BODY))
    assert answer.endswith(b"data: [DONE]\n\n") and answer.count(b"data: ") == 22
    record(lambda: inproc.loop.run_until_complete(inproc.request(STREAM_BODY)), reference="direct_upstream_call")


@pytest.mark.parametrize("body", [BODY, STREAM_BODY], ids=["whole", "stream"])
def test_requests_leave_no_reference_cycles(inproc: InProcess, body: bytes) -> None:
    """Not a timing: a request's objects must be freed by reference counting. Objects left in cycles wait for the
    cyclic GC, whose collections then cost CPU under load (a stream once left 26, and gen1 collected ~220k objects
    per 18k streams)."""
    inproc.loop.run_until_complete(inproc.request(body))  # warm: first-use caches are not garbage
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(20):
            inproc.loop.run_until_complete(inproc.request(body))
        gc.collect()
        left = [type(obj).__qualname__ for obj in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
