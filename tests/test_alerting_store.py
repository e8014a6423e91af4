"""Alerting's store: incidents, notifications and silences on the state file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.alerting.model import Ack, Incident, Notification, Reason, Silence, Status
from monitor.alerting.store import AlertingStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _incident(
    source: str = "backend-health", id: str = "i1", started_at: datetime = T0
) -> Incident:
    return Incident(
        id=id,
        source=source,
        alertname="HealthCheckFailing",
        severity="critical",
        summary="s",
        description="d",
        runbook_url="http://x/runbooks/health-check-failing",
        labels={"alertname": "HealthCheckFailing", "check": source},
        started_at=started_at,
    )


def test_records_survive_reopening(tmp_path: Path) -> None:
    """Incidents, pending notifications and silences are still there after a reopen."""
    store = AlertingStore.open(tmp_path)
    store.add_incident(_incident())
    notification = Notification(
        "n1", "hooks", "g", {}, Status.FIRING, Reason.NEW, (), T0, "http://x"
    )
    store.enqueue(notification)
    store.add_silence(Silence("s1", {"service": "backend"}, T0, T0.replace(hour=11)))
    store.close()
    again = AlertingStore.open(tmp_path)
    assert [i.id for i in again.live_incidents()] == ["i1"]
    assert [e.id for e in again.pending()] == ["n1"]
    assert [s.id for s in again.silences()] == ["s1"]
    again.close()


def test_expiring_a_silence_ends_it_now(tmp_path: Path) -> None:
    """`expire` ends an active or pending silence; an unknown or ended one reports False."""
    store = AlertingStore.open(tmp_path)
    store.add_silence(Silence("s1", {"service": "a"}, T0, T0.replace(hour=12)))
    store.add_silence(Silence("s2", {"service": "b"}, T0.replace(hour=11), T0.replace(hour=12)))
    now = T0.replace(hour=10)
    assert store.expire_silence("s1", now)
    assert store.expire_silence("s2", now)
    assert not store.expire_silence("s1", now.replace(minute=5))
    assert not store.expire_silence("nope", now)
    assert [s.state(now) for s in store.silences()] == ["expired", "expired"]
    store.close()


def test_resolved_incidents_can_be_kept_longer_than_notifications(tmp_path: Path) -> None:
    """`prune` keeps resolved incidents until their own cutoff (the status page shows 90 days)."""
    store = AlertingStore.open(tmp_path)
    store.add_incident(_incident())
    store.resolve_incident("i1", T0)
    store.prune(T0.replace(day=20), incidents_before=T0.replace(day=1))
    assert store.incident("i1") is not None
    store.prune(T0.replace(day=20))
    assert store.incident("i1") is None
    store.close()


def test_an_ack_made_elsewhere_holds_only_for_the_outage_it_was_made_in(tmp_path: Path) -> None:
    """A peer's ack marks the firing incident of its source that had started by then (give or
    take the slack); a later outage, another source and an acked incident keep their own."""
    store = AlertingStore.open(tmp_path)
    store.add_incident(_incident("backend-health", "early", T0))
    store.add_incident(_incident("frontend-health", "other", T0))
    store.add_incident(_incident("db", "later", T0 + timedelta(minutes=5)))
    ack_at = T0 + timedelta(seconds=20)
    assert store.unacked_sources() == ["backend-health", "db", "frontend-health"]
    # Opened 3 s after the ack on this instance, inside the 5 s slack: the same outage.
    store.add_incident(_incident("api", "lagging", ack_at + timedelta(seconds=3)))
    assert store.adopt_ack(Ack("api", "alice", ack_at), slack=5.0)
    assert store.adopt_ack(Ack("backend-health", "alice", ack_at), slack=5.0)
    assert not store.adopt_ack(Ack("db", "alice", ack_at), slack=5.0)  # a later outage
    assert not store.adopt_ack(Ack("backend-health", "bob", ack_at), slack=5.0)  # first wins
    acked = {a.source: a for a in store.firing_acks()}
    assert acked == {
        "api": Ack("api", "alice", ack_at),
        "backend-health": Ack("backend-health", "alice", ack_at),
    }
    assert store.unacked_sources() == ["db", "frontend-health"]
    store.close()
