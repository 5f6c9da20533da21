"""proxy/asgi.py: DisconnectWatch cancels its request when the client leaves; WatchList starts watches late."""

from __future__ import annotations

import asyncio
from typing import Any

from llmgate.proxy.asgi import DisconnectWatch, WatchList


class Client:
    """An ASGI `receive` whose pending call answers `http.disconnect` when the client hangs up."""

    def __init__(self) -> None:
        self.calls = 0
        self.pending: list[asyncio.Future[Any]] = []

    def receive(self) -> asyncio.Future[Any]:
        self.calls += 1
        future = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        return future

    def hang_up(self) -> None:
        for future in self.pending:
            if not future.done():
                future.set_result({"type": "http.disconnect"})


def test_a_watch_without_a_list_starts_at_once_and_cancels_on_disconnect() -> None:
    async def main() -> None:
        client = Client()

        async def request() -> None:
            DisconnectWatch(client.receive, asyncio.current_task())
            await asyncio.sleep(10)

        task = asyncio.ensure_future(request())
        await asyncio.sleep(0)
        assert client.calls == 1
        client.hang_up()
        done, _ = await asyncio.wait([task], timeout=1)
        assert done and task.cancelled()

    asyncio.run(main())


def test_requests_done_before_the_delay_never_call_receive() -> None:
    async def main() -> None:
        later = WatchList(0.05)
        client = Client()
        for _ in range(100):
            DisconnectWatch(client.receive, asyncio.current_task(), later).stop()
        assert len(later) == 0
        await asyncio.sleep(0.1)
        assert client.calls == 0

    asyncio.run(main())


def test_a_late_watch_starts_after_the_delay_and_sees_a_client_that_left_before() -> None:
    async def main() -> None:
        later = WatchList(0.05)
        calls = []

        def receive_after_leaving() -> asyncio.Future[Any]:  # the client is gone: the answer is there at once
            calls.append(asyncio.get_running_loop().time())
            future = asyncio.get_running_loop().create_future()
            future.set_result({"type": "http.disconnect"})
            return future

        watches: list[DisconnectWatch] = []

        async def request() -> None:
            watches.append(DisconnectWatch(receive_after_leaving, asyncio.current_task(), later))
            await asyncio.sleep(10)

        started = asyncio.get_running_loop().time()
        task = asyncio.ensure_future(request())
        await asyncio.sleep(0.01)
        assert calls == [] and len(later) == 1
        done, _ = await asyncio.wait([task], timeout=1)
        assert done and task.cancelled()
        assert watches[0].disconnected and len(later) == 0
        assert calls[0] - started >= 0.05

    asyncio.run(main())


def test_one_timer_starts_every_due_watch_and_moves_on_to_the_next() -> None:
    async def main() -> None:
        later = WatchList(0.05)
        client = Client()
        early = [DisconnectWatch(client.receive, asyncio.current_task(), later) for _ in range(3)]
        await asyncio.sleep(0.03)
        late = DisconnectWatch(client.receive, asyncio.current_task(), later)
        await asyncio.sleep(0.03)  # the first three are due (0.06 s), the last is not (0.03 s)
        assert client.calls == 3 and len(later) == 1
        await asyncio.sleep(0.04)
        assert client.calls == 4 and len(later) == 0
        for watch in (*early, late):
            watch.stop()
        assert all(future.cancelled() for future in client.pending)

    asyncio.run(main())


def test_a_stopped_watch_leaves_the_list_and_the_others_still_start() -> None:
    async def main() -> None:
        later = WatchList(0.03)
        client = Client()
        task = asyncio.current_task()
        first, second = DisconnectWatch(client.receive, task, later), DisconnectWatch(client.receive, task, later)
        first.stop()
        await asyncio.sleep(0.06)
        assert client.calls == 1 and len(later) == 0
        second.stop()

    asyncio.run(main())
