"""A JSONL usage sink and the size-rotated file under it (also used by the raw body log).

- Whole lines only: a batch is written with one `write` of complete lines; if that fails (a full disk), the
  file is truncated back to where the batch started, so a reader never sees half a line.
- Rotation by size: before a write would take the file past `max_bytes`, `file` becomes `file.1`,
  `file.1` becomes `file.2`, ... and the oldest beyond `backups` is deleted. A line is never split across
  files (a single line larger than `max_bytes` gets a file of its own).
- fsync policy: with `fsync` on (the default), each batch is fsynced before `write` returns, so at most the
  batch being written is lost if the machine (not just llmgate) dies; the bus writes a batch at most every
  `LLMGATE_USAGE_FLUSH_S` or per `LLMGATE_USAGE_BATCH_SIZE` events, which bounds the fsync rate. Off, a batch
  reaches the OS page cache only. The file work runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import msgspec

from llmgate.usage.event import UsageEvent

_encode = msgspec.json.Encoder().encode


class RotatingFile:
    """An append-only file of lines, rotated by size (see the module docstring). Thread-safe; blocking I/O."""

    def __init__(self, path: str, max_bytes: int, backups: int, fsync: bool = True) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.fsync = fsync
        self.rotations = 0
        self._lock = threading.Lock()

    def write_lines(self, lines: Sequence[bytes]) -> None:
        """Append `lines` (each ending with a newline), rotating between lines as needed."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            exists = self.path.exists()
            rotates = not exists or self.path.is_file()  # never rename a device or a pipe (/dev/stdout)
            size = self.path.stat().st_size if exists else 0
            pending: list[bytes] = []
            pending_size = 0
            for line in lines:
                if rotates and size + pending_size + len(line) > self.max_bytes and (size or pending):
                    self._append(pending)
                    self._rotate()
                    size, pending, pending_size = 0, [], 0
                pending.append(line)
                pending_size += len(line)
            self._append(pending)

    def _append(self, lines: list[bytes]) -> None:
        if not lines:
            return
        data = b"".join(lines)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # usage and bodies: the owner's
        try:
            start = os.fstat(fd).st_size
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                if self.fsync:
                    os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):  # a device cannot be truncated (and holds no half line)
                    os.ftruncate(fd, start)  # no half line left behind
                raise
        finally:
            os.close(fd)

    def _rotate(self) -> None:
        self.rotations += 1
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        oldest = self.path.with_name(f"{self.path.name}.{self.backups}")
        oldest.unlink(missing_ok=True)
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.rename(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.path.exists():
            self.path.rename(self.path.with_name(f"{self.path.name}.1"))


def event_lines(events: Sequence[UsageEvent]) -> list[bytes]:
    return [_encode(event) + b"\n" for event in events]


class JsonlSink:
    """Usage events as JSON lines in a rotated file."""

    name = "jsonl"

    def __init__(self, path: str, max_bytes: int, backups: int, fsync: bool = True) -> None:
        self.file = RotatingFile(path, max_bytes, backups, fsync)

    async def write(self, events: Sequence[UsageEvent]) -> None:
        await asyncio.to_thread(self.file.write_lines, event_lines(events))

    async def close(self) -> None:
        """Nothing held open: each batch opens, writes and closes the file."""
