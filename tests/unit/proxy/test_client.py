"""The real upstream clients (proxy/client.py) against the upstream double over real sockets: what the fake
transport of tests/inprocess/upstream.py stands in for (statuses, lower-cased headers, chunks as they arrive,
the end, and which errors mean what)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from llmgate.config import ProviderConfig, Timeouts
from llmgate.proxy.client import (
    TRANSPORT_ERRORS,
    StreamError,
    UpstreamClient,
    is_connect_timeout,
    is_timeout,
)
from llmgate.proxy.forward import upstream_error
from tests.upstream_double import free_port

T = TypeVar("T")
CHAT = b'{"model":"m","messages":[]}'
STREAM = b'{"model":"m","messages":[],"stream":true}'
JSON = [("content-type", "application/json")]


def with_client(base_url: str, use: Callable[[UpstreamClient], Awaitable[T]], **timeouts: float) -> T:
    async def main() -> T:
        client = UpstreamClient(ProviderConfig(name="up", base_url=base_url, timeouts=Timeouts(**timeouts)))
        await client.open()
        try:
            return await use(client)
        finally:
            await client.close()

    return asyncio.run(main())


def test_a_whole_answer(upstream: str) -> None:
    async def use(client: UpstreamClient) -> tuple[int, Any, bytes]:
        return await client.fetch("POST", "/chat/completions", [*JSON, ("X-Mock-Status", "503")], CHAT)

    status, headers, body = with_client(f"{upstream}/v1", use)
    assert status == 503 and b"mock error 503" in body
    assert all(name == name.lower() and isinstance(name, bytes) for name, _ in headers)
    assert (b"content-type", b"application/json") in headers


def test_a_stream_chunk_by_chunk_to_its_end(upstream: str) -> None:
    async def use(client: UpstreamClient) -> tuple[int, list[tuple[bytes, bytes]], list[bytes], bool]:
        async with client.stream("POST", "/chat/completions", [*JSON, ("x-mock-chunks", "3")], STREAM) as reply:
            chunks = []
            while chunk := await reply.next_chunk():
                chunks.append(chunk)
            return reply.status, reply.raw_headers(), chunks, reply.ended()

    status, headers, chunks, ended = with_client(f"{upstream}/v1", use)
    direct = httpx.post(f"{upstream}/v1/chat/completions", content=STREAM, headers={"x-mock-chunks": "3"}).content
    assert status == 200 and b"".join(chunks) == direct and ended
    assert (b"content-type", b"text/event-stream") in headers


def test_an_error_status_on_a_stream_is_read_whole(upstream: str) -> None:
    async def use(client: UpstreamClient) -> tuple[int, bytes]:
        async with client.stream("POST", "/chat/completions", [*JSON, ("x-mock-status", "429")], STREAM) as reply:
            return reply.status, await reply.read()

    status, body = with_client(f"{upstream}/v1", use)
    assert status == 429 and b"mock error 429" in body


def test_a_reset_mid_stream_is_a_stream_error(upstream: str) -> None:
    async def use(client: UpstreamClient) -> list[bytes]:
        got: list[bytes] = []
        async with client.stream("POST", "/chat/completions", [*JSON, ("x-mock-reset-after-chunks", "1")],
                                 STREAM) as reply:
            with pytest.raises(StreamError):
                while chunk := await reply.next_chunk():
                    got.append(chunk)
        return got

    assert b"tok0" in b"".join(with_client(f"{upstream}/v1", use))


def test_nothing_listening_is_a_transport_error_not_a_timeout() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"

    async def use(client: UpstreamClient) -> list[BaseException]:
        errors: list[BaseException] = []
        try:
            await client.fetch("POST", "/chat/completions", JSON, CHAT)
        except TRANSPORT_ERRORS as exc:
            errors.append(exc)
        try:
            async with client.stream("POST", "/chat/completions", JSON, STREAM):
                pass
        except TRANSPORT_ERRORS as exc:
            errors.append(exc)
        return errors

    whole, streamed = with_client(dead, use)
    assert isinstance(streamed, StreamError)
    assert not any(is_timeout(e) or is_connect_timeout(e) for e in (whole, streamed))


def test_no_whole_answer_within_the_first_byte_timeout_is_a_timeout(upstream: str) -> None:
    async def use(client: UpstreamClient) -> BaseException:
        try:
            await client.fetch("POST", "/chat/completions", [*JSON, ("x-mock-delay-ms", "3000")], CHAT)
        except TRANSPORT_ERRORS as exc:
            return exc
        raise AssertionError("answered")

    error = with_client(f"{upstream}/v1", use, first_byte_s=0.2)
    assert is_timeout(error) and not is_connect_timeout(error)
    client = UpstreamClient(ProviderConfig(name="up", base_url=upstream))
    assert upstream_error(error, client).message == "The upstream provider `up` did not answer in time."


def test_a_stream_left_mid_body_drops_the_connection(upstream: str) -> None:
    httpx.post(f"{upstream}/_reset")

    async def use(client: UpstreamClient) -> None:
        headers = [*JSON, ("x-mock-chunks", "50"), ("x-mock-chunk-delay-ms", "50")]
        with pytest.raises(RuntimeError):
            async with client.stream("POST", "/chat/completions", headers, STREAM) as reply:
                await reply.next_chunk()
                raise RuntimeError("the client left")

    with_client(f"{upstream}/v1", use)
    deadline = time.monotonic() + 5
    while (seen := httpx.get(f"{upstream}/_seen").json())["streams_aborted"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen["streams_aborted"] == 1 and seen["streams_completed"] == 0


def test_a_header_value_past_ascii_is_dropped_and_logged_for_whole_answers_and_streams() -> None:
    """An upstream header holding bytes 0x80-0xFF is dropped with a log line, whole answer or stream, never a
    500; every other header is kept."""
    from loguru import logger

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        if b"transfer-encoding: chunked" in head:
            await reader.readuntil(b"0\r\n\r\n")
        else:
            await reader.readexactly(len(CHAT))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-bad: caf\xe9\r\nx-ok: 1\r\n"
                     b"connection: close\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    async def main() -> tuple[Any, Any]:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        base_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        client = UpstreamClient(ProviderConfig(name="up", base_url=base_url))
        await client.open()
        try:
            status, whole, body = await client.fetch("POST", "/x", JSON, CHAT)
            assert (status, body) == (200, b"{}")
            async with client.stream("POST", "/x", JSON, CHAT) as reply:
                streamed = reply.raw_headers()
            return whole, streamed
        finally:
            await client.close()
            server.close()

    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        whole, streamed = asyncio.run(main())
    finally:
        logger.remove(sink)
    for headers in (whole, streamed):
        names = [name for name, _ in headers]
        assert b"x-bad" not in names and (b"x-ok", b"1") in headers and b"content-type" in names
    assert [line.strip() for line in lines] == \
        ["dropped the upstream's response header x-bad (its value is not ASCII)"] * 2


def wait_for_abandoned(upstream: str, expected: int) -> dict[str, Any]:
    deadline = time.monotonic() + 3
    while (seen := httpx.get(f"{upstream}/_seen").json())["abandoned"] < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen  # type: ignore[no-any-return]


def test_a_cancelled_whole_answer_closes_the_upstream_request_at_once(upstream: str) -> None:
    """An LLM generating a whole answer: the upstream sees the request abandoned as soon as the fetch is
    cancelled, not when its answer is done."""
    httpx.post(f"{upstream}/_reset")

    async def use(client: UpstreamClient) -> None:
        task = asyncio.ensure_future(client.fetch("POST", "/chat/completions", [*JSON, ("x-mock-delay-ms", "5000")],
                                                  CHAT))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with_client(f"{upstream}/v1", use)
    assert wait_for_abandoned(upstream, 1)["abandoned"] == 1


def test_a_slow_answer_after_quick_ones_on_the_same_path_is_closed_at_once_when_its_client_leaves(
        upstream: str) -> None:
    """Quick answers say nothing of the next one: a long generation on a path that has only answered fast so far
    is still closed upstream as soon as its client leaves, not when the answer is done."""
    httpx.post(f"{upstream}/_reset")

    async def use(client: UpstreamClient) -> float:
        for _ in range(5):
            await client.fetch("POST", "/chat/completions", JSON, CHAT)
        task = asyncio.ensure_future(client.fetch("POST", "/chat/completions", [*JSON, ("x-mock-delay-ms", "5000")],
                                                  CHAT))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic()

    left_at = with_client(f"{upstream}/v1", use)
    assert wait_for_abandoned(upstream, 1)["abandoned"] == 1
    assert time.monotonic() - left_at < 2  # the answer would have come 4.7 s after the client left


def test_a_first_byte_timeout_longer_than_connect_s_is_a_read_timeout(upstream: str) -> None:
    """A timeout that fired at first_byte_s (after connect_s had passed, the connection up) is the first-byte
    timeout, not a connect timeout, however fast the answers before it came."""
    async def use(client: UpstreamClient) -> list[BaseException]:
        errors = []
        for delay in ("0", "3000", "3000"):
            try:
                await client.fetch("POST", "/chat/completions", [*JSON, ("x-mock-delay-ms", delay)], CHAT)
            except TRANSPORT_ERRORS as exc:
                errors.append(exc)
        return errors

    errors = with_client(f"{upstream}/v1", use, connect_s=0.2, first_byte_s=0.6)
    assert len(errors) == 2
    client = UpstreamClient(ProviderConfig(name="up", base_url=upstream))
    for error in errors:
        assert is_timeout(error) and not is_connect_timeout(error), error
        assert upstream_error(error, client).message == "The upstream provider `up` did not answer in time."


def test_a_whole_answer_past_its_first_byte_timeout_closes_the_upstream_request_and_the_task_goes_on(
        upstream: str) -> None:
    """The first-byte deadline aborts the upstream request (the upstream sees it abandoned), raises a timeout and
    leaves the task uncancelled: the attempt loop goes on with the next attempt, and the next answers come."""
    httpx.post(f"{upstream}/_reset")

    async def use(client: UpstreamClient) -> tuple[list[BaseException], int, int]:
        errors = []
        for _ in range(2):  # the deadline's timer is set again for the second one
            try:
                await client.fetch("POST", "/chat/completions", [*JSON, ("x-mock-delay-ms", "5000")], CHAT)
            except TRANSPORT_ERRORS as exc:
                errors.append(exc)
        task = asyncio.current_task()
        assert task is not None
        await asyncio.sleep(0)  # no cancellation left behind
        status, _, _ = await client.fetch("POST", "/chat/completions", JSON, CHAT)
        return errors, task.cancelling(), status

    errors, cancelling, status = with_client(f"{upstream}/v1", use, first_byte_s=0.2)
    assert len(errors) == 2 and all(is_timeout(e) and not is_connect_timeout(e) for e in errors)
    assert (cancelling, status) == (0, 200)
    assert wait_for_abandoned(upstream, 2)["abandoned"] == 2


def test_each_whole_answer_has_its_first_byte_timeout_from_its_own_start(upstream: str) -> None:
    """Requests in their own tasks (as hedged attempts are): one that started later is not cut short when an
    earlier one's deadline passes, and a quick one is never cancelled."""
    async def use(client: UpstreamClient) -> list[object]:
        async def fetch(after_s: float, delay_ms: int) -> object:
            await asyncio.sleep(after_s)
            try:
                return (await client.fetch("POST", "/chat/completions",
                                           [*JSON, ("x-mock-delay-ms", str(delay_ms))], CHAT))[0]
            except TRANSPORT_ERRORS as exc:
                return "timeout" if is_timeout(exc) else exc

        return list(await asyncio.gather(fetch(0, 3000), fetch(0.3, 300), fetch(0, 0), fetch(0.1, 3000)))

    assert with_client(f"{upstream}/v1", use, first_byte_s=0.5) == ["timeout", 200, 200, "timeout"]
