"""Check history and incidents shared through a real PostgreSQL: one instance's rows reach
another's page as they stand (never counted twice), rows written while the store is away
are shared once it answers, and another instance's incidents are listed where this one has
no record of the outage (and can be acknowledged there)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.alerting.model import Incident
from monitor.alerting.store import AlertingStore
from monitor.clock import SystemClock
from monitor.cluster.history import HistoryShare
from monitor.cluster.store import ClusterStore, StoreUnavailable
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
    share_a = HistoryShare(store_a, lambda: history_a, lambda: None, SystemClock())
    share_b = HistoryShare(store_b, lambda: history_b, lambda: None, SystemClock())
    recorder_a, recorder_b = HistoryRecorder(history_a), HistoryRecorder(history_b)
    for i in range(2):
        recorder_a.record(Sample("api", NOW + i, True, 20.0))
    recorder_b.record(Sample("api", NOW, False, 20.0))
    recorder_a.flush()
    recorder_b.flush()
    await share_a.share_once()
    await share_b.share_once()
    assert day_totals(history_b) == {"api": 3}
    for i in range(3):
        recorder_a.record(Sample("api", NOW + 10 + i, True, 20.0))
    recorder_a.flush()
    await share_a.share_once()
    await share_b.share_once()
    await share_b.share_once()  # read twice: still counted once
    assert day_totals(history_b) == {"api": 6}
    await share_a.share_once()
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
    share_a = HistoryShare(store_a, lambda: history_a, lambda: None, SystemClock())
    share_b = HistoryShare(store_b, lambda: history_b, lambda: None, SystemClock())
    recorder = HistoryRecorder(history_a)
    recorder.record(Sample("db", NOW, True, 5.0))
    recorder.flush()
    await share_a.share_once()
    server.stop()
    recorder.record(Sample("db", NOW + 1, False, 5.0))
    recorder.flush()
    with pytest.raises(StoreUnavailable):  # the store is away: nothing shared, rows kept
        await share_a.share_once()
    server.start()
    await share_a.share_once()
    await share_b.share_once()
    [day] = history_b.rollups(Period.DAY, TODAY)
    assert (day.check, day.total, day.ok) == ("db", 2, 1)
    for store in (store_a, store_b):
        await store.close()
    close_a()
    close_b()


def incident(id: str, source: str, started: datetime) -> Incident:
    return Incident(
        id=id,
        source=source,
        alertname="HealthCheckFailing",
        severity="critical",
        summary=f"{source} fails",
        description="HTTP 503",
        runbook_url="http://x/runbooks/health-check-failing",
        labels={"alertname": "HealthCheckFailing", "check": source},
        started_at=started,
    )


async def test_another_instances_incidents_show_where_this_one_has_none(
    tmp_path: Path, make_postgres: PostgresFactory
) -> None:
    """a's incident of `api` (which b does not run) is listed on b, and resolves there when a
    resolves it; of `db`, which both saw fail, b lists only its own; opsmon's own incidents
    (a channel's) stay on a; an ack on b of a's incident becomes an ack b shares."""
    server = make_postgres()
    now = datetime.now(UTC)
    alerts_a, alerts_b = AlertingStore.open(tmp_path / "a"), AlertingStore.open(tmp_path / "b")
    store_a = ClusterStore(server.dsn(), "a", timeout=3.0)
    store_b = ClusterStore(server.dsn(), "b", timeout=3.0)
    share_a = HistoryShare(store_a, lambda: None, lambda: alerts_a, SystemClock())
    share_b = HistoryShare(store_b, lambda: None, lambda: alerts_b, SystemClock())
    alerts_a.add_incident(incident("a-api", "api", now))
    alerts_a.add_incident(incident("a-db", "db", now))
    alerts_a.add_incident(incident("a-hooks", "channel:hooks", now))
    alerts_b.add_incident(incident("b-db", "db", now))
    await share_a.share_once()
    await share_b.share_once()

    def listed() -> dict[str, str]:
        return {i.id: i.status.value for i in alerts_b.incidents_page(10)}

    assert listed() == {"a-api": "firing", "b-db": "firing"}
    assert alerts_b.acknowledge("a-api", "alice", now)
    assert [a.source for a in alerts_b.firing_acks()] == ["api"]
    alerts_a.set_suppressed("a-api", "silenced")
    await share_a.share_once()
    await share_b.share_once()  # a's copy without the ack does not undo it here
    assert [(a.source, a.acked_by) for a in alerts_b.firing_acks()] == [("api", "alice")]
    alerts_a.resolve_incident("a-api", now)
    await share_a.share_once()
    await share_b.share_once()
    assert listed() == {"a-api": "resolved", "b-db": "firing"}
    for store in (store_a, store_b):
        await store.close()
    alerts_a.close()
    alerts_b.close()


async def test_a_new_member_catches_up_page_by_page_without_losing_a_row(
    tmp_path: Path, make_postgres: PostgresFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve of a's checks, all stored as changed at the same moment, read by b three rows
    a page: b ends with every check once, none skipped at a page boundary or counted twice."""
    monkeypatch.setattr("monitor.cluster.history.PAGE", 3)
    server = make_postgres()
    history_a, close_a = open_history(tmp_path / "a")
    history_b, close_b = open_history(tmp_path / "b")
    store_a = ClusterStore(server.dsn(), "a", timeout=3.0)
    store_b = ClusterStore(server.dsn(), "b", timeout=3.0)
    share_a = HistoryShare(store_a, lambda: history_a, lambda: None, SystemClock())
    share_b = HistoryShare(store_b, lambda: history_b, lambda: None, SystemClock())
    recorder = HistoryRecorder(history_a)
    for n in range(12):
        recorder.record(Sample(f"c{n:02d}", NOW, True, 5.0))
    recorder.flush()
    await share_a.share_once()
    server.sql("UPDATE opsmon_cluster_history SET updated_at = now()")  # one time for all
    await share_b.share_once()
    await share_b.share_once()  # the look-back reads them again: nothing doubles
    assert day_totals(history_b) == {f"c{n:02d}": 1 for n in range(12)}
    for store in (store_a, store_b):
        await store.close()
    close_a()
    close_b()
