"""Versioned schema: `NNNN_<what>.<dialect>.sql`, applied in order, each once, recorded in schema_migrations."""

from __future__ import annotations

from importlib import resources


def migrations(dialect: str) -> list[tuple[int, str]]:
    """(version, SQL) for `dialect` ("sqlite" or "postgres"), in order."""
    found = []
    for entry in resources.files(__package__).iterdir():
        name = entry.name
        if name.endswith(f".{dialect}.sql"):
            found.append((int(name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def statements(sql: str) -> list[str]:
    """The statements of a migration file: split on `;` at a line's end, `--` comment lines dropped."""
    found = []
    for chunk in sql.split(";\n"):
        text = "\n".join(line for line in chunk.splitlines() if not line.lstrip().startswith("--")).strip()
        if text:
            found.append(text.rstrip(";"))
    return found
