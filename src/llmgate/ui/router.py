"""The /ui Router: every page behind the sign-in guard, the CSRF check before every POST, the static files, and
HTML error pages (the management API's errors, shown as a page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.static_files import create_static_files_router

from llmgate.errors import GatewayError
from llmgate.ui.auth import (
    CsrfRefused,
    SignInController,
    SignInRequired,
    TooManySignIns,
    UIAuth,
    csrf_refused,
    too_many_sign_ins,
)
from llmgate.ui.configuration import ConfigurationPage
from llmgate.ui.deployments import DeploymentsPage
from llmgate.ui.overview import OverviewPage
from llmgate.ui.projects import ProjectsPage
from llmgate.ui.render import page
from llmgate.ui.tokens import TokensPage
from llmgate.ui.usage import UsagePage

STATIC = Path(__file__).parent / "static"


def gateway_error_page(request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
    return page(request, "error.html", status_code=error.status, title="Not found" if error.status == 404 else "Error",
                message=error.message)


def http_error_page(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, NotFoundException):
        return page(request, "error.html", status_code=404, title="Not found",
                    message=f"There is no page at {request.url.path}.")
    return page(request, "error.html", status_code=exc.status_code, title="Error", message=str(exc.detail))


def ui_router() -> Router:
    """The admin UI, for a gateway whose management API is on (LLMGATE_MANAGEMENT_TOKEN set). Its credentials,
    sessions and audit trail are the app's `UIAuth`, in `app.state.ui_auth` (read per request: Litestar keeps the
    guards it resolved on the handlers, which every app in a process shares)."""
    static = create_static_files_router("/static", directories=[STATIC], opt={"public": True},
                                        include_in_schema=False, send_as_attachment=False)
    return Router(
        "/ui",
        route_handlers=[SignInController, OverviewPage, ProjectsPage, TokensPage, UsagePage, DeploymentsPage,
                        ConfigurationPage, static],
        guards=[guard],
        before_request=check_csrf,
        dependencies={"ui": Provide(ui_auth, sync_to_thread=False)},
        exception_handlers={SignInRequired: sign_in_required, TooManySignIns: too_many_sign_ins,
                            CsrfRefused: csrf_refused, GatewayError: gateway_error_page,
                            HTTPException: http_error_page},
        include_in_schema=False,
    )


def ui_auth(state: State) -> UIAuth:
    """The app's UIAuth (a dependency)."""
    auth: UIAuth = state.ui_auth
    return auth


async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    await ui_auth(connection.app.state).guard(connection, handler)


async def check_csrf(request: Request[Any, Any, Any]) -> None:
    await ui_auth(request.app.state).check_csrf(request)


def sign_in_required(request: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    return ui_auth(request.app.state).sign_in_required(request, exc)
