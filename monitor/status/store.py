"""History's durable state: the hour and day rollups of every check, in the daemon's SQLite file.

Results are folded in memory (`HistoryRecorder`) and written in one transaction every few
seconds, so a busy daemon pays one small write per flush, not one per result. Writing merges
with what the row already holds, so a restart (or a second writer) adds to the day instead
of replacing it. Hour rows are kept 48 hours, day rows 90 days (`prune`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from monitor.resilient_db import ResilientConnection
from monitor.status.rollup import (
    Period,
    Rollup,
    Sample,
    fold,
    merge_histograms,
    retention_cutoffs,
)
from monitor.store import Store

HISTORY_TABLES: dict[str, tuple[str, ...]] = {
    "history_rollups": (
        """CREATE TABLE history_rollups (
            check_name TEXT NOT NULL,
            period TEXT NOT NULL,
            start REAL NOT NULL,
            total INTEGER NOT NULL,
            ok INTEGER NOT NULL,
            unknown INTEGER NOT NULL,
            histogram TEXT NOT NULL,
            PRIMARY KEY (period, check_name, start)
        ) WITHOUT ROWID;
        CREATE INDEX history_rollups_by_start ON history_rollups (period, start);""",
    ),
    # The rows of the other instances of a cluster, as they last shared them (cluster/
    # history.py): the page adds them to this instance's own.
    "history_peer_rollups": (
        """CREATE TABLE history_peer_rollups (
            instance TEXT NOT NULL,
            check_name TEXT NOT NULL,
            period TEXT NOT NULL,
            start REAL NOT NULL,
            total INTEGER NOT NULL,
            ok INTEGER NOT NULL,
            unknown INTEGER NOT NULL,
            histogram TEXT NOT NULL,
            PRIMARY KEY (period, check_name, start, instance)
        ) WITHOUT ROWID;""",
    ),
}

# This instance's rows and the other instances' (a cluster's), read as one.
_ALL_ROLLUPS = """(
    SELECT check_name, period, start, total, ok, unknown, histogram FROM history_rollups
    UNION ALL
    SELECT check_name, period, start, total, ok, unknown, histogram FROM history_peer_rollups
)"""


@dataclass(frozen=True)
class PeerRollup:
    """Another instance's row, as it shared it: the whole count, not an increment."""

    instance: str
    rollup: Rollup


def encode_histogram(histogram: Mapping[int, int]) -> str:
    """A histogram as stored: compact JSON of [index, count] pairs."""
    return json.dumps(sorted(histogram.items()), separators=(",", ":"))


def decode_histogram(text: str) -> dict[int, int]:
    """The inverse of `encode_histogram`."""
    return {int(index): int(count) for index, count in json.loads(text)}


