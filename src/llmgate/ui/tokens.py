"""/ui/tokens: list (filtered), create (the secret shown once), update limits, rotate and revoke, through the
management API's own functions (access/lifecycle.py)."""

from __future__ import annotations

import time
from typing import Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from llmgate.admin.projects import find_project
from llmgate.admin.schemas import TokenCreate, TokenUpdate, changes_of, token_out
from llmgate.admin.tokens import create_token
from llmgate.admin.usage import parse_time
from llmgate.errors import GatewayError
from llmgate.services import Services
from llmgate.store.base import Project, Token
from llmgate.ui.auth import actor_of
from llmgate.ui.forms import FormErrors, decode, gateway_errors, names, only_given, text
from llmgate.ui.render import page

Status = Literal["active", "revoked", "expired"]
LIMITS = ("rpm_limit", "tpm_limit", "max_requests", "budget_tokens", "budget_cost")
FIELDS = ("project_id", "name", "expires_at", "allowed_models", *LIMITS)


def status_of(token: Token, now: float) -> Status:
    if not token.is_active:
        return "revoked"
    return "expired" if token.expires_at is not None and now >= token.expires_at else "active"


def token_values(form: Any) -> dict[str, Any]:
    """The form as the management API's fields: numbers as typed (the Struct converts and checks them), the
    expiry as Unix seconds (UTC), models as a list; an empty field is None (no limit)."""
    values: dict[str, Any] = {name: text(form, name) or None for name in LIMITS}
    values["name"] = text(form, "name")
    values["allowed_models"] = names(text(form, "allowed_models"))
    try:
        values["expires_at"] = parse_time(text(form, "expires_at"), "expires_at")
    except GatewayError as exc:
        raise FormErrors({"expires_at": exc.message}) from None
    return values


def form_of(token: Token) -> dict[str, str]:
    """A token's current settings as the update form's values."""
    values = {name: "" if getattr(token, name) is None else str(getattr(token, name)) for name in LIMITS}
    expires = token.expires_at
    values["expires_at"] = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(expires)) if expires else ""
    values["allowed_models"] = ", ".join(token.allowed_models)
    values["name"] = token.name
    return values


class TokensPage(Controller):
    path = "/tokens"

    @get("/")
    async def list_tokens(self, request: Request[Any, Any, Any], gateway: Services, project: str | None = None,
                          status: str | None = None, revoked: str | None = None) -> Response[Any]:
        projects = await gateway.store.list_projects()
        tokens = await gateway.store.list_tokens(project or None, True if status == "active" else None)
        now = time.time()
        if status in ("active", "revoked", "expired"):
            tokens = [t for t in tokens if status_of(t, now) == status]
        return page(request, "tokens.html", tokens=tokens, project_options=[(p.id, p.name) for p in projects],
                    names={p.id: p.name for p in projects}, status_of=lambda t: status_of(t, now),
                    project=project or "", status_filter=status or "", revoked=revoked)

    @get("/new")
    async def new_token(self, request: Request[Any, Any, Any], gateway: Services,
                        project: str | None = None) -> Response[Any]:
        return await self._form(request, gateway, {"project_id": project or ""}, {})

    async def _form(self, request: Request[Any, Any, Any], gateway: Services, form: Any, errors: dict[str, str],
                    status: int = 200) -> Response[Any]:
        projects: list[Project] = await gateway.store.list_projects()
        return page(request, "token_form.html", status_code=status, projects=projects, form=form, errors=errors,
                    project_options=[(p.id, p.name) for p in projects])

    @post("/")
    async def create(self, request: Request[Any, Any, Any], gateway: Services) -> Response[Any]:
        form = await request.form()
        try:
            values = {**only_given(token_values(form)), "project_id": text(form, "project_id")}
            created = await create_token(gateway, decode(values, TokenCreate), actor_of(request))
        except FormErrors as exc:
            return await self._form(request, gateway, form, exc.errors, 422)
        except GatewayError as exc:
            return await self._form(request, gateway, form, gateway_errors(exc, FIELDS), exc.status)
        project = await find_project(gateway, created.project_id)
        return page(request, "token_secret.html", status_code=201, token=created, project=project, rotated=False)

    @get("/{token_id:str}")
    async def detail(self, request: Request[Any, Any, Any], gateway: Services, token_id: str,
                     saved: str | None = None) -> Response[Any]:
        token = await gateway.token_lifecycle.find(token_id)
        return await self._detail(request, gateway, token, form_of(token), {}, "Saved." if saved else None)

    async def _detail(self, request: Request[Any, Any, Any], gateway: Services, token: Token, form: Any,
                      errors: dict[str, str], notice: str | None, status: int = 200) -> Response[Any]:
        project = await gateway.store.get_project(token.project_id)
        return page(request, "token_detail.html", status_code=status, token=token_out(token), project=project,
                    state=status_of(token, time.time()), form=form, errors=errors, notice=notice)

    @post("/{token_id:str}")
    async def save(self, request: Request[Any, Any, Any], gateway: Services, token_id: str) -> Response[Any]:
        token = await gateway.token_lifecycle.find(token_id)
        form = await request.form()
        try:
            update = decode(token_values(form), TokenUpdate)
            await gateway.token_lifecycle.update(token_id, changes_of(update), actor_of(request))
        except FormErrors as exc:
            return await self._detail(request, gateway, token, form, exc.errors, None, 422)
        except GatewayError as exc:
            return await self._detail(request, gateway, token, form, gateway_errors(exc, FIELDS), None, exc.status)
        return Redirect(f"/ui/tokens/{token_id}?saved=1", status_code=303)

    @post("/{token_id:str}/rotate")
    async def rotate(self, request: Request[Any, Any, Any], gateway: Services, token_id: str) -> Response[Any]:
        token, secret = await gateway.token_lifecycle.rotate(token_id, actor_of(request))
        project = await gateway.store.get_project(token.project_id)
        return page(request, "token_secret.html", token=token_out(token, secret), project=project, rotated=True)

    @get("/{token_id:str}/revoke")
    async def confirm_revoke(self, request: Request[Any, Any, Any], gateway: Services,
                             token_id: str) -> Response[Any]:
        token = await gateway.token_lifecycle.find(token_id)
        return page(request, "token_revoke.html", token=token)

    @post("/{token_id:str}/revoke")
    async def revoke(self, request: Request[Any, Any, Any], gateway: Services, token_id: str) -> Response[Any]:
        token = await gateway.token_lifecycle.revoke(token_id, actor_of(request))
        return Redirect(f"/ui/tokens?revoked={token.prefix}", status_code=303)
