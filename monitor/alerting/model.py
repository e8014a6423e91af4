"""What alerting talks about: incidents (durable) and the notifications sent about them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """The status of an incident, of an alert in a notification, or of a whole notification."""

    FIRING = "firing"
    RESOLVED = "resolved"


class Reason(StrEnum):
    """Why a notification was sent."""

    NEW = "new"  # the group's alerts changed: something started firing or resolved
    REMINDER = "reminder"  # nothing changed, the group is still firing (repeat_interval)


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit id of a label set (the same role as Alertmanager's fingerprint)."""
    text = json.dumps(dict(sorted(labels.items())), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def labels_match(matchers: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Every matcher holds; a matcher value `a|b` accepts either (a missing label is "")."""
    return all(labels.get(key, "") in value.split("|") for key, value in matchers.items())


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _parse_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass
class Incident:
    """One stretch of a check (or of opsmon itself) being unhealthy, from firing to resolved.

    `source` is the check name, or `channel:<name>` for opsmon's own AlertDeliveryFailing.
    `notified` records what the receivers were last told (None: nothing yet), so a restart
    never sends a second FIRING; `suppressed` says why it is held back (silenced, inhibited).
    """

    id: str
    source: str
    alertname: str
    severity: str
    summary: str
    description: str
    runbook_url: str
    labels: dict[str, str]
    started_at: datetime
    status: Status = Status.FIRING
    ended_at: datetime | None = None
    notified: Status | None = None
    suppressed: str | None = None
    acked_by: str | None = None  # who acknowledged it (API token name): no more reminders
    acked_at: datetime | None = None

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the labels (the same for every incident of the same alert)."""
        return fingerprint(self.labels)

    @property
    def check(self) -> str | None:
        """The check it is about (None for opsmon's own alerts)."""
        return self.labels.get("check")


@dataclass(frozen=True)
class AlertView:
    """One alert as a notification carries it."""

    incident_id: str
    fingerprint: str
    status: Status
    alertname: str
    severity: str
    summary: str
    description: str
    runbook_url: str
    labels: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None = None
    affected: tuple[str, ...] = ()  # dependents inhibited because of this alert
    acked_by: str | None = None
    acked_at: datetime | None = None

    @classmethod
    def of(cls, incident: Incident, affected: tuple[str, ...] = ()) -> AlertView:
        """The view of `incident` as it stands now."""
        return cls(
            incident_id=incident.id,
            fingerprint=incident.fingerprint,
            status=incident.status,
            alertname=incident.alertname,
            severity=incident.severity,
            summary=incident.summary,
            description=incident.description,
            runbook_url=incident.runbook_url,
            labels=dict(incident.labels),
            starts_at=incident.started_at,
            ends_at=incident.ended_at,
            affected=affected,
            acked_by=incident.acked_by,
            acked_at=incident.acked_at,
        )

    @property
    def check(self) -> str:
        """The check label, or the alert name for opsmon's own alerts."""
        return self.labels.get("check") or self.labels.get("channel") or self.alertname

    @property
    def service(self) -> str | None:
        """The service label, if any."""
        return self.labels.get("service")

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "incident_id": self.incident_id,
            "fingerprint": self.fingerprint,
            "status": self.status.value,
            "alertname": self.alertname,
            "severity": self.severity,
            "summary": self.summary,
            "description": self.description,
            "runbook_url": self.runbook_url,
            "labels": dict(self.labels),
            "starts_at": _time(self.starts_at),
            "ends_at": _time(self.ends_at),
            "affected": list(self.affected),
            "acked_by": self.acked_by,
            "acked_at": _time(self.acked_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertView:
        """The inverse of `to_dict`."""
        starts_at = _parse_time(data["starts_at"])
        assert starts_at is not None
        return cls(
            incident_id=data["incident_id"],
            fingerprint=data["fingerprint"],
            status=Status(data["status"]),
            alertname=data["alertname"],
            severity=data["severity"],
            summary=data["summary"],
            description=data["description"],
            runbook_url=data["runbook_url"],
            labels=dict(data["labels"]),
            starts_at=starts_at,
            ends_at=_parse_time(data.get("ends_at")),
            affected=tuple(data.get("affected", ())),
            acked_by=data.get("acked_by"),
            acked_at=_parse_time(data.get("acked_at")),
        )


@dataclass(frozen=True)
class Notification:
    """One message to one channel about one group of alerts.

    `id` is stable across retries and restarts, so receivers can drop duplicates.
    """

    id: str
    channel: str
    group_key: str
    group_labels: Mapping[str, str]
    status: Status
    reason: Reason
    alerts: tuple[AlertView, ...]
    created_at: datetime
    external_url: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def firing(self) -> tuple[AlertView, ...]:
        """The alerts still firing."""
        return tuple(a for a in self.alerts if a.status is Status.FIRING)

    @property
    def resolved(self) -> tuple[AlertView, ...]:
        """The alerts that resolved since the group's previous notification."""
        return tuple(a for a in self.alerts if a.status is Status.RESOLVED)

    def to_json(self) -> str:
        """Serialized for the outbox."""
        return json.dumps(
            {
                "id": self.id,
                "channel": self.channel,
                "group_key": self.group_key,
                "group_labels": dict(self.group_labels),
                "status": self.status.value,
                "reason": self.reason.value,
                "alerts": [a.to_dict() for a in self.alerts],
                "created_at": _time(self.created_at),
                "external_url": self.external_url,
                "extra": dict(self.extra),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Notification:
        """The inverse of `to_json`."""
        data = json.loads(text)
        created_at = _parse_time(data["created_at"])
        assert created_at is not None
        return cls(
            id=data["id"],
            channel=data["channel"],
            group_key=data["group_key"],
            group_labels=dict(data["group_labels"]),
            status=Status(data["status"]),
            reason=Reason(data["reason"]),
            alerts=tuple(AlertView.from_dict(a) for a in data["alerts"]),
            created_at=created_at,
            external_url=data.get("external_url", ""),
            extra=dict(data.get("extra", {})),
        )


@dataclass(frozen=True)
class Ack:
    """Someone acknowledged the firing incident of `source` at `acked_at`.

    Shared between the instances of a cluster: an instance holds to an ack made elsewhere on
    its own firing incident of the same source that had started by the time of the ack.
    """

    source: str
    acked_by: str
    acked_at: datetime


@dataclass(frozen=True)
class Silence:
    """Alerts whose labels match every matcher are not sent between `starts_at` and `ends_at`.

    A matcher value is one label value, or several separated by `|` (any of them matches).
    `origin` is `cli` (stored), `config` (the config file) or `maintenance` (a recurring window).
    """

    id: str
    matchers: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime
    comment: str = ""
    created_by: str = ""
    created_at: datetime | None = None
    origin: str = "cli"

    def active(self, now: datetime) -> bool:
        """Whether it silences alerts at `now`."""
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher holds for `labels`."""
        return labels_match(self.matchers, labels)

    def state(self, now: datetime) -> str:
        """`pending`, `active` or `expired` at `now`."""
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"


@dataclass(frozen=True)
class OutboxEntry:
    """A notification waiting in (or delivered from) the outbox."""

    notification: Notification
    attempts: int
    next_attempt_at: datetime
    state: str  # pending | delivered | dropped
    last_error: str | None = None

    @property
    def id(self) -> str:
        """The notification id."""
        return self.notification.id