class HistoryStore:
    """Reads and writes the rollup rows (explicit methods; the connection is shared)."""

    def __init__(
        self,
        connection: ResilientConnection,
        transaction: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self._db = connection
        self._transaction = transaction
        # Bumped whenever a write changes a row older than the newest of its period (or rows
        # are pruned), so readers may cache what they derive from the past.
        self.generation = 0
        self._latest: dict[Period, float] = {}
        # The rows written since a cluster last took them to share (cluster/history.py).
        self._unshared: set[tuple[str, Period, float]] = set()
        # Alone, reads skip the (empty) table of other instances' rows.
        self._rows_from = "history_rollups"
        if connection.execute("SELECT 1 FROM history_peer_rollups LIMIT 1").fetchone():
            self._rows_from = _ALL_ROLLUPS

    def _note_writes(self, rows: Sequence[Rollup]) -> None:
        for period in Period:
            starts = [r.start for r in rows if r.period is period]
            if not starts:
                continue
            latest = max(self._latest.get(period, starts[0]), *starts)
            if min(starts) < latest:
                self.generation += 1
            self._latest[period] = latest

    def add(self, rows: Iterable[Rollup]) -> None:
        """Merge `rows` into the stored ones, all in one transaction."""
        rows = list(rows)
        self._note_writes(rows)
        self._unshared.update(row.key for row in rows)
        with self._transaction():
            for row in rows:
                stored = self._db.execute(
                    "SELECT total, ok, unknown, histogram FROM history_rollups"
                    " WHERE period = ? AND check_name = ? AND start = ?",
                    (row.period.value, row.check, row.start),
                ).fetchone()
                merged = Rollup(row.check, row.period, row.start)
                merged.merge(row)
                if stored is not None:
                    merged.merge(
                        Rollup(
                            row.check,
                            row.period,
                            row.start,
                            stored[0],
                            stored[1],
                            stored[2],
                            decode_histogram(stored[3]),
                        )
                    )
                self._db.execute(
                    "INSERT OR REPLACE INTO history_rollups (check_name, period, start, total,"
                    " ok, unknown, histogram) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        merged.check,
                        merged.period.value,
                        merged.start,
                        merged.total,
                        merged.ok,
                        merged.unknown,
                        encode_histogram(merged.histogram),
                    ),
                )

    def add_samples(self, samples: Iterable[Sample]) -> None:
        """Fold results into hour and day rows and store them (seeding, tests, benchmarks)."""
        self.add(fold(samples).values())

    def rollups(
        self,
        period: Period,
        since: float,
        checks: Sequence[str] | None = None,
        with_histograms: bool = True,
        before: float | None = None,
    ) -> list[Rollup]:
        """Rows of `period` starting at or after `since` and before `before` (optionally only of
        `checks`), by check and start."""
        # Rows of one check and start (this instance's, and other instances') add up.
        columns = "check_name, start, sum(total), sum(ok), sum(unknown)" + (
            ", group_concat(histogram, ';')" if with_histograms else ""
        )
        query = f"SELECT {columns} FROM {self._rows_from} WHERE period = ? AND start >= ?"
        args: list[object] = [period.value, since]
        if before is not None:
            query += " AND start < ?"
            args.append(before)
        if checks is not None:
            query += f" AND check_name IN ({','.join('?' * len(checks))})"
            args.extend(checks)
        query += " GROUP BY check_name, start ORDER BY check_name, start"
        return [
            Rollup(
                row[0],
                period,
                row[1],
                row[2],
                row[3],
                row[4],
                _merged_histograms(row[5]) if with_histograms else {},
            )
            for row in self._db.execute(query, args)
        ]

    def sums(self, period: Period, since: float, before: float) -> dict[str, Rollup]:
        """Per check, one row with the counts of every row of `period` from `since` to before
        `before` (summed by SQLite; no histograms)."""
        return {
            row[0]: Rollup(row[0], period, since, row[1], row[2], row[3])
            for row in self._db.execute(
                f"SELECT check_name, sum(total), sum(ok), sum(unknown) FROM {self._rows_from}"
                " WHERE period = ? AND start >= ? AND start < ? GROUP BY check_name",
                (period.value, since, before),
            )
        }

    def prune(self, now: float) -> int:
        """Drop hour rows older than 48 h and day rows older than 90 d; return how many."""
        removed = 0
        with self._transaction():
            for period, cutoff in retention_cutoffs(now).items():
                for table in ("history_rollups", "history_peer_rollups"):
                    cursor = self._db.execute(
                        f"DELETE FROM {table} WHERE period = ? AND start < ?",
                        (period.value, cutoff),
                    )
                    removed += cursor.rowcount
        if removed:
            self.generation += 1
        return removed

    def checks(self) -> list[str]:
        """Every check with any stored history."""
        return [
            row[0]
            for row in self._db.execute(
                f"SELECT DISTINCT check_name FROM {self._rows_from} ORDER BY check_name"
            )
        ]

    # --- a cluster's shared history (cluster/history.py) ---------------------------------------
    def take_unshared(self) -> list[Rollup]:
        """This instance's rows written since the last call, whole (what a peer replaces its
        copy with); give them back with `unshared` if they could not be shared."""
        keys, self._unshared = self._unshared, set()
        found: list[Rollup] = []
        for check, period, start in sorted(keys):
            row = self._db.execute(
                "SELECT total, ok, unknown, histogram FROM history_rollups"
                " WHERE period = ? AND check_name = ? AND start = ?",
                (period.value, check, start),
            ).fetchone()
            if row is not None:  # pruned meanwhile: nothing to share
                found.append(
                    Rollup(check, period, start, row[0], row[1], row[2], decode_histogram(row[3]))
                )
        return found

    def unshared(self, rows: Iterable[Rollup]) -> None:
        """Rows `take_unshared` gave that could not be shared: offered again next time."""
        self._unshared.update(row.key for row in rows)

    def adopt_peer_rows(self, rows: Sequence[PeerRollup]) -> None:
        """Hold other instances' rows as they shared them (each replaces the last copy)."""
        if not rows:
            return
        with self._transaction():
            for peer in rows:
                row = peer.rollup
                self._db.execute(
                    "INSERT OR REPLACE INTO history_peer_rollups (instance, check_name, period,"
                    " start, total, ok, unknown, histogram) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        peer.instance,
                        row.check,
                        row.period.value,
                        row.start,
                        row.total,
                        row.ok,
                        row.unknown,
                        encode_histogram(row.histogram),
                    ),
                )
        self._rows_from = _ALL_ROLLUPS
        self.generation += 1


def _merged_histograms(joined: str) -> dict[int, int]:
    """The histograms of rows read as one (`group_concat(histogram, ';')`), added up."""
    return merge_histograms(decode_histogram(part) for part in joined.split(";"))


class HistoryRecorder:
    """Folds results in memory until `flush` writes them (the daemon flushes every few
    seconds and at stop)."""

    def __init__(self, store: HistoryStore) -> None:
        self._store = store
        self._pending: dict[tuple[str, Period, float], Rollup] = {}

    def record(self, sample: Sample) -> None:
        """Count one result."""
        for key, row in fold([sample]).items():
            pending = self._pending.get(key)
            if pending is None:
                self._pending[key] = row
            else:
                pending.merge(row)

    def pending(self) -> Iterator[Rollup]:
        """What has not been written yet (the page adds it to the stored rows)."""
        return iter(list(self._pending.values()))

    def flush(self) -> int:
        """Write what is pending; on failure it stays pending (nothing is lost) and raises."""
        if not self._pending:
            return 0
        rows = list(self._pending.values())
        self._store.add(rows)
        self._pending.clear()
        return len(rows)


def open_history(state_dir: Path) -> tuple[HistoryStore, Callable[[], None]]:
    """The history store on the daemon's SQLite file in `state_dir`, and how to close it."""
    store = Store.open(state_dir, HISTORY_TABLES)
    return HistoryStore(store.connection, store.transaction), store.close
