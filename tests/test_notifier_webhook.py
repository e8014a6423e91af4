"""The webhook channel: Alertmanager's payload (version 4) that any AM receiver understands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from monitor.alerting.model import AlertView, Notification, Reason, Status, fingerprint
from monitor.alerting.notifiers import DeliveryError, NotifierDeps
from monitor.alerting.notifiers.base import parse_retry_after
from monitor.alerting.notifiers.webhook import WebhookSpec, build
from monitor.net.clients import HttpClients
from tests.support.alerting import FakeClock
from tests.support.receiver import Answer, Receiver

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _alert(check: str, status: Status = Status.FIRING) -> AlertView:
    labels = {
        "alertname": "DatabaseConnectionFailing",
        "severity": "critical",
        "check": check,
        "service": "backend",
    }
    return AlertView(
        incident_id=f"inc-{check}",
        fingerprint=fingerprint(labels),
        status=status,
        alertname="DatabaseConnectionFailing",
        severity="critical",
        summary="opsmon cannot connect to the database (check database).",
        description="connection refused by 127.0.0.1:5432",
        runbook_url="http://opsmon:9110/runbooks/database-connection-failing",
        labels=labels,
        starts_at=T0,
        ends_at=T0 + timedelta(minutes=5) if status is Status.RESOLVED else None,
        affected=("backend-health (backend)",) if status is Status.FIRING else (),
    )


def notification(*alerts: AlertView, status: Status = Status.FIRING) -> Notification:
    """A notification for the tests."""
    return Notification(
        id="0f1e2d3c",
        channel="hooks",
        group_key='default:{service="backend"}',
        group_labels={"service": "backend"},
        status=status,
        reason=Reason.NEW,
        alerts=alerts,
        created_at=T0,
        external_url="http://opsmon:9110",
    )


@pytest.fixture
async def http() -> AsyncIterator[HttpClients]:
    """The shared client pools."""
    clients = HttpClients()
    yield clients
    await clients.aclose()


def _notifier(receiver: Receiver, http: HttpClients, **extra: object) -> object:
    spec = WebhookSpec.model_validate(
        {"name": "hooks", "type": "webhook", "url": receiver.url("/am/token-123"), **extra}
    )
    return build(spec, NotifierDeps(http, FakeClock(T0), timeout=2))


async def test_payload_is_alertmanager_webhook_version_4(
    receiver: Receiver, http: HttpClients
) -> None:
    """Receivers written for Alertmanager get the fields they expect, with the runbook link."""
    notifier = _notifier(receiver, http, headers={"Authorization": "Bearer abc123"})
    await notifier.send(  # type: ignore[attr-defined]
        notification(_alert("database"), _alert("db-replica", Status.RESOLVED))
    )
    (request,) = receiver.accepted()
    body = request.json
    assert request.path == "/am/token-123"
    assert request.headers["Authorization"] == "Bearer abc123"
    assert request.headers["X-Opsmon-Notification-Id"] == "0f1e2d3c"
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "hooks"
    assert body["groupLabels"] == {"service": "backend"}
    assert body["commonLabels"] == {
        "alertname": "DatabaseConnectionFailing",
        "severity": "critical",
        "service": "backend",
    }
    assert body["notificationId"] == "0f1e2d3c"
    firing, resolved = body["alerts"]
    assert firing["status"] == "firing"
    assert firing["labels"]["check"] == "database"
    assert firing["annotations"] == {
        "summary": "opsmon cannot connect to the database (check database).",
        "description": "connection refused by 127.0.0.1:5432",
        "runbook_url": "http://opsmon:9110/runbooks/database-connection-failing",
        "affected": "backend-health (backend)",
    }
    assert firing["startsAt"] == "2026-03-02T09:00:00Z"
    assert firing["endsAt"] == "0001-01-01T00:00:00Z"
    assert len(firing["fingerprint"]) == 16
    assert resolved["status"] == "resolved"
    assert resolved["endsAt"] == "2026-03-02T09:05:00Z"


async def test_error_answers_raise_without_the_url(receiver: Receiver, http: HttpClients) -> None:
    """A 500 is a failed delivery whose reason names the channel, never the secret URL."""
    receiver.answer(Answer(500, body="boom"))
    with pytest.raises(DeliveryError) as caught:
        await _notifier(receiver, http).send(notification(_alert("database")))  # type: ignore[attr-defined]
    assert caught.value.reason == "webhook hooks: HTTP 500 (boom)"
    assert "token-123" not in str(caught.value)
    assert caught.value.retry_after is None


async def test_429_carries_retry_after(receiver: Receiver, http: HttpClients) -> None:
    """A 429 with Retry-After tells the outbox how long to wait."""
    receiver.answer(Answer(429, retry_after="7"))
    with pytest.raises(DeliveryError) as caught:
        await _notifier(receiver, http).send(notification(_alert("database")))  # type: ignore[attr-defined]
    assert caught.value.retry_after == 7


async def test_unreachable_receiver_is_a_failed_delivery(http: HttpClients) -> None:
    """Nobody listening: a readable reason with host and port, nothing of the path."""
    spec = WebhookSpec(name="hooks", type="webhook", url="http://127.0.0.1:9/secret-path")
    notifier = build(spec, NotifierDeps(http, FakeClock(T0), timeout=2))
    with pytest.raises(DeliveryError) as caught:
        await notifier.send(notification(_alert("database")))
    assert caught.value.reason == "webhook hooks: connection refused by 127.0.0.1:9"


def test_retry_after_as_seconds_or_http_date() -> None:
    """Retry-After may be delta-seconds or an HTTP date; garbage is ignored; huge is capped."""
    now = T0
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after("Mon, 02 Mar 2026 09:01:00 GMT", now) == 60
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("999999", now) == 3600
