"""Fixtures for fault tests: a config writer, the real daemon, a canary secret, small disks."""

from __future__ import annotations

import asyncio
import os
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.settings import Settings
from tests.support.daemon_process import DaemonProcess
from tests.support.environment import free_port
from tests.support.filesystems import SmallFilesystem, small_tmpfs
from tests.support.receiver import Receiver
from tests.support.waiting import async_wait_until

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


Started = tuple[Daemon, httpx.AsyncClient]


@pytest.fixture
async def start_daemon(tmp_path: Path) -> AsyncIterator[Callable[[str], Awaitable[Started]]]:
    """Run a Daemon in this event loop on a config text; stopped cleanly after the test."""
    running: list[tuple[Daemon, asyncio.Task[int]]] = []
    client = httpx.AsyncClient(timeout=5)

    async def start(text: str) -> Started:
        path = tmp_path / "opsmon.yml"
        path.write_text(text)
        port = free_port()
        daemon = Daemon(
            load_config(path, {**os.environ, "API_TOKEN": CANARY}),
            Settings(listen=f"127.0.0.1:{port}"),
        )
        running.append((daemon, asyncio.create_task(daemon.run())))
        client.base_url = httpx.URL(f"http://127.0.0.1:{port}")

        async def ready() -> bool:
            try:
                return (await client.get("/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        await async_wait_until(ready, timeout=20)
        return daemon, client

    yield start
    for daemon, task in running:
        daemon.request_stop()
        assert await asyncio.wait_for(task, 10) == 0
    await client.aclose()
