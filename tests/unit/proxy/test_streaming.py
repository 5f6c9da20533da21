"""proxy/streaming.py: StreamGuard's bookkeeping, the ASGI messages relay_body makes of a stream, and streams end to
end in process (bytes unchanged, first-byte and idle deadlines, keep-alives), against the double run in process."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from llmgate.config import Timeouts
from llmgate.proxy.asgi import Headers
from llmgate.proxy.client import UpstreamClient
from llmgate.proxy.streaming import StreamGuard, relay_body
from llmgate.usage.meter import UsageMeter
from llmgate.usage.tap import StreamTap
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import DOUBLE_URL, ask_double, double
from tests.servers import MASTER_KEY
from tests.upstream_double import free_port


class _Call:
    """What holds a guard and lends it its keep-alive headers, as proxy/attempt.py's Call does."""

    def __init__(self) -> None:
        self.guard: StreamGuard | None = None

    def keepalive_headers(self) -> Headers:
        return []


def test_a_stopped_guard_leaves_no_reference_cycle() -> None:
    """Call → guard → call.keepalive_headers → call: `stop()` breaks the cycle, so a finished stream's objects
    are freed at once by reference counting rather than left to the cyclic GC (measured: 26 objects a stream)."""

    async def stream() -> weakref.ref[_Call]:
        async def send(message: dict[str, Any]) -> None:
            return None

        call = _Call()
        call.guard = StreamGuard(send, 15.0, call.keepalive_headers)
        call.guard.stop()
        return weakref.ref(call)

    gc.collect()
    gc.disable()
    try:
        gone = asyncio.run(stream())
        assert gone() is None
    finally:
        gc.enable()


def test_settling_after_stop_does_not_raise_the_cancelled_keepalive() -> None:
    """The last attempt fails while a keep-alive is still being sent (a slow client): forward() stops the guard,
    which cancels that send, then ends the stream with the error, which first settles the guard."""

    async def main() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        client_reads = asyncio.Event()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            await client_reads.wait()  # a client that does not read: the send waits

        guard = StreamGuard(send, 0.01, list)
        guard.expect_first_byte(Timeouts(first_byte_s=60))
        while not sent:
            await asyncio.sleep(0.005)
        guard.stop()
        await guard.settle()
        return sent

    sent = asyncio.run(main())
    assert sent == [{"type": "http.response.start", "status": 200, "headers": []}]


def test_an_idle_timeout_shorter_than_the_armed_check_still_fires_in_time() -> None:
    """The guard's one timer is armed for the first keep-alive; the idle deadline set by the first chunk comes
    sooner, and must not wait for that keep-alive's check (the timer moves earlier)."""

    async def main() -> bool:
        async def send(message: dict[str, Any]) -> None:
            return None

        guard = StreamGuard(send, 3600.0, list)  # the first check would be an hour away
        guard.expect_first_byte(Timeouts(first_byte_s=3600, idle_s=0.01))
        guard.waiting = False  # the first chunk came
        guard.progress()
        try:
            await asyncio.wait_for(asyncio.get_running_loop().create_future(), 10)  # cancelled by the guard
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        except TimeoutError:
            pass
        finally:
            guard.stop()
        return guard.fired

    assert asyncio.run(main())



class ScriptedReply:
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
        reply = ScriptedReply(reads[1:], end_with_last)
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


