"""The files `llmgate serve` writes (the SQLite store, the usage spill file, the logs it is asked to keep), checked
before serving: a directory this user cannot write stops start-up with one sentence naming the setting to give,
instead of a traceback from the app's lifespan."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import NamedTuple

from llmgate.config import Settings
from llmgate.store.backend import sqlite_file


class WrittenFile(NamedTuple):
    """A file the gateway writes, what it is, and the setting that moves it."""

    path: str
    what: str
    setting: str


def written_files(settings: Settings) -> list[WrittenFile]:
    """The files serving these settings writes (or may write: the spill file on a full queue), in that order."""
    server = settings.server
    files = []
    store = sqlite_file(settings.database_url, server.data_dir)
    if store is not None and store != ":memory:":
        files.append(WrittenFile(store, "the SQLite store", "LLMGATE_DATABASE_URL" if settings.database_url and
                                 store != sqlite_file(None, server.data_dir) else "LLMGATE_DATA_DIR"))
    files.append(WrittenFile(server.spill_file, "the usage spill file",
                             "LLMGATE_USAGE_SPILL_PATH" if server.usage_spill_path else "LLMGATE_DATA_DIR"))
    if server.usage_jsonl_path:
        files.append(WrittenFile(server.usage_jsonl_path, "the usage log", "LLMGATE_USAGE_JSONL"))
    if server.raw_log:
        files.append(WrittenFile(server.raw_log_file, "the raw log",
                                 "LLMGATE_RAW_LOG_PATH" if server.raw_log_path else "LLMGATE_DATA_DIR"))
    return files


def unwritable(settings: Settings) -> str | None:
    """Why a file the gateway writes cannot be written by this process, as one sentence naming the setting to
    change; None when every one can. Creates missing directories, as the store would."""
    files = written_files(settings)
    checked: set[Path] = set()
    for file in files:
        directory = Path(file.path).parent
        if directory not in checked:
            checked.add(directory)
            error = _directory_error(directory)
            if error is not None:
                return _advice(file, files, error, settings.server.data_dir)
        error = _file_error(Path(file.path))
        if error is not None:
            return (f"cannot write {file.what} {file.path} ({error}): give this user write access to it, or set "
                    f"{file.setting} to a {_where(file)} this user can write")
    return None


def _advice(file: WrittenFile, files: list[WrittenFile], error: str, data_dir: str) -> str:
    if file.setting == "LLMGATE_DATA_DIR":
        holds = " and ".join(f.what for f in files if f.setting == "LLMGATE_DATA_DIR")
        return (f"cannot write the data directory {data_dir} ({error}): set LLMGATE_DATA_DIR to a directory this "
                f"user can write (it holds {holds})")
    return (f"cannot write the directory {Path(file.path).parent} of {file.what} {file.path} ({error}): set "
            f"{file.setting} to a file in a directory this user can write")


def _where(file: WrittenFile) -> str:
    return "directory" if file.setting == "LLMGATE_DATA_DIR" else "file in a directory"


def _directory_error(directory: Path) -> str | None:
    """The reason `directory` cannot hold a new file (created if missing), or None. Writing a file is the test:
    permission bits say nothing about read-only mounts, and root ignores them."""
    try:
        if directory.exists() and not directory.is_dir():
            return "Not a directory"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # what llmgate keeps there is the owner's alone
        with tempfile.TemporaryFile(dir=directory, prefix=".llmgate-write-check-"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _file_error(path: Path) -> str | None:
    """The reason an existing `path` cannot be opened for writing (opened without creating or truncating it)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
