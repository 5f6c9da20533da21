"""Cancels tasks still at a step past its deadline, on one timer for all of them: a request still reading its body,
an upstream's whole answer not in within its first-byte timeout.

A client that sends its headers and then dribbles its body (or sends none) would hold a connection, and a slot of
`max_connections`, for as long as it likes: granian bounds how long the headers may take, not the body; an upstream
that never answers would hold the request as long. A timer per request (`asyncio.timeout`: a handle made and
cancelled each time) costs every request for the rare slow one; here a request costs a dict entry while at the step,
and the one timer, set for the oldest entry, fires only when some step has lasted `after_s` or more (as
`proxy/asgi.py`'s `WatchList` does for disconnects).
"""

from __future__ import annotations

import asyncio


class Deadlines:
    """The tasks at one step, in the order they began it; each is cancelled `after_s` after it began."""

    __slots__ = ("_expired", "_loop", "_running", "_timer", "after_s")

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._running: dict[asyncio.Task[object], float] = {}
        """task → when it began the step (loop time), in that order"""
        self._expired: set[asyncio.Task[object]] = set()
        """Tasks cancelled for their deadline, until they `stop`: the cancellation is theirs to turn into a timeout."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self, task: asyncio.Task[object]) -> None:
        """`task` (the running one) begins the step."""
        loop = self._loop
        if loop is None:
            loop = self._loop = task.get_loop()
        self._running[task] = loop.time()
        if self._timer is None:
            self._timer = loop.call_later(self.after_s, self._cancel_due)

    def stop(self, task: asyncio.Task[object]) -> bool:
        """`task` is done with the step. True when it was cancelled for its deadline and for nothing else: that
        cancellation is withdrawn (as `asyncio.timeout` does), the caller raises its timeout instead. A task also
        cancelled from elsewhere (its client left) gets False: the cancellation goes on."""
        self._running.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return task.uncancel() == 0
        return False

    def _cancel_due(self) -> None:
        self._timer = None
        assert self._loop is not None
        due = self._loop.time() - self.after_s
        running = self._running
        while running:
            task, began = next(iter(running.items()))
            if began > due:
                self._timer = self._loop.call_at(began + self.after_s, self._cancel_due)
                return
            del running[task]
            self._expired.add(task)
            task.cancel()

    def __len__(self) -> int:
        """The tasks at the step, and those cancelled for their deadline that have not stopped yet."""
        return len(self._running) + len(self._expired)
