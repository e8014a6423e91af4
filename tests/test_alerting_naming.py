"""Alert names, severities, summaries and runbook links derived from the failing check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.alerting.naming import SEVERITY, describe_failure, runbook_id, runbook_url
from monitor.checks.base import CheckResult, CheckSpec
from monitor.checks.http import HttpSpec

RUNBOOKS = Path(__file__).resolve().parent.parent / "runbooks"


def _http(name: str = "backend-health", url: str = "http://b:4000/api/health") -> HttpSpec:
    return HttpSpec(name=name, type="http", url=url, service="backend")


def _condition(detail: str) -> CheckResult:
    return CheckResult.failure("condition", detail)


@pytest.mark.parametrize(
    ("spec", "result", "name"),
    [
        (_http(), _condition("[STATUS] (503) == 200"), "HealthCheckFailing"),
        (_http(), CheckResult.failure("connection_refused", "refused"), "HealthCheckFailing"),
        (_http(), _condition("[RESPONSE_TIME] (2100.0) < 1500"), "SlowResponses"),
        (
            _http(),
            _condition("[CERTIFICATE_EXPIRATION] (100) > 604800000"),
            "TLSCertificateExpiring",
        ),
        (_http("backend-ready", "http://b:4000/api/ready"), _condition("x"), "ServiceNotReady"),
        (
            CheckSpec(name="database", type="postgres", service="db"),
            CheckResult.failure("connect", "connection refused by db:5432"),
            "DatabaseConnectionFailing",
        ),
        (
            CheckSpec(name="backend-container", type="container", service="backend"),
            CheckResult.failure("oom", "killed: out of memory"),
            "ContainerOOMKilled",
        ),
        (
            CheckSpec(name="backend-container", type="container", service="backend"),
            CheckResult.failure("exited", "exited with code 1"),
            "ContainerDown",
        ),
    ],
)
def test_alert_name_follows_check_type_and_failure(
    spec: CheckSpec, result: CheckResult, name: str
) -> None:
    """Each failure gets the alert an operator would look for."""
    content = describe_failure(spec, result)
    assert content.alertname == name
    assert content.severity == SEVERITY[name]
    assert content.description == result.reason


def test_summary_is_one_sentence_naming_check_and_service() -> None:
    """The summary reads as one sentence with the check and the service."""
    content = describe_failure(_http(), _condition("[STATUS] (503) == 200"))
    assert content.summary == "The health check backend-health of service backend is failing."


def test_runbook_links() -> None:
    """Links use the template when set, else the opsmon server's /runbooks/ pages."""
    assert runbook_id("TLSCertificateExpiring") == "tls-certificate-expiring"
    assert runbook_id("ContainerOOMKilled") == "container-oom-killed"
    assert runbook_url("DatabaseConnectionFailing", "http://opsmon:9110/") == (
        "http://opsmon:9110/runbooks/database-connection-failing"
    )
    assert runbook_url("ContainerDown", "x", "https://wiki/ops/{id}.md") == (
        "https://wiki/ops/container-down.md"
    )


@pytest.mark.parametrize("name", sorted(SEVERITY))
def test_every_alert_name_has_a_runbook_with_its_severity(name: str) -> None:
    """Every alert alerting can send links to a runbook that exists, with the same severity."""
    path = RUNBOOKS / f"{runbook_id(name)}.md"
    assert path.exists(), path
    front = path.read_text().split("---")[1]
    assert re.search(rf"^severity: {SEVERITY[name]}$", front, re.M)
    assert name in front
