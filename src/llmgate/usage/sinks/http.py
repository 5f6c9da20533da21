"""The HTTP usage sink: each batch POSTed as a JSON array to `LLMGATE_USAGE_HTTP_URL` (httpx, imported lazily).

`write` only queues the batch and returns, so a slow or dead endpoint never holds up the other sinks; a task
of its own POSTs the queued batches in order. A failed POST (a connection error, a timeout, any status but
2xx) is retried `retries` times, waiting 0.5 s, 1 s, 2 s, ... (capped at 30 s) between tries; then the batch
is given up to the spill file (JSONL, whole lines), counted and logged. More than `max_pending` batches
waiting also go straight to the spill file. `close` tries what is still queued once more, within `timeout_s`,
and spills the rest.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from loguru import logger

from llmgate.usage.event import UsageEvent
from llmgate.usage.sinks.jsonl import RotatingFile, event_lines

if TYPE_CHECKING:
    import httpx

_encode = msgspec.json.Encoder().encode
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0


class HttpSink:
    """Batches POSTed to a URL, retried with backoff, spilled when given up (see the module docstring)."""

    name = "http"

    def __init__(self, url: str, spill_path: str, *, token: str | None = None, retries: int = 3,
                 timeout_s: float = 10.0, max_pending: int = 100, backoff_base_s: float = BACKOFF_BASE_S) -> None:
        self.url = url
        self.retries = retries
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.backoff_base_s = backoff_base_s
        self._headers = {"content-type": "application/json"}
        if token:
            self._headers["authorization"] = f"Bearer {token}"
        self._spill = RotatingFile(spill_path, 2**62, 0, fsync=False)
        self._pending: collections.deque[Sequence[UsageEvent]] = collections.deque()
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self.posted = 0
        self.spilled = 0

    async def write(self, events: Sequence[UsageEvent]) -> None:
        if len(self._pending) >= self.max_pending:
            await self._give_up(events, f"{len(self._pending)} batches already waiting")
            return
        self._pending.append(events)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="llmgate-usage-http")
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with asyncio.timeout(self.timeout_s):
                while self._pending:
                    await self._post(self._pending[0])
                    self._pending.popleft()
        except Exception as exc:
            while self._pending:
                await self._give_up(self._pending.popleft(), f"at shutdown: {exc!r}")
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[0]
                error = await self._post_with_retries(batch)
                if self._pending and self._pending[0] is batch:
                    self._pending.popleft()
                if error is not None:
                    await self._give_up(batch, error)

    async def _post_with_retries(self, events: Sequence[UsageEvent]) -> str | None:
        """None when posted; else what went wrong the last time."""
        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(min(self.backoff_base_s * 2 ** (attempt - 1), BACKOFF_MAX_S))
            try:
                await self._post(events)
                return None
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
        return f"gave up after {self.retries + 1} attempt(s): {error}"

    async def _post(self, events: Sequence[UsageEvent]) -> None:
        client = self._client
        if client is None:
            import httpx  # here, not at the top: only gateways with an HTTP sink pay for it

            client = self._client = httpx.AsyncClient(timeout=self.timeout_s)
        response = await client.post(self.url, content=_encode(list(events)), headers=self._headers)
        if not 200 <= response.status_code < 300:
            raise SinkRefused(f"{self.url} answered {response.status_code}: {_excerpt(response)}")
        self.posted += len(events)

    async def _give_up(self, events: Sequence[UsageEvent], why: str) -> None:
        try:
            await asyncio.to_thread(self._spill.write_lines, event_lines(events))
        except OSError as exc:
            logger.error("usage sink http: {} event(s) lost: {}; the spill file failed too: {}", len(events),
                         why, exc)
            return
        self.spilled += len(events)
        logger.warning("usage sink http: {}; {} event(s) written to {}", why, len(events), self._spill.path)


class SinkRefused(Exception):
    """The endpoint answered, but not with 2xx."""


def _excerpt(response: Any) -> str:
    text: str = response.text
    return text[:200] + ("..." if len(text) > 200 else "")
