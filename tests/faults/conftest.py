"""Fixtures for fault tests: a config writer, the real daemon, a canary secret, small disks."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon_process import DaemonProcess
from tests.support.filesystems import SmallFilesystem, small_tmpfs
from tests.support.receiver import Receiver

# Planted in a header from the environment: it must never appear in logs, status or alerts.
CANARY = "canary-fault-secret-7c41e2"
CANARY_ENV = {"API_TOKEN": CANARY}


def config_text(
    target_url: str,
    state_dir: Path,
    hook_url: str | None = None,
    interval: str = "300ms",
    extra_checks: str = "",
) -> str:
    """A config with one http check on `target_url` (carrying the canary) and, with `hook_url`,
    a webhook channel that sends quickly."""
    text = textwrap.dedent(f"""\
        state_dir: {state_dir}
        defaults:
          {{interval: {interval}, timeout: 250ms, failure_threshold: 2, success_threshold: 2}}
        checks:
          - name: backend-health
            type: http
            service: backend
            url: {target_url}
            headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}
        """)
    text += extra_checks
    if hook_url is not None:
        text += textwrap.dedent(f"""\
            alerting:
              group_wait: 500ms
              group_interval: 500ms
              channels:
                - {{name: hooks, type: webhook, url: "{hook_url}"}}
            """)
    return text


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write a config file into the test's folder and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "opsmon.yml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Start real `opsmon run` processes (each logging to its own file); all stopped after."""
    started: list[DaemonProcess] = []

    def start(config: Path, **kwargs: Any) -> DaemonProcess:
        log = tmp_path / f"opsmon-{len(started)}.log"
        env = {**CANARY_ENV, **kwargs.pop("env", {})}
        daemon = DaemonProcess(config, log, env=env, **kwargs).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.alive():
            daemon.stop()


@pytest.fixture
def small_fs() -> Iterator[SmallFilesystem]:
    """A real 4 MiB tmpfs the test can fill up and free."""
    with small_tmpfs("4m") as fs:
        yield fs


def delivered_alerts(receiver: Receiver) -> list[tuple[str, str]]:
    """`(status, alertname)` of every alert the receiver accepted, in order."""
    return [
        (a["status"], a["labels"]["alertname"])
        for request in receiver.accepted()
        for a in request.json["alerts"]
    ]
