"""A virtual token's life: issued (its secret shown once), its limits changed, revoked, rotated. Each change
is stored, then every cache that may hold the token forgets it: this instance's at once, the others' through
Redis when it is configured (else within LLMGATE_TOKEN_CACHE_TTL_S); and it is appended to the audit trail with
who made it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loguru import logger

from llmgate.access.token_entry import display_prefix, hash_secret, new_secret
from llmgate.audit import Actor, AuditLog, created, diff
from llmgate.errors import Conflict, InvalidRequest, NotFound
from llmgate.store.base import TOKEN_UPDATABLE, Project, Store, Token

if TYPE_CHECKING:
    from llmgate.access.authenticate import Authenticator
    from llmgate.access.tokens import TokenCache
    from llmgate.store.redis import SharedLimits

_TOKEN_FIELDS = ("project_id", *sorted(TOKEN_UPDATABLE))


def check_models(project: Project, models: list[str] | tuple[str, ...]) -> None:
    """A token's models must be among its project's (when the project names any)."""
    extra = [m for m in models if project.allowed_models and m not in project.allowed_models]
    if extra:
        raise InvalidRequest(f"Models {extra} are not allowed for project {project.id!r} "
                             f"(allowed: {list(project.allowed_models)}).", param="allowed_models")


class TokenLifecycle:
    """Issue, update, revoke and rotate tokens in the store, keeping the token caches and /v1's access right."""

    def __init__(self, store: Store, cache: TokenCache, authenticator: Authenticator,
                 shared: SharedLimits | None, audit: AuditLog) -> None:
        self.store = store
        self.audit = audit
        self.cache = cache
        self.authenticator = authenticator
        self.shared = shared

    async def find(self, token_id: str) -> Token:
        """The token, or 404."""
        token = await self.store.get_token(token_id)
        if token is None:
            raise NotFound(f"No token with id {token_id!r}.")
        return token

    async def issue(self, project: Project, limits: Mapping[str, Any], actor: Actor) -> tuple[Token, str]:
        """A new token for `project` with `limits` (Token's limit fields, `name`, `allowed_models`); returns it and
        its secret, which is stored only as a hash. The first token closes an open /v1 at once."""
        models = tuple(dict.fromkeys(limits.get("allowed_models", ())))
        check_models(project, models)
        secret, now = new_secret(), time.time()
        token = Token(id=f"tok_{secrets.token_hex(8)}", project_id=project.id, prefix=display_prefix(secret),
                      secret_hash=hash_secret(secret), created_at=now, updated_at=now,
                      **{**limits, "allowed_models": models})
        await self.store.create_token(token)
        self.authenticator.has_tokens = True
        self.cache.forget_unknown(token.secret_hash)
        await self.audit.record(actor, "token.create", token.id, created(token, _TOKEN_FIELDS))
        return token, secret

    async def update(self, token_id: str, changes: dict[str, Any], actor: Actor) -> Token:
        """Change a token's limits or models (an empty change returns it as it is)."""
        current = await self.find(token_id)
        if "allowed_models" in changes:
            project = await self.store.get_project(current.project_id)
            if project is not None:
                check_models(project, changes["allowed_models"])
            changes["allowed_models"] = list(dict.fromkeys(changes["allowed_models"]))
        if not changes:
            return current
        if "budget_period" in changes:
            changes["period_start"] = 0.0  # a new period: what was counted under the old one does not carry over
        token = await self.store.update_token(token_id, changes, time.time())
        if token is None:
            raise NotFound(f"No token with id {token_id!r}.")
        if self.shared is not None and "max_requests" in changes:
            await self.shared.reset_count(token_id)
        await self.invalidate(token.secret_hash)
        await self.audit.record(actor, "token.update", token_id, diff(current, token, sorted(changes)))
        return token

    async def revoke(self, token_id: str, actor: Actor) -> Token:
        token = await self.store.revoke_token(token_id, time.time())
        if token is None:
            raise NotFound(f"No token with id {token_id!r}.")
        await self.invalidate(token.secret_hash)
        await self.audit.record(actor, "token.revoke", token_id, {"is_active": {"after": False}})
        return token

    async def rotate(self, token_id: str, actor: Actor) -> tuple[Token, str]:
        """A new secret for an active token; the old one stops working at once."""
        old = await self.find(token_id)
        secret = new_secret()
        token = await self.store.rotate_token(token_id, hash_secret(secret), display_prefix(secret), time.time())
        if token is None:
            raise Conflict(f"Token {token_id!r} is revoked; a revoked token cannot be rotated.")
        await self.invalidate(old.secret_hash)
        self.cache.forget_unknown(token.secret_hash)
        await self.audit.record(actor, "token.rotate", token_id)  # the new secret: never recorded
        return token, secret

    async def invalidate(self, *secret_hashes: str) -> None:
        """Tokens changed: drop them here at once, and on every other instance through Redis when configured."""
        for secret_hash in secret_hashes:
            self.cache.forget(secret_hash)
            if self.shared is not None:
                try:
                    await self.shared.publish(secret_hash)
                except Exception as exc:  # the change is stored; others catch up within the cache TTL
                    logger.warning("could not broadcast a token invalidation: {}", exc)
