"""/manage/tokens: create (returns the secret, once), list, get, update limits, revoke (DELETE), rotate."""

from __future__ import annotations

import secrets
import time

from litestar import Controller, delete, get, patch, post

from llmgate.access.tokens import display_prefix, hash_secret, new_secret
from llmgate.admin.projects import find_project
from llmgate.admin.schemas import TokenCreate, TokenCreated, TokenOut, TokenUpdate, changes_of, token_out
from llmgate.errors import Conflict, InvalidRequest, NotFound
from llmgate.state import GatewayState
from llmgate.store.base import Project, Token


class TokenController(Controller):
    path = "/tokens"
    tags = ["tokens"]  # noqa: RUF012 - Litestar reads it as a plain class attribute

    @post("/", status_code=201)
    async def create_token(self, gateway: GatewayState, data: TokenCreate) -> TokenCreated:
        project = await find_project(gateway, data.project_id)
        check_models(project, data.allowed_models)
        secret, now = new_secret(), time.time()
        token = Token(id=f"tok_{secrets.token_hex(8)}", project_id=project.id, name=data.name,
                      prefix=display_prefix(secret), secret_hash=hash_secret(secret), expires_at=data.expires_at,
                      max_requests=data.max_requests, rpm_limit=data.rpm_limit, tpm_limit=data.tpm_limit,
                      budget_tokens=data.budget_tokens, budget_cost=data.budget_cost,
                      allowed_models=tuple(dict.fromkeys(data.allowed_models)),
                      created_at=now, updated_at=now)
        await gateway.store.create_token(token)
        gateway.authenticator.has_tokens = True  # an open /v1 closes at once
        gateway.tokens.forget_unknown(token.secret_hash)
        return token_out(token, secret)  # type: ignore[return-value]

    @get("/")
    async def list_tokens(self, gateway: GatewayState, project_id: str | None = None,
                          active: bool | None = None) -> list[TokenOut]:
        return [token_out(t) for t in await gateway.store.list_tokens(project_id, active)]

    @get("/{token_id:str}")
    async def get_token(self, gateway: GatewayState, token_id: str) -> TokenOut:
        return token_out(await find_token(gateway, token_id))

    @patch("/{token_id:str}")
    async def update_token(self, gateway: GatewayState, token_id: str, data: TokenUpdate) -> TokenOut:
        changes = changes_of(data)
        current = await find_token(gateway, token_id)
        if "allowed_models" in changes:
            project = await gateway.store.get_project(current.project_id)
            if project is not None:
                check_models(project, changes["allowed_models"])
            changes["allowed_models"] = list(dict.fromkeys(changes["allowed_models"]))
        if not changes:
            return token_out(current)
        token = await gateway.store.update_token(token_id, changes, time.time())
        if token is None:
            raise NotFound(f"No token with id {token_id!r}.")
        if gateway.shared is not None and "max_requests" in changes:
            await gateway.shared.reset_count(token_id)
        await gateway.invalidate(token.secret_hash)
        return token_out(token)

    @delete("/{token_id:str}", status_code=200)
    async def revoke_token(self, gateway: GatewayState, token_id: str) -> TokenOut:
        token = await gateway.store.revoke_token(token_id, time.time())
        if token is None:
            raise NotFound(f"No token with id {token_id!r}.")
        await gateway.invalidate(token.secret_hash)
        return token_out(token)

    @post("/{token_id:str}/rotate", status_code=200)
    async def rotate_token(self, gateway: GatewayState, token_id: str) -> TokenCreated:
        old = await find_token(gateway, token_id)
        secret = new_secret()
        token = await gateway.store.rotate_token(token_id, hash_secret(secret), display_prefix(secret), time.time())
        if token is None:
            raise Conflict(f"Token {token_id!r} is revoked; a revoked token cannot be rotated.")
        await gateway.invalidate(old.secret_hash)
        gateway.tokens.forget_unknown(token.secret_hash)
        return token_out(token, secret)  # type: ignore[return-value]


async def find_token(gateway: GatewayState, token_id: str) -> Token:
    token = await gateway.store.get_token(token_id)
    if token is None:
        raise NotFound(f"No token with id {token_id!r}.")
    return token


def check_models(project: Project, models: list[str]) -> None:
    """A token's models must be among its project's (when the project names any)."""
    extra = [m for m in models if project.allowed_models and m not in project.allowed_models]
    if extra:
        raise InvalidRequest(f"Models {extra} are not allowed for project {project.id!r} "
                             f"(allowed: {list(project.allowed_models)}).", param="allowed_models")
