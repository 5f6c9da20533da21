"""Who is signed in to the UI (a signed session cookie, or HTTP basic auth when configured), signing in and out,
and the CSRF check of every state-changing form."""

from __future__ import annotations

import base64
import hmac
import math
import time
from typing import Any, Literal
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.handlers import BaseRouteHandler
from litestar.response import Redirect
from loguru import logger

from llmgate.audit import Actor, AuditLog
from llmgate.config import Settings
from llmgate.ui.render import SECURITY_HEADERS, VIEWER, page
from llmgate.ui.session import (
    SESSION_COOKIE,
    SESSION_TTL_S,
    SignInThrottle,
    csrf_token,
    is_basic_valid,
    is_csrf_valid,
    new_session,
    read_session,
    signing_key,
)


class Viewer(msgspec.Struct, kw_only=True, frozen=True):
    """Who is signed in, how, and the CSRF token their forms carry."""

    name: str
    via: Literal["session", "basic"]
    session_id: str
    csrf: str


class SignInRequired(Exception):
    """No valid session or basic credentials: the browser is sent to sign in."""


class TooManySignIns(Exception):
    """This client address failed to sign in too often; it may try again in `wait_s`."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"Too many failed sign-ins from your address: try again in {math.ceil(wait_s)} s.")
        self.wait_s = wait_s


class CsrfRefused(Exception):
    """A state-changing form came without this session's CSRF token."""


