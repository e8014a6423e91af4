"""Durable state: one SQLite file in `state_dir` (WAL mode, file mode 0600).

This module is the plumbing only: the connection, WAL, locking, file mode and migrations.
It knows no subsystem. Each subsystem owns its tables and their schema steps (a `Tables`
mapping: table name -> its numbered steps, e.g. monitor/alerting/store.py,
monitor/rollback/store.py) and wraps a `Store` opened with them. Each table's version is
kept in `schema_versions`, so a feature adds a table (or a step to its own table) without
touching the others. The daemon's components each open their Store from the event loop; the
CLI opens its own, and SQLite's locking (WAL plus a busy timeout) lets all work on the file
at the same time.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeAlias

from monitor.resilient_db import ResilientConnection, StoreHealth

DB_FILE = "opsmon.db"
_BUSY_TIMEOUT_MS = 5000

# A subsystem's schema: table name -> its schema steps in order (each step one or more SQL
# statements separated by ";"). A table's version is how many of its steps have run.
Tables: TypeAlias = Mapping[str, Sequence[str]]


class Store:
    """The SQLite file: one connection, its transactions and its migrations (no records)."""

    def __init__(self, connection: ResilientConnection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, state_dir: Path, tables: Tables, health: StoreHealth | None = None) -> Store:
        """Open (creating if needed) `state_dir/opsmon.db` and bring `tables` up to date.

        With `health` (the daemon), a disk that cannot be written moves the store onto an
        in-memory copy instead of failing writes (monitor.resilient_db); without it (the
        CLI), such a write raises, so a command never reports success for a lost write.
        """
        path = state_dir / DB_FILE

        def connect() -> sqlite3.Connection:
            state_dir.mkdir(parents=True, exist_ok=True)
            # Create the file ourselves so it is 0600 from the first byte; SQLite gives its
            # -wal and -shm files the same mode as the database file. Only when it is missing:
            # closing any descriptor of a file drops every POSIX lock this process holds on
            # it, including those of connections already open (another Store in this
            # process), which corrupts the database when another process writes it.
            if not path.exists():
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
            os.chmod(path, 0o600)
            connection = sqlite3.connect(
                path,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                connection.row_factory = sqlite3.Row
                connection.execute("PRAGMA journal_mode=WAL")
                # FULL: a notification the outbox accepted survives a power cut, not only a
                # SIGKILL.
                connection.execute("PRAGMA synchronous=FULL")
                connection.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            except BaseException:
                connection.close()
                raise
            return connection

        store = cls(ResilientConnection.open(connect, path, tables, health), path)
        store._migrate(tables)
        return store

    @property
    def connection(self) -> ResilientConnection:
        """The connection (for a subsystem's own store on this file)."""
        return self._db

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all (nested calls join the outer one)."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self, tables: Tables) -> None:
        with self.transaction():
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions"
                " (name TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            for name, steps in tables.items():
                row = self._db.execute(
                    "SELECT version FROM schema_versions WHERE name = ?", (name,)
                ).fetchone()
                version = row["version"] if row else 0
                for step in steps[version:]:
                    for statement in step.split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                if len(steps) != version:
                    self._db.execute(
                        "INSERT OR REPLACE INTO schema_versions (name, version) VALUES (?, ?)",
                        (name, len(steps)),
                    )

    def schema_version(self, name: str) -> int:
        """The schema version of table `name` (0 if absent)."""
        row = self._db.execute(
            "SELECT version FROM schema_versions WHERE name = ?", (name,)
        ).fetchone()
        return int(row["version"]) if row else 0
