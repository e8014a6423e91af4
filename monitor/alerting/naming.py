"""What an alert is called and says, derived from the check type and the failing result.

One small module on purpose: a later diagnosis step replaces `describe_failure` with
root-cause aware content. Every name comes from the AlertName registry, so each has a runbook;
links are built by `monitor.runbooks.runbook_url`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from monitor.alertnames import AlertName, Severity
from monitor.checks.base import CheckResult, CheckSpec

SEVERITY: dict[AlertName, Severity] = {
    AlertName.HEALTH_CHECK_FAILING: Severity.CRITICAL,
    AlertName.SERVICE_NOT_READY: Severity.WARNING,
    AlertName.SLOW_RESPONSES: Severity.WARNING,
    AlertName.TLS_CERTIFICATE_EXPIRING: Severity.WARNING,
    AlertName.DATABASE_CONNECTION_FAILING: Severity.CRITICAL,
    AlertName.DATABASE_SATURATED: Severity.WARNING,
    AlertName.CONTAINER_DOWN: Severity.CRITICAL,
    AlertName.CONTAINER_UNHEALTHY: Severity.CRITICAL,
    AlertName.CONTAINER_CRASH_LOOPING: Severity.CRITICAL,
    AlertName.CONTAINER_OOM_KILLED: Severity.CRITICAL,
    AlertName.ALERT_DELIVERY_FAILING: Severity.WARNING,
}


@dataclass(frozen=True)
class AlertContent:
    """Name, severity, one-sentence summary and the evidence of an alert."""

    alertname: str
    severity: str
    summary: str
    description: str


def _failed_placeholders(result: CheckResult) -> set[str]:
    text = " ".join(c.detail for c in result.failed_conditions) or result.reason
    return set(re.findall(r"\[([A-Z_]+)\]", text))


def _http_name(spec: CheckSpec, result: CheckResult) -> AlertName:
    failed = _failed_placeholders(result) if result.kind == "condition" else set()
    if failed == {"RESPONSE_TIME"}:
        return AlertName.SLOW_RESPONSES
    if failed == {"CERTIFICATE_EXPIRATION"}:
        return AlertName.TLS_CERTIFICATE_EXPIRING
    url = str(getattr(spec, "url", ""))
    if spec.name.endswith("-ready") or url.rstrip("/").endswith("/ready"):
        return AlertName.SERVICE_NOT_READY
    return AlertName.HEALTH_CHECK_FAILING


def _postgres_name(spec: CheckSpec, result: CheckResult) -> AlertName:
    saturated = "connections" in result.reason.lower() and result.connected
    return AlertName.DATABASE_SATURATED if saturated else AlertName.DATABASE_CONNECTION_FAILING


def _container_name(spec: CheckSpec, result: CheckResult) -> AlertName:
    kind = f"{result.kind} {result.reason}".lower()
    if "oom" in kind:
        return AlertName.CONTAINER_OOM_KILLED
    if "crash" in kind or "restart" in kind:
        return AlertName.CONTAINER_CRASH_LOOPING
    if "unhealthy" in kind:
        return AlertName.CONTAINER_UNHEALTHY
    return AlertName.CONTAINER_DOWN


def _generic_name(spec: CheckSpec, result: CheckResult) -> AlertName:
    return AlertName.HEALTH_CHECK_FAILING


_BY_TYPE: dict[str, Callable[[CheckSpec, CheckResult], AlertName]] = {
    "http": _http_name,
    "postgres": _postgres_name,
    "container": _container_name,
}

# {of_service}: " of service backend" or ""; {where}: "service backend" or "the target of check x".
_SUMMARY: dict[AlertName, str] = {
    AlertName.HEALTH_CHECK_FAILING: "The health check {check}{of_service} is failing.",
    AlertName.SERVICE_NOT_READY: "{where} is not ready (check {check}).",
    AlertName.SLOW_RESPONSES: "{where} answers too slowly (check {check}).",
    AlertName.TLS_CERTIFICATE_EXPIRING: "The TLS certificate checked by {check} expires soon.",
    AlertName.DATABASE_CONNECTION_FAILING: "opsmon cannot connect to the database (check {check}).",
    AlertName.DATABASE_SATURATED: "The database is close to max_connections (check {check}).",
    AlertName.CONTAINER_DOWN: "The container{of_service} is not running (check {check}).",
    AlertName.CONTAINER_UNHEALTHY: "The container{of_service} reports unhealthy (check {check}).",
    AlertName.CONTAINER_CRASH_LOOPING: "The container{of_service} crash-loops (check {check}).",
    AlertName.CONTAINER_OOM_KILLED: "The container{of_service} ran out of memory (check {check}).",
}


def describe_failure(spec: CheckSpec, result: CheckResult) -> AlertContent:
    """The alert for check `spec` failing with `result`."""
    name = _BY_TYPE.get(spec.type, _generic_name)(spec, result)
    summary = _SUMMARY[name].format(
        check=spec.name,
        of_service=f" of service {spec.service}" if spec.service else "",
        where=f"service {spec.service}" if spec.service else f"the target of check {spec.name}",
    )
    description = result.reason or f"{spec.type} check failed ({result.kind})"
    return AlertContent(
        name.value, SEVERITY[name].value, summary[0].upper() + summary[1:], description
    )


def delivery_failing(channel: str, since: datetime, error: str) -> AlertContent:
    """opsmon's own alert: a channel has not accepted notifications for a while."""
    name = AlertName.ALERT_DELIVERY_FAILING
    return AlertContent(
        name.value,
        SEVERITY[name].value,
        f"Alerts cannot be delivered to channel {channel}.",
        f"Every delivery to {channel} failed since {since.strftime('%Y-%m-%d %H:%M:%S UTC')}; "
        f"last error: {error}",
    )
