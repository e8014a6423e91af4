"""History store: rows merge across flushes and restarts, retention, and a failed write keeps
what was pending."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.status.rollup import DAY, HOUR, Period, Rollup, Sample, bucket_index, period_start
from monitor.status.store import HISTORY_TABLES, HistoryRecorder, PeerRollup, open_history
from monitor.store import DB_FILE, Store

NOW = datetime(2026, 11, 28, 15, 30, tzinfo=UTC).timestamp()
TODAY = period_start(NOW, Period.DAY)


def test_rows_add_up_across_flushes_and_a_restart(tmp_path: Path) -> None:
    """Results flushed in several batches, before and after reopening, sum into one day row."""
    store, close = open_history(tmp_path)
    recorder = HistoryRecorder(store)
    for i in range(10):
        recorder.record(Sample("api", NOW + i, i != 3, 20.0))
    assert recorder.flush() == 2  # the hour row and the day row
    recorder.record(Sample("api", NOW + 20, True, 2000.0))
    recorder.flush()
    close()

    store, close = open_history(tmp_path)
    [day] = store.rollups(Period.DAY, TODAY)
    assert (day.total, day.ok) == (11, 10)
    assert sum(day.histogram.values()) == 11
    [hour] = store.rollups(Period.HOUR, TODAY)
    assert hour.start == TODAY + 15 * HOUR and hour.total == 11
    close()


def test_pending_rows_are_visible_before_the_flush(tmp_path: Path) -> None:
    """What the recorder holds is there to read (the page adds it to the stored rows)."""
    store, close = open_history(tmp_path)
    recorder = HistoryRecorder(store)
    recorder.record(Sample("api", NOW, True, 5.0))
    assert store.rollups(Period.DAY, 0) == []
    assert [(r.period, r.total) for r in recorder.pending()] == [(Period.HOUR, 1), (Period.DAY, 1)]
    close()


def test_prune_keeps_48_hours_of_hours_and_90_days_of_days(tmp_path: Path) -> None:
    """Old hour rows go after 48 h and old day rows after 90 days; newer ones stay."""
    store, close = open_history(tmp_path)
    store.add_samples(
        Sample("api", NOW - back, True, 10.0)
        for back in (0, 47 * HOUR, 49 * HOUR, 89 * DAY, 91 * DAY)
    )
    store.prune(NOW)
    hours = store.rollups(Period.HOUR, 0)
    days = store.rollups(Period.DAY, 0)
    assert len(hours) == 2
    assert min(r.start for r in days) == TODAY - 89 * DAY
    close()


def test_a_failed_flush_keeps_the_results(tmp_path: Path) -> None:
    """When the write fails (file read-only, disk full), nothing pending is lost."""
    store, close = open_history(tmp_path)
    recorder = HistoryRecorder(store)
    recorder.record(Sample("api", NOW, True, 5.0))
    locker = sqlite3.connect(tmp_path / DB_FILE, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    store._db.execute("PRAGMA busy_timeout=50")
    with pytest.raises(sqlite3.OperationalError):
        recorder.flush()
    locker.rollback()
    locker.close()
    recorder.record(Sample("api", NOW + 1, False, 5.0))
    recorder.flush()
    [day] = store.rollups(Period.DAY, 0)
    assert (day.total, day.ok) == (2, 1)
    close()


def test_history_has_its_own_versioned_table(tmp_path: Path) -> None:
    """The rollup table is migrated on its own (schema_versions), beside the other tables."""
    _, close = open_history(tmp_path)
    close()
    store = Store.open(tmp_path, HISTORY_TABLES)
    assert store.schema_version("history_rollups") == 1
    store.close()


def test_other_instances_rows_add_to_this_ones_and_are_replaced_not_added(
    tmp_path: Path,
) -> None:
    """In a cluster, another instance's rows count on this page beside its own (rollups, sums,
    the checks listed, histograms); a newer copy of its row replaces the older one."""
    store, close = open_history(tmp_path)
    recorder = HistoryRecorder(store)
    for i in range(4):
        recorder.record(Sample("api", NOW + i, i != 0, 20.0))
    recorder.flush()
    shared = {row.key: row for row in store.take_unshared()}
    assert {(k[0], k[1]) for k in shared} == {("api", Period.HOUR), ("api", Period.DAY)}
    assert store.take_unshared() == []  # taken once
    peer_day = Rollup("api", Period.DAY, TODAY, 2, 2, 0, {bucket_index(900.0): 2})
    peer_db = Rollup("db", Period.DAY, TODAY, 5, 0, 0, {})
    store.adopt_peer_rows([PeerRollup("b", peer_day), PeerRollup("b", peer_db)])
    newer = Rollup("api", Period.DAY, TODAY, 3, 3, 0, {bucket_index(900.0): 3})
    store.adopt_peer_rows([PeerRollup("b", newer)])  # b's row as it stands now
    [api, db] = store.rollups(Period.DAY, TODAY)
    assert (api.check, api.total, api.ok) == ("api", 7, 6)
    assert api.histogram == {bucket_index(20.0): 4, bucket_index(900.0): 3}
    assert (db.check, db.total, db.ok) == ("db", 5, 0)
    assert {c: (r.total, r.ok) for c, r in store.sums(Period.DAY, TODAY, NOW + DAY).items()} == {
        "api": (7, 6),
        "db": (5, 0),
    }
    assert store.checks() == ["api", "db"]
    assert store.take_unshared() == []  # other instances' rows are never shared again
    close()


def test_rows_that_could_not_be_shared_are_offered_again(tmp_path: Path) -> None:
    """A share that failed gives its rows back: the next round offers them, as they stand
    by then."""
    store, close = open_history(tmp_path)
    recorder = HistoryRecorder(store)
    recorder.record(Sample("api", NOW, True, 20.0))
    recorder.flush()
    taken = store.take_unshared()
    store.unshared(taken)
    recorder.record(Sample("api", NOW + 1, True, 20.0))
    recorder.flush()
    again = {row.period: row.total for row in store.take_unshared()}
    assert again == {Period.HOUR: 2, Period.DAY: 2}
    close()
