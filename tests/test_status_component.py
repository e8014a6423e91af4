"""The status component in the daemon: history survives a restart and keeps adding up, and a
failed history write is counted and logged without losing results."""

from __future__ import annotations

import io
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from monitor.clock import SystemClock
from monitor.config import Config
from monitor.core.result import CheckResult
from monitor.logs import configure_logging
from monitor.metrics import Metrics
from monitor.ports import ComponentPorts
from monitor.redaction import Redactor
from monitor.settings import Settings
from monitor.status.component import StatusComponent
from monitor.status.rollup import Period
from monitor.store import DB_FILE
from tests.support.receiver import FlipTarget
from tests.support.status import Daemon, status_daemon, write_config
from tests.support.waiting import wait_until


def _runs(daemon: Daemon) -> tuple[int, int]:
    """(runs, healthy runs) of today's day row."""
    rows = daemon.api("GET", "checks/api/history?days=1", "reader").json()["rows"]
    return (rows[0]["total"], rows[0]["ok"]) if rows else (0, 0)


def test_history_is_kept_across_a_restart(tmp_path: Path, target: FlipTarget) -> None:
    """Runs counted before a stop are still there after a start, and new runs add to them."""
    config = write_config(
        tmp_path, [{"name": "api", "type": "http", "service": "backend", "url": target.url}]
    )
    with status_daemon(config) as daemon:
        target.healthy = False
        wait_until(lambda: _runs(daemon)[0] - _runs(daemon)[1] >= 2)
        target.healthy = True
        wait_until(lambda: _runs(daemon)[1] >= 3)
        port = daemon.port
    # The daemon stopped with SIGTERM: what it counted last was written at the stop.
    hits = target.hits()
    with status_daemon(config, port) as daemon:
        total, ok = _runs(daemon)
        assert total >= hits - 1  # every run before the stop (one may be in flight at stop)
        assert total - ok >= 2
        wait_until(lambda: _runs(daemon)[0] >= total + 3)


class _NoChecks:
    """A check registry with no checks (the component only reads `runners`)."""

    runners: dict[str, object] = {}


def test_a_failed_history_write_is_counted_logged_and_retried(tmp_path: Path) -> None:
    """While the state file is locked, flushing fails visibly; the next flush writes it all."""
    stream = io.StringIO()
    configure_logging(Redactor(), "DEBUG", "json", stream=stream)
    metrics = Metrics()
    component = StatusComponent(
        ComponentPorts(
            Config(state_dir=tmp_path), Settings(), metrics, SystemClock(), Redactor(), _NoChecks()
        )
    )
    now = datetime.now(UTC)
    component.record("api", CheckResult(ok=True, duration=0.02), 0.02, now)
    component.store.connection.execute("PRAGMA busy_timeout=50")
    locker = sqlite3.connect(tmp_path / DB_FILE, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    assert component.flush() is False
    assert metrics.history_write_failures._value.get() == 1
    logged = [json.loads(line) for line in stream.getvalue().splitlines() if line]
    assert any(e["event"] == "history_write_failed" for e in logged)
    locker.rollback()
    locker.close()
    component.record("api", CheckResult(ok=False), None, now)
    assert component.flush() is True
    [day] = component.history.rollups(Period.DAY, 0)
    assert (day.total, day.ok, sum(day.histogram.values())) == (2, 1, 1)
    component.store.close()
