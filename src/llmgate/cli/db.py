"""`llmgate db upgrade`: apply pending migrations to the configured store (SQLite or PostgreSQL)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from llmgate.config import ConfigError, load_settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="the store: migrations")
    actions = db.add_subparsers(dest="action", required=True)
    upgrade = actions.add_parser("upgrade", help="apply pending schema migrations (also done at start-up)")
    upgrade.set_defaults(run=run_upgrade)


def run_upgrade(_: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"llmgate: {exc.report()}", file=sys.stderr)
        return 2
    from llmgate.store.backend import open_store  # only this command needs the store

    store = open_store(settings.database_url, settings.server.data_dir)

    async def upgrade() -> list[int]:
        await store.open()  # open() applies the migrations; report what it applied
        try:
            return getattr(store, "applied_on_open", [])
        finally:
            await store.close()

    try:
        applied = asyncio.run(upgrade())
    except Exception as exc:
        print(f"llmgate: could not upgrade the {store.dialect} store: {exc}", file=sys.stderr)
        return 1
    print(f"{store.dialect} store: applied migrations {applied}" if applied else
          f"{store.dialect} store: up to date")
    return 0