class UIAuth:
    """The UI's credentials (the management token; basic auth when both user and password are set), its signing
    key, and the failed sign-in throttle of this process."""

    def __init__(self, settings: Settings, audit: AuditLog) -> None:
        assert settings.management_token, "the UI runs only with the management API"
        self.audit = audit
        self.management_token = settings.management_token
        self.admin_user, self.admin_password = settings.admin_user, settings.admin_password
        self.has_basic = bool(self.admin_user and self.admin_password)
        self.key = signing_key(self.management_token)
        self.throttle = SignInThrottle()

    async def identify(self, connection: ASGIConnection[Any, Any, Any, Any], now: float) -> Viewer | None:
        """The viewer a request's session cookie or basic credentials show; TooManySignIns when its address must
        wait; wrong basic credentials count as a failed sign-in."""
        session = read_session(self.key, connection.cookies.get(SESSION_COOKIE), now)
        if session is not None:
            return Viewer(name="management token", via="session", session_id=session.session_id,
                          csrf=csrf_token(self.key, session.session_id))
        header = connection.headers.get("authorization")
        if not self.has_basic or not header or header[:6].lower() != "basic ":
            return None
        address = client_address(connection)
        self.check_throttle(address, now)
        user = is_basic_valid(header, self.admin_user, self.admin_password)
        if user is None:
            self.throttle.failed(address, now)
            await self.record_sign_in(header_user(header), address, succeeded=False)
            return None
        session_id = f"basic:{user}"
        return Viewer(name=user, via="basic", session_id=session_id, csrf=csrf_token(self.key, session_id))

    async def record_sign_in(self, user: str, address: str, *, succeeded: bool) -> None:
        """A UI sign-in attempt, in the audit trail (`ui.sign_in` / `ui.sign_in_failed`, the name as typed) and
        the log."""
        if succeeded:
            logger.info("ui.sign_in as {} from {}", user, address)
        else:
            logger.warning("ui.sign_in_failed as {} from {}", user, address)
        await self.audit.sign_in(user, address, succeeded=succeeded)

    def check_throttle(self, address: str, now: float) -> None:
        wait_s = self.throttle.wait_s(address, now)
        if wait_s > 0:
            raise TooManySignIns(wait_s)

    async def guard(self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        """Every UI route but sign-in and the static files: a viewer, or SignInRequired."""
        if handler.opt.get("public"):
            return
        viewer = await self.identify(connection, time.time())
        if viewer is None:
            raise SignInRequired
        connection.state[VIEWER] = viewer

    async def check_csrf(self, request: Request[Any, Any, Any]) -> None:
        """Before every POST but sign-in: the form's `csrf` field must be this viewer's token."""
        if request.method != "POST" or request.route_handler.opt.get("public"):
            return
        viewer: Viewer | None = request.state.get(VIEWER)
        form = await request.form()
        if viewer is None or not is_csrf_valid(self.key, viewer.session_id, form.get("csrf")):
            raise CsrfRefused

    def sign_in_required(self, request: Request[Any, Any, Any], _: SignInRequired) -> Response[Any]:
        """To the sign-in form (and, with basic auth configured, the browser's own prompt first)."""
        target = f"/ui/sign-in?next={quote(request.url.path)}"
        if request.headers.get("hx-request"):
            return Response("", status_code=401, headers={"hx-redirect": target})
        if self.has_basic:
            response = page(request, "sign_in.html", status_code=401, next=safe_next(request.url.path), error=None)
            response.headers["www-authenticate"] = 'Basic realm="llmgate admin", charset="UTF-8"'
            return response
        return Redirect(target, status_code=303, headers=SECURITY_HEADERS)


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    return connection.client.host if connection.client else "unknown"


def header_user(header: str) -> str:
    """The user name a basic-auth header gives (for the audit trail; never its password)."""
    try:
        return base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")[0] or "?"
    except (ValueError, UnicodeDecodeError):
        return "?"


def actor_of(request: Request[Any, Any, Any]) -> Actor:
    """Who a UI action is recorded as in the audit trail: `admin:<user>` (basic auth) or
    `admin:management_token` (signed in with the token), from the viewer's address."""
    viewer: Viewer = request.state[VIEWER]
    name = viewer.name if viewer.via == "basic" else TOKEN_USER
    return Actor(name=f"admin:{name}", client=client_address(request))


TOKEN_USER = "management_token"
"""The user name a sign-in with the management token is recorded under."""


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a page of the UI, never another site."""
    if target and target.startswith("/ui/") and "//" not in target and "\\" not in target:
        return target
    return "/ui/"


def is_tls(request: Request[Any, Any, Any]) -> bool:
    """Whether the browser reached us over TLS (directly, or through a proxy that says so)."""
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


class SignInController(Controller):
    path = "/"
    include_in_schema = False

    @get("/sign-in", opt={"public": True})
    async def sign_in_form(self, request: Request[Any, Any, Any], next: str | None = None) -> Response[Any]:
        return page(request, "sign_in.html", next=safe_next(next), error=None)

    @post("/sign-in", opt={"public": True})
    async def sign_in(self, request: Request[Any, Any, Any], ui: UIAuth) -> Response[Any]:
        """Check the management token (throttled per address, compared in constant time); set the session."""
        form = await request.form()
        target, address, now = safe_next(form.get("next")), client_address(request), time.time()
        try:
            ui.check_throttle(address, now)
        except TooManySignIns as exc:
            return page(request, "sign_in.html", status_code=429, next=target, error=str(exc))
        given = str(form.get("token") or "").strip()
        if not given or not hmac.compare_digest(given.encode(), ui.management_token.encode()):
            ui.throttle.failed(address, now)
            await ui.record_sign_in(TOKEN_USER, address, succeeded=False)
            error = "Enter the management token." if not given else "Incorrect management token."
            return page(request, "sign_in.html", status_code=401, next=target, error=error)
        ui.throttle.succeeded(address)
        await ui.record_sign_in(TOKEN_USER, address, succeeded=True)
        value, _ = new_session(ui.key, now)
        cookie = Cookie(key=SESSION_COOKIE, value=value, max_age=SESSION_TTL_S, path="/ui", httponly=True,
                        samesite="strict", secure=is_tls(request))
        return Redirect(target, status_code=303, cookies=[cookie], headers=SECURITY_HEADERS)

    @get("/sign-out", opt={"public": True})
    async def sign_out(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Drop the session cookie; another site's link cannot sign anyone out (Sec-Fetch-Site)."""
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return Redirect("/ui/", status_code=303)
        return Redirect("/ui/sign-in?signed_out=1", status_code=303, headers=SECURITY_HEADERS,
                        cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/ui", httponly=True,
                                        samesite="strict", secure=is_tls(request))])


def too_many_sign_ins(request: Request[Any, Any, Any], exc: TooManySignIns) -> Response[Any]:
    response = page(request, "sign_in.html", status_code=429, next="/ui/", error=str(exc))
    response.headers["retry-after"] = str(math.ceil(exc.wait_s))
    return response


def csrf_refused(request: Request[Any, Any, Any], _: CsrfRefused) -> Response[Any]:
    return page(request, "error.html", status_code=403, title="Form refused",
                message="This form did not carry a valid CSRF token: it may have come from another site, or from "
                        "an earlier session. Go back, reload the page and try again.")
