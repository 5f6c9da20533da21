"""Which upstream client can relay an LLM stream cheapest? ref_gw's raw-ASGI passthrough with CLIENT chosen.

The same Litestar `@asgi` handler as `shared/bench/ref_gw.py` (`HANDLER=asgi`), whose stream path is swapped
for each candidate client; a stream is relayed as it arrives (every read is sent on at once), except for
`pyreqwest`, ref_gw's own buffering read (64 KiB before the first byte: the floor the issue measures against).

    CLIENT: aiohttp (readany), pyreqwest (buffered, as ref_gw), pyreqwest_chunk (read_chunk, no pre-buffer),
            curl (curl_cffi AsyncSession), rnet, aiosonic, httptools (`_HttptoolsConnection` below: the least
            a hand-written HTTP/1.1 client on an asyncio protocol can do: plain HTTP, keep-alive, no timeouts)
    UPSTREAM: the upstream double's base URL (default http://127.0.0.1:18080)

Run one server per client, each pinned to the gateway's CPU, and compare CPU per request under wrk
(benchmarks/README.md, "Streaming: every well-maintained client measured"):

    uv run --with curl-cffi --with rnet --with aiosonic --with httptools env CLIENT=aiohttp taskset -c 0 \\
        granian --interface asgi --loop uvloop --port 8200 --working-dir benchmarks stream_clients:app

Only aiohttp and pyreqwest are llmgate dependencies; the others load only when chosen.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Litestar, asgi
from litestar.types import Receive, Scope, Send

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:18080")
CLIENT = os.environ.get("CLIENT", "aiohttp")
PATH = "/v1/chat/completions"
URL = UPSTREAM + PATH
HEADERS = {"authorization": "Bearer sk-upstream", "content-type": "application/json"}


class _Head(msgspec.Struct):
    model: str
    stream: bool = False


_decode = msgspec.json.Decoder(_Head).decode
_state: dict[str, Any] = {}


class _HttptoolsConnection(asyncio.Protocol):
    """One keep-alive connection to the double, its response parsed by httptools (llhttp, in C): each body
    piece costs one Python callback, and `read()` hands over everything that has arrived, joined."""

    def __init__(self, idle: list[_HttptoolsConnection]) -> None:
        import httptools

        self.idle = idle
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.pieces: list[bytes] = []
        self.waiter: asyncio.Future[None] | None = None
        self.status = 0
        self.complete = self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the upstream closed the connection"))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.pieces.append(body)
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter

    async def post(self, request: bytes) -> None:
        self.status, self.complete = 0, False
        assert self.transport is not None
        self.transport.write(request)
        while not self.status:
            await self._wait()

    async def read(self) -> bytes:
        """What has arrived since the last read; b"" at the end (the connection then goes back to the pool)."""
        while not self.pieces:
            if self.complete:
                if self.parser.should_keep_alive() and not self.closed:
                    self.idle.append(self)
                elif self.transport is not None:
                    self.transport.close()
                return b""
            await self._wait()
        pieces = self.pieces
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        pieces.clear()
        return data


async def _httptools_post(body: bytes) -> _HttptoolsConnection:
    idle: list[_HttptoolsConnection] = _state["client"]
    while idle:
        connection = idle.pop()
        if not connection.closed:
            break
    else:
        host, _, port = UPSTREAM.removeprefix("http://").partition(":")
        _, connection = await asyncio.get_running_loop().create_connection(
            lambda: _HttptoolsConnection(idle), host, int(port or 80))
    head = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())
    await connection.post(f"POST {PATH} HTTP/1.1\r\nhost: {UPSTREAM.removeprefix('http://')}\r\n{head}"
                          f"content-length: {len(body)}\r\n\r\n".encode() + body)
    return connection


async def startup() -> None:
    if CLIENT == "aiohttp":
        import aiohttp

        _state["client"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False,
                                                 cookie_jar=aiohttp.DummyCookieJar())
    elif CLIENT.startswith("pyreqwest"):
        from pyreqwest.client import ClientBuilder

        _state["client"] = await ClientBuilder().build().__aenter__()
    elif CLIENT == "httptools":
        _state["client"] = []  # the idle connections
    elif CLIENT == "curl":
        from curl_cffi.requests import AsyncSession

        _state["client"] = AsyncSession(max_clients=256)
    elif CLIENT == "rnet":
        import rnet

        _state["client"] = rnet.Client()
    elif CLIENT == "aiosonic":
        import aiosonic

        _state["client"] = aiosonic.HTTPClient()
    else:
        raise SystemExit(f"unknown CLIENT {CLIENT!r}")


async def _relay(send: Send, status: int, chunks: AsyncIterator[bytes]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/event-stream")]})
    async for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _stream(send: Send, body: bytes) -> None:
    client = _state["client"]
    if CLIENT == "aiohttp":
        async with client.post(URL, data=body, headers=HEADERS) as response:
            async def readany() -> AsyncIterator[bytes]:
                while chunk := await response.content.readany():
                    yield chunk
            await _relay(send, response.status, readany())
    elif CLIENT.startswith("pyreqwest"):
        builder = client.post(URL).body_bytes(body).headers(HEADERS)
        if CLIENT == "pyreqwest_chunk":
            builder = builder.streamed_read_buffer_limit(0)
        async with builder.build_streamed() as response:
            reader = response.body_reader
            read = reader.read_chunk if CLIENT == "pyreqwest_chunk" else reader.read

            async def chunks() -> AsyncIterator[bytes]:
                while (chunk := await read()) is not None:
                    yield bytes(chunk)
            await _relay(send, response.status, chunks())
    else:
        await _stream_other(send, body, client)


async def _stream_other(send: Send, body: bytes, client: Any) -> None:
    """The clients that are not llmgate dependencies."""
    if CLIENT == "httptools":
        connection = await _httptools_post(body)

        async def reads() -> AsyncIterator[bytes]:
            while data := await connection.read():
                yield data
        await _relay(send, connection.status, reads())
    elif CLIENT == "curl":
        response = await client.request("POST", URL, data=body, headers=HEADERS, stream=True)
        try:
            await _relay(send, response.status_code, response.aiter_content())
        finally:
            await response.aclose()
    elif CLIENT == "rnet":
        response = await client.post(URL, body=body, headers=HEADERS)
        async with response.stream() as streamer:
            async def frames() -> AsyncIterator[bytes]:
                async for chunk in streamer:
                    yield chunk
            await _relay(send, int(str(response.status)), frames())
    else:  # aiosonic
        response = await client.post(URL, data=body, headers=HEADERS)
        await _relay(send, response.status_code, response.read_chunks())


@asgi(PATH, is_mount=False)
async def chat(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if not _decode(body).stream:
        await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"streams only: send \"stream\": true"})
        return
    await _stream(send, body)


app = Litestar([chat], on_startup=[startup], openapi_config=None, logging_config=None)
