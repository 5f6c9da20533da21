"""The hot path's way in: a `/v1` request goes from the server straight to the /v1 app, past Litestar's router.

Litestar's dispatch to the /v1 mount (Litestar.__call__'s scope keys, the exception middleware wrapping `send`,
ASGIRouter's path normalisation, route lookup and ScopeState) runs ~490 bytecodes a request and does nothing
for /v1, which answers every error itself. Everything else (/manage, /health, /metrics, the admin UI) goes to
Litestar as before, and so does /v1 whenever the shortcut could change more than speed: CORS or extra middleware
configured (they must see /v1 too; `create_app` then does not install this), a `root_path`, or a path Litestar
would normalise (`//`). Litestar's Host header check is kept (pipeline/screen.py).
"""

from __future__ import annotations

from typing import Any

from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import ASGIApp as LitestarApp

from llmgate.proxy.asgi import ASGIApp


def v1_first(v1: ASGIApp, litestar: LitestarApp) -> LitestarApp:
    """An ASGI app that serves `/v1` and `/v1/...` with `v1` (its path made relative) and the rest with `litestar`."""

    async def front(scope: Any, receive: Any, send: Any) -> None:
        path: str = scope["path"]
        if (path.startswith("/v1/") or path == "/v1") and scope["type"] == "http" and "//" not in path \
                and not scope.get("root_path"):
            scope["path"] = path[3:]
            await v1(scope, receive, send)
            return
        await litestar(scope, receive, send)

    return front


def v1_handler(v1: ASGIApp) -> ASGIRouteHandler:
    """The /v1 app as Litestar's `/v1` mount, for when the shortcut is not installed (CORS, middleware)."""
    return asgi("/v1", is_mount=True, copy_scope=False)(v1)
