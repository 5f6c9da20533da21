"""create_app(settings) → Litestar: route handlers, lifespan, CORS; no logic."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.types import Middleware

from llmgate import __version__
from llmgate.admin.access import (
    actor_of,
    answer_options,
    gateway_error,
    http_error,
    require_management_token,
    validation_error,
)
from llmgate.admin.audit import AuditController
from llmgate.admin.openapi import ManageSchemaPlugin
from llmgate.admin.projects import ProjectController
from llmgate.admin.tokens import TokenController
from llmgate.admin.usage import UsageController
from llmgate.config import Settings, load_settings
from llmgate.drain import closing_connections, on_drain
from llmgate.errors import GatewayError
from llmgate.log import known_secrets, setup_logging
from llmgate.memory import trim_when_quiet, tune_gc
from llmgate.pipeline.v1 import serve_v1
from llmgate.routes.front import v1_first, v1_handler
from llmgate.routes.health import HealthController
from llmgate.routes.metrics import metrics
from llmgate.services import Services


def create_app(settings: Settings | None = None, *, middleware: Sequence[Middleware] = (),
               services: Services | None = None) -> Litestar:
    """The gateway app; settings default to the environment (LLMGATE_*, OPENAI_*, LLMGATE_CONFIG).

    `middleware` and `services` are for tests only (the perf gate's deliberately slowed build; the in-process
    harness's services with upstreams faked); no setting reaches them."""
    settings = settings or load_settings()
    setup_logging(settings.server.log_level, settings.server.log_json, known_secrets(settings))
    state = services or Services(settings)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await state.open()
        tune_gc()
        loop = asyncio.get_running_loop()
        trimming = loop.create_task(trim_when_quiet())  # every worker collects and trims once load stops
        reloads: set[asyncio.Task[bool]] = set()

        def on_sighup() -> None:  # reload the config; in-flight requests keep the old one
            task = loop.create_task(state.reloader.reload_or_keep())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
        forget = on_drain(lambda: setattr(app, "asgi_handler", closing_connections(app.asgi_handler)))
        try:
            yield
        finally:
            trimming.cancel()
            forget()
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)
            await state.close()

    cors = settings.server.cors_origins
    manage = Router("/manage", route_handlers=[ProjectController, TokenController, UsageController, AuditController],
                    guards=[require_management_token], before_request=answer_options,
                    dependencies={"caller": Provide(actor_of, sync_to_thread=False)},
                    exception_handlers={GatewayError: gateway_error, ValidationException: validation_error,
                                        HTTPException: http_error})
    v1 = serve_v1(state.v1_services())
    handlers: list[Any] = [v1_handler(v1), HealthController, metrics, manage]
    ui_auth = None
    if settings.management_token:  # the admin UI comes with the management API (its Jinja import too)
        from llmgate.ui.auth import UIAuth
        from llmgate.ui.router import ui_router

        ui_auth = UIAuth(settings, state.audit)
        handlers.append(ui_router())
    app = Litestar(
        route_handlers=handlers,
        dependencies={"gateway": Provide(lambda: state, use_cache=True, sync_to_thread=False)},
        lifespan=[lifespan],
        middleware=list(middleware),
        state=State({"management_token": settings.management_token, "auth_throttle": state.auth_throttle,
                     "jwt": state.jwt, "ui_auth": ui_auth}),
        exception_handlers={GatewayError: gateway_error, HTTPException: http_error},
        cors_config=CORSConfig(allow_origins=list(cors), allow_headers=["*"], expose_headers=["*"]) if cors else None,
        # Only the management API is described (/v1 mirrors OpenAI's published spec), at /manage/schema.
        openapi_config=OpenAPIConfig(title="llmgate management API", version=__version__, path="/manage/schema",
                                     render_plugins=[ManageSchemaPlugin(path="/")]),
        logging_config=None,  # Litestar's default turns on per-request INFO lines from httpx
        debug=False,
    )
    if not cors and not middleware:  # /v1 skips Litestar's router (routes/front.py)
        app.asgi_handler = v1_first(v1, app.asgi_handler)
    return app

