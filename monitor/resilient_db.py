"""A SQLite connection that keeps working from memory while the disk cannot be written.

A full disk, a volume remounted read-only or an I/O error used to make every store write
raise: transitions were dropped, notifications never queued, pages lost for good. Here the
first such failure moves the connection onto an in-memory copy of the database (taken from
the disk file, which is still readable, with the failed transaction replayed on it), so the
stores above keep working unchanged. `try_recover` (the daemon calls it every few seconds)
writes the tables this connection owns back to the disk and returns to it once a write
works again. A disk that cannot be written even to open the database (full at start, a fresh
state_dir) starts the store in memory, empty; the first write-back creates the tables.

Write-back copies rows with INSERT OR REPLACE, table by table and only the tables of this
store: another store in the process may have its own memory copy of the same file, and a
silence added by the CLI to the disk meanwhile must survive. Rows deleted while in memory
(pruning) come back and are pruned again later; nothing that was written is lost.
"""

from __future__ import annotations

import contextlib
import errno
import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Primary result codes that mean "the disk cannot take this write" (not a bug in the SQL).
_WRITE_FAULTS = {
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL,
}


# The same faults as seen by the OS calls around SQLite (creating the file, setting its mode).
_OS_WRITE_FAULTS = {errno.ENOSPC, errno.EROFS, errno.EIO, errno.EDQUOT}


def is_write_fault(exc: BaseException) -> bool:
    """Whether `exc` is SQLite (or the OS) saying the storage failed (full, read-only, I/O)."""
    if isinstance(exc, OSError):
        return exc.errno in _OS_WRITE_FAULTS
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and (code & 0xFF) in _WRITE_FAULTS


@dataclass
class StoreFault:
    """What the health side sees of a store that is running from memory."""

    path: Path
    error: str
    failures: int = 1


@dataclass
class StoreHealth:
    """The stores of one process: which run from memory and why, and hooks for the daemon.

    `on_failing(fault)` and `on_recovered(path)` are called on each change (logging, the
    metric, the StateStoreFailing alert); `on_write_failure()` once per failed write.
    """

    on_failing: list[Callable[[StoreFault], None]] = field(default_factory=list)
    on_recovered: list[Callable[[Path], None]] = field(default_factory=list)
    on_write_failure: list[Callable[[], None]] = field(default_factory=list)
    _connections: list[ResilientConnection] = field(default_factory=list)

    def register(self, connection: ResilientConnection) -> None:
        """Watch `connection` (done by `ResilientConnection` itself)."""
        self._connections.append(connection)

    def unregister(self, connection: ResilientConnection) -> None:
        """Stop watching a closed connection."""
        with contextlib.suppress(ValueError):
            self._connections.remove(connection)

    def faults(self) -> list[StoreFault]:
        """Every store running from memory right now."""
        return [c.fault for c in self._connections if c.fault is not None]

    def try_recover(self) -> None:
        """Try to write every memory copy back to its disk."""
        for connection in list(self._connections):
            connection.try_recover()

    def _failing(self, fault: StoreFault) -> None:
        for hook in self.on_failing:
            hook(fault)

    def _recovered(self, path: Path) -> None:
        for hook in self.on_recovered:
            hook(path)

    def _write_failed(self) -> None:
        for hook in self.on_write_failure:
            hook()


