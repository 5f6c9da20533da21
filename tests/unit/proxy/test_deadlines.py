"""Deadlines: tasks still at a step past the deadline are cancelled and told so; the rest never are, and a task
also cancelled from elsewhere keeps that cancellation."""

from __future__ import annotations

import asyncio
import time

from llmgate.proxy.deadlines import Deadlines


def _current() -> asyncio.Task[object]:
    task = asyncio.current_task()
    assert task is not None
    return task


def test_only_the_reads_past_the_deadline_are_cancelled_and_each_entry_goes() -> None:
    async def main() -> list[str]:
        deadlines = Deadlines(0.05)
        outcomes: list[str] = []

        async def read(wait_s: float, name: str) -> None:
            task = _current()
            deadlines.start(task)
            try:
                await asyncio.sleep(wait_s)
                outcomes.append(f"{name} read")
            except asyncio.CancelledError:
                outcomes.append(f"{name} expired={deadlines.stop(task)} cancelling={task.cancelling()}")
            finally:
                deadlines.stop(task)

        await asyncio.gather(read(0, "quick"), read(10, "stalled"), read(0.001, "soon"))
        quick_again = asyncio.ensure_future(read(0, "after"))  # the timer set again once it has fired
        await quick_again
        await read(10, "stalled again")
        assert len(deadlines) == 0
        return outcomes

    assert asyncio.run(main()) == ["quick read", "soon read", "stalled expired=True cancelling=0", "after read",
                                   "stalled again expired=True cancelling=0"]


def test_a_cancellation_from_elsewhere_is_not_the_deadlines() -> None:
    async def main() -> bool:
        deadlines = Deadlines(60)

        async def read() -> bool:
            task = _current()
            deadlines.start(task)
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


def test_a_task_cancelled_from_elsewhere_as_its_deadline_passes_stays_cancelled() -> None:
    """The client left just as the deadline passed: both cancelled the task before it ran again. The deadline's
    cancellation is withdrawn, the other one is not (as `asyncio.timeout` would have it)."""
    async def main() -> tuple[bool, int]:
        deadlines = Deadlines(0.01)
        task = _current()
        deadlines.start(task)
        time.sleep(0.02)  # past the deadline without letting the loop run its timer
        await asyncio.sleep(0)  # the loop runs this task on, then (in the same turn) the deadline's timer
        task.cancel()  # from elsewhere, before the deadline's timer in that same turn has run
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return deadlines.stop(task), task.cancelling()
        raise AssertionError("not cancelled")

    assert asyncio.run(main()) == (False, 1)
