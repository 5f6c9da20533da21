"""A test-only app: llmgate's own, plus `POST /_test/block` that blocks its event loop on purpose.

`?ms=300&times=6&gap_ms=50` schedules `times` blocks of `ms` each, `gap_ms` apart, and answers at once: for
about `times * (ms + gap_ms)` the loop is mostly blocked, as under a CPU-bound overload. Served by
tests/servers.py `start_test_app`; nothing in llmgate itself can do this.
"""

from __future__ import annotations

import asyncio
import time

from litestar import Litestar, post

from llmgate.app import create_app as create_gateway


@post("/_test/block", status_code=202)
async def block(ms: float, times: int = 1, gap_ms: float = 0.0) -> None:
    loop = asyncio.get_running_loop()
    for n in range(times):
        loop.call_later(n * (ms + gap_ms) / 1000, time.sleep, ms / 1000)


def create_app() -> Litestar:
    app = create_gateway()
    app.register(block)
    return app
