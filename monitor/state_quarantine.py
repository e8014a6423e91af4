"""A corrupt state database is moved aside, so the daemon starts fresh instead of not at all.

`opsmon run` calls `quarantine_if_corrupt` once, holding the state_dir lock and before any
store opens the file. A file SQLite cannot read (garbage, truncated, a directory in its
place) is renamed to `opsmon.db.corrupt-<UTC timestamp>` (its -wal beside it), the log
says what was lost and what to do, and the stores create a new, empty file. CLI commands
that only read state do not move anything: `unreadable_state_line` gives them one line.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitor.logs import get_logger
from monitor.resilient_db import is_write_fault

DB_FILE = "opsmon.db"
# What each table held, for the "what was lost" line (tables a build does not have are skipped).
_LOSSES = {
    "incidents": "incidents (open ones are detected again and notified again)",
    "outbox": "notifications waiting for delivery",
    "silences": "silences added with `opsmon silence add`",
    "deploys": "deploy history and last known good images (rollback)",
}
ADVICE = (
    "opsmon starts with empty state: failing checks open new incidents and page again; "
    "re-add silences with `opsmon silence add`; rollback needs a healthy deploy to learn "
    "the last known good image again. To salvage the old file: sqlite3 FILE '.recover'"
)


@dataclass(frozen=True)
class Quarantined:
    """A state file that was moved aside, why, and what it held (as far as readable)."""

    original: Path
    moved_to: Path
    problem: str
    lost: tuple[str, ...]


def state_problem(path: Path) -> str | None:
    """Why SQLite cannot use `path` as the state database, or None (missing files are fine).

    Opens the file read-write (a read-only open of a WAL database without its -shm fails on
    its own); call it before anything else in this process opens the file.
    """
    if not os.path.lexists(path):
        return None
    if path.is_dir():
        return "a directory is in the place of the database file"
    if not path.is_file():
        return "not a regular file"
    try:
        connection = sqlite3.connect(path, timeout=5)
        try:
            rows = connection.execute("PRAGMA quick_check").fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    verdict = "; ".join(str(row[0]) for row in rows[:3])
    return None if verdict == "ok" else f"integrity check failed: {verdict}"


def _what_it_held(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        return ("everything in it (unreadable)",)
    try:
        connection = sqlite3.connect(path, timeout=5)
        try:
            held = []
            for table, meaning in _LOSSES.items():
                try:
                    (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
                except sqlite3.DatabaseError:
                    continue
                held.append(f"{count} {meaning}")
        finally:
            connection.close()
    except sqlite3.DatabaseError:
        return ("everything in it (unreadable)",)
    return tuple(held) or ("everything in it (unreadable)",)


def quarantine_if_corrupt(
    state_dir: Path, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Quarantined | None:
    """Move an unreadable `state_dir/opsmon.db` aside and log it; None when it is fine."""
    path = state_dir / DB_FILE
    problem = state_problem(path)
    if problem is None:
        return None
    lost = _what_it_held(path)
    stamp = now().strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{DB_FILE}.corrupt-{stamp}")
    os.replace(path, target)
    wal = path.with_name(DB_FILE + "-wal")
    if wal.exists():
        os.replace(wal, target.with_name(target.name + "-wal"))
    shm = path.with_name(DB_FILE + "-shm")
    if shm.is_dir():
        shutil.rmtree(shm)
    elif os.path.lexists(shm):
        shm.unlink()
    moved = Quarantined(path, target, problem, lost)
    get_logger("state").error(
        "state_quarantined",
        path=str(path),
        moved_to=str(target),
        problem=problem,
        lost=list(lost),
        advice=ADVICE,
    )
    return moved


def unreadable_state_line(exc: BaseException) -> str:
    """One line for a CLI command whose state database could not be used."""
    if is_write_fault(exc):
        return (
            f"opsmon: cannot use the state database ({exc}); free space on the state_dir "
            "volume or make it writable, then try again"
        )
    return (
        f"opsmon: cannot use the state database ({exc}); `opsmon run` moves a corrupt "
        "opsmon.db aside at its next start and starts fresh (or move it away yourself)"
    )
