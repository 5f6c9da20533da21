"""Which backend a database URL names: PostgreSQL for `postgres(ql)://`, else the embedded SQLite file."""

from __future__ import annotations

from llmgate.store.base import Store


def open_store(database_url: str | None, data_dir: str) -> Store:
    """The backend for `database_url` (postgres:// or postgresql://), else SQLite under `data_dir`."""
    if database_url and database_url.startswith(("postgres://", "postgresql://")):
        from llmgate.store.postgres import PostgresStore

        return PostgresStore(database_url)
    if database_url and not database_url.startswith("sqlite:"):
        raise ValueError(f"LLMGATE_DATABASE_URL: expected postgresql://... or sqlite:///path, got "
                         f"{database_url.split(':', 1)[0]}://...")
    from llmgate.store.sqlite import SqliteStore

    if database_url:
        return SqliteStore(database_url.removeprefix("sqlite:").removeprefix("///").removeprefix("//") or
                           f"{data_dir}/llmgate.db")
    return SqliteStore(f"{data_dir}/llmgate.db")
