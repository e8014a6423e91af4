"""state_dir on a real 4 MiB tmpfs that fills up while a check fails: every page still goes
out (from memory), /healthz and a metric say the store fails, StateStoreFailing is sent, and
once space is freed the state is written back and everything resolves exactly once."""

from __future__ import annotations

import collections
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.faults.conftest import CANARY, config_text, delivered_alerts
from tests.support.daemon_process import DaemonProcess
from tests.support.filesystems import SmallFilesystem
from tests.support.receiver import FlipTarget, Receiver
from tests.support.waiting import wait_until


def _metric(daemon: DaemonProcess, name: str) -> float:
    for line in daemon.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _each_paged_once_and_written(daemon: DaemonProcess, receiver: Receiver, state: Path) -> None:
    """Every page of the check and of StateStoreFailing reached the receiver exactly once,
    the resolved incident is in the file, and the canary is nowhere."""
    counts = collections.Counter(delivered_alerts(receiver))
    assert counts == {
        ("firing", "HealthCheckFailing"): 1,
        ("resolved", "HealthCheckFailing"): 1,
        ("firing", "StateStoreFailing"): 1,
        ("resolved", "StateStoreFailing"): 1,
    }
    with sqlite3.connect(state / "opsmon.db") as db:
        rows = db.execute("SELECT alertname, status FROM incidents").fetchall()
    assert ("HealthCheckFailing", "resolved") in rows
    everything = daemon.log_text() + json.dumps([r.json for r in receiver.accepted()])
    assert CANARY not in everything


def test_full_disk_loses_no_page(
    small_fs: SmallFilesystem,
    target: FlipTarget,
    receiver: Receiver,
    write_config: Callable[[str], Path],
    daemons: Callable[..., DaemonProcess],
) -> None:
    """Disk full during an incident: the firing and resolved pages of the check and of
    StateStoreFailing all reach the receiver exactly once; /healthz is 503 naming the store
    while it lasts and 200 after; the incidents are in the file afterwards."""
    state = small_fs.root / "state"
    daemon = daemons(write_config(config_text(target.url, state, receiver.url())))
    daemon.wait_ready()
    small_fs.fill()
    target.healthy = False
    wait_until(lambda: ("firing", "HealthCheckFailing") in delivered_alerts(receiver), 30)
    wait_until(lambda: ("firing", "StateStoreFailing") in delivered_alerts(receiver), 30)
    health = daemon.get("/healthz")
    assert health.status_code == 503 and "state store" in health.text
    assert str(state) in health.text
    assert _metric(daemon, "opsmon_state_write_failures_total") >= 1
    assert _metric(daemon, "opsmon_state_degraded") == 1
    target.healthy = True
    wait_until(lambda: ("resolved", "HealthCheckFailing") in delivered_alerts(receiver), 30)
    small_fs.free()
    wait_until(lambda: daemon.get("/healthz").status_code == 200, 30)
    wait_until(lambda: ("resolved", "StateStoreFailing") in delivered_alerts(receiver), 30)
    assert daemon.wait_event("state_store_recovered")
    assert _metric(daemon, "opsmon_state_degraded") == 0
    assert daemon.stop() == 0
    assert not daemon.events("internal_task_died")  # a clean stop is not a death
    _each_paged_once_and_written(daemon, receiver, state)


def test_disk_full_before_start_loses_no_page(
    small_fs: SmallFilesystem,
    target: FlipTarget,
    receiver: Receiver,
    write_config: Callable[[str], Path],
    daemons: Callable[..., DaemonProcess],
) -> None:
    """The state volume is already full when the daemon starts (first start, no opsmon.db
    yet): it starts anyway with the state in memory, says so on /healthz, in the metric and as
    StateStoreFailing, pages a failing check, and writes the state once space is freed."""
    state = small_fs.root / "state"
    state.mkdir()
    small_fs.fill()
    target.healthy = False
    daemon = daemons(write_config(config_text(target.url, state, receiver.url())))
    daemon.wait_ready()
    wait_until(lambda: ("firing", "HealthCheckFailing") in delivered_alerts(receiver), 30)
    wait_until(lambda: ("firing", "StateStoreFailing") in delivered_alerts(receiver), 30)
    health = daemon.get("/healthz")
    assert health.status_code == 503 and str(state) in health.text
    assert _metric(daemon, "opsmon_state_degraded") == 1
    small_fs.free()
    wait_until(lambda: daemon.get("/healthz").status_code == 200, 30)
    wait_until(lambda: ("resolved", "StateStoreFailing") in delivered_alerts(receiver), 30)
    target.healthy = True
    wait_until(lambda: ("resolved", "HealthCheckFailing") in delivered_alerts(receiver), 30)
    assert daemon.stop() == 0
    _each_paged_once_and_written(daemon, receiver, state)
