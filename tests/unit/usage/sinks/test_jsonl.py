"""The JSONL sink's file: size rotation between whole lines, backups kept, no half line after a failed write."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmgate.usage.event import UsageEvent
from llmgate.usage.sinks.jsonl import JsonlSink, RotatingFile


def events(start: int, count: int) -> list[UsageEvent]:
    return [UsageEvent(request_id=f"req-{n:04d}", time=1.0, method="POST", endpoint="/v1/chat/completions",
                       status=200) for n in range(start, start + count)]


def lines_of(path: Path) -> list[dict[str, object]]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_rotates_by_size_keeping_whole_lines_and_backups(tmp_path: Path) -> None:
    path = tmp_path / "usage" / "events.jsonl"
    sink = JsonlSink(str(path), max_bytes=1024, backups=2, fsync=True)
    for batch in range(10):
        asyncio.run(sink.write(events(batch * 10, 10)))
    files = [path, path.with_name("events.jsonl.1"), path.with_name("events.jsonl.2")]
    assert not path.with_name("events.jsonl.3").exists()  # only `backups` kept
    ids = []
    for file in reversed(files):
        assert file.stat().st_size <= 1024
        ids += [line["request_id"] for line in lines_of(file)]
    assert ids == sorted(ids) and ids[-1] == "req-0099"  # newest last, nothing reordered
    assert len(ids) < 100 and sink.file.rotations >= 3  # older lines went with the deleted backup


def test_a_line_larger_than_max_bytes_gets_a_file_of_its_own(tmp_path: Path) -> None:
    file = RotatingFile(str(tmp_path / "raw.jsonl"), max_bytes=1024, backups=1, fsync=False)
    file.write_lines([b"small\n", b"x" * 2000 + b"\n", b"after\n"])
    assert (tmp_path / "raw.jsonl").read_bytes() == b"after\n"
    assert (tmp_path / "raw.jsonl.1").read_bytes() == b"x" * 2000 + b"\n"


def test_no_backups_means_start_over(tmp_path: Path) -> None:
    file = RotatingFile(str(tmp_path / "f"), max_bytes=1024, backups=0, fsync=False)
    file.write_lines([b"a" * 600 + b"\n"])
    file.write_lines([b"b" * 600 + b"\n"])
    assert (tmp_path / "f").read_bytes() == b"b" * 600 + b"\n"
    assert list(tmp_path.iterdir()) == [tmp_path / "f"]


def test_disk_full_raises_and_leaves_no_partial_line(tmp_path: Path) -> None:
    """A file size limit (RLIMIT_FSIZE) stops a write half way, as a full disk does: the half batch is removed."""
    script = f"""
import errno, resource, signal
from llmgate.usage.sinks.jsonl import RotatingFile
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
f = RotatingFile({str(tmp_path / 'full.jsonl')!r}, max_bytes=10**9, backups=0)
f.write_lines([b'%0299d\\n' % 1, b'%0299d\\n' % 2])
try:
    f.write_lines([b'%0299d\\n' % 3, b'%0299d\\n' % 4])
except OSError as exc:
    print(errno.errorcode[exc.errno])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.strip() == "EFBIG"
    data = (tmp_path / "full.jsonl").read_bytes()
    assert data == b"%0299d\n" % 1 + b"%0299d\n" % 2  # the failed batch is gone, not half of it


def test_a_device_is_written_not_rotated() -> None:
    file = RotatingFile("/dev/full", max_bytes=1024, backups=1, fsync=False)
    with pytest.raises(OSError, match="No space left"):
        file.write_lines([b"x" * 2000 + b"\n"])
    assert Path("/dev/full").exists() and not Path("/dev/full.1").exists()
