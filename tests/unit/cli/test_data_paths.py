"""The files `llmgate serve` writes, and the sentence when it cannot."""

from pathlib import Path

from llmgate.cli.data_paths import WrittenFile, unwritable, written_files
from llmgate.config import load_settings


def test_the_files_each_setting_writes() -> None:
    assert written_files(load_settings({"LLMGATE_DATA_DIR": "/d"})) == [
        WrittenFile("/d/llmgate.db", "the SQLite store", "LLMGATE_DATA_DIR"),
        WrittenFile("/d/usage-spill.jsonl", "the usage spill file", "LLMGATE_DATA_DIR")]
    assert written_files(load_settings({"LLMGATE_DATABASE_URL": "postgresql://u@h/db"})) == [
        WrittenFile("./data/usage-spill.jsonl", "the usage spill file", "LLMGATE_DATA_DIR")]
    env = {"LLMGATE_DATABASE_URL": "sqlite:////var/db/gw.db", "LLMGATE_USAGE_SPILL_PATH": "/s/spill.jsonl",
           "LLMGATE_USAGE_JSONL": "/u/usage.jsonl", "LLMGATE_RAW_LOG": "1"}
    assert written_files(load_settings(env)) == [
        WrittenFile("/var/db/gw.db", "the SQLite store", "LLMGATE_DATABASE_URL"),
        WrittenFile("/s/spill.jsonl", "the usage spill file", "LLMGATE_USAGE_SPILL_PATH"),
        WrittenFile("/u/usage.jsonl", "the usage log", "LLMGATE_USAGE_JSONL"),
        WrittenFile("./data/raw.jsonl", "the raw log", "LLMGATE_DATA_DIR")]


def test_a_writable_data_dir_is_created_and_left_empty(tmp_path: Path) -> None:
    data = tmp_path / "a" / "data"
    assert unwritable(load_settings({"LLMGATE_DATA_DIR": str(data)})) is None
    assert data.is_dir() and list(data.iterdir()) == []
    assert data.stat().st_mode & 0o777 == 0o700  # what it will hold (token hashes, usage) is the owner's alone


def test_a_new_sqlite_store_is_the_owners_alone(tmp_path: Path) -> None:
    import asyncio

    from llmgate.store.sqlite import SqliteStore

    store = SqliteStore(str(tmp_path / "new" / "llmgate.db"))

    async def main() -> None:
        await store.open()
        await store.close()

    asyncio.run(main())
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "new" / "llmgate.db").stat().st_mode & 0o777 == 0o600


def test_an_existing_store_is_left_untouched(tmp_path: Path) -> None:
    (tmp_path / "llmgate.db").write_bytes(b"SQLite format 3\0")
    assert unwritable(load_settings({"LLMGATE_DATA_DIR": str(tmp_path)})) is None
    assert (tmp_path / "llmgate.db").read_bytes() == b"SQLite format 3\0"


def test_the_sentence_says_what_the_data_dir_holds(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    data = tmp_path / "file" / "data"
    assert unwritable(load_settings({"LLMGATE_DATA_DIR": str(data)})) == (
        f"cannot write the data directory {data} (Not a directory): set LLMGATE_DATA_DIR to a directory this user "
        "can write (it holds the SQLite store and the usage spill file)")
    with_postgres = load_settings({"LLMGATE_DATA_DIR": str(data), "LLMGATE_DATABASE_URL": "postgresql://u@h/db"})
    assert unwritable(with_postgres) == (
        f"cannot write the data directory {data} (Not a directory): set LLMGATE_DATA_DIR to a directory this user "
        "can write (it holds the usage spill file)")


def test_a_store_path_that_is_a_directory_names_the_database_url(tmp_path: Path) -> None:
    (tmp_path / "gw.db").mkdir()
    settings = load_settings({"LLMGATE_DATA_DIR": str(tmp_path), "LLMGATE_DATABASE_URL": f"sqlite:///{tmp_path}/gw.db"})
    assert unwritable(settings) == (
        f"cannot write the SQLite store {tmp_path}/gw.db (Is a directory): give this user write access to it, or set "
        "LLMGATE_DATABASE_URL to a file in a directory this user can write")
