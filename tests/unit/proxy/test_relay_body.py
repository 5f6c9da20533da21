"""relay_body: the ASGI messages a relayed stream becomes (its bytes, end to end: integration/test_streaming.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmgate.proxy.streaming import StreamGuard, relay_body
from llmgate.usage.meter import UsageMeter
from llmgate.usage.tap import StreamTap


class Reply:
    """An upstream reply whose body comes in `reads`; `end_with_last`: the body's end arrives with the last read
    (as when the upstream writes its final chunk and terminator together), else only on one more read."""

    status = 200

    def __init__(self, reads: list[bytes], end_with_last: bool) -> None:
        self._reads = list(reads)
        self._end_with_last = end_with_last

    def ended(self) -> bool:
        return self._end_with_last and not self._reads

    async def next_chunk(self) -> bytes:
        return self._reads.pop(0) if self._reads else b""


def relay(reads: list[bytes], end_with_last: bool, tap: StreamTap | None = None) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        guard = StreamGuard(send, 15.0, list)
        reply = Reply(reads[1:], end_with_last)
        try:
            assert await relay_body(send, reply, reads[0], guard, [], tap) is None  # type: ignore[arg-type]
        finally:
            guard.stop()

    asyncio.run(main())
    return sent


def bodies(sent: list[dict[str, Any]]) -> list[tuple[bytes, bool]]:
    return [(m["body"], m.get("more_body", False)) for m in sent if m["type"] == "http.response.body"]


@pytest.mark.parametrize("reads", [[b"data: 1\n\n"], [b"data: 1\n\n", b"data: 2\n\ndata: [DONE]\n\n"]])
def test_bytes_that_carry_the_end_end_the_response(reads: list[bytes]) -> None:
    sent = relay(reads, end_with_last=True)
    assert sent[0]["type"] == "http.response.start"
    assert bodies(sent) == [*((r, True) for r in reads[:-1]), (reads[-1], False)]


def test_an_end_that_comes_alone_is_sent_alone() -> None:
    reads = [b"data: 1\n\n", b"data: [DONE]\n\n"]
    assert bodies(relay(reads, end_with_last=False)) == [(reads[0], True), (reads[1], True), (b"", False)]


def test_the_tap_sees_every_chunk_and_what_it_held_goes_out_with_the_end() -> None:
    meter = UsageMeter()
    tap = StreamTap(meter, strip=True)
    reads = [b'data: {"choices":[{"delta":{}}],"usage":null}\n\ndata: {"cho', b'ices":[]}']  # ends mid-event
    sent = bodies(relay(reads, end_with_last=True, tap=tap))
    assert sent == [(b'data: {"choices":[{"delta":{}}]}\n\n', True), (b'data: {"choices":[]}', False)]
