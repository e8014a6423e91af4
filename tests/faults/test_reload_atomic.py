"""SIGHUP onto a config that validates but cannot be applied: the reload is rejected as a
whole, naming the problem, and the old config keeps running unchanged."""

from __future__ import annotations

import signal
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import CANARY, config_text
from tests.support.daemon_process import DaemonProcess
from tests.support.receiver import FlipTarget
from tests.support.waiting import wait_until


def _second_check(url: str, interval: str = "300ms", name: str = "worker-health") -> str:
    return textwrap.indent(
        textwrap.dedent(f"""\
            - name: {name}
              type: http
              service: worker
              url: {url}
              interval: {interval}
            """),
        "  ",
    )


def _runs(daemon: DaemonProcess) -> dict[str, str | None]:
    return {name: check["last_run"] for name, check in daemon.status().items()}


@pytest.mark.parametrize("absurd", [".inf", "99999999999d", "1000000000000s"])
def test_reload_that_cannot_be_applied_keeps_the_old_config(
    absurd: str,
    tmp_path: Path,
    target: FlipTarget,
    write_config: Callable[[str], Path],
    daemons: Callable[..., DaemonProcess],
) -> None:
    """A reload whose new check has an interval no schedule can hold (and which also drops
    a check) is rejected with config_reload_rejected naming the check; both old checks keep
    running, nothing of the new config is applied, /healthz stays 200."""
    state = tmp_path / "state"
    config = write_config(config_text(target.url, state, extra_checks=_second_check(target.url)))
    daemon = daemons(config)
    daemon.wait_ready()
    assert set(daemon.status()) == {"backend-health", "worker-health"}
    bad = config_text(target.url, state, extra_checks=_second_check(target.url, absurd, "new"))
    config.write_text(bad)
    daemon.signal(signal.SIGHUP)
    (rejected,) = daemon.wait_event("config_reload_rejected")
    assert any(
        problem.startswith("check new: cannot be scheduled") for problem in rejected["problems"]
    )
    before = _runs(daemon)
    wait_until(lambda: all(_runs(daemon)[n] != before[n] for n in before), timeout=10)
    assert set(daemon.status()) == {"backend-health", "worker-health"}
    assert daemon.get("/healthz").status_code == 200
    metrics = daemon.get("/metrics").text
    assert 'opsmon_config_reloads_total{result="rejected"} 1.0' in metrics
    log = daemon.log_text()
    assert "never retrieved" not in log and "job_failed" not in log and CANARY not in log
    # The same file, fixed, applies.
    config.write_text(config_text(target.url, state, extra_checks=_second_check(target.url)))
    daemon.signal(signal.SIGHUP)
    daemon.wait_event("config_reloaded")
    assert daemon.alive()


def test_start_with_an_unschedulable_interval_exits_2(
    tmp_path: Path,
    target: FlipTarget,
    write_config: Callable[[str], Path],
    daemons: Callable[..., DaemonProcess],
) -> None:
    """`opsmon run` on a config whose check cannot be scheduled exits 2 with one log line
    naming the check, and no traceback."""
    text = config_text(
        target.url, tmp_path / "state", extra_checks=_second_check(target.url, ".inf", "new")
    )
    daemon = daemons(write_config(text))
    assert daemon.wait_exit() == 2
    (line,) = daemon.events("config_cannot_be_applied")
    assert line["problems"][0].startswith("check new: cannot be scheduled")
    assert "Traceback" not in daemon.log_text()
