"""SIGHUP onto a config that cannot be applied: the reload is rejected as a whole, naming the
problem, and the old config keeps running unchanged."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

import pytest

from monitor.config import Config, load_config
from monitor.daemon import EXIT_CONFIG, Daemon
from monitor.scheduler import Scheduler, Timing
from monitor.settings import Settings
from monitor.status.component import StatusComponent
from tests.faults.conftest import CANARY, Started, config_text
from tests.support.daemon_process import DaemonProcess
from tests.support.environment import free_port
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


@pytest.mark.parametrize("absurd", [".inf", "99999999999d"])
def test_sighup_onto_an_absurd_interval_keeps_the_old_config(
    absurd: str,
    tmp_path: Path,
    target: FlipTarget,
    write_config: Callable[[str], Path],
    daemons: Callable[..., DaemonProcess],
) -> None:
    """SIGHUP onto a config whose new check has an absurd interval (and which also drops a
    check): config_reload_rejected names the interval; both old checks keep running, nothing
    of the new config is applied, /healthz stays 200, no job fails."""
    state = tmp_path / "state"
    config = write_config(config_text(target.url, state, extra_checks=_second_check(target.url)))
    daemon = daemons(config)
    daemon.wait_ready()
    bad = config_text(target.url, state, extra_checks=_second_check(target.url, absurd, "new"))
    config.write_text(bad)
    daemon.signal(signal.SIGHUP)
    (rejected,) = daemon.wait_event("config_reload_rejected")
    assert any("interval" in problem for problem in rejected["problems"])
    before = _runs(daemon)
    wait_until(lambda: all(_runs(daemon)[n] != before[n] for n in before), timeout=10)
    assert set(daemon.status()) == {"backend-health", "worker-health"}
    assert daemon.get("/healthz").status_code == 200
    metrics = daemon.get("/metrics").text
    assert 'opsmon_config_reloads_total{result="rejected"} 1.0' in metrics
    log = daemon.log_text()
    assert "never retrieved" not in log and "job_failed" not in log and CANARY not in log
    config.write_text(config_text(target.url, state, extra_checks=_second_check(target.url)))
    daemon.signal(signal.SIGHUP)
    daemon.wait_event("config_reloaded")
    assert daemon.alive()


def _unschedulable(name: str) -> Callable[..., Timing]:
    """Scheduler.prepare that overflows for check `name`, as an interval past what a date
    can hold did before validation bounded intervals."""
    prepare = Scheduler.prepare

    def failing(
        self: Scheduler, check: str, interval: float, first_run: datetime | None = None
    ) -> Timing:
        if check == name:
            raise OverflowError("date value out of range")
        return prepare(self, check, interval, first_run)

    return failing


async def test_apply_step_is_all_or_nothing(
    tmp_path: Path,
    target: FlipTarget,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    start_daemon: Callable[[str], Awaitable[Started]],
) -> None:
    """A reload whose new check validates but cannot be scheduled is rejected before anything
    is swapped: the dropped check still runs, the changed one keeps its old spec, the new one
    is absent, and the problem names the check."""
    monkeypatch.setenv("API_TOKEN", CANARY)  # the reload reads the environment again
    state = tmp_path / "state"
    daemon, client = await start_daemon(
        config_text(target.url, state, extra_checks=_second_check(target.url))
    )
    old_backend = daemon.runners["backend-health"].spec
    monkeypatch.setattr(Scheduler, "prepare", _unschedulable("new"))
    changed = config_text(
        target.url, state, interval="700ms", extra_checks=_second_check(target.url, name="new")
    )
    daemon.loaded.path.write_text(changed)
    assert await daemon.reload() is False
    assert set(daemon.runners) == {"backend-health", "worker-health"}
    assert daemon.runners["backend-health"].spec == old_backend
    assert daemon.scheduler.job_names() == {"backend-health", "worker-health"}
    assert (await client.get("/healthz")).status_code == 200
    records = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    (rejected,) = [r for r in records if r.get("event") == "config_reload_rejected"]
    assert rejected["problems"] == [
        "check new: cannot be scheduled (OverflowError: date value out of range)"
    ]
    metrics = (await client.get("/metrics")).text
    assert 'opsmon_config_reloads_total{result="rejected"} 1.0' in metrics


async def test_start_with_an_unschedulable_check_exits_2(
    tmp_path: Path, target: FlipTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config whose check cannot be scheduled at start: the daemon exits 2 instead of
    running half of it."""
    path = tmp_path / "opsmon.yml"
    path.write_text(config_text(target.url, tmp_path / "state"))
    monkeypatch.setattr(Scheduler, "prepare", _unschedulable("backend-health"))
    env = {**os.environ, "API_TOKEN": CANARY}
    daemon = Daemon(load_config(path, env), Settings(listen=f"127.0.0.1:{free_port()}"))
    assert await asyncio.wait_for(daemon.run(), 10) == EXIT_CONFIG


