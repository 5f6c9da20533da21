"""create_app(settings) → Litestar: route handlers, lifespan, CORS; no logic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide

from llmgate.config import Settings, load_settings
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
        try:
            yield
        finally:
            await state.close()

    cors = settings.server.cors_origins
    return Litestar(
        route_handlers=[v1_handler(state), HealthController],
        dependencies={"gateway": Provide(lambda: state, use_cache=True, sync_to_thread=False)},
        lifespan=[lifespan],
        cors_config=CORSConfig(allow_origins=list(cors), allow_headers=["*"], expose_headers=["*"]) if cors else None,
        openapi_config=None,  # /v1 mirrors OpenAI's published spec; the management API will publish its own
        logging_config=None,  # Litestar's default turns on per-request INFO lines from httpx
        debug=False,
    )
