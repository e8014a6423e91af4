"""The alerts rollback raises, and where they go.

Each alert of a service has its own incident source (`rollback:<service>:<AlertName>`), so a
RollbackPerformed and a later BadImageRedeployed are separate incidents. They go through the
alerting pipeline (grouping, routing, silences, outbox) when it is configured; the CLI writes
them to the same SQLite store, where the running daemon's alerting picks them up. Without
alerting they are only logged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.alerting.incidents import IncidentTracker
from monitor.alerting.naming import AlertContent
from monitor.alertnames import AlertName, Severity
from monitor.logs import get_logger

SEVERITIES: dict[AlertName, Severity] = {
    AlertName.ROLLBACK_PERFORMED: Severity.INFO,
    AlertName.ROLLBACK_FAILED: Severity.CRITICAL,
    AlertName.ROLLBACK_SKIPPED: Severity.WARNING,
    AlertName.BAD_IMAGE_REDEPLOYED: Severity.WARNING,
    # The deploy gate's verdicts (monitor/gate/): a promotion is news, the others page.
    AlertName.DEPLOY_PROMOTED: Severity.INFO,
    AlertName.DEPLOY_ROLLED_BACK: Severity.CRITICAL,
    AlertName.DEPLOY_GATE_FAILED: Severity.CRITICAL,
}


@dataclass(frozen=True)
class RollbackAlert:
    """One alert about a service's rollback."""

    name: AlertName
    service: str
    summary: str
    description: str

    @property
    def severity(self) -> Severity:
        """Fixed per alert name."""
        return SEVERITIES[self.name]

    @property
    def source(self) -> str:
        """The incident source: one open incident per service and alert name."""
        return source(self.service, self.name)

    @property
    def labels(self) -> dict[str, str]:
        """Bounded labels: the alert name, its severity and the service."""
        return {
            "alertname": self.name.value,
            "severity": self.severity.value,
            "service": self.service,
        }


def source(service: str, name: AlertName) -> str:
    """The incident source of alert `name` about `service`."""
    return f"rollback:{service}:{name.value}"


class AlertSink(Protocol):
    """Where rollback alerts go."""

    def fire(self, alert: RollbackAlert, at: datetime) -> None:
        """Raise `alert` (no-op while the same alert of the service is open)."""
        ...

    def resolve(self, service: str, name: AlertName, at: datetime, note: str = "") -> None:
        """End the open alert `name` of `service`, if any."""
        ...


class LogSink:
    """Alerts as log lines only (no alerting section configured)."""

    def __init__(self) -> None:
        self._log = get_logger("rollback")

    def fire(self, alert: RollbackAlert, at: datetime) -> None:
        self._log.warning(
            "rollback_alert",
            alertname=alert.name.value,
            service=alert.service,
            summary=alert.summary,
            description=alert.description,
        )

    def resolve(self, service: str, name: AlertName, at: datetime, note: str = "") -> None:
        self._log.info("rollback_alert_resolved", alertname=name.value, service=service)


class IncidentSink:
    """Alerts as incidents of the alerting pipeline (its tracker redacts the text)."""

    def __init__(self, tracker: IncidentTracker, wake: Callable[[], None] = lambda: None) -> None:
        self._tracker = tracker
        self._wake = wake
        self._log = LogSink()

    def fire(self, alert: RollbackAlert, at: datetime) -> None:
        self._log.fire(alert, at)
        content = AlertContent(
            alert.name.value, alert.severity.value, alert.summary, alert.description
        )
        if self._tracker.open(alert.source, content, alert.labels, at) is not None:
            self._wake()

    def resolve(self, service: str, name: AlertName, at: datetime, note: str = "") -> None:
        if self._tracker.resolve(source(service, name), at, note) is not None:
            self._wake()


class SinkRef:
    """A sink chosen late (the alerting component may start, stop or reload)."""

    def __init__(self, choose: Callable[[], AlertSink]) -> None:
        self._choose = choose

    def fire(self, alert: RollbackAlert, at: datetime) -> None:
        self._choose().fire(alert, at)

    def resolve(self, service: str, name: AlertName, at: datetime, note: str = "") -> None:
        self._choose().resolve(service, name, at, note)
