"""Reading `python -X importtime` output."""

from __future__ import annotations

from benchmarks.lab.footprint import parse_importtime, top_offenders, tree_size_mb

STDERR = """import time: self [us] | cumulative | imported package
import time:       120 |        120 |   _io
import time:      2000 |      50000 |     litestar
import time:       300 |       9000 |     llmgate.store
import time:       100 |      70000 |   llmgate.app
import time:        50 |      70100 | llmgate
"""


def test_parse_importtime_reads_cumulative_ms() -> None:
    parsed = parse_importtime(STDERR + "some other line\n")
    assert parsed == {"_io": 0.12, "litestar": 50.0, "llmgate.store": 9.0, "llmgate.app": 70.0, "llmgate": 70.1}


def test_top_offenders_leave_out_the_module_and_its_parents() -> None:
    top = top_offenders(parse_importtime(STDERR), "llmgate.app", n=2)
    assert top == [("litestar", 50.0), ("llmgate.store", 9.0)]


def test_tree_size(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "a").mkdir()
    (root / "a" / "f").write_bytes(b"x" * 2**20)
    (root / "g").write_bytes(b"y" * 2**19)
    assert tree_size_mb(root) == 1.5
