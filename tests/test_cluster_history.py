"""Check history and incidents shared through a real PostgreSQL: one instance's rows reach
another's page as they stand (never counted twice), rows written while the store is away
are shared once it answers, a new member catches up page by page, and another instance's
incidents are listed where this one has no record of the outage (and can be acknowledged
there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
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
from tests.support.postgres import PostgresCluster, PostgresFactory

NOW = datetime.now(UTC).timestamp()
TODAY = period_start(NOW, Period.DAY)


@dataclass
class Member:
    """One instance's history, incidents and share, on its own state directory."""

    history: HistoryStore
    incidents: AlertingStore
    share: HistoryShare
    recorder: HistoryRecorder


@dataclass
class Pair:
    """Instances a and b on one store."""

    server: PostgresCluster
    a: Member
    b: Member


@pytest.fixture
async def pair(tmp_path: Path, make_postgres: PostgresFactory) -> AsyncIterator[Pair]:
    """a and b, each sharing its history and incidents through one real PostgreSQL."""
    server = make_postgres()
    members, closing = [], []
    for name in ("a", "b"):
        history, close = open_history(tmp_path / name)
        incidents = AlertingStore.open(tmp_path / name)
        store = ClusterStore(server.dsn(), name, timeout=3.0)
        share = HistoryShare(store, lambda h=history: h, lambda i=incidents: i, SystemClock())
        members.append(Member(history, incidents, share, HistoryRecorder(history)))
        closing.append((store, close, incidents))
    yield Pair(server, *members)
    for store, close, incidents in closing:
        await store.close()
        close()
        incidents.close()


def day_totals(history: HistoryStore) -> dict[str, int]:
    return {row.check: row.total for row in history.rollups(Period.DAY, TODAY)}


async def test_rows_reach_the_other_instance_as_they_stand(pair: Pair) -> None:
    """a's runs show in b's history after a round of each; sharing again after more runs
    replaces b's copy (5 runs, not 2 + 5); b's own runs stay its own."""
    a, b = pair.a, pair.b
    for i in range(2):
        a.recorder.record(Sample("api", NOW + i, True, 20.0))
    b.recorder.record(Sample("api", NOW, False, 20.0))
    a.recorder.flush()
    b.recorder.flush()
    await a.share.share_once()
    await b.share.share_once()
    assert day_totals(b.history) == {"api": 3}
    for i in range(3):
        a.recorder.record(Sample("api", NOW + 10 + i, True, 20.0))
    a.recorder.flush()
    await a.share.share_once()
    await b.share.share_once()
    await b.share.share_once()  # read twice: still counted once
    assert day_totals(b.history) == {"api": 6}
    await a.share.share_once()
    assert day_totals(a.history) == {"api": 6}  # b's run reached a as well


async def test_rows_written_while_the_store_is_away_are_shared_when_it_answers(
    pair: Pair,
) -> None:
    """With PostgreSQL stopped, a round shares nothing and loses nothing; after a restart
    the next round brings every run to b."""
    a, b = pair.a, pair.b
    a.recorder.record(Sample("db", NOW, True, 5.0))
    a.recorder.flush()
    await a.share.share_once()
    pair.server.stop()
    a.recorder.record(Sample("db", NOW + 1, False, 5.0))
    a.recorder.flush()
    with pytest.raises(StoreUnavailable):  # the store is away: nothing shared, rows kept
        await a.share.share_once()
    pair.server.start()
    await a.share.share_once()
    await b.share.share_once()
    [day] = b.history.rollups(Period.DAY, TODAY)
    assert (day.check, day.total, day.ok) == ("db", 2, 1)


async def test_a_new_member_catches_up_page_by_page_without_losing_a_row(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve of a's checks, all stored as changed at the same moment, read by b three rows
    a page: b ends with every check once, none skipped at a page boundary or counted twice."""
    monkeypatch.setattr("monitor.cluster.history.PAGE", 3)
    a, b = pair.a, pair.b
    for n in range(12):
        a.recorder.record(Sample(f"c{n:02d}", NOW, True, 5.0))
    a.recorder.flush()
    await a.share.share_once()
    pair.server.sql("UPDATE opsmon_cluster_history SET updated_at = now()")  # one time for all
    await b.share.share_once()
    await b.share.share_once()  # the look-back reads them again: nothing doubles
    assert day_totals(b.history) == {f"c{n:02d}": 1 for n in range(12)}


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


async def test_another_instances_incidents_show_where_this_one_has_none(pair: Pair) -> None:
    """a's incident of `api` (which b does not run) is listed on b, and resolves there when a
    resolves it; of `db`, which both saw fail, b lists only its own; opsmon's own incidents
    (a channel's) stay on a; an ack on b of a's incident becomes an ack b shares, and a's
    next copy without it does not undo it."""
    a, b = pair.a, pair.b
    now = datetime.now(UTC)
    a.incidents.add_incident(incident("a-api", "api", now))
    a.incidents.add_incident(incident("a-db", "db", now))
    a.incidents.add_incident(incident("a-hooks", "channel:hooks", now))
    b.incidents.add_incident(incident("b-db", "db", now))
    await a.share.share_once()
    await b.share.share_once()

    def listed() -> dict[str, str]:
        return {i.id: i.status.value for i in b.incidents.incidents_page(10)}

    assert listed() == {"a-api": "firing", "b-db": "firing"}
    assert b.incidents.acknowledge("a-api", "alice", now)
    assert [ack.source for ack in b.incidents.firing_acks()] == ["api"]
    a.incidents.set_suppressed("a-api", "silenced")
    await a.share.share_once()
    await b.share.share_once()
    assert [(ack.source, ack.acked_by) for ack in b.incidents.firing_acks()] == [("api", "alice")]
    a.incidents.resolve_incident("a-api", now)
    await a.share.share_once()
    await b.share.share_once()
    assert listed() == {"a-api": "resolved", "b-db": "firing"}