def test_reload_needing_an_engine_that_cannot_be_set_up_is_rejected(
    tmp_path: Path,
    target: FlipTarget,
    write_config: Callable[[str], Path],
    daemons: Callable[..., DaemonProcess],
) -> None:
    """SIGHUP onto a config that adds a container check while DOCKER_TLS_VERIFY points at a
    DOCKER_CERT_PATH without certificates: the reload is rejected naming the Docker part and
    the TLS problem, and the old checks keep running with /healthz 200."""
    certs = tmp_path / "no-certs"
    certs.mkdir()
    env = {
        "DOCKER_HOST": f"tcp://127.0.0.1:{free_port()}",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(certs),
    }
    state = tmp_path / "state"
    config = write_config(config_text(target.url, state))
    daemon = daemons(config, env=env)
    daemon.wait_ready()
    container = "  - {name: web, type: container, service: web}\n"
    config.write_text(config_text(target.url, state, extra_checks=container))
    daemon.signal(signal.SIGHUP)
    (rejected,) = daemon.wait_event("config_reload_rejected")
    assert any(
        problem.startswith("DockerWatcher: TLSParameterError") for problem in rejected["problems"]
    ), rejected["problems"]
    before = _runs(daemon)
    wait_until(lambda: _runs(daemon)["backend-health"] != before["backend-health"], timeout=10)
    assert set(daemon.status()) == {"backend-health"}
    assert daemon.get("/healthz").status_code == 200
    assert 'opsmon_config_reloads_total{result="rejected"} 1.0' in daemon.get("/metrics").text
    assert "config_reloaded" not in daemon.log_text()


async def test_a_component_that_fails_to_apply_a_reload_is_reported(
    tmp_path: Path,
    target: FlipTarget,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    start_daemon: Callable[[str], Awaitable[Started]],
) -> None:
    """A component whose reload fails on the machine's account (an I/O error) after every part
    vetted the config: /healthz answers 503 naming it, the internal failure counter and the
    log say so, and the next reload that applies cleanly clears it."""
    monkeypatch.setenv("API_TOKEN", CANARY)
    daemon, client = await start_daemon(config_text(target.url, tmp_path / "state"))
    apply = StatusComponent.reload

    async def failing(self: StatusComponent, config: Config) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(StatusComponent, "reload", failing)
    assert await daemon.reload() is True
    healthz = await client.get("/healthz")
    assert healthz.status_code == 503
    assert (
        "StatusComponent could not apply the reloaded config: OSError: [Errno 5] "
        "Input/output error" in healthz.text
    )
    metrics = (await client.get("/metrics")).text
    assert "opsmon_internal_task_failures_total 1.0" in metrics
    events = [r.msg.get("event") for r in caplog.records if isinstance(r.msg, dict)]
    assert "component_reload_failed" in events
    monkeypatch.setattr(StatusComponent, "reload", apply)
    assert await daemon.reload() is True
    assert (await client.get("/healthz")).status_code == 200