# End to end in process, against the double.
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
STREAM_BODY = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}'
DOUBLE_ENV = {"OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}


@pytest.fixture(scope="module")
def impatient() -> Iterator[Gateway]:
    """A gateway whose provider allows 0.1 s to the first byte and 0.2 s between chunks."""
    config = f"""
[routing]
backoff_base_ms = 1

[[providers]]
name = "slowpoke"
base_url = "{DOUBLE_URL}/v1"
api_key = "env:OPENAI_API_KEY"
timeouts = {{ connect_s = 2, first_byte_s = 0.1, idle_s = 0.2 }}
"""
    with Gateway(config, double()) as gw:
        yield gw


def test_first_byte_timeout_is_504(impatient: Gateway) -> None:
    for body in (STREAM_BODY, b'{"model":"m"}'):
        response = impatient.post("/v1/chat/completions", content=body, headers={"x-mock-delay-ms": "2000"})
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "upstream_timeout"


def test_idle_timeout_mid_stream_ends_with_an_error_event(impatient: Gateway) -> None:
    headers = {"x-mock-chunks": "3", "x-mock-chunk-delay-ms": "2000"}
    response = impatient.post("/v1/chat/completions", content=STREAM_BODY, headers=headers)
    assert response.status_code == 200
    body = response.content
    assert body.startswith(b"data: {")
    assert body.endswith(b"\n\n") and b"[DONE]" not in body
    assert b'"code":"upstream_timeout"' in body.rsplit(b"data: ", 1)[1]
    # The OpenAI SDK raises it as an APIError
    with openai.OpenAI(base_url=f"{impatient.url}/v1", api_key=MASTER_KEY, max_retries=0,
                       http_client=impatient.http) as client, \
            pytest.raises(openai.APIError, match=r"sent nothing for 0\.2 s"):
        list(client.chat.completions.create(model="m", messages=[], stream=True, extra_headers=headers))


def test_unreachable_upstream_is_502() -> None:
    """With the real upstream clients: nothing listens at the provider's address."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with Gateway(env={"OPENAI_BASE_URL": dead}, clients=UpstreamClient) as gw:
        for body in (STREAM_BODY, b'{"model":"m"}'):
            response = gw.post("/v1/chat/completions", content=body)
            assert response.status_code == 502
            assert response.json()["error"]["code"] == "upstream_unreachable"
        assert "sk-upstream" not in gw.logs() and "unreachable" in gw.logs()


# `: keep-alive` SSE comments while a stream waits long for its first byte; fast streams unchanged.
KEEPALIVE_BODY = STREAM_BODY


@pytest.fixture(scope="module")
def usage_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keepalive") / "usage.jsonl"


@pytest.fixture(scope="module")
def eager(usage_log: Path) -> Iterator[Gateway]:
    """Keep-alives every 0.1 s; usage events to a JSONL file."""
    env = {**DOUBLE_ENV, "LLMGATE_STREAM_KEEPALIVE_S": "0.1", "LLMGATE_USAGE_JSONL": str(usage_log),
           "LLMGATE_USAGE_FLUSH_S": "0.05"}
    with Gateway(upstream=double(), env=env) as gw:
        yield gw


def direct(gw: Gateway, headers: dict[str, str]) -> bytes:
    """The double's own answer, without the gateway."""
    return gw.run(ask_double("POST", "/v1/chat/completions", headers, KEEPALIVE_BODY))[2]


def test_slow_first_byte_gets_keepalive_comments(eager: Gateway) -> None:
    mock = {"x-mock-chunks": "3", "x-mock-delay-ms": "350"}
    response = eager.post("/v1/chat/completions", content=KEEPALIVE_BODY, headers=mock)
    through = response.content
    assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
    comments, _, rest = through.rpartition(b": keep-alive\n\n")
    assert rest == direct(eager, mock)  # the upstream's bytes follow the comments unchanged
    assert 2 <= through.count(b": keep-alive\n\n") <= 4 and comments.replace(b": keep-alive\n\n", b"") == b""


def test_the_sdk_reads_through_keepalives(eager: Gateway) -> None:
    client = openai.OpenAI(base_url=f"{eager.url}/v1", api_key=MASTER_KEY, max_retries=0, http_client=eager.http)
    stream = client.chat.completions.create(model="m", messages=[], stream=True,
                                            extra_headers={"x-mock-delay-ms": "250", "x-mock-chunks": "4"})
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "tok0 tok1 tok2 tok3 "


def test_fast_streams_stay_byte_for_byte_identical(eager: Gateway) -> None:
    mock = {"x-mock-chunks": "20"}
    through = eager.post("/v1/chat/completions", content=KEEPALIVE_BODY, headers=mock).content
    assert through == direct(eager, mock)


def test_upstream_error_after_keepalives_ends_the_stream_with_an_error_event(eager: Gateway) -> None:
    client = openai.OpenAI(base_url=f"{eager.url}/v1", api_key=MASTER_KEY, max_retries=0, http_client=eager.http)
    with pytest.raises(openai.APIError, match="mock error 400"):
        stream = client.chat.completions.create(model="m", messages=[], stream=True,
                                                extra_headers={"x-mock-delay-ms": "250", "x-mock-status": "400"})
        for _ in stream:
            pass


def test_every_attempt_failing_after_keepalives_is_logged_as_what_the_client_saw(eager: Gateway,
                                                                                 usage_log: Path) -> None:
    response = eager.post("/v1/chat/completions", content=KEEPALIVE_BODY,
                          headers={"x-mock-delay-ms": "250", "x-mock-status": "503"})
    body = response.content
    assert response.status_code == 200 and body.startswith(b": keep-alive") and b'"error"' in body
    request_id = response.headers["x-request-id"]
    for _ in range(50):
        events = [json.loads(line) for line in usage_log.read_text().splitlines()] if usage_log.exists() else []
        found = [e for e in events if e["request_id"] == request_id]
        if found:
            break
        eager.run(asyncio.sleep(0.1))  # the usage bus writes while the gateway's loop runs
    assert found and found[0]["status"] == 200 and found[0]["error"] == "upstream_error"
