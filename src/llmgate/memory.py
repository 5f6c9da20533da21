"""The process's memory: when the cyclic GC runs, and handing the heap's free pages back after a burst (glibc's
here, granian's jemalloc through `configure_allocator`).

The cyclic GC (`tune_gc`). A request leaves no cyclic garbage (benchmarks/bench_request.py checks it), so a
collection frees nothing and only rescans live objects; with thousands of streams held those are hundreds of
thousands (a stream holds ~65 tracked objects), and collections every 700 or 10,000 net allocations stalled
every held stream for 10-250 ms, each second (benchmarks/README.md). Young collections therefore wait for the
tracked objects to grow by `YOUNG_GC_THRESHOLD`: growth, and cycles an odd path leaves (they count until
collected), still bring them; and a full collection runs whenever the process falls quiet (below).

glibc's malloc keeps the memory freed inside its heaps (it gives back only a free top of the heap), so what a
burst of streams used stays resident after they close. `malloc_trim(0)` returns every free page, in a few
milliseconds. It runs when the process falls quiet (a window in which it used under `QUIET_CPU` of a core) after
a busier window, and again at each quiet window after that for `SETTLE_S`, and on while the last trim still gave
back at least `WORTH_BYTES`: a burst's memory is freed in steps (streams end, then idle upstream connections leave
their pools, up to proxy/wire.py's `IDLE_S` later, whether or not the trims before gave much back). Under steady
load, or on a server idle since its last trim, nothing runs.

Python's own small-object allocator (pymalloc) frees a 1 MiB arena only when all of it is free. A burst spreads
its objects over many new arenas, and in each a few small objects written during the burst outlive it: the last
value of each metric (a new float at each increment), loop-lag samples, breaker and key counters, the timers of
background tasks. They keep the arena and its emptied pools resident, and nothing moves them later (a new object
fills the free blocks of pools already in use, those pools too). `PYTHONMALLOC=malloc` puts Python's objects on
glibc's heap, where the trim returns them (docs/operations.md, "Memory", says what it costs). Without glibc (musl)
the quiet windows still collect.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
from collections.abc import Callable, MutableMapping

JEMALLOC_CONF_ENV = "_RJEM_MALLOC_CONF"
"""Where granian's allocator (jemalloc, built with the `_rjem_` prefix) reads its options, once, as granian loads."""
JEMALLOC_CONF = "background_thread:true"


def configure_allocator(environ: MutableMapping[str, str]) -> None:
    """Have granian's jemalloc hand the memory of closed connections back to the OS. Unasked, jemalloc purges the
    pages it freed only when it next allocates, so what a burst of connections used stays resident once the server
    falls quiet; a background thread purges them after jemalloc's dirty-page decay (10 s) instead. Call it before
    granian is imported (worker processes inherit it); a value already set is the operator's and is kept."""
    environ.setdefault(JEMALLOC_CONF_ENV, JEMALLOC_CONF)


YOUNG_GC_THRESHOLD = 100_000
"""Net allocations of tracked objects between young-generation collections (see the module docstring)."""
WINDOW_S = 5.0
"""How often the process's CPU use is looked at."""
QUIET_CPU = 0.05
"""A window in which the process used less than this share of a core is quiet."""
WORTH_BYTES = 1 << 20
"""A trim that gave back less than this ends the trims of a burst (once `SETTLE_S` has passed)."""
SETTLE_S = 20.0
"""How long after a burst the quiet windows trim whatever each gives back: longer than an idle upstream connection
waits in its pool (proxy/wire.py's `IDLE_S`), so that what the burst's connections held is returned too."""


def process_cpu_s() -> float:
    """CPU seconds this process has used (all its threads)."""
    times = os.times()
    return times.user + times.system


def resident_bytes() -> int:
    """This process's resident memory (RSS)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None


class HeapTrimmer:
    """Decides, one window at a time, whether to trim (see the module docstring)."""

    __slots__ = ("_cpu", "_last_cpu_s", "_pending", "_quiet_s", "_resident", "_trim")

    def __init__(self, trim: Callable[[int], int], cpu: Callable[[], float] = process_cpu_s,
                 resident: Callable[[], int] = resident_bytes) -> None:
        self._trim = trim
        self._cpu = cpu
        self._resident = resident
        self._last_cpu_s = cpu()
        self._pending = False
        """Memory freed since the last trim may be held: a busy window came, or the last trim gave enough back."""
        self._quiet_s = 0.0
        """Quiet time since the last busy window."""

    def window_ended(self, window_s: float) -> bool:
        """A window of `window_s` seconds ended; True when the heap was trimmed."""
        now = self._cpu()
        share, self._last_cpu_s = (now - self._last_cpu_s) / window_s, now
        if share >= QUIET_CPU:
            self._pending, self._quiet_s = True, 0.0
            return False
        if not self._pending:
            return False
        self._quiet_s += window_s
        before = self._resident()
        gc.collect()  # empties Python's free lists, whose blocks would keep pymalloc arenas and heap pages in use
        self._trim(0)
        self._pending = before - self._resident() >= WORTH_BYTES or self._quiet_s < SETTLE_S
        return True


def tune_gc() -> None:
    """Once started: what is alive now lives as long as the process, so it leaves the cyclic GC's reach (a full
    collection scans only what requests allocate), and young collections wait for `YOUNG_GC_THRESHOLD`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])


async def trim_when_quiet(window_s: float = WINDOW_S) -> None:
    """Run beside the server until cancelled: collect and trim the heap at the end of each burst (without
    glibc's `malloc_trim`, only collect)."""
    trimmer = HeapTrimmer(malloc_trim() or (lambda _pad: 0))
    while True:
        await asyncio.sleep(window_s)
        trimmer.window_ended(window_s)
