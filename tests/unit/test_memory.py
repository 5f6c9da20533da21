"""The process's memory: the cyclic GC leaves live objects alone, and the heap trimmer runs from the first quiet
window after a busy one, until a trim gives little back; never under steady load nor on a server idle since its
last trim."""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator
from typing import Any

import pytest

from llmgate.memory import (
    JEMALLOC_CONF,
    JEMALLOC_CONF_ENV,
    QUIET_CPU,
    SETTLE_S,
    WORTH_BYTES,
    YOUNG_GC_THRESHOLD,
    HeapTrimmer,
    configure_allocator,
    malloc_trim,
    resident_bytes,
    tune_gc,
)
from llmgate.proxy.wire import IDLE_S

MB = 1 << 20


class Process:
    """A process's CPU clock and resident memory the test moves; a trim gives back the next amount in line."""

    def __init__(self, given_back: list[int]) -> None:
        self.cpu_s = 0.0
        self.rss = 500 * MB
        self.given_back = given_back
        self.trims: list[int] = []

    def trim(self, pad: int) -> int:
        self.trims.append(pad)
        self.rss -= self.given_back.pop(0) if self.given_back else 0
        return 1


def windows(shares: list[float], given_back: list[int] | None = None) -> tuple[list[bool], Process]:
    process = Process(given_back if given_back is not None else [40 * MB])
    trimmer = HeapTrimmer(process.trim, cpu=lambda: process.cpu_s, resident=lambda: process.rss)
    trimmed = []
    for share in shares:
        process.cpu_s += share * 5.0
        trimmed.append(trimmer.window_ended(5.0))
    return trimmed, process


def test_a_burst_is_trimmed_once_quiet_until_a_trim_gives_little_back() -> None:
    trimmed, process = windows([0.6, 0.9, 0.01] + [0.0] * 8, [40 * MB, 25 * MB, 20 * MB, 10 * MB, 5 * MB,
                                                              WORTH_BYTES // 2])
    assert trimmed == [False, False] + [True] * 6 + [False] * 3
    assert process.trims == [0] * 6  # pad 0: every free page, not only the heap's top


def test_the_trims_go_on_until_idle_upstream_connections_have_left_their_pools() -> None:
    assert SETTLE_S > IDLE_S
    quiet_windows = math.ceil(SETTLE_S / 5.0)
    # The streams' memory first; trims that give nothing back; then, past IDLE_S, the connections' memory.
    given_back = [40 * MB] + [0] * (quiet_windows - 2) + [30 * MB]
    trimmed, process = windows([0.6] + [0.0] * (quiet_windows + 2), given_back)
    assert trimmed == [False] + [True] * (quiet_windows + 1) + [False]  # one more after the last that gave enough
    assert process.rss == 500 * MB - 70 * MB


def test_steady_load_and_an_idle_server_are_left_alone() -> None:
    assert windows([0.3] * 6)[0] == [False] * 6
    assert windows([0.0] * 6)[0] == [False] * 6
    assert windows([QUIET_CPU / 2] * 6)[0] == [False] * 6


def test_each_burst_is_trimmed_after_it() -> None:
    trimmed, process = windows([0.5, 0.0, 0.0, 0.2, 0.4, 0.01, 0.0], [10 * MB, 0, 10 * MB, 0])
    assert trimmed == [False, True, True, False, False, True, True]
    assert len(process.trims) == 4


@pytest.mark.skipif(malloc_trim() is None, reason="the C library has no malloc_trim (not glibc)")
def test_glibc_trim_is_found_and_callable() -> None:
    trim = malloc_trim()
    assert trim is not None and trim(0) in (0, 1)
    assert resident_bytes() > MB


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations the cyclic GC collects while the test runs, with `tune_gc`'s settings (undone after)."""
    seen: list[int] = []

    def started(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    threshold = gc.get_threshold()
    tune_gc()
    gc.callbacks.append(started)
    try:
        yield seen
    finally:
        gc.callbacks.remove(started)
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_objects_held_alive_are_not_rescanned_until_they_grow_by_the_threshold(collections: list[int]) -> None:
    held = [[] for _ in range(YOUNG_GC_THRESHOLD // 2)]  # what thousands of held streams keep alive
    assert collections == []
    more: list[list[int]] = [[] for _ in range(YOUNG_GC_THRESHOLD)]  # growth (or uncollected cycles) still collects
    assert collections[:1] == [0]
    assert len(held) + len(more) == YOUNG_GC_THRESHOLD * 3 // 2


def test_tune_gc_moves_what_start_up_left_out_of_reach(collections: list[int]) -> None:
    assert gc.get_freeze_count() > 0


def test_granian_jemalloc_purges_in_the_background_unless_the_operator_said_otherwise() -> None:
    unset: dict[str, str] = {}
    configure_allocator(unset)
    assert unset == {JEMALLOC_CONF_ENV: JEMALLOC_CONF}
    chosen = {JEMALLOC_CONF_ENV: "background_thread:true,dirty_decay_ms:1000"}
    configure_allocator(chosen)
    assert chosen == {JEMALLOC_CONF_ENV: "background_thread:true,dirty_decay_ms:1000"}
