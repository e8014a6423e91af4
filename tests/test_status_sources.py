"""What the page and the API make of alerting's records: check states with redacted errors,
incidents with their ack and whether a rollback happened, silences shared with the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.alerting.model import Incident, Silence, Status
from monitor.alerting.store import AlertingStore
from monitor.config import Config
from monitor.core.result import CheckResult
from monitor.redaction import Redactor
from monitor.state import CheckState
from monitor.status.data import Cursor
from monitor.status.sources import (
    RunnerChecks,
    StoreIncidents,
    StoreSilences,
    rolled_back,
)

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def _incident(
    id: str, alertname: str = "HealthCheckFailing", service: str = "backend", **extra: object
) -> Incident:
    labels = {"alertname": alertname, "service": service}
    if alertname == "HealthCheckFailing":
        labels["check"] = "backend-health"
    return Incident(
        id=id,
        source=id,
        alertname=alertname,
        severity="critical",
        summary="s",
        description="d",
        runbook_url="http://x/runbooks/health-check-failing",
        labels=labels,
        started_at=extra.pop("started_at", T0),  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def test_rolled_back_when_a_rollback_of_the_service_happened_during_the_incident() -> None:
    """A RollbackPerformed of the same service within the incident's time marks it."""
    outage = _incident("a", ended_at=T0 + timedelta(minutes=10), status=Status.RESOLVED)
    during = _incident("r1", "RollbackPerformed", started_at=T0 + timedelta(minutes=3))
    later = _incident("r2", "RollbackPerformed", started_at=T0 + timedelta(minutes=30))
    other = _incident("r3", "RollbackPerformed", "frontend", started_at=T0 + timedelta(minutes=3))
    now = T0 + timedelta(hours=1)
    assert rolled_back(outage, [during], now)
    assert not rolled_back(outage, [later, other], now)
    assert rolled_back(during, [], now)  # the rollback's own incident


def test_store_incidents_page_ack_and_flag(tmp_path: Path) -> None:
    """Incidents come newest first, page by cursor, carry the ack and the rollback flag."""
    store = AlertingStore.open(tmp_path)
    for n in range(3):
        store.add_incident(_incident(f"i{n}", started_at=T0 + timedelta(hours=n)))
    store.add_incident(
        _incident("rb", "RollbackPerformed", started_at=T0 + timedelta(hours=2, minutes=1))
    )
    store.resolve_incident("i1", T0 + timedelta(hours=1, minutes=30))  # before the rollback
    source = StoreIncidents(store, lambda: T0 + timedelta(hours=5))
    first = source.page(2)
    assert [i.id for i in first] == ["rb", "i2"]
    rest = source.page(10, Cursor(first[-1].started_at.timestamp(), first[-1].id))
    assert [i.id for i in rest] == ["i1", "i0"]
    assert first[1].rolled_back and not rest[0].rolled_back  # i2 is still going at 5 h
    acked = source.acknowledge("i2", "alice", T0 + timedelta(hours=4))
    assert acked is not None and (acked.acked_by, acked.acked_at) == (
        "alice",
        T0 + timedelta(hours=4),
    )
    assert source.acknowledge("i2", "bob", T0) is None  # the first ack stands
    assert source.acknowledge("i1", "bob", T0) is None  # resolved: nothing to acknowledge
    assert [i.id for i in source.page(10, status="resolved")] == ["i1"]
    store.close()


def test_runner_checks_mask_secrets_in_errors() -> None:
    """A check's last error is shown with secrets masked."""

    class Spec:
        name, type, service = "db", "postgres", "database"

    class Runner:
        spec = Spec()
        state = CheckState("db", 1, 1)

    runner = Runner()
    runner.state.record(CheckResult.failure("auth", "password=hunter22 rejected"), T0)
    [info] = RunnerChecks(lambda: {"db": runner}, Redactor(["hunter22"])).checks()
    assert info.state == "unhealthy" and info.last_error is not None
    assert "hunter22" not in info.last_error


def test_store_silences_expire_returns_the_ended_silence(tmp_path: Path) -> None:
    """Expiring through the API ends the stored silence and gives it back; unknown ids give
    None."""
    store = AlertingStore.open(tmp_path)
    store.add_silence(Silence("s1", {"service": "a"}, T0, T0 + timedelta(hours=2)))
    source = StoreSilences(store, lambda: Config(state_dir=tmp_path))
    now = T0 + timedelta(minutes=5)
    assert [r["id"] for r in source.listing(now, False)] == ["s1"]
    ended = source.expire("s1", now)
    assert ended is not None and ended.ends_at == now
    assert source.expire("s1", now) is None
    assert source.listing(now + timedelta(seconds=1), False) == []
    store.close()
