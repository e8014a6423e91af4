"""Check history shared through a real PostgreSQL: one instance's rows reach another's page
as they stand (never counted twice), and rows written while the store is away are shared
once it answers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from monitor.cluster.history import HistoryShare
from monitor.cluster.store import ClusterStore
from monitor.status.rollup import Period, Sample, period_start
from monitor.status.store import HistoryRecorder, HistoryStore, open_history
from tests.support.postgres import PostgresFactory

NOW = datetime.now(UTC).timestamp()
TODAY = period_start(NOW, Period.DAY)


def day_totals(history: HistoryStore) -> dict[str, int]:
    return {row.check: row.total for row in history.rollups(Period.DAY, TODAY)}


async def test_rows_reach_the_other_instance_as_they_stand(
    tmp_path: Path, make_postgres: PostgresFactory
) -> None:
    """a's runs show in b's history after a round of each; sharing again after more runs
    replaces b's copy (5 runs, not 2 + 5); b's own runs stay its own."""
    server = make_postgres()
    history_a, close_a = open_history(tmp_path / "a")
    history_b, close_b = open_history(tmp_path / "b")
    store_a = ClusterStore(server.dsn(), "a", timeout=3.0)
    store_b = ClusterStore(server.dsn(), "b", timeout=3.0)
    share_a = HistoryShare(store_a, lambda: history_a)
    share_b = HistoryShare(store_b, lambda: history_b)
    recorder_a, recorder_b = HistoryRecorder(history_a), HistoryRecorder(history_b)
    for i in range(2):
        recorder_a.record(Sample("api", NOW + i, True, 20.0))
    recorder_b.record(Sample("api", NOW, False, 20.0))
    recorder_a.flush()
    recorder_b.flush()
    await share_a.share_once(history_a)
    await share_b.share_once(history_b)
    assert day_totals(history_b) == {"api": 3}
    for i in range(3):
        recorder_a.record(Sample("api", NOW + 10 + i, True, 20.0))
    recorder_a.flush()
    await share_a.share_once(history_a)
    await share_b.share_once(history_b)
    await share_b.share_once(history_b)  # read twice: still counted once
    assert day_totals(history_b) == {"api": 6}
    await share_a.share_once(history_a)
    assert day_totals(history_a) == {"api": 6}  # b's run reached a as well
    for store in (store_a, store_b):
        await store.close()
    close_a()
    close_b()


async def test_rows_written_while_the_store_is_away_are_shared_when_it_answers(
    tmp_path: Path, make_postgres: PostgresFactory
) -> None:
    """With PostgreSQL stopped, a round shares nothing and loses nothing; after a restart
    the next round brings every run to b."""
    server = make_postgres()
    history_a, close_a = open_history(tmp_path / "a")
    history_b, close_b = open_history(tmp_path / "b")
    store_a = ClusterStore(server.dsn(), "a", timeout=3.0)
    store_b = ClusterStore(server.dsn(), "b", timeout=3.0)
    share_a = HistoryShare(store_a, lambda: history_a)
    share_b = HistoryShare(store_b, lambda: history_b)
    recorder = HistoryRecorder(history_a)
    recorder.record(Sample("db", NOW, True, 5.0))
    recorder.flush()
    await share_a.share_once(history_a)
    server.stop()
    recorder.record(Sample("db", NOW + 1, False, 5.0))
    recorder.flush()
    await share_a.share_once(history_a)  # the store is away: logged, kept
    server.start()
    await share_a.share_once(history_a)
    await share_b.share_once(history_b)
    [day] = history_b.rollups(Period.DAY, TODAY)
    assert (day.check, day.total, day.ok) == ("db", 2, 1)
    for store in (store_a, store_b):
        await store.close()
    close_a()
    close_b()
