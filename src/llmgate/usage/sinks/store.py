"""The store sink: each batch of usage events becomes rows of the store's `usage` table, in one transaction.

When the store cannot take a batch (PostgreSQL down, SQLite's disk full), the batch goes to the store's spill
file (JSONL, whole lines; its own file, so that events the other sinks spilled are not written twice) and is
counted as spilled; only when that file fails too is it dropped, and counted. After the next batch the store
takes (also the first after a restart), the spill file is replayed into it, `REPLAY_BATCH` rows a transaction;
what it cannot take yet stays in the file for the next time.

A batch can be both stored and spilled: its COMMIT reached PostgreSQL but the connection broke before the
acknowledgement came back, or a write timed out (`WRITE_TIMEOUT_S`: a hung store, not only a stopped one, must
not hold the batches up) and went on. So the replay writes with `store.insert_usage_once`, which skips the
events whose row (request_id, time) is stored already: spilled events end up stored exactly once. Only the
replay pays for that check; the batches of the request path are written with the plain insert.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import msgspec
from loguru import logger

from llmgate.store.base import Store
from llmgate.usage.event import UsageEvent
from llmgate.usage.sinks.jsonl import RotatingFile, event_lines

REPLAY_BATCH = 500
WRITE_TIMEOUT_S = 10.0
"""How long one write may take before its batch is spilled: a healthy store takes milliseconds for a batch."""
_decode_lines = msgspec.json.Decoder(UsageEvent).decode_lines


class StoreSink:
    """Writes events to `store.insert_usage` (token budgets are counted elsewhere: access/tokens.py)."""

    name = "store"

    def __init__(self, store: Store, spill_path: str | None = None, timeout_s: float = WRITE_TIMEOUT_S) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self._spill = RotatingFile(spill_path, 2**62, 0, fsync=True) if spill_path else None
        self._replaying = Path(f"{spill_path}.replaying") if spill_path else None
        self._has_spill = spill_path is not None
        """The spill file may hold events: look after the next successful write (true at start: a restart)."""
        self.spilled = 0
        self.dropped = 0
        self.replayed = 0

    async def write(self, events: Sequence[UsageEvent]) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.store.insert_usage(events)
        except TimeoutError:
            await self._give_up(events, TimeoutError(f"the store took more than {self.timeout_s:g} s to write"))
            return
        except Exception as exc:
            await self._give_up(events, exc)
            return
        if self._has_spill:
            await self._replay()

    async def _give_up(self, events: Sequence[UsageEvent], exc: Exception) -> None:
        if self._spill is None:
            self.dropped += len(events)
            logger.error("usage sink store: {} event(s) lost: {}", len(events), exc)
            return
        try:
            await asyncio.to_thread(self._spill.write_lines, event_lines(events))
        except OSError as spill_error:
            self.dropped += len(events)
            logger.error("usage sink store: {} event(s) lost: {}; the spill file failed too: {}", len(events), exc,
                         spill_error)
            return
        self._has_spill = True
        self.spilled += len(events)
        logger.warning("usage sink store: {}; {} event(s) written to {}, replayed when the store is back", exc,
                       len(events), self._spill.path)

    async def _replay(self) -> None:
        """Move the spill file aside and write its events to the store; what fails goes back to the file."""
        assert self._spill is not None and self._replaying is not None
        events = await asyncio.to_thread(self._take_spilled)
        self._has_spill = False
        if not events:
            return
        done = 0
        try:
            while done < len(events):
                async with asyncio.timeout(self.timeout_s):
                    await self.store.insert_usage_once(events[done:done + REPLAY_BATCH])
                done = min(done + REPLAY_BATCH, len(events))
        except Exception as exc:
            logger.warning("usage sink store: replaying the spill file stopped: {}", exc)
        if done < len(events):
            await asyncio.to_thread(self._spill.write_lines, event_lines(events[done:]))
            self._has_spill = True
        await asyncio.to_thread(self._replaying.unlink, True)
        self.replayed += done
        logger.info("usage sink store: {} spilled event(s) written to the store, {} left", done, len(events) - done)

    def _take_spilled(self) -> list[UsageEvent]:
        """The spilled events (and those of a replay a crash interrupted), the files set aside."""
        assert self._spill is not None and self._replaying is not None
        if self._spill.path.exists():
            if self._replaying.exists():  # left by a replay that did not finish: keep both
                with self._replaying.open("ab") as leftover:
                    leftover.write(self._spill.path.read_bytes())
                self._spill.path.unlink()
            else:
                os.replace(self._spill.path, self._replaying)
        if not self._replaying.exists():
            return []
        data = self._replaying.read_bytes()
        end = data.rfind(b"\n") + 1  # whole lines only
        try:
            return _decode_lines(data[:end])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            bad = self._replaying.with_name(self._replaying.name + ".bad")
            os.replace(self._replaying, bad)
            logger.error("usage sink store: the spill file could not be read ({}); kept as {}", exc, bad)
            return []

    async def close(self) -> None:
        """Nothing of its own: the store is closed by the gateway after the bus has drained."""
