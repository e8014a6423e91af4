"""ResilientConnection on a real, small tmpfs: a full disk moves the store to memory without
an error, every write is kept, and freeing space writes it all back to the file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.resilient_db import ResilientConnection, StoreFault, StoreHealth, is_write_fault
from tests.support.filesystems import SmallFilesystem, small_tmpfs


@pytest.fixture
def disk() -> Iterator[SmallFilesystem]:
    with small_tmpfs("2m") as fs:
        yield fs


def _open(path: Path, health: StoreHealth) -> ResilientConnection:
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute("CREATE TABLE IF NOT EXISTS schema_versions (name TEXT PRIMARY KEY, v INT)")
    raw.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)")
    return ResilientConnection(raw, path, ["notes"], health)


def _write(db: ResilientConnection, first: int, count: int) -> None:
    for i in range(first, first + count):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO notes (id, body) VALUES (?, ?)", (i, "x" * 2000))
        db.execute("COMMIT")


def _on_disk(path: Path) -> int:
    with sqlite3.connect(path) as fresh:
        return int(fresh.execute("SELECT count(*) FROM notes").fetchone()[0])


def test_full_disk_fails_over_to_memory_and_writes_back(disk: SmallFilesystem) -> None:
    """Writes on a full disk raise nothing and stay readable; once space is freed,
    try_recover puts every row into the file and the fault clears."""
    events: list[object] = []
    failures: list[None] = []
    health = StoreHealth(
        on_failing=[events.append],
        on_recovered=[events.append],
        on_write_failure=[lambda: failures.append(None)],
    )
    path = disk.root / "opsmon.db"
    db = _open(path, health)
    _write(db, 0, 5)
    disk.fill()
    _write(db, 5, 200)
    assert db.execute("SELECT count(*) FROM notes").fetchone()[0] == 205
    (fault,) = health.faults()
    assert isinstance(events[0], StoreFault) and "full" in fault.error
    assert failures
    assert not db.try_recover()  # still full: stays in memory
    disk.free()
    assert db.try_recover()
    assert health.faults() == [] and events[-1] == path
    assert _on_disk(path) == 205
    _write(db, 205, 1)  # back on the disk
    db.close()
    assert _on_disk(path) == 206


def test_failed_transaction_is_replayed_whole(disk: SmallFilesystem) -> None:
    """A transaction whose middle statement hits the full disk is neither lost nor half
    applied: all of its statements are in the memory copy, then in the file."""
    health = StoreHealth()
    path = disk.root / "opsmon.db"
    db = _open(path, health)
    disk.fill()
    db.execute("BEGIN IMMEDIATE")
    for i in range(100):
        db.execute("INSERT INTO notes (id, body) VALUES (?, ?)", (i, "y" * 4000))
    db.execute("COMMIT")
    assert health.faults()
    assert db.execute("SELECT count(*) FROM notes").fetchone()[0] == 100
    disk.free()
    health.try_recover()
    assert _on_disk(path) == 100
    db.close()


def test_sql_errors_are_not_disk_faults(tmp_path: Path) -> None:
    """A bug in a statement still raises; only storage failures fail over."""
    health = StoreHealth()
    db = _open(tmp_path / "opsmon.db", health)
    with pytest.raises(sqlite3.OperationalError) as caught:
        db.execute("INSERT INTO nowhere VALUES (1)")
    assert not is_write_fault(caught.value) and health.faults() == []
    db.close()
