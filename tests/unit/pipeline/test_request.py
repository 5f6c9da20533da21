"""A `V1Request` holds the task serving it; the cycle that makes must stay collectable."""

from __future__ import annotations

import asyncio
import gc
import weakref

from llmgate.pipeline.request import V1Request
from llmgate.proxy.headers import split_request_headers
from llmgate.usage.event import Exchange


def test_a_cancelled_request_task_and_its_request_are_collected() -> None:
    """Cancelled at shutdown, the task keeps its CancelledError, whose traceback keeps the frame holding the request,
    which holds the task: only the cyclic GC frees that, and only if it can see the request's references."""
    started = asyncio.Event()

    async def serve() -> None:
        task = asyncio.current_task()
        assert task is not None
        scope = {"method": "POST", "path": "/chat/completions", "headers": [(b"host", b"gw")]}
        request = V1Request(scope, None, None, task, split_request_headers(scope["headers"]),  # type: ignore[arg-type]
                            Exchange(b"req-1", "POST", "/v1/chat/completions", lag_s=0.0), "/chat/completions", "POST")
        started.set()
        await asyncio.Event().wait()
        del request  # never reached: the cancellation's traceback keeps this frame, and so `request`

    async def main() -> weakref.ref[asyncio.Task[None]]:
        task = asyncio.get_running_loop().create_task(serve())
        await asyncio.wait([task, asyncio.ensure_future(started.wait())], return_when=asyncio.FIRST_COMPLETED)
        assert not task.done(), task.exception()
        task.cancel()
        await asyncio.wait([task])
        return weakref.ref(task)

    task = asyncio.run(main())
    gc.collect()
    assert task() is None
