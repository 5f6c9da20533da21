"""Which backend a database URL names (store/backend.py)."""

from __future__ import annotations

import pytest

from llmgate.store.backend import open_store
from llmgate.store.postgres import PostgresStore
from llmgate.store.sqlite import SqliteStore


@pytest.mark.parametrize(("url", "path"), [
    (None, "/data/llmgate.db"), ("", "/data/llmgate.db"), ("sqlite://", "/data/llmgate.db"),
    ("sqlite:///x.db", "x.db"), ("sqlite:////var/lib/x.db", "/var/lib/x.db"),  # SQLAlchemy's: 3 slashes, relative
])
def test_sqlite_by_default_and_for_sqlite_urls(url: str | None, path: str) -> None:
    store = open_store(url, "/data")
    assert isinstance(store, SqliteStore) and store.path == path


@pytest.mark.parametrize("url", ["postgres://u@h/db", "postgresql://u:p@h:5432/db"])
def test_postgresql_urls(url: str) -> None:
    assert isinstance(open_store(url, "/data"), PostgresStore)


def test_any_other_url_names_the_setting_and_hides_the_rest() -> None:
    with pytest.raises(ValueError, match=r"LLMGATE_DATABASE_URL: expected postgresql://... or sqlite:///path, got "
                                         r"mysql://\.\.\.$") as info:
        open_store("mysql://user:secret@host/db", "/data")
    assert "secret" not in str(info.value)
