"""`type: webhook`: POSTs Alertmanager's webhook payload (version 4), so any receiver written
for Alertmanager works unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from monitor.alerting.model import AlertView, Notification
from monitor.alerting.notifiers.base import HttpChannelSpec, NotifierDeps, post_json

# Alertmanager writes Go's zero time for an alert that has not ended.
ZERO_TIME = "0001-01-01T00:00:00Z"


class WebhookSpec(HttpChannelSpec):
    """An HTTP endpoint that receives Alertmanager-style JSON."""

    type: Literal["webhook"]


def rfc3339(value: datetime | None) -> str:
    """Alertmanager's time format; the zero time for None."""
    if value is None:
        return ZERO_TIME
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert_annotations(alert: AlertView) -> dict[str, str]:
    """summary, description, runbook_url (and the inhibited dependents and who acknowledged
    it, if any)."""
    result = {
        "summary": alert.summary,
        "description": alert.description,
        "runbook_url": alert.runbook_url,
    }
    if alert.affected:
        result["affected"] = ", ".join(alert.affected)
    if alert.acked_by:
        result["acknowledged_by"] = alert.acked_by
    return result


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    """The key/value pairs that every map has."""
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common


def payload(notification: Notification, receiver: str) -> dict[str, Any]:
    """The Alertmanager webhook payload (version 4) plus opsmon's notification id and reason."""
    alerts: list[dict[str, Any]] = [
        {
            "status": alert.status.value,
            "labels": dict(alert.labels),
            "annotations": alert_annotations(alert),
            "startsAt": rfc3339(alert.starts_at),
            "endsAt": rfc3339(alert.ends_at),
            "generatorURL": notification.external_url,
            "fingerprint": alert.fingerprint,
        }
        for alert in notification.alerts
    ]
    return {
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": 0,
        "status": notification.status.value,
        "receiver": receiver,
        "groupLabels": dict(notification.group_labels),
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": notification.external_url,
        "alerts": alerts,
        "notificationId": notification.id,
        "reason": notification.reason.value,
    }


class WebhookNotifier:
    """POSTs each notification as JSON, with the configured headers."""

    def __init__(self, spec: WebhookSpec, deps: NotifierDeps) -> None:
        self.spec = spec
        self._client = deps.http.get(spec.verify_tls)
        self._clock = deps.clock
        self._timeout = deps.timeout

    async def send(self, notification: Notification) -> None:
        headers = {"X-Opsmon-Notification-Id": notification.id, **self.spec.headers}
        await post_json(
            self._client,
            self.spec.url,
            payload(notification, self.spec.name),
            headers=headers,
            request_timeout=self._timeout,
            clock=self._clock,
            what=f"webhook {self.spec.name}",
        )


def build(spec: WebhookSpec, deps: NotifierDeps) -> WebhookNotifier:
    """Registry entry point."""
    return WebhookNotifier(spec, deps)
