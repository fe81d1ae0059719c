"""Embedded mode: SQLite's online backup API into the local backup folder."""

import sqlite3

import pytest

from backups.engines.base import BackupNotSupported
from backups.engines.sqlite import SQLiteEngine


@pytest.fixture
def sqlite_db(tmp_path):
    path = tmp_path / "live.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE things (id integer primary key, name text)")
        db.executemany("INSERT INTO things (name) VALUES (?)", [("a",), ("b",), ("c",)])
    return path


@pytest.fixture
def sqlite_engine(tmp_path, sqlite_db):
    return SQLiteEngine(alias="sqlite", directory=str(tmp_path / "backups"), database=str(sqlite_db))


def test_full_backup_is_a_consistent_readable_copy(sqlite_engine, sqlite_db):
    info = sqlite_engine.backup(kind="full")
    with sqlite3.connect(sqlite_db) as db:
        db.execute("INSERT INTO things (name) VALUES ('after')")
    assert info.kind == "full" and info.size_bytes > 0
    with sqlite_engine.restored_copy() as copy:
        with copy.connect() as restored:
            assert [r[0] for r in restored.execute("SELECT name FROM things ORDER BY id")] == ["a", "b", "c"]
            with pytest.raises(sqlite3.OperationalError):
                restored.execute("DELETE FROM things")  # the drill opens the copy read-only
    assert [b.label for b in sqlite_engine.list_backups()] == [info.label]


def test_incremental_and_pitr_say_they_need_postgresql(sqlite_engine):
    with pytest.raises(BackupNotSupported, match="need PostgreSQL"):
        sqlite_engine.backup(kind="incr")
    with pytest.raises(BackupNotSupported, match="point-in-time recovery needs PostgreSQL"):
        sqlite_engine.restore(to="/nowhere", port=1)
    with pytest.raises(BackupNotSupported, match="WAL archiving needs PostgreSQL"):
        sqlite_engine.archive_status()


def test_expire_dry_run_then_real(sqlite_engine):
    first = sqlite_engine.backup(kind="full")
    second = sqlite_engine.backup(kind="full")
    output = sqlite_engine.expire(dry_run=True, keep_full=1)
    assert output == f"[DRY-RUN] expire full backup {first.label}"
    assert len(sqlite_engine.list_backups()) == 2
    sqlite_engine.expire(keep_full=1)
    assert [b.label for b in sqlite_engine.list_backups()] == [second.label]
