"""Cancels requests still reading their body past a deadline, on one timer for all of them.

A client that sends its headers and then dribbles its body (or sends none) would hold a connection, and a slot of
`max_connections`, for as long as it likes: granian bounds how long the headers may take, not the body. A timer per
request (`asyncio.timeout`: a handle made and cancelled each time) costs every request for the rare slow one;
here a request costs a dict entry while its body is read, and the one timer, set for the oldest entry, fires only
when some body has been read for `after_s` or more (as `proxy/asgi.py`'s `WatchList` does for disconnects).
"""

from __future__ import annotations

import asyncio


class BodyDeadlines:
    """The tasks reading a request body, in the order they began; each is cancelled `after_s` after it began."""

    __slots__ = ("_loop", "_reading", "_timer", "after_s", "expired")

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._reading: dict[asyncio.Task[object], float] = {}
        """task → when it began reading (loop time), in that order"""
        self.expired: set[asyncio.Task[object]] = set()
        """Tasks cancelled for their deadline, until they `stop`: the cancellation is theirs to turn into a 408."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> asyncio.Task[object]:
        """The current task begins reading its body."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._reading[task] = loop.time()
        if self._timer is None:
            self._timer = loop.call_later(self.after_s, self._cancel_due)
        return task

    def stop(self, task: asyncio.Task[object]) -> bool:
        """`task` is done reading; True when its deadline had passed (it was cancelled for it)."""
        self._reading.pop(task, None)
        if task in self.expired:
            self.expired.discard(task)
            return True
        return False

    def _cancel_due(self) -> None:
        self._timer = None
        assert self._loop is not None
        due = self._loop.time() - self.after_s
        reading = self._reading
        while reading:
            task, began = next(iter(reading.items()))
            if began > due:
                self._timer = self._loop.call_at(began + self.after_s, self._cancel_due)
                return
            del reading[task]
            self.expired.add(task)
            task.cancel()

    def __len__(self) -> int:
        return len(self._reading)
