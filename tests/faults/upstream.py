"""A fault-injecting OpenAI-compatible upstream over raw sockets: each fault misbehaves in a way an HTTP framework
would not let a test double misbehave (a reset mid-stream, a body shorter than its content-length, header bytes
outside ASCII).

The fault is the first path segment: a provider's `base_url` is `http://host:port/<fault>/v1`. One request per
connection (`connection: close`); streams are sent chunked, so that a reset is told apart from an end.

    ok                a chat completion (a stream when asked), usage included
    reset             the response's headers and one event (or nothing of a whole body), then a TCP reset
    drip              a stream whose first event comes 4 bytes at a time, 50 ms apart, then the rest at once
    silent            reads the request, never answers
    silent-after-one  a stream's headers and first event, then nothing
    invalid-json      200, application/json, a body that is not JSON
    truncated         content-length 200, 20 bytes, then the connection closed
    bad-header        200 with a header value holding bytes 0x80-0xFF
    429-key           429 (retry-after 30) to requests whose key contains `key-a`, else `ok`
    503               503 with an OpenAI error body

`seen` counts the requests per fault and remembers the keys used.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

import msgspec

CHUNK = (b'data: {"id":"c1","object":"chat.completion.chunk","model":"m",'
         b'"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n')
USAGE_CHUNK = (b'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],'
               b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n')
DONE = b"data: [DONE]\n\n"
WHOLE = msgspec.json.encode({
    "id": "c1", "object": "chat.completion", "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})


def error_body(status: int) -> bytes:
    return msgspec.json.encode({"error": {"message": f"fault {status}", "type": "server_error", "code": None}})


class Request:
    def __init__(self, head: bytes, body: bytes) -> None:
        lines = head.split(b"\r\n")
        self.method, self.path, _ = lines[0].decode("latin-1").split(" ", 2)
        self.headers = {k.strip().lower(): v.strip() for k, v in (line.split(b":", 1) for line in lines[1:] if line)}
        self.body = body
        self.fault = self.path.split("/")[1]

    @property
    def stream(self) -> bool:
        return b'"stream":true' in self.body.replace(b" ", b"")


class FaultUpstream:
    """The server, on its own thread and event loop (see the module docstring)."""

    def __init__(self) -> None:
        self.seen: collections.Counter[str] = collections.Counter()
        self.keys: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(5)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in pending:  # connections still held open (silent)
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request = Request(head[:-4], b"")
            request.body = await reader.readexactly(int(request.headers.get(b"content-length", b"0")))
            self.seen[request.fault] += 1
            self.keys.append(request.headers.get(b"authorization", b"").decode("latin-1"))
            await self._answer(request, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if not writer.is_closing():
                writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fault = request.fault
        if fault == "429-key" and b"key-a" in request.headers.get(b"authorization", b""):
            return await whole(writer, 429, error_body(429), [b"retry-after: 30"])
        if fault == "503":
            return await whole(writer, 503, error_body(503))
        if fault == "invalid-json":
            return await whole(writer, 200, b'{"id": "c1", not json')
        if fault == "bad-header":
            return await whole(writer, 200, WHOLE, [b"x-odd: caf\xe9 \xff"])
        if fault == "truncated":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200\r\n"
                         b"connection: close\r\n\r\n" + WHOLE[:20])
            await writer.drain()
            return None
        if fault == "silent":
            await reader.read()  # until the gateway gives up and closes
            return None
        if not request.stream:
            if fault == "reset":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n")
                await writer.drain()
                return reset(writer)
            return await whole(writer, 200, WHOLE)
        await stream(writer, request, reader)
        return None


async def whole(writer: asyncio.StreamWriter, status: int, body: bytes, extra: list[bytes] | None = None) -> None:
    lines = [b"HTTP/1.1 %d X" % status, b"content-type: application/json", b"content-length: %d" % len(body),
             b"connection: close", *(extra or [])]
    writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
    await writer.drain()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), not a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def stream(writer: asyncio.StreamWriter, request: Request, reader: asyncio.StreamReader) -> None:
    def chunk(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data)

    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                 b"connection: close\r\n\r\n")
    fault = request.fault
    if fault == "drip":
        for at in range(0, len(CHUNK), 4):
            writer.write(chunk(CHUNK[at:at + 4]))
            await writer.drain()
            await asyncio.sleep(0.05)
    else:
        writer.write(chunk(CHUNK))
        await writer.drain()
    if fault == "reset":
        await asyncio.sleep(0.05)
        return reset(writer)
    if fault == "silent-after-one":
        await reader.read()
        return None
    usage = USAGE_CHUNK if b'"include_usage":true' in request.body.replace(b" ", b"") else b""
    writer.write(chunk(CHUNK + usage + DONE) + b"0\r\n\r\n")
    await writer.drain()
    return None


@contextlib.contextmanager
def run_fault_upstream() -> Iterator[FaultUpstream]:
    """A FaultUpstream serving on 127.0.0.1 (its base URL: `http://127.0.0.1:<port>`)."""
    upstream = FaultUpstream()
    upstream.start()
    try:
        yield upstream
    finally:
        upstream.stop()
