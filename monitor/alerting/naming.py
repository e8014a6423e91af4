"""What an alert is called and says, derived from the check type and the failing result.

One small module on purpose: a later diagnosis step replaces `describe_failure` with
root-cause aware content. Every name produced here has a runbook in runbooks/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from monitor.checks.base import CheckResult, CheckSpec

SEVERITY = {
    "HealthCheckFailing": "critical",
    "ServiceNotReady": "warning",
    "SlowResponses": "warning",
    "TLSCertificateExpiring": "warning",
    "DatabaseConnectionFailing": "critical",
    "DatabaseSaturated": "warning",
    "ContainerDown": "critical",
    "ContainerUnhealthy": "critical",
    "ContainerCrashLooping": "critical",
    "ContainerOOMKilled": "critical",
    "AlertDeliveryFailing": "warning",
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


def _http_name(spec: CheckSpec, result: CheckResult) -> str:
    failed = _failed_placeholders(result) if result.kind == "condition" else set()
    if failed == {"RESPONSE_TIME"}:
        return "SlowResponses"
    if failed == {"CERTIFICATE_EXPIRATION"}:
        return "TLSCertificateExpiring"
    url = str(getattr(spec, "url", ""))
    if spec.name.endswith("-ready") or url.rstrip("/").endswith("/ready"):
        return "ServiceNotReady"
    return "HealthCheckFailing"


def _postgres_name(spec: CheckSpec, result: CheckResult) -> str:
    saturated = "connections" in result.reason.lower() and result.connected
    return "DatabaseSaturated" if saturated else "DatabaseConnectionFailing"


def _container_name(spec: CheckSpec, result: CheckResult) -> str:
    kind = f"{result.kind} {result.reason}".lower()
    if "oom" in kind:
        return "ContainerOOMKilled"
    if "crash" in kind or "restart" in kind:
        return "ContainerCrashLooping"
    if "unhealthy" in kind:
        return "ContainerUnhealthy"
    return "ContainerDown"


def _generic_name(spec: CheckSpec, result: CheckResult) -> str:
    return "HealthCheckFailing"


_BY_TYPE: dict[str, Callable[[CheckSpec, CheckResult], str]] = {
    "http": _http_name,
    "postgres": _postgres_name,
    "container": _container_name,
}

_SUMMARY = {
    "HealthCheckFailing": "The health check {check} of {where} is failing.",
    "ServiceNotReady": "{where} is not ready (check {check}).",
    "SlowResponses": "{where} answers too slowly (check {check}).",
    "TLSCertificateExpiring": "The TLS certificate checked by {check} expires soon.",
    "DatabaseConnectionFailing": "opsmon cannot connect to the database (check {check}).",
    "DatabaseSaturated": "The database is close to max_connections (check {check}).",
    "ContainerDown": "The container of {where} is not running (check {check}).",
    "ContainerUnhealthy": "The container of {where} reports unhealthy (check {check}).",
    "ContainerCrashLooping": "The container of {where} keeps restarting (check {check}).",
    "ContainerOOMKilled": "The container of {where} was killed for running out of memory.",
}


def describe_failure(spec: CheckSpec, result: CheckResult) -> AlertContent:
    """The alert for check `spec` failing with `result`."""
    name = _BY_TYPE.get(spec.type, _generic_name)(spec, result)
    where = f"service {spec.service}" if spec.service else spec.name
    summary = _SUMMARY[name].format(check=spec.name, where=where)
    description = result.reason or f"{spec.type} check failed ({result.kind})"
    return AlertContent(name, SEVERITY[name], summary[0].upper() + summary[1:], description)


def delivery_failing(channel: str, since: datetime, error: str) -> AlertContent:
    """opsmon's own alert: a channel has not accepted notifications for a while."""
    return AlertContent(
        "AlertDeliveryFailing",
        SEVERITY["AlertDeliveryFailing"],
        f"Alerts cannot be delivered to channel {channel}.",
        f"Every delivery to {channel} failed since {since.strftime('%Y-%m-%d %H:%M:%S UTC')}; "
        f"last error: {error}",
    )


def runbook_id(alertname: str) -> str:
    """`DatabaseConnectionFailing` -> `database-connection-failing` (`TLS...` -> `tls-...`)."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", alertname)
    return words.lower()


def runbook_url(alertname: str, public_url: str, template: str | None = None) -> str:
    """`runbook_url_template` with {id}, else `{public_url}/runbooks/{id}`."""
    rid = runbook_id(alertname)
    if template:
        return template.replace("{id}", rid)
    return f"{public_url.rstrip('/')}/runbooks/{rid}"
