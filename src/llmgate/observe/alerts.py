"""Soft limits: a budget past its `alert_threshold` is logged, counted in /metrics, and, with
LLMGATE_ALERT_WEBHOOK_URL, POSTed as JSON to a webhook, once per budget per period (per instance).

The request that crosses the threshold only queues the alert (a deque append); a task of its own POSTs it
(httpx, imported lazily), retrying a failed POST with exponential backoff (0.5 s, 1 s, 2 s, ..., 5 tries), then
logs that it gave up. At most MAX_PENDING alerts wait; more are logged and dropped (the log line stays).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import TYPE_CHECKING, Any

import msgspec
from loguru import logger

if TYPE_CHECKING:
    import httpx
    from prometheus_client import Counter

    from llmgate.access.budgets import Budgeted

MAX_PENDING = 1000
TRIES = 5
BACKOFF_BASE_S = 0.5
_encode = msgspec.json.Encoder().encode


class BudgetAlert(msgspec.Struct, kw_only=True, frozen=True):
    """The webhook's JSON body."""

    type: str = "budget.threshold"
    kind: str
    """`token` or `project`."""
    id: str
    budget: str
    """The budget's field: `budget_tokens`, `budget_cost` or `max_requests`."""
    used: float
    limit: float
    threshold: float
    period: str | None
    resets_at: float | None
    at: float


class Alerts:
    """Receives threshold crossings from the token cache; logs, counts, and sends them."""

    def __init__(self, webhook_url: str, counter: Counter | None = None, backoff_base_s: float = BACKOFF_BASE_S
                 ) -> None:
        self.url = webhook_url
        self.counter = counter
        self.backoff_base_s = backoff_base_s
        self._pending: collections.deque[BudgetAlert] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.sent = 0

    def __call__(self, kind: str, subject_id: str, budget: str, used: float, limit: float,
                 subject: Budgeted) -> None:
        """A budget passed its threshold (called on the request path: no I/O here)."""
        threshold = subject.alert_threshold or 0.0
        logger.warning("{} {} has used {:.0%} of its {} ({:g} of {:g}; alert threshold {:.0%})", kind, subject_id,
                       used / limit if limit else 1.0, budget, used, limit, threshold)
        if self.counter is not None:
            self.counter.labels(kind, budget).inc()
        if not self.url:
            return
        if len(self._pending) >= MAX_PENDING:
            logger.error("budget alert webhook: {} alerts waiting; this one is not sent", len(self._pending))
            return
        self._pending.append(BudgetAlert(kind=kind, id=subject_id, budget=budget, used=used, limit=limit,
                                         threshold=threshold, period=subject.limits.period,
                                         resets_at=subject.resets_at, at=time.time()))
        self._wake.set()

    def start(self) -> None:
        if self.url and self._task is None:
            self._task = asyncio.create_task(self._send_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _send_forever(self) -> None:
        import httpx

        self._client = httpx.AsyncClient(timeout=10.0)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._send(self._pending.popleft())

    async def _send(self, alert: BudgetAlert) -> None:
        assert self._client is not None
        body: Any = _encode(alert)
        for attempt in range(TRIES):
            try:
                response = await self._client.post(self.url, content=body,
                                                   headers={"content-type": "application/json"})
                if response.is_success:
                    self.sent += 1
                    return
                problem = f"HTTP {response.status_code}"
            except Exception as exc:  # connection refused, timeout: retried like a bad status
                problem = str(exc) or type(exc).__name__
            if attempt + 1 < TRIES:
                await asyncio.sleep(self.backoff_base_s * 2**attempt)
        logger.error("budget alert webhook {} failed {} times ({}); alert for {} {} not sent", self.url, TRIES,
                     problem, alert.kind, alert.id)
