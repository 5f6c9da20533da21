"""Which backend a database URL names: PostgreSQL for `postgres(ql)://`, else the embedded SQLite file."""

from __future__ import annotations

from llmgate.store.base import Store


def sqlite_file(database_url: str | None, data_dir: str) -> str | None:
    """The SQLite file the store lives in: the path of a `sqlite:///path` URL, else `<data_dir>/llmgate.db`; None
    for PostgreSQL."""
    if database_url and database_url.startswith(("postgres://", "postgresql://")):
        return None
    if database_url and not database_url.startswith("sqlite:"):
        raise ValueError(f"LLMGATE_DATABASE_URL: expected postgresql://... or sqlite:///path, got "
                         f"{database_url.split(':', 1)[0]}://...")
    path = database_url.removeprefix("sqlite:").removeprefix("///").removeprefix("//") if database_url else ""
    return path or f"{data_dir}/llmgate.db"


def open_store(database_url: str | None, data_dir: str) -> Store:
    """The backend for `database_url` (postgres:// or postgresql://), else SQLite (`sqlite_file`)."""
    path = sqlite_file(database_url, data_dir)
    if path is None:
        from llmgate.store.postgres import PostgresStore

        return PostgresStore(database_url or "")
    from llmgate.store.sqlite import SqliteStore

    return SqliteStore(path)
