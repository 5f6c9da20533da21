"""/manage/tokens: create (returns the secret, once), list, get, update limits, revoke (DELETE), rotate.
HTTP in and out only: the token's life is access/lifecycle.py's (the admin UI calls it and `create_token` too),
which records each change in the audit trail."""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, patch, post

from llmgate.admin.access import error_responses
from llmgate.admin.projects import find_project
from llmgate.admin.schemas import TokenCreate, TokenCreated, TokenOut, TokenUpdate, changes_of, token_out
from llmgate.audit import Actor
from llmgate.services import Services
from llmgate.store.base import Token


class TokenController(Controller):
    path = "/tokens"
    tags = ["tokens"]  # noqa: RUF012 - Litestar reads it as a plain class attribute

    @post("/", status_code=201, responses=error_responses(400, 404, 422))
    async def create_token(self, gateway: Services, caller: Actor, data: TokenCreate) -> TokenCreated:
        return await create_token(gateway, data, caller)

    @get("/", responses=error_responses(400, 422))
    async def list_tokens(self, gateway: Services, project_id: str | None = None,
                          active: bool | None = None) -> list[TokenOut]:
        return [shown(gateway, t) for t in await gateway.store.list_tokens(project_id, active)]

    @get("/{token_id:str}", responses=error_responses(400, 404))
    async def get_token(self, gateway: Services, token_id: str) -> TokenOut:
        return shown(gateway, await gateway.token_lifecycle.find(token_id))

    @patch("/{token_id:str}", responses=error_responses(400, 404, 422))
    async def update_token(self, gateway: Services, caller: Actor, token_id: str, data: TokenUpdate) -> TokenOut:
        return shown(gateway, await gateway.token_lifecycle.update(token_id, changes_of(data), caller))

    @delete("/{token_id:str}", status_code=200, responses=error_responses(400, 404))
    async def revoke_token(self, gateway: Services, caller: Actor, token_id: str) -> TokenOut:
        return shown(gateway, await gateway.token_lifecycle.revoke(token_id, caller))

    @post("/{token_id:str}/rotate", status_code=200, responses=error_responses(400, 404, 409))
    async def rotate_token(self, gateway: Services, caller: Actor, token_id: str) -> TokenCreated:
        token, secret = await gateway.token_lifecycle.rotate(token_id, caller)
        return shown(gateway, token, secret)  # type: ignore[return-value]


async def create_token(gateway: Services, data: TokenCreate, actor: Actor) -> TokenCreated:
    """A new token for `data.project_id` (404 naming `project_id` when there is no such project), its secret
    shown this once, recorded as `token.create` by `actor`; shared by /manage and the admin UI."""
    project = await find_project(gateway, data.project_id)
    limits = {k: v for k, v in msgspec.structs.asdict(data).items() if k != "project_id"}
    token, secret = await gateway.token_lifecycle.issue(project, limits, actor)
    return shown(gateway, token, secret)  # type: ignore[return-value]


def shown(gateway: Services, token: Token, secret: str | None = None) -> TokenOut:
    """The token as the API shows it: this period's counts (this instance's when fresher), when they reset."""
    return token_out(token, secret, gateway.tokens.clock(), gateway.tokens.live_counters(token.id))
