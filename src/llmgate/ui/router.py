"""The /ui Router: every page behind the sign-in guard, the CSRF check before every POST, the static files, and
HTML error pages (the management API's errors, shown as a page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router
from litestar.di import Provide
from litestar.exceptions import HTTPException, NotFoundException
from litestar.static_files import create_static_files_router

from llmgate.config import Settings
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


def ui_router(settings: Settings) -> Router:
    """The admin UI, for a gateway whose management API is on (LLMGATE_MANAGEMENT_TOKEN set)."""
    auth = UIAuth(settings)
    static = create_static_files_router("/static", directories=[STATIC], opt={"public": True},
                                        include_in_schema=False, send_as_attachment=False)
    return Router(
        "/ui",
        route_handlers=[SignInController, OverviewPage, ProjectsPage, TokensPage, UsagePage, DeploymentsPage,
                        ConfigurationPage, static],
        guards=[auth.guard],
        before_request=auth.check_csrf,
        dependencies={"ui": Provide(lambda: auth, use_cache=True, sync_to_thread=False)},
        exception_handlers={SignInRequired: auth.sign_in_required, TooManySignIns: too_many_sign_ins,
                            CsrfRefused: csrf_refused, GatewayError: gateway_error_page,
                            HTTPException: http_error_page},
        include_in_schema=False,
    )
