"""Alert names, severities, summaries and runbook links derived from the failing check."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.alerting.incidents import IncidentTracker
from monitor.alerting.naming import SEVERITY, describe_failure
from monitor.alertnames import AlertName
from monitor.checks.base import CheckResult, CheckSpec
from monitor.checks.http import HttpSpec
from monitor.metrics import Metrics
from monitor.redaction import Redactor
from monitor.runbooks import Catalogue, load_catalogue
from monitor.store import Store


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
    """The summary reads as one sentence with the check and, when it has one, the service."""
    content = describe_failure(_http(), _condition("[STATUS] (503) == 200"))
    assert content.summary == "The health check backend-health of service backend is failing."
    lone = HttpSpec(name="worker-ready", type="http", url="http://w/ready")
    assert describe_failure(lone, _condition("x")).summary == (
        "The target of check worker-ready is not ready (check worker-ready)."
    )


def test_runbook_links_follow_the_template_or_the_public_url(tmp_path: Path) -> None:
    """Links use runbook_url_template when set, else the opsmon server's /runbooks/ pages."""
    store = Store.open(tmp_path)
    tracker = IncidentTracker(store, Metrics(), Redactor(), "http://opsmon:9110/")
    assert tracker.runbook_link("TLSCertificateExpiring") == (
        "http://opsmon:9110/runbooks/tls-certificate-expiring"
    )
    tracker.runbook_template = "https://wiki.example.com/ops/{id}.md"
    assert tracker.runbook_link("ContainerOOMKilled") == (
        "https://wiki.example.com/ops/container-oom-killed.md"
    )
    store.close()


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    """The runbooks/ catalogue, parsed once."""
    return load_catalogue()


@pytest.mark.parametrize("name", sorted(SEVERITY))
def test_every_alert_name_has_a_runbook_with_its_severity(
    name: AlertName, catalogue: Catalogue
) -> None:
    """Every alert alerting can send has a runbook with the same severity."""
    runbook = catalogue.for_alert(name)
    assert runbook is not None, name
    assert runbook.severity == SEVERITY[name]
