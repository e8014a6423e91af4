"""Plain-text rendering shared by the channels: headlines, subjects, and a message body."""

from __future__ import annotations

from datetime import datetime

from monitor.alerting.model import AlertView, Notification, Reason, Status

MAX_LISTED = 3


def timestamp(value: datetime) -> str:
    """`2026-01-02 03:04:05 UTC`."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def alert_title(alert: AlertView) -> str:
    """`DatabaseConnectionFailing: database (backend)`."""
    service = f" ({alert.service})" if alert.service else ""
    return f"{alert.alertname}: {alert.check}{service}"


def _listed(values: list[str]) -> str:
    unique = list(dict.fromkeys(values))
    if len(unique) <= MAX_LISTED:
        return ", ".join(unique)
    return ", ".join(unique[:MAX_LISTED]) + f" and {len(unique) - MAX_LISTED} more"


def headline(notification: Notification) -> str:
    """`[FIRING] DatabaseConnectionFailing: database (backend)`; `[FIRING:2] ...` for a group."""
    status = notification.status
    shown = notification.firing if status is Status.FIRING else notification.resolved
    shown = shown or notification.alerts
    tag = status.value.upper() + (f":{len(shown)}" if len(shown) > 1 else "")
    if len(shown) == 1:
        text = alert_title(shown[0])
    else:
        services = _listed([a.service for a in shown if a.service])
        text = f"{_listed([a.alertname for a in shown])}: {_listed([a.check for a in shown])}" + (
            f" ({services})" if services else ""
        )
    suffix = " (reminder)" if notification.reason is Reason.REMINDER else ""
    return f"[{tag}] {text}{suffix}"


def alert_lines(alert: AlertView) -> list[str]:
    """A few lines describing one alert, the evidence and the runbook included."""
    lines = [
        f"[{alert.status.value.upper()}] {alert_title(alert)} - {alert.severity}",
        f"Summary: {alert.summary}",
        f"Evidence: {alert.description}",
        f"Started: {timestamp(alert.starts_at)}",
    ]
    if alert.status is Status.RESOLVED and alert.ends_at is not None:
        lines.append(f"Resolved: {timestamp(alert.ends_at)}")
    if alert.affected:
        lines.append(f"Affected (inhibited): {', '.join(alert.affected)}")
    if alert.acked_by:
        when = f" at {timestamp(alert.acked_at)}" if alert.acked_at else ""
        lines.append(f"Acknowledged: by {alert.acked_by}{when}")
    lines.append(f"Runbook: {alert.runbook_url}")
    return lines


def body(notification: Notification) -> str:
    """The whole notification as plain text."""
    parts = [headline(notification), ""]
    for alert in notification.alerts:
        parts.extend([*alert_lines(alert), ""])
    parts.append(f"Notification id: {notification.id}")
    if notification.external_url:
        parts.append(f"opsmon: {notification.external_url}")
    return "\n".join(parts) + "\n"
