"""Alert names, severities, summaries and runbook links derived from the failing check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.alerting.incidents import IncidentTracker
from monitor.alerting.naming import describe_failure
from monitor.alerting.store import AlertingStore
from monitor.checks.http import HttpSpec
from monitor.conditions import ConditionResult
from monitor.core.health import Health
from monitor.core.result import CheckResult
from monitor.core.spec import CheckSpec
from monitor.diagnosis import CheckView, Snapshot, localized
from monitor.metrics import Metrics
from monitor.redaction import Redactor
from monitor.runbooks import Catalogue, load_catalogue


def _http(name: str = "backend-health", url: str = "http://b:4000/api/health") -> HttpSpec:
    return HttpSpec(name=name, type="http", url=url, service="backend")


def _condition(detail: str) -> CheckResult:
    """A failed run whose one failed condition reads `detail` (as the HTTP check reports it)."""
    placeholders = frozenset(re.findall(r"\[([A-Z_]+)\]", detail))
    failed = ConditionResult(detail, False, detail, placeholders)
    return CheckResult.failure("condition", detail, failed_conditions=(failed,))


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    """The runbooks/ catalogue, parsed once."""
    return load_catalogue()


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
    spec: CheckSpec, result: CheckResult, name: str, catalogue: Catalogue
) -> None:
    """Each failure gets the alert an operator would look for, with the runbook's severity,
    the failure as evidence and the runbook's first command, with the check's own URL."""
    content = describe_failure(spec, result, catalogue=catalogue)
    runbook = catalogue.for_alert(name)
    assert runbook is not None
    assert content.alertname == name
    assert content.severity == runbook.severity.value
    assert result.reason in content.description
    url = getattr(spec, "url", None)
    commands = [localized(step, url) for step in runbook.steps]
    assert any(f"First step: {c.command}" in content.description for c in commands if c)
    assert "backend:4000" not in content.description or url is None


def test_summary_is_one_sentence_naming_the_service() -> None:
    """The summary reads as one sentence naming the failing service or check."""
    content = describe_failure(_http(), _condition("[STATUS] (503) == 200"))
    assert content.summary.endswith(".") and content.summary.count(". ") == 0
    assert "backend" in content.summary


def test_a_symptom_is_described_by_its_root_cause(catalogue: Catalogue) -> None:
    """A backend failing while the database it depends on is down is described as the
    database outage, listing the backend as affected."""
    backend = HttpSpec(
        name="backend-health",
        type="http",
        url="http://b/api/health",
        service="backend",
        depends_on=("database",),
    )
    database = CheckSpec(name="database", type="postgres", service="db")
    down = CheckResult.failure("connection_refused", "connection refused by db:5432")
    failing = _condition("[STATUS] (503) == 200")
    snapshot = Snapshot(
        [
            CheckView.of(database, Health.UNHEALTHY, down),
            CheckView.of(backend, Health.UNHEALTHY, failing),
        ]
    )
    content = describe_failure(backend, failing, snapshot, catalogue)
    assert content.alertname == "DatabaseConnectionFailing"
    assert "Affected: backend-health" in content.description
    assert "connection refused by db:5432" in content.description


def test_runbook_links_follow_the_template_or_the_public_url(tmp_path: Path) -> None:
    """Links use runbook_url_template when set, else the opsmon server's /runbooks/ pages."""
    store = AlertingStore.open(tmp_path)
    tracker = IncidentTracker(store, Metrics(), Redactor(), "http://opsmon:9110/")
    assert tracker.runbook_link("TLSCertificateExpiring") == (
        "http://opsmon:9110/runbooks/tls-certificate-expiring"
    )
    tracker.runbook_template = "https://wiki.example.com/ops/{id}.md"
    assert tracker.runbook_link("ContainerOOMKilled") == (
        "https://wiki.example.com/ops/container-oom-killed.md"
    )
    store.close()
