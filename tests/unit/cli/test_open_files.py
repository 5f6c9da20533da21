"""`llmgate serve` raises the open-files limit so LLMGATE_MAX_CONNECTIONS can be reached."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from llmgate.cli.serve import open_files_wanted

_RAISE = """
import resource, sys
from llmgate.cli.serve import raise_open_files_limit
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
warning = raise_open_files_limit((int(sys.argv[1]), int(sys.argv[2])))
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], warning is not None)
"""


def _raise_in_child(best: int, needed: int) -> tuple[int, bool]:
    # In a child process: the test run's own limit stays as it was.
    out = subprocess.run([sys.executable, "-c", _RAISE, str(best), str(needed)], capture_output=True, text=True,
                         check=True)
    soft, warned = out.stdout.split()
    return int(soft), warned == "True"


def test_the_soft_limit_is_raised_to_what_the_connections_need() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    wanted = 1000 if hard == resource.RLIM_INFINITY else min(1000, hard)
    assert _raise_in_child(wanted, 300) == (wanted, False)


def test_the_soft_limit_goes_up_to_the_hard_one_and_only_a_shortfall_below_the_need_is_reported() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("this machine has no hard open-files limit to fall short of")
    assert _raise_in_child(hard + 1, hard) == (hard, False)  # what upstream connections may add: best effort
    assert _raise_in_child(hard + 2, hard + 1) == (hard, True)


def test_each_connection_counts_twice_at_most_and_once_at_least() -> None:
    assert open_files_wanted(10_000) == (20_256, 10_256)  # the client's and its upstream's; the client's
