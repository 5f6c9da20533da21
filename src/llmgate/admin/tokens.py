"""/manage/tokens: create (returns the secret, once), list, get, update limits, revoke (DELETE), rotate.
HTTP in and out only: the token's life is access/lifecycle.py's."""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, patch, post

from llmgate.admin.projects import find_project
from llmgate.admin.schemas import TokenCreate, TokenCreated, TokenOut, TokenUpdate, changes_of, token_out
from llmgate.services import Services
from llmgate.store.base import Token


class TokenController(Controller):
    path = "/tokens"
    tags = ["tokens"]  # noqa: RUF012 - Litestar reads it as a plain class attribute

    @post("/", status_code=201)
    async def create_token(self, gateway: Services, data: TokenCreate) -> TokenCreated:
        project = await find_project(gateway, data.project_id)
        limits = {k: v for k, v in msgspec.structs.asdict(data).items() if k != "project_id"}
        token, secret = await gateway.token_lifecycle.issue(project, limits)
        return shown(gateway, token, secret)  # type: ignore[return-value]

    @get("/")
    async def list_tokens(self, gateway: Services, project_id: str | None = None,
                          active: bool | None = None) -> list[TokenOut]:
        return [shown(gateway, t) for t in await gateway.store.list_tokens(project_id, active)]

    @get("/{token_id:str}")
    async def get_token(self, gateway: Services, token_id: str) -> TokenOut:
        token = await gateway.token_lifecycle.find(token_id)
        return shown(gateway, token)

    @patch("/{token_id:str}")
    async def update_token(self, gateway: Services, token_id: str, data: TokenUpdate) -> TokenOut:
        token = await gateway.token_lifecycle.update(token_id, changes_of(data))
        return shown(gateway, token)

    @delete("/{token_id:str}", status_code=200)
    async def revoke_token(self, gateway: Services, token_id: str) -> TokenOut:
        token = await gateway.token_lifecycle.revoke(token_id)
        return shown(gateway, token)

    @post("/{token_id:str}/rotate", status_code=200)
    async def rotate_token(self, gateway: Services, token_id: str) -> TokenCreated:
        token, secret = await gateway.token_lifecycle.rotate(token_id)
        return shown(gateway, token, secret)  # type: ignore[return-value]


def shown(gateway: Services, token: Token, secret: str | None = None) -> TokenOut:
    """The token as the API shows it: this period's counts (this instance's when fresher), when they reset."""
    return token_out(token, secret, gateway.tokens.clock(), gateway.tokens.live_counters(token.id))
