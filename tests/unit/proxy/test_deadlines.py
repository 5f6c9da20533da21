"""BodyDeadlines: tasks still reading a body past the deadline are cancelled and told so; the rest never are."""

from __future__ import annotations

import asyncio

from llmgate.proxy.deadlines import BodyDeadlines


def test_only_the_reads_past_the_deadline_are_cancelled_and_each_entry_goes() -> None:
    async def main() -> list[str]:
        deadlines = BodyDeadlines(0.05)
        outcomes: list[str] = []

        async def read(wait_s: float, name: str) -> None:
            task = deadlines.start()
            try:
                await asyncio.sleep(wait_s)
                outcomes.append(f"{name} read")
            except asyncio.CancelledError:
                outcomes.append(f"{name} expired={deadlines.stop(task)}")
            finally:
                deadlines.stop(task)

        await asyncio.gather(read(0, "quick"), read(10, "stalled"), read(0.001, "soon"))
        quick_again = asyncio.ensure_future(read(0, "after"))  # the timer set again once it has fired
        await quick_again
        await read(10, "stalled again")
        assert len(deadlines) == 0 and not deadlines.expired
        return outcomes

    assert asyncio.run(main()) == ["quick read", "soon read", "stalled expired=True", "after read",
                                   "stalled again expired=True"]


def test_a_cancellation_from_elsewhere_is_not_the_deadlines() -> None:
    async def main() -> bool:
        deadlines = BodyDeadlines(60)

        async def read() -> bool:
            task = deadlines.start()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                return deadlines.stop(task)
            return True

        reader = asyncio.ensure_future(read())
        await asyncio.sleep(0)
        reader.cancel()
        return await reader

    assert asyncio.run(main()) is False
