"""The alertmanager channel against a real Alertmanager: the alert appears with its runbook
link, is re-sent while firing, and resolves (Alertmanager then notifies its own receiver)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.alerting import FakeClock, Harness, alerting_config, http_check
from tests.support.alertmanager import Alertmanager, running_alertmanager
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until


@pytest.fixture
def am_receiver() -> Iterator[Receiver]:
    """Where Alertmanager itself sends its notifications."""
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def alertmanager(tmp_path: Path, am_receiver: Receiver) -> Iterator[Alertmanager]:
    """A real Alertmanager on a free loopback port."""
    with running_alertmanager(tmp_path / "am", am_receiver.url("/am")) as manager:
        yield manager


def _ours(manager: Alertmanager) -> list[dict[str, Any]]:
    return [a for a in manager.alerts() if a["labels"].get("check") == "database"]


async def test_alert_appears_with_runbook_is_refreshed_and_resolves(
    tmp_path: Path, alertmanager: Alertmanager, am_receiver: Receiver
) -> None:
    """Teams routing with Alertmanager see opsmon's alert, kept alive, then resolved."""
    config = alerting_config(
        group_wait="0s",
        group_interval="1s",
        channels=[
            {"name": "am", "type": "alertmanager", "url": alertmanager.url, "repeat_interval": "1s"}
        ],
    )
    # Alertmanager judges startsAt/endsAt by its own clock: start at the real time and move
    # the test's clock only a little ahead of it.
    clock = FakeClock(datetime.now(UTC))
    h = Harness(tmp_path / "state", config, [http_check("database", "db")], clock=clock)
    try:
        h.fail("database", "connection refused by 127.0.0.1:5432")
        await h.step()
        (alert,) = wait_until(lambda: _ours(alertmanager), timeout=10)
        assert alert["labels"] == {
            "alertname": "HealthCheckFailing",
            "severity": "critical",
            "check": "database",
            "service": "db",
        }
        assert alert["annotations"]["runbook_url"] == (
            "http://opsmon.test:9110/runbooks/health-check-failing"
        )
        description = alert["annotations"]["description"]
        assert description.startswith("database: connection refused by 127.0.0.1:5432\n")
        assert "First step: " in description
        assert alert["status"]["state"] == "active"
        first_ends = alert["endsAt"]

        # Re-sent while firing (every repeat_interval, 1m by default): endsAt moves forward.
        await h.step(1.1)
        wait_until(lambda: _ours(alertmanager)[0]["endsAt"] > first_ends, timeout=10)

        h.recover("database")
        await h.step(1.1)
        wait_until(lambda: not _ours(alertmanager), timeout=10)
        # Alertmanager itself saw it resolve and told its receiver.
        wait_until(
            lambda: any(r.json["status"] == "resolved" for r in am_receiver.accepted()),
            timeout=15,
        )
    finally:
        await h.close()
