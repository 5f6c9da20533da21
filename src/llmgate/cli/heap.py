"""Hand the C heap's free pages back to the OS once the gateway falls quiet after a burst.

glibc's malloc keeps the memory freed inside its heaps (it gives back only a free top of the heap), so what a
burst of streams used stays resident after they close. `malloc_trim(0)` returns every free page; it takes a few
milliseconds, so it runs once per burst: at the first quiet window (the process used under `QUIET_CPU` of a core)
after a busier one. Under steady load nothing is trimmed (the pages would be faulted back at once).

Python's own small-object allocator (pymalloc) frees a 1 MiB arena only when all of it is free, which a few
long-lived objects prevent: `PYTHONMALLOC=malloc` puts Python's objects on glibc's heap too, where the trim returns
them (docs/operations.md, "Memory", says what it costs). Without glibc (musl) there is nothing to do.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
from collections.abc import Callable

WINDOW_S = 10.0
"""How often the process's CPU use is looked at."""
QUIET_CPU = 0.05
"""A window in which the process used less than this share of a core is quiet."""


def process_cpu_s() -> float:
    """CPU seconds this process has used (all its threads)."""
    times = os.times()
    return times.user + times.system


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None


class HeapTrimmer:
    """Decides, one window at a time, when a burst has ended, and then trims (see the module docstring)."""

    __slots__ = ("_busy", "_cpu", "_last_cpu_s", "_trim")

    def __init__(self, trim: Callable[[int], int], cpu: Callable[[], float] = process_cpu_s) -> None:
        self._trim = trim
        self._cpu = cpu
        self._last_cpu_s = cpu()
        self._busy = False
        """A window since the last trim was not quiet."""

    def window_ended(self, window_s: float) -> bool:
        """A window of `window_s` seconds ended; True when it was the first quiet one after a busier one, and the
        heap was trimmed."""
        now = self._cpu()
        share, self._last_cpu_s = (now - self._last_cpu_s) / window_s, now
        if share >= QUIET_CPU:
            self._busy = True
            return False
        if not self._busy:
            return False
        self._busy = False
        gc.collect()  # empties Python's free lists, whose blocks would keep pymalloc arenas and heap pages in use
        self._trim(0)
        return True


async def trim_when_quiet(window_s: float = WINDOW_S) -> None:
    """Run beside the server until cancelled: trim the heap at the end of each burst."""
    trim = malloc_trim()
    if trim is None:
        return
    trimmer = HeapTrimmer(trim)
    while True:
        await asyncio.sleep(window_s)
        trimmer.window_ended(window_s)
