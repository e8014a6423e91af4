"""Alerting inside a real `opsmon run`: real targets flipped healthy/unhealthy, real receivers,
SIGKILL and restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import running_daemon
from tests.support.environment import free_port
from tests.support.receiver import FlipTarget, Receiver
from tests.support.smtp import SmtpServer
from tests.support.waiting import wait_until


@pytest.fixture
def target() -> Iterator[FlipTarget]:
    """A health endpoint the test flips."""
    server = FlipTarget().start()
    yield server
    server.stop()


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    """The webhook receiver."""
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def slack() -> Iterator[Receiver]:
    """The stand-in for Slack's incoming webhook."""
    server = Receiver().start()
    yield server
    server.stop()


def write_config(tmp_path: Path, target: FlipTarget, alerting: dict[str, Any]) -> Path:
    """A config with one fast HTTP check of service `web` and the given alerting section."""
    config = {
        "state_dir": str(tmp_path / "state"),
        "public_url": "http://opsmon.test:9110",
        "defaults": {
            "interval": "200ms",
            "timeout": "150ms",
            "failure_threshold": 2,
            "success_threshold": 2,
        },
        "checks": [{"name": "web", "type": "http", "service": "web", "url": target.url}],
        "alerting": {"group_wait": "0s", "group_interval": "300ms", **alerting},
    }
    path = tmp_path / "opsmon.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def statuses(receiver: Receiver) -> list[str]:
    """The status of every accepted notification, in order."""
    return [r.json["status"] for r in receiver.accepted()]


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    """A real SMTP server with STARTTLS and AUTH."""
    server = SmtpServer(tmp_path, "starttls", password="smtp-Pa55-canary").start()
    yield server
    server.stop()


def test_threshold_crossing_sends_one_firing_and_one_resolved_per_channel(
    tmp_path: Path, target: FlipTarget, hooks: Receiver, slack: Receiver, smtp: SmtpServer
) -> None:
    """Down then up: each channel gets exactly one FIRING and one RESOLVED."""
    config = write_config(
        tmp_path,
        target,
        {
            "channels": [
                {"name": "hooks", "type": "webhook", "url": hooks.url()},
                {"name": "chat", "type": "slack", "webhook_url": slack.url("/services/T0/B0/x")},
                {
                    "name": "mail",
                    "type": "email",
                    "smtp": smtp.smtp_config(),
                    "from": "opsmon@example.com",
                    "to": ["oncall@example.com"],
                },
            ]
        },
    )
    with running_daemon(config, free_port()):
        target.healthy = False
        hooks.wait_accepted(1)
        slack.wait_accepted(1)
        smtp.wait_messages(1)
        target.healthy = True
        hooks.wait_accepted(2)
        slack.wait_accepted(2)
        smtp.wait_messages(2)
        # Let several more check rounds and group intervals pass: nothing else may arrive.
        hits = target.hits()
        wait_until(lambda: target.hits() >= hits + 10, timeout=10)
    assert statuses(hooks) == ["firing", "resolved"]
    assert [r.json["text"].split(" ")[0] for r in slack.accepted()] == ["[FIRING]", "[RESOLVED]"]
    assert [m["Subject"] for m in smtp.messages] == [
        "[FIRING] HealthCheckFailing: web (web)",
        "[RESOLVED] HealthCheckFailing: web (web)",
    ]
    firing = hooks.accepted()[0].json["alerts"][0]
    assert firing["labels"] == {
        "alertname": "HealthCheckFailing",
        "severity": "critical",
        "check": "web",
        "service": "web",
    }
    assert firing["annotations"]["runbook_url"] == (
        "http://opsmon.test:9110/runbooks/health-check-failing"
    )
    assert "[STATUS] (503)" in firing["annotations"]["description"]
