"""Alerting's store: incidents, notifications and silences on the state file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from monitor.alerting.model import Incident, Notification, Reason, Silence, Status
from monitor.alerting.store import AlertingStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _incident(source: str = "backend-health") -> Incident:
    return Incident(
        id="i1",
        source=source,
        alertname="HealthCheckFailing",
        severity="critical",
        summary="s",
        description="d",
        runbook_url="http://x/runbooks/health-check-failing",
        labels={"alertname": "HealthCheckFailing", "check": source},
        started_at=T0,
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
