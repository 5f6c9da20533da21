"""The audit trail's writer (audit.py): changes as before → after with secrets masked, a failing store logged
but not raised, retention pruning."""

from __future__ import annotations

import asyncio
from pathlib import Path

from loguru import logger

from llmgate.audit import Actor, AuditLog, created, diff
from llmgate.store.audit import AuditQuery
from llmgate.store.base import Project, Token
from llmgate.store.sqlite import SqliteStore

DAY = 86400.0


def test_diff_names_changed_fields_only_and_masks_keys() -> None:
    before = Project(id="p", name="a", allowed_models=("m",), upstream_keys={"openai": "enc-1"}, created_at=0,
                     updated_at=0)
    after = Project(id="p", name="b", allowed_models=("m",), upstream_keys={"openai": "enc-2", "groq": "enc-3"},
                    created_at=0, updated_at=1)
    changes = diff(before, after, ["name", "allowed_models", "upstream_keys"])
    assert changes == {"name": {"before": "a", "after": "b"},
                       "upstream_keys": {"before": {"openai": "****"}, "after": {"groq": "****", "openai": "****"}}}


def test_secret_fields_are_never_recorded() -> None:
    token = Token(id="t", project_id="p", prefix="lg-…abcd", secret_hash="hash", created_at=0, updated_at=0)
    assert created(token, ["secret_hash", "prefix", "project_id", "rpm_limit"]) == {"project_id": {"after": "p"}}


class BrokenStore:
    async def append_audit(self, entry: object) -> None:
        raise OSError("disk full")


def test_a_store_failure_is_logged_not_raised() -> None:
    """The action has happened: its caller still gets an answer, and the log says what the trail misses."""
    lines: list[str] = []
    sink = logger.add(lines.append, format="{message}")
    try:
        asyncio.run(AuditLog(BrokenStore(), 0).record(Actor(name="management_token"), "token.revoke", "t"))  # type: ignore[arg-type]
    finally:
        logger.remove(sink)
    assert any("could not append to the audit trail: token.revoke t by management_token" in line for line in lines)


def test_retention_prunes_older_entries(tmp_path: Path) -> None:
    now = [1_700_000_000.0]

    async def main() -> list[str | None]:
        store = SqliteStore(str(tmp_path / "audit.db"))
        await store.open()
        try:
            log = AuditLog(store, 30, clock=lambda: now[0])
            await log.record(Actor(name="a"), "project.create", "old")
            now[0] += 20 * DAY
            await log.record(Actor(name="a"), "project.create", "new")
            now[0] += 15 * DAY  # "old" is 35 days old, "new" 15
            assert await log.prune() == 1
            assert await AuditLog(store, 0, clock=lambda: now[0] + 1000 * DAY).prune() == 0  # 0: keep all
            return [e.target for e in await store.list_audit(AuditQuery())]
        finally:
            await store.close()

    assert asyncio.run(main()) == ["new"]
