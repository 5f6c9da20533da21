"""create_app(settings) → Litestar: route handlers, lifespan, CORS; no logic."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response
from litestar.config.cors import CORSConfig
from litestar.di import Provide

from llmgate.config import Settings, load_settings
from llmgate.errors import GatewayError, error_response
from llmgate.log import setup_logging
from llmgate.routes.health import HealthController
from llmgate.routes.openai import v1_handler
from llmgate.state import GatewayState


def create_app(settings: Settings | None = None) -> Litestar:
    """The gateway app; settings default to the environment (LLMGATE_*, OPENAI_*, LLMGATE_CONFIG)."""
    settings = settings or load_settings()
    setup_logging(settings.server.log_level)
    state = GatewayState(settings)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await state.open()
        loop = asyncio.get_running_loop()
        reloads: set[asyncio.Task[bool]] = set()

        def on_sighup() -> None:  # reload the config; in-flight requests keep the old one
            task = loop.create_task(state.reload_or_keep())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
        try:
            yield
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)
            await state.close()

    cors = settings.server.cors_origins
    return Litestar(
        route_handlers=[v1_handler(state), HealthController],
        dependencies={"gateway": Provide(lambda: state, use_cache=True, sync_to_thread=False)},
        lifespan=[lifespan],
        exception_handlers={GatewayError: _gateway_error},
        cors_config=CORSConfig(allow_origins=list(cors), allow_headers=["*"], expose_headers=["*"]) if cors else None,
        openapi_config=None,  # /v1 mirrors OpenAI's published spec; the management API will publish its own
        logging_config=None,  # Litestar's default turns on per-request INFO lines from httpx
        debug=False,
    )


def _gateway_error(_: Request[Any, Any, Any], error: GatewayError) -> Response[bytes]:
    """GatewayErrors raised in Litestar controllers (outside /v1) get the same status and body as on /v1."""
    status, body = error_response(error)
    return Response(body, status_code=status, media_type="application/json", headers=error.headers)
