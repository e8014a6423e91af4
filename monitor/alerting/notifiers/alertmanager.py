"""`type: alertmanager`: pushes alerts to an Alertmanager's `POST /api/v2/alerts`, so teams
that route with Alertmanager keep doing so. Firing alerts are pushed again every
`repeat_interval` (default 1m) so Alertmanager keeps them active; a resolve sets `endsAt`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from monitor.alerting.model import Notification, Status
from monitor.alerting.notifiers.base import HttpChannelSpec, NotifierDeps, post_json
from monitor.alerting.notifiers.webhook import alert_annotations, rfc3339
from monitor.core.duration_fields import PositiveDuration

# A firing alert stays active in Alertmanager this many repeat intervals without a re-push
# (Prometheus uses the same factor), so an opsmon that died lets its alerts resolve.
_ENDS_AFTER_REPEATS = 4


class AlertmanagerSpec(HttpChannelSpec):
    """An Alertmanager base URL, e.g. http://alertmanager:9093."""

    type: Literal["alertmanager"]
    repeat_interval: PositiveDuration | None = 60.0
    send_resolved: bool | None = True  # Alertmanager needs endsAt to resolve an alert


class AlertmanagerNotifier:
    """Posts the alerts of each notification; Alertmanager groups and routes them itself."""

    def __init__(self, spec: AlertmanagerSpec, deps: NotifierDeps) -> None:
        self.spec = spec
        self._client = deps.http.get(spec.verify_tls)
        self._clock = deps.clock
        self._timeout = deps.timeout
        self._url = spec.url.rstrip("/") + "/api/v2/alerts"

    def alerts(self, notification: Notification) -> list[dict[str, Any]]:
        """The body of `POST /api/v2/alerts`."""
        repeat = self.spec.repeat_interval or 60.0
        active_until = self._clock.now() + timedelta(seconds=repeat * _ENDS_AFTER_REPEATS)
        result: list[dict[str, Any]] = []
        for alert in notification.alerts:
            ends = alert.ends_at if alert.status is Status.RESOLVED else active_until
            item: dict[str, Any] = {
                "labels": {"alertname": alert.alertname, **dict(alert.labels)},
                "annotations": alert_annotations(alert),
                "startsAt": rfc3339(alert.starts_at),
                "endsAt": rfc3339(ends),
            }
            if notification.external_url:
                item["generatorURL"] = notification.external_url
            result.append(item)
        return result

    async def send(self, notification: Notification) -> None:
        await post_json(
            self._client,
            self._url,
            self.alerts(notification),
            headers=self.spec.headers,
            request_timeout=self._timeout,
            clock=self._clock,
            what=f"alertmanager {self.spec.name}",
        )


def build(spec: AlertmanagerSpec, deps: NotifierDeps) -> AlertmanagerNotifier:
    """Registry entry point."""
    return AlertmanagerNotifier(spec, deps)
