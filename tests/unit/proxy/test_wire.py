"""The whole-answer HTTP/1.1 client (proxy/wire.py) against raw sockets: how each framing of an answer is read,
which connections are reused, and what a cancelled or failed request does to its connection."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import ssl
import subprocess
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from llmgate.proxy.wire import WireConnectError, WireError, WirePool, WireStream
from llmgate.proxy.wire_answer import READ_LIMIT

T = TypeVar("T")
Answer = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEADERS = [("content-type", "application/json")]


class Upstream:
    """A raw server: reads each request (head and content-length or chunked body), lets `answer` write bytes."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lower = head.lower()
                if b"transfer-encoding: chunked" in lower:
                    body = head + await reader.readuntil(b"0\r\n\r\n")
                elif b"content-length: " in lower:
                    length = int(lower.split(b"content-length: ")[1].split(b"\r\n")[0])
                    body = head + await reader.readexactly(length)
                else:
                    body = head
                self.requests.append(body)
                await self.answer(body, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed.set()
        finally:
            writer.close()


def run(answer: Answer, use: Callable[[WirePool, Upstream], Awaitable[T]], tls: tuple[Path, Path] | None = None) -> T:
    async def main() -> T:
        upstream = Upstream(answer)
        context = None
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
        server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        trust = None
        if tls is not None:
            trust = ssl.create_default_context(cafile=str(tls[0]))
        pool = WirePool(f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{port}/v1", trust)
        try:
            return await use(pool, upstream)
        finally:
            pool.close()
            server.close()

    return asyncio.run(main())


def writes(*parts: bytes) -> Answer:
    async def answer(_: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.01)  # each part its own read on the other side

    return answer


async def fetch(pool: WirePool, body: bytes = b"{}") -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return await pool.fetch("POST", "/chat/completions", HEADERS, body, 5.0)


def test_a_content_length_answer_in_pieces_then_the_connection_reused() -> None:
    answer = writes(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Len", b"gth: 10\r\n\r\n{\"a\"",
                    b":true}")

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        first = await pool.fetch("POST", "/chat/completions", [*HEADERS, ("Content-Length", "99")], b'{"x":1}', 5.0)
        second = await fetch(pool)
        return [first, second, upstream.connections, upstream.requests[0]]

    first, second, connections, request = run(answer, use)
    assert first == second == (200, [(b"content-type", b"application/json"), (b"content-length", b"10")],
                               b'{"a":true}')
    assert connections == 1
    assert request.startswith(b"POST /v1/chat/completions HTTP/1.1\r\ncontent-type: application/json\r\n")  # type: ignore[union-attr]
    assert b"\r\nhost: 127.0.0.1:" in request and request.endswith(b"content-length: 7\r\n\r\n{\"x\":1}")  # type: ignore[operator]
    assert b"99" not in request  # type: ignore[operator]  # the framing is the client's own


def test_a_chunked_answer_with_trailers_after_a_1xx() -> None:
    answer = writes(b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n",
                    b"HTTP/1.1 429 Too Many\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
                    b"lo\r\n6;ext=1\r\n world\r\n", b"0\r\nx-trailer: 1\r\n\r\n")

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        return [await fetch(pool), await fetch(pool), upstream.connections]

    first, second, connections = run(answer, use)
    assert first == second == (429, [(b"transfer-encoding", b"chunked")], b"hello world")
    assert connections == 1


def test_an_answer_read_until_the_connection_closes_and_connection_close_are_not_reused() -> None:
    async def answer(request: bytes, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if b"until-close" in request:
            writer.write(b"HTTP/1.1 200 OK\r\n\r\nall of it")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        first = await pool.fetch("POST", "/until-close", HEADERS, b"", 5.0)
        second = await fetch(pool)
        third = await fetch(pool)
        return [first[2], second[2], third[2], upstream.connections]

    assert run(answer, use) == [b"all of it", b"ok", b"ok", 3]


def test_head_and_204_have_no_body_and_keep_the_connection() -> None:
    async def answer(request: bytes, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status = b"200 OK" if request.startswith(b"HEAD") else b"204 No Content"
        writer.write(b"HTTP/1.1 %s\r\ncontent-length: 50\r\n\r\n" % status if status.startswith(b"200")
                     else b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        head = await pool.fetch("HEAD", "/x", [], b"", 5.0)
        empty = await pool.fetch("POST", "/x", [], b"", 5.0)
        return [head[::2], empty[::2], upstream.connections, upstream.requests]

    head, empty, connections, requests = run(answer, use)
    assert (head, empty, connections) == ((200, b""), (204, b""), 1)
    assert b"content-length" not in requests[0] and requests[1].endswith(b"content-length: 0\r\n\r\n")  # type: ignore[index]


def test_a_request_body_streamed_is_sent_chunked() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b""
        yield b"1}"

    async def use(pool: WirePool, upstream: Upstream) -> bytes:
        await pool.fetch("POST", "/x", HEADERS, body(), 5.0)
        return upstream.requests[0]

    request = run(writes(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), use)
    assert b"transfer-encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n" in request


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream before its head"])
def test_a_cancelled_request_closes_its_connection_at_once(streamed: bool) -> None:
    async def never(_: bytes, reader: asyncio.StreamReader, __: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client closes
        raise ConnectionResetError

    async def use(pool: WirePool, upstream: Upstream) -> bool:
        task = asyncio.ensure_future(stream(pool) if streamed else fetch(pool))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(upstream.closed.wait(), 1)
        return upstream.closed.is_set()

    assert run(never, use)


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\nshort",  # then closed
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",  # then closed
    b"SSH-2.0-OpenSSH\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
])
def test_a_truncated_or_malformed_answer_is_a_wire_error(reply: bytes) -> None:
    async def answer(_: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply)
        await writer.drain()
        writer.close()

    async def use(pool: WirePool, _: Upstream) -> None:
        with pytest.raises(WireError):
            await fetch(pool)

    run(answer, use)


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\ncontent-length: -5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
])
def test_a_framing_that_does_not_say_where_the_body_ends_fails_at_once(reply: bytes) -> None:
    async def answer(_: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply)
        await writer.drain()
        await reader.read()  # the connection stays open: only the client's parse can end the wait

    async def use(pool: WirePool, _: Upstream) -> None:
        with pytest.raises(WireError, match="malformed"):
            await asyncio.wait_for(fetch(pool), 2)

    run(answer, use)


def test_a_repeated_content_length_that_agrees_is_read() -> None:
    async def use(pool: WirePool, _: Upstream) -> bytes:
        return (await fetch(pool))[2]

    assert run(writes(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nok"), use) == b"ok"


def test_a_line_break_in_a_header_is_refused_before_anything_is_sent() -> None:
    async def use(pool: WirePool, upstream: Upstream) -> int:
        with pytest.raises(WireError, match="line break"):
            await pool.fetch("POST", "/x", [("x-a", "1\r\nx-injected: 1")], b"", 5.0)
        return upstream.connections

    assert run(writes(b""), use) == 0


def test_a_path_is_sent_percent_encoded_never_with_raw_line_breaks_spaces_or_non_ascii() -> None:
    # A decoded /v1 path or a model name from a body ends up in the path (e.g. Gemini's /models/{model}:...).
    ok = writes(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async def use(pool: WirePool, upstream: Upstream) -> list[bytes]:
        await pool.fetch("POST", "/models/gemini-x\r\nx-injected: 1 \u00e9:generateContent?alt=sse", HEADERS,
                         b"{}", 5.0)
        await pool.fetch("GET", "/models/a:b@c?x=1&y=%2F", HEADERS, b"", 5.0)
        return upstream.requests

    first, second = run(ok, use)
    assert first.split(b"\r\n")[0] == (b"POST /v1/models/gemini-x%0D%0Ax-injected:%201%20%C3%A9:generateContent"
                                          b"?alt=sse HTTP/1.1")
    assert b"\r\nx-injected" not in first
    assert second.split(b"\r\n")[0] == b"GET /v1/models/a:b@c?x=1&y=%2F HTTP/1.1"  # nothing to encode: as given


def test_an_idle_connection_the_upstream_closed_is_not_reused() -> None:
    async def answer(_: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # without saying connection: close

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        first = await fetch(pool)
        await asyncio.sleep(0.1)
        second = await fetch(pool)
        return [first[2], second[2], upstream.connections]

    assert run(answer, use) == [b"ok", b"ok", 2]


def test_https(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        return [await fetch(pool), await fetch(pool), upstream.connections]

    first, second, connections = run(writes(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"), use, (cert, key))
    assert first == second == (200, [(b"content-length", b"2")], b"ok")
    assert connections == 1


def test_an_idle_connection_past_idle_s_is_closed_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llmgate.proxy.wire.IDLE_S", 0.0)
    answer = writes(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        await fetch(pool)
        await fetch(pool)
        await asyncio.wait_for(upstream.closed.wait(), 1)  # the first, closed by the pool
        return [upstream.connections, upstream.closed.is_set()]

    assert run(answer, use) == [2, True]


@pytest.mark.parametrize(("keep_alive", "connections"), [
    (b"keep-alive: timeout=1", 2),  # kept idle a second: closed rather than reused a second before
    (b"Keep-Alive: max=100, timeout=5", 1),
    (b"keep-alive: timeout=soon", 1),  # not a number of seconds: IDLE_S
])
def test_an_upstream_keep_alive_timeout_bounds_how_long_a_connection_waits_idle(keep_alive: bytes,
                                                                               connections: int) -> None:
    answer = writes(b"HTTP/1.1 200 OK\r\n" + keep_alive + b"\r\ncontent-length: 2\r\n\r\nok")

    async def use(pool: WirePool, upstream: Upstream) -> int:
        await fetch(pool)
        await fetch(pool)
        return upstream.connections

    assert run(answer, use) == connections


def test_bytes_past_the_answers_end_make_its_connection_unfit_for_the_next() -> None:
    answer = writes(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 500 Stray\r\n\r\n")

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        return [await fetch(pool), await fetch(pool), upstream.connections]

    first, second, connections = run(answer, use)
    assert first == second == (200, [(b"content-length", b"2")], b"ok")
    assert connections == 2


# Streamed answers: the body handed over as it arrives.

def paced(go: asyncio.Queue[None], *parts: bytes) -> Answer:
    """Write each part once the test says so (`go`): the first at once."""
    async def answer(_: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i, part in enumerate(parts):
            if i:
                await go.get()
            writer.write(part)
            await writer.drain()

    return answer


async def stream(pool: WirePool) -> WireStream:
    return await pool.stream("POST", "/chat/completions", HEADERS, b"{}", 5.0)


async def read_paced(pool: WirePool, go: asyncio.Queue[None], steps: int) -> list[object]:
    """Each piece as next_chunk() hands it over (the next written only after), then whether the body ended."""
    got: list[object] = []
    async with await stream(pool) as reply:
        got.append(reply.status)
        for step in range(steps):
            got.append((await reply.next_chunk(), reply.ended()))
            if step < steps - 1:
                go.put_nowait(None)
        got.append(await reply.next_chunk())
    return got


def test_a_chunked_stream_is_handed_over_as_it_arrives_a_chunk_split_across_reads_too() -> None:
    go: asyncio.Queue[None] = asyncio.Queue()
    answer = paced(go, b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel", b"lo\r\n6\r",
                   b"\n world\r\n0\r\n", b"\r\n")

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        got = await read_paced(pool, go, 4)
        got.append(await read_paced(pool, go, 4))
        return [*got, upstream.connections]

    first = [200, (b"hel", False), (b"lo", False), (b" world", False), (b"", True), b""]
    assert run(answer, use) == [*first, first, 1]  # read to its end: the connection is reused


def test_a_content_length_stream_in_pieces_ends_with_its_last_byte() -> None:
    go: asyncio.Queue[None] = asyncio.Queue()
    answer = paced(go, b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello", b"world")

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        return [*await read_paced(pool, go, 2), upstream.connections]

    assert run(answer, use) == [200, (b"hello", False), (b"world", True), b"", 1]


def test_a_stream_until_the_connection_closes_ends_there_and_is_not_reused() -> None:
    go: asyncio.Queue[None] = asyncio.Queue()
    parts = (b"HTTP/1.1 200 OK\r\n\r\nabc", b"def")

    async def answer(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await paced(go, *parts)(request, reader, writer)
        await go.get()
        writer.close()

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        got = await read_paced(pool, go, 3)
        got.append(await read_paced(pool, go, 3))
        return [*got, upstream.connections]

    first = [200, (b"abc", False), (b"def", False), (b"", True), b""]
    assert run(answer, use) == [*first, first, 2]


def test_next_chunk_returns_everything_that_has_arrived_at_once() -> None:
    answer = writes(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", b"3\r\nab", b"c\r\n", b"2\r\nde\r\n",
                    b"1\r\nf\r\n0\r\n\r\n")

    async def use(pool: WirePool, _: Upstream) -> list[object]:
        async with await stream(pool) as reply:
            await asyncio.sleep(0.2)  # every part has come
            return [await reply.next_chunk(), reply.ended(), await reply.next_chunk()]

    assert run(answer, use) == [b"abcdef", True, b""]


def test_a_stream_not_taken_pauses_reading_until_it_is() -> None:
    size = 32 * 1024 * 1024  # far past what the sockets' buffers hold
    sent = asyncio.Event()

    async def answer(_: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        writer.write(b"x" * size)
        await writer.drain()
        sent.set()

    async def use(pool: WirePool, _: Upstream) -> list[object]:
        async with await stream(pool) as reply:
            await asyncio.sleep(0.5)
            connection, held = reply._connection, reply._answer.unread
            paused = connection is not None and connection.reading_paused
            unsent = not sent.is_set()  # the rest waits in the sockets' buffers and the upstream's
            total = 0
            while chunk := await reply.next_chunk():
                total += len(chunk)
            return [paused, held <= READ_LIMIT + 256 * 1024, unsent, total, reply.ended(), connection.reading_paused]

    assert run(answer, use) == [True, True, True, size, True, False]


def test_a_stream_left_mid_body_or_cancelled_aborts_its_connection() -> None:
    async def answer(_: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        await reader.read()  # until the client closes
        raise ConnectionResetError

    async def left(pool: WirePool, upstream: Upstream) -> list[object]:
        with pytest.raises(RuntimeError):
            async with await stream(pool) as reply:
                await reply.next_chunk()
                raise RuntimeError("the client left")
        await asyncio.wait_for(upstream.closed.wait(), 1)
        return [upstream.closed.is_set(), reply._connection]

    async def cancelled(pool: WirePool, upstream: Upstream) -> bool:
        async def read_on() -> None:
            async with await stream(pool) as reply:
                while await reply.next_chunk():
                    pass

        task = asyncio.ensure_future(read_on())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(upstream.closed.wait(), 1)
        return upstream.closed.is_set()

    assert run(answer, left) == [True, None]
    assert run(answer, cancelled)


@pytest.mark.parametrize("body", [
    b"5\r\nhelloXX\r\n0\r\n\r\n",  # more data than the chunk's size
    b"5\r\nhello\r\nzz\r\n",  # a size that is not hex
    b"5\r\nhello\r\n3\r\nab",  # closed mid-chunk
])
def test_a_malformed_or_truncated_stream_hands_over_what_came_then_fails(body: bytes) -> None:
    async def answer(_: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(body)
        await writer.drain()
        writer.close()

    async def use(pool: WirePool, _: Upstream) -> bytes:
        got = b""
        async with await stream(pool) as reply:
            with pytest.raises(WireError):
                while chunk := await asyncio.wait_for(reply.next_chunk(), 2):
                    got += chunk
            assert not reply.ended()
        return got

    assert run(answer, use).startswith(b"hello")


def test_a_stream_read_whole() -> None:
    answer = writes(b"HTTP/1.1 429 Too Many\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel", b"lo\r\n0\r\n\r\n")

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        async with await stream(pool) as reply:
            got = [reply.status, reply.headers, await reply.read(), reply.ended()]
        return [*got, await fetch(pool), upstream.connections]

    assert run(answer, use) == [429, [(b"transfer-encoding", b"chunked")], b"hello", True,
                                (429, [(b"transfer-encoding", b"chunked")], b"hello"), 1]


def test_nothing_listening_is_a_connect_error() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda _, __: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        pool = WirePool(f"http://127.0.0.1:{port}")
        with pytest.raises(WireConnectError, match="cannot connect"):
            await stream(pool)
        with pytest.raises(WireConnectError):
            await fetch(pool)

    asyncio.run(main())


def test_idle_connections_are_closed_and_dropped_once_past_their_time_without_another_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llmgate.proxy.wire.IDLE_S", 0.2)
    answer = writes(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        await asyncio.gather(fetch(pool), fetch(pool), fetch(pool))  # three at once: three connections
        pooled = len(pool._idle)
        await asyncio.wait_for(upstream.closed.wait(), 2)  # a burst's connections leave with no request after it
        await asyncio.sleep(0.1)
        return [upstream.connections, pooled, len(pool._idle)]

    assert run(answer, use) == [3, 3, 0]


def test_a_pooled_connection_does_not_keep_the_context_of_the_request_that_opened_it() -> None:
    class Held:
        """Whatever a request keeps in a context variable (the gateway's own: its Exchange, with the prompt)."""

    held_by_request: contextvars.ContextVar[Held] = contextvars.ContextVar("held_by_request")
    answer = writes(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async def use(pool: WirePool, upstream: Upstream) -> list[object]:
        async def request() -> weakref.ref[Held]:
            held = Held()
            held_by_request.set(held)
            await fetch(pool)
            return weakref.ref(held)

        held = await asyncio.create_task(request())
        await asyncio.sleep(0)  # the loop lets go of the finished task's last callback
        gc.collect()
        return [len(pool._idle), held() is None]

    assert run(answer, use) == [1, True]
