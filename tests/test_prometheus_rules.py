"""The shipped Prometheus scrape config and alert rules: checked and unit-tested with the real
promtool, and matched against opsmon's alert names, runbooks and metrics."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.support.deploy_artifacts import (
    RULES_FILE,
    RULES_TEST_FILE,
    RUNBOOKS_DIR,
    SCRAPE_CONFIG,
    alert_rules,
    runbook_for_alert,
)
from tests.support.environment import missing
from tests.support.promql import impossible_values, known_series, unknown_names

# The alert names of DESIGN.md and the runbooks issue; the runbooks' front matter may add more.
ALERT_NAMES = {
    "HealthCheckFailing",
    "ServiceNotReady",
    "SlowResponses",
    "TLSCertificateExpiring",
    "DatabaseConnectionFailing",
    "DatabaseSaturated",
    "EnvironmentVariablesMissing",
    "ContainerDown",
    "ContainerUnhealthy",
    "ContainerCrashLooping",
    "ContainerOOMKilled",
    "DockerApiUnavailable",
    "AlertDeliveryFailing",
    "MonitorDown",
    "RollbackFailed",
}
# Alerts only opsmon itself can raise: no metric shows their cause.
_GATE = "the deploy gate is a pipeline step, not scraped: its verdict goes out as this alert"
NO_METRIC_FOR = {
    "BadImageRedeployed": "no metric tells that a rolled-back image runs again",
    "DeployPromoted": _GATE,
    "DeployRolledBack": _GATE,
    "DeployGateFailed": _GATE,
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real promtool."""
    if shutil.which("promtool") is None:
        missing("promtool (Debian package prometheus)")
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_scrape_config() -> None:
    """`promtool check config` accepts prometheus.yml, including the rule files it names."""
    result = promtool("check", "config", str(SCRAPE_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_promtool_accepts_the_rules() -> None:
    """`promtool check rules` finds every alert rule and no lint problem."""
    result = promtool("check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    """`promtool test rules`: each alert fires on its failure with the expected labels and text."""
    result = promtool("test", "rules", str(RULES_TEST_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_unit_test() -> None:
    """The unit tests make every alert fire at least once."""
    tests = yaml.safe_load(RULES_TEST_FILE.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in alert_rules()} - fired == set()


def test_every_opsmon_alert_name_has_a_rule() -> None:
    """A rule exists for each alert opsmon names and for each alert a runbook documents."""
    names = {rule["alert"] for rule in alert_rules()}
    assert ALERT_NAMES - names == set()
    assert set(runbook_for_alert()) - set(NO_METRIC_FOR) - names == set()
    assert names - set(runbook_for_alert()) == set(), "a rule without a runbook"
    assert set(NO_METRIC_FOR) <= set(runbook_for_alert()), "exempted alert no longer exists"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_rule_has_runbook_severity_and_annotations(rule: dict[str, object]) -> None:
    """Each rule has a summary, a description, its runbook's severity and a link to that runbook."""
    runbook = runbook_for_alert()[str(rule["alert"])]
    labels = rule["labels"]
    annotations = rule["annotations"]
    assert isinstance(labels, dict) and isinstance(annotations, dict)
    assert labels["severity"] == runbook.severity
    assert annotations["summary"].strip() and annotations["description"].strip()
    url = annotations["runbook_url"]
    assert re.fullmatch(rf"https?://[^\s]+/runbooks/{re.escape(runbook.id)}", url), url
    assert (RUNBOOKS_DIR / f"{runbook.id}.md").is_file()


def test_monitor_down_covers_a_failed_scrape_and_a_missing_target() -> None:
    """MonitorDown fires when opsmon's scrape fails and when no opsmon target exists at all."""
    (rule,) = [r for r in alert_rules() if r["alert"] == "MonitorDown"]
    expr = " ".join(rule["expr"].split())
    assert 'up{job="opsmon"} == 0' in expr
    assert 'absent(up{job="opsmon"})' in expr


def test_delivery_failures_have_a_rule() -> None:
    """AlertDeliveryFailing reads opsmon_alert_delivery_failures_total."""
    (rule,) = [r for r in alert_rules() if r["alert"] == "AlertDeliveryFailing"]
    assert "opsmon_alert_delivery_failures_total" in rule["expr"]


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_rule_reads_only_metrics_and_labels_opsmon_has(rule: dict[str, str]) -> None:
    """Every metric and label a rule selects is defined in monitor/metrics.py (or is `up`)."""
    assert unknown_names(rule["expr"], known_series()) == []
    assert impossible_values(rule["expr"]) == []


def test_the_scrape_job_is_the_one_the_rules_watch() -> None:
    """The shipped scrape config has the `opsmon` job that MonitorDown and the dashboard select."""
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["opsmon"].get("metrics_path", "/metrics") == "/metrics"
    assert jobs["opsmon"]["static_configs"][0]["targets"] == ["opsmon:9110"]
