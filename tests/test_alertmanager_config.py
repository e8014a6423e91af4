"""The example Alertmanager config: accepted by the real amtool and routing opsmon's alerts by
severity."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.support.deploy_artifacts import ALERTMANAGER_CONFIG
from tests.support.environment import missing


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real amtool (Debian package prometheus-alertmanager)."""
    if shutil.which("amtool") is None:
        missing("amtool (Debian package prometheus-alertmanager)")
    return subprocess.run(
        ["amtool", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_amtool_accepts_the_config() -> None:
    """`amtool check-config` accepts alertmanager.yml."""
    result = amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical", "alertname=DatabaseConnectionFailing"], "oncall-pager,team-chat"),
        (["severity=warning", "alertname=SlowResponses"], "team-chat"),
        (["severity=info", "alertname=RollbackPerformed"], "audit-log"),
        (["alertname=SomethingUnlabelled"], "team-chat"),
    ],
)
def test_alerts_are_routed_by_severity(labels: list[str], receivers: str) -> None:
    """Critical pages on-call (and tells the team), warning goes to the team, info to the log."""
    result = amtool("config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receivers


def test_no_secret_is_written_in_the_config() -> None:
    """The Slack webhook URL is read from a mounted file, not written into the config."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    slack = [s for r in config["receivers"] for s in r.get("slack_configs", [])]
    assert slack and all("api_url" not in s and s["api_url_file"] for s in slack)
    assert "hooks.slack.com" not in ALERTMANAGER_CONFIG.read_text()