class ResilientConnection:
    """The part of sqlite3.Connection the stores use, failing over to memory on disk faults."""

    def __init__(
        self,
        disk: sqlite3.Connection | None,
        path: Path,
        tables: Iterable[str],
        health: StoreHealth | None = None,
    ) -> None:
        # None only while a store that could not open its file runs from memory (`open`).
        self._disk: sqlite3.Connection | None = disk
        self._connect: Callable[[], sqlite3.Connection] | None = None
        self._memory: sqlite3.Connection | None = None
        self.path = path
        self._tables = ("schema_versions", *tables)
        # Without a health registry (the CLI) a disk fault raises as it always did.
        self._fallback = health is not None
        self._health = health or StoreHealth()
        self._health.register(self)
        # The statements of the open disk transaction, to replay them on the memory copy.
        self._transaction: list[tuple[str, Any, bool]] | None = None
        self.fault: StoreFault | None = None

    @classmethod
    def open(
        cls,
        connect: Callable[[], sqlite3.Connection],
        path: Path,
        tables: Iterable[str],
        health: StoreHealth | None = None,
    ) -> ResilientConnection:
        """Connect with `connect`. With `health` (the daemon), a disk that cannot be written
        even to open the file starts the connection in memory, empty, reported like any other
        fault; `try_recover` connects again and writes everything back."""
        try:
            return cls(connect(), path, tables, health)
        except (sqlite3.Error, OSError) as exc:
            if health is None or not is_write_fault(exc):
                raise
            in_memory = cls(None, path, tables, health)
            in_memory._start_in_memory(connect, exc)
            return in_memory

    def _start_in_memory(
        self, connect: Callable[[], sqlite3.Connection], exc: BaseException
    ) -> None:
        self._connect = connect
        self._memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._memory.row_factory = sqlite3.Row
        self.fault = StoreFault(self.path, _describe(exc))
        self._health._write_failed()
        self._health._failing(self.fault)

    # --- the sqlite3.Connection subset ------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on the connection in use."""
        return self._active.in_transaction

    def execute(self, sql: str, parameters: object = ()) -> sqlite3.Cursor:
        """Run one statement (on the disk, or on the memory copy once the disk failed)."""
        return self._run(sql, parameters, many=False)

    def executemany(self, sql: str, parameters: Iterable[object]) -> sqlite3.Cursor:
        """Run one statement for each parameter set."""
        return self._run(sql, list(parameters), many=True)

    def close(self) -> None:
        """Close; a memory copy not yet written back is tried one last time, then dropped."""
        self.try_recover()
        self._health.unregister(self)
        if self._memory is not None:
            self._memory.close()
        if self._disk is not None:
            self._disk.close()

    # --- fail over and back ------------------------------------------------------------------
    @property
    def _active(self) -> sqlite3.Connection:
        active = self._memory if self._memory is not None else self._disk
        assert active is not None  # one of them always is: see `open`
        return active

    def _run(self, sql: str, parameters: object, many: bool) -> sqlite3.Cursor:
        if self._memory is not None:
            return _call(self._memory, sql, parameters, many)
        verb = sql.lstrip()[:8].upper()
        disk = self._active
        try:
            cursor = _call(disk, sql, parameters, many)
        except sqlite3.Error as exc:
            if not self._fallback or not is_write_fault(exc):
                raise
            return self._fail_over(exc, (sql, parameters, many))
        if verb.startswith("BEGIN"):
            self._transaction = [(sql, parameters, many)]
        elif verb.startswith(("COMMIT", "END", "ROLLBACK")):
            self._transaction = None
        elif self._transaction is not None:
            self._transaction.append((sql, parameters, many))
        return cursor

    def _fail_over(self, exc: sqlite3.Error, failed: tuple[str, object, bool]) -> sqlite3.Cursor:
        replay = [*(self._transaction or ()), failed]
        self._transaction = None
        disk = self._active
        if disk.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                disk.execute("ROLLBACK")
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        memory.row_factory = disk.row_factory
        disk.backup(memory)
        self._memory = memory
        self.fault = StoreFault(self.path, str(exc))
        cursor: sqlite3.Cursor | None = None
        for sql, parameters, many in replay:
            cursor = _call(memory, sql, parameters, many)
        assert cursor is not None
        # After the replay: a hook may write (an incident), and must not join this transaction.
        self._health._write_failed()
        self._health._failing(self.fault)
        return cursor

    def try_recover(self) -> bool:
        """Write this store's tables back to the disk; True once the disk is in use again."""
        memory = self._memory
        if memory is None:
            return True
        if memory.in_transaction:
            return False
        try:
            disk = self._disk_for_write_back(memory)
            self._write_back(memory, disk)
        except (sqlite3.Error, OSError) as exc:
            if not is_write_fault(exc):
                raise
            assert self.fault is not None
            self.fault.failures += 1
            self.fault.error = _describe(exc)
            self._health._write_failed()
            return False
        self._memory = None
        memory.close()
        self.fault = None
        self._health._recovered(self.path)
        return True

    def _disk_for_write_back(self, memory: sqlite3.Connection) -> sqlite3.Connection:
        """The disk connection; for a store that started in memory, opened now with this
        store's tables created from the memory copy's schema."""
        if self._disk is not None:
            return self._disk
        assert self._connect is not None
        disk = self._connect()
        try:
            marks = ", ".join("?" * len(self._tables))
            # Tables before their indexes ('table' sorts after 'index').
            rows = memory.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"
                f" AND tbl_name IN ({marks}) ORDER BY type DESC",
                self._tables,
            ).fetchall()
            for (sql,) in rows:
                disk.execute(_IF_NOT_EXISTS.sub(r"\1 IF NOT EXISTS", sql, count=1))
        except BaseException:
            disk.close()
            raise
        self._disk = disk
        return disk

    def _write_back(self, memory: sqlite3.Connection, disk: sqlite3.Connection) -> None:
        disk.execute("BEGIN IMMEDIATE")
        try:
            for table in self._tables:
                rows = memory.execute(f'SELECT * FROM "{table}"').fetchall()
                if not rows:
                    continue
                marks = ", ".join("?" * len(rows[0]))
                disk.executemany(
                    f'INSERT OR REPLACE INTO "{table}" VALUES ({marks})',
                    [tuple(row) for row in rows],
                )
            disk.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                disk.execute("ROLLBACK")
            raise


def _call(connection: sqlite3.Connection, sql: str, parameters: Any, many: bool) -> sqlite3.Cursor:
    if many:
        return connection.executemany(sql, parameters)
    return connection.execute(sql, parameters)


# sqlite_master keeps each CREATE without its IF NOT EXISTS.
_IF_NOT_EXISTS = re.compile(r"^(CREATE (?:UNIQUE )?(?:TABLE|INDEX))")


def _describe(exc: BaseException) -> str:
    """A fault as one line: SQLite's message, or the OS error's text (no file name twice)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
