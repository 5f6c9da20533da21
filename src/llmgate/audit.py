"""The audit trail's writer: who did which management action, from where, and what it changed (before → after),
appended to the store's `audit` table. Handed explicitly to what performs the actions (the token lifecycle, the
project functions, the reloader, the web UI's sign-in), so every way in (the API, the UI, the CLI through the
API) is recorded the same way. Secrets never reach it: token secrets and hashes are left out, upstream keys
show only which providers have one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec
from loguru import logger

from llmgate.store.audit import AuditEntry, AuditQuery
from llmgate.store.base import Store

MASKED = "****"
_SECRET_FIELDS = frozenset({"secret", "secret_hash", "prefix"})
"""Never recorded: a token's secret, its hash, and the display prefix derived from it."""
_KEY_FIELDS = frozenset({"upstream_keys"})
"""Recorded as the providers that have a key, each key masked."""
_PRUNE_EVERY_S = 3600.0


class Actor(msgspec.Struct, kw_only=True, frozen=True):
    """Who performs a management action, and from which address."""

    name: str
    """`management_token`, `jwt:<sub>`, `admin:<user>` (the web UI), or `system`."""
    client: str | None = None


SYSTEM = Actor(name="system")
"""llmgate itself (a reload on SIGHUP)."""


def recorded(field: str, value: Any) -> Any:
    """A field's value as the trail shows it: upstream keys masked, structured values as JSON-ready data."""
    if field in _KEY_FIELDS and isinstance(value, Mapping):
        return {name: MASKED for name in sorted(value)}
    if isinstance(value, tuple):
        return list(value)
    return msgspec.to_builtins(value)


def diff(before: Any, after: Any, fields: Iterable[str]) -> dict[str, dict[str, Any]]:
    """field → {"before", "after"} for each of `fields` whose value differs between two records (Structs or
    None: a side that does not exist is left out); secret fields never appear."""
    changes: dict[str, dict[str, Any]] = {}
    for field in fields:
        if field in _SECRET_FIELDS:
            continue
        old = recorded(field, getattr(before, field)) if before is not None else None
        new = recorded(field, getattr(after, field)) if after is not None else None
        if old == new and before is not None and after is not None:
            continue
        change = {}
        if before is not None:
            change["before"] = old
        if after is not None:
            change["after"] = new
        changes[field] = change
    return changes


def created(after: Any, fields: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The fields a new record was given (those left empty are left out), as `after` values."""
    return {field: change for field, change in diff(None, after, fields).items()
            if change["after"] not in (None, "", [], {})}


class AuditLog:
    """Appends entries to the store's audit trail and prunes those past the retention."""

    def __init__(self, store: Store, retention_days: float, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.retention_days = retention_days
        """Rows older than this many days are pruned; 0 keeps them all."""
        self.clock = clock
        self._pruned_at = -_PRUNE_EVERY_S

    async def record(self, actor: Actor, action: str, target: str | None,
                     changes: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Append one entry. The action has happened already: a store failure is logged, not raised, so the
        caller still gets its answer (and the log says what the trail misses)."""
        entry = AuditEntry(at=self.clock(), actor=actor.name, client=actor.client, action=action, target=target,
                           changes={k: dict(v) for k, v in (changes or {}).items()})
        try:
            await self.store.append_audit(entry)
        except Exception:
            logger.exception("could not append to the audit trail: {} {} by {}", action, target, actor.name)

    async def sign_in(self, user: str, client: str | None, *, succeeded: bool) -> None:
        """The web UI's sign-in hook: `ui.sign_in`, or `ui.sign_in_failed` (the name as typed, no password)."""
        actor = Actor(name=f"admin:{user}", client=client)
        await self.record(actor, "ui.sign_in" if succeeded else "ui.sign_in_failed", user)

    async def list(self, query: AuditQuery) -> list[AuditEntry]:
        return await self.store.list_audit(query)

    async def prune(self) -> int:
        """Delete the rows past the retention (none with retention 0); how many went."""
        if self.retention_days <= 0:
            return 0
        now = self.clock()
        self._pruned_at = now
        removed = await self.store.prune_audit(now - self.retention_days * 86400)
        if removed:
            logger.info("audit trail: pruned {} entries older than {} days", removed, self.retention_days)
        return removed

    async def prune_now_and_then(self) -> None:
        """Prune at most once an hour (called from the gateway's periodic write-back)."""
        if self.clock() - self._pruned_at >= _PRUNE_EVERY_S:
            await self.prune()
