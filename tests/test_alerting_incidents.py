"""Incidents: opened by UNHEALTHY, resolved by HEALTHY, remembered across a crash."""

from __future__ import annotations

from pathlib import Path

from monitor.redaction import Redactor
from tests.support.alerting import Harness, alerting_config, alerts_of, http_check
from tests.support.receiver import Receiver


def _harness(tmp_path: Path, receiver: Receiver, redactor: Redactor | None = None) -> Harness:
    config = alerting_config(
        group_wait="0s",
        group_interval="10s",
        channels=[{"name": "hooks", "type": "webhook", "url": receiver.url()}],
    )
    checks = [http_check("database", "db"), http_check("backend-ready", "backend")]
    return Harness(tmp_path, config, checks, redactor=redactor)


async def test_incident_carries_name_severity_labels_evidence_and_runbook(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The alert says what failed, how badly, with which value, and links the runbook."""
    h = _harness(tmp_path, receiver)
    h.fail("backend-ready", "[BODY].ready (false) == true")
    await h.step()
    (incident,) = h.store.live_incidents()
    assert incident.alertname == "ServiceNotReady"
    assert incident.severity == "warning"
    assert incident.labels == {
        "alertname": "ServiceNotReady",
        "severity": "warning",
        "check": "backend-ready",
        "service": "backend",
    }
    assert incident.summary == "Backend is not ready to serve traffic (backend-ready)."
    evidence, *rest = incident.description.splitlines()
    assert evidence == "backend-ready: [BODY].ready (false) == true"
    assert rest[-1].startswith("First step: curl")
    assert incident.runbook_url == "http://opsmon.test:9110/runbooks/service-not-ready"
    assert h.metrics.incidents_open._value.get() == 1
    await h.close()


async def test_secrets_in_the_evidence_are_masked(tmp_path: Path, receiver: Receiver) -> None:
    """A check reason that quotes a password never reaches an alert."""
    h = _harness(tmp_path, receiver, Redactor(["hunter2-canary"]))
    h.fail("database", "connect to postgres://app:hunter2-canary@db:5432/app failed")
    await h.step()
    body = receiver.accepted()[0].body.decode()
    assert "hunter2-canary" not in body
    assert "postgres://app:***@db:5432/app" in body
    await h.close()


async def test_an_open_incident_survives_a_crash_without_a_second_firing(
    tmp_path: Path, receiver: Receiver
) -> None:
    """After a restart the still-failing check does not page again; its recovery resolves it."""
    h = _harness(tmp_path, receiver)
    h.fail("database")
    await h.step()
    h.crash()
    h.open()  # a new process: fresh memory, same state file
    h.health["database"] = h.health["database"].UNKNOWN
    h.fail("database")  # the thresholds trip again after the restart
    await h.run_for(60)
    assert [alerts_of(r.json) for r in receiver.accepted()] == [[("firing", "database")]]
    h.recover("database")
    await h.step(1)
    assert [alerts_of(r.json) for r in receiver.accepted()] == [
        [("firing", "database")],
        [("resolved", "database")],
    ]
    await h.close()


async def test_recovery_while_down_is_resolved_by_the_first_healthy_result(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A check that recovered while opsmon was down gets its RESOLVED after the restart."""
    h = _harness(tmp_path, receiver)
    h.fail("database")
    await h.step()
    h.crash()
    h.clock.advance(600)
    h.open()
    h.health["database"] = h.health["database"].UNKNOWN
    h.recover("database")  # UNKNOWN -> HEALTHY on the first successful run
    await h.step()
    assert [r.json["status"] for r in receiver.accepted()] == ["firing", "resolved"]
    assert h.metrics.incidents_open._value.get() == 0
    await h.close()
