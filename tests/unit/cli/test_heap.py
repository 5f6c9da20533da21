"""The heap trimmer: once per burst, at the first quiet window after a busier one; never under steady load."""

from __future__ import annotations

import pytest

from llmgate.cli.heap import QUIET_CPU, HeapTrimmer, malloc_trim


class Process:
    """A process's CPU clock the test moves, and the trims asked for."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.trims: list[int] = []

    def trim(self, pad: int) -> int:
        self.trims.append(pad)
        return 1


def windows(shares: list[float], window_s: float = 10.0) -> tuple[list[bool], Process]:
    process = Process()
    trimmer = HeapTrimmer(process.trim, cpu=lambda: process.cpu_s)
    trimmed = []
    for share in shares:
        process.cpu_s += share * window_s
        trimmed.append(trimmer.window_ended(window_s))
    return trimmed, process


def test_the_first_quiet_window_after_a_burst_trims_once() -> None:
    trimmed, process = windows([0.6, 0.9, 0.01, 0.0, 0.0])
    assert trimmed == [False, False, True, False, False]
    assert process.trims == [0]  # pad 0: every free page, not only the heap's top


def test_steady_load_and_an_idle_server_are_left_alone() -> None:
    assert windows([0.3] * 6)[0] == [False] * 6
    assert windows([0.0] * 6)[0] == [False] * 6
    assert windows([QUIET_CPU / 2] * 6)[0] == [False] * 6


def test_each_burst_ends_in_a_trim_of_its_own() -> None:
    trimmed, process = windows([0.5, 0.0, 0.0, 0.2, 0.4, 0.01])
    assert trimmed == [False, True, False, False, False, True]
    assert len(process.trims) == 2


@pytest.mark.skipif(malloc_trim() is None, reason="the C library has no malloc_trim (not glibc)")
def test_glibc_trim_is_found_and_callable() -> None:
    trim = malloc_trim()
    assert trim is not None and trim(0) in (0, 1)
