"""A deliberately slowed llmgate for the perf gate's test: the real app plus a middleware sleeping 1 ms a request.

Served by `python -m benchmarks.lab --gateway-app tests.lab.slow_gateway:create_app` (granian's factory mode); the
middleware goes in through `create_app(middleware=...)`, which no setting or environment variable reaches.
"""

from __future__ import annotations

import asyncio

from litestar import Litestar
from litestar.types import ASGIApp, Receive, Scope, Send

from llmgate.app import create_app as create_gateway

DELAY_S = 0.001


def delay_middleware(app: ASGIApp) -> ASGIApp:
    async def delayed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(DELAY_S)
        await app(scope, receive, send)

    return delayed


def create_app() -> Litestar:
    return create_gateway(middleware=[delay_middleware])
