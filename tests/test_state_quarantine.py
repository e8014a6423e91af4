"""Corrupt state files are recognised and moved aside with what they held; healthy ones stay."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from monitor.alerting.store import AlertingStore
from monitor.state_quarantine import quarantine_if_corrupt, state_problem, unreadable_state_line

NOW = datetime(2026, 11, 29, 0, 30, tzinfo=UTC)


def _store(state: Path) -> Path:
    AlertingStore.open(state).close()
    return state / "opsmon.db"


def test_healthy_and_missing_files_are_left_alone(tmp_path: Path) -> None:
    """A missing file and a good database are not problems; nothing is moved."""
    assert quarantine_if_corrupt(tmp_path / "none") is None
    db = _store(tmp_path / "state")
    assert state_problem(db) is None
    assert quarantine_if_corrupt(tmp_path / "state", lambda: NOW) is None
    assert db.exists()


def test_garbage_is_moved_aside_with_a_timestamp(tmp_path: Path) -> None:
    """Garbage bytes: moved to opsmon.db.corrupt-<UTC timestamp>, the reason kept."""
    state = tmp_path / "state"
    db = _store(state)
    db.write_bytes(b"garbage" * 1000)
    moved = quarantine_if_corrupt(state, lambda: NOW)
    assert moved is not None and moved.problem == "file is not a database"
    assert moved.moved_to == state / "opsmon.db.corrupt-20261129T003000Z"
    assert moved.moved_to.read_bytes().startswith(b"garbage") and not db.exists()


def test_truncated_file_reports_what_it_held(tmp_path: Path) -> None:
    """A truncated database fails the integrity check; a directory in its place too."""
    state = tmp_path / "state"
    db = _store(state)
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE filler (x TEXT)")
        raw.executemany("INSERT INTO filler VALUES (?)", [("y" * 500,)] * 200)
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    assert state_problem(db) is not None
    moved = quarantine_if_corrupt(state, lambda: NOW)
    assert moved is not None and moved.lost
    db.mkdir()
    assert state_problem(db) == "a directory is in the place of the database file"


def test_cli_line_is_one_line() -> None:
    """The CLI's message is a single line that says what to do."""
    line = unreadable_state_line(sqlite3.DatabaseError("file is not a database"))
    assert "\n" not in line and "moves a corrupt opsmon.db aside" in line
