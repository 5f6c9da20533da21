"""StreamGuard's bookkeeping (its deadlines and keep-alives run end to end in tests/integration/test_keepalive.py)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

from llmgate.proxy.asgi import Headers
from llmgate.proxy.streaming import StreamGuard


class _Call:
    """What holds a guard and lends it its keep-alive headers, as proxy/attempt.py's Call does."""

    def __init__(self) -> None:
        self.guard: StreamGuard | None = None

    def keepalive_headers(self) -> Headers:
        return []


def test_a_stopped_guard_leaves_no_reference_cycle() -> None:
    """Call → guard → call.keepalive_headers → call: `stop()` breaks the cycle, so a finished stream's objects
    are freed at once by reference counting rather than left to the cyclic GC (measured: 26 objects a stream)."""

    async def stream() -> weakref.ref[_Call]:
        async def send(message: dict[str, Any]) -> None:
            return None

        call = _Call()
        call.guard = StreamGuard(send, 15.0, call.keepalive_headers)
        call.guard.stop()
        return weakref.ref(call)

    gc.collect()
    gc.disable()
    try:
        gone = asyncio.run(stream())
        assert gone() is None
    finally:
        gc.enable()
