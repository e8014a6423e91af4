"""The real `opsmon run` as a subprocess for fault tests: its log in a file, real signals,
optional resource limits, and small helpers to ask its endpoints."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.environment import free_port
from tests.support.waiting import wait_until

OPSMON = [sys.executable, "-m", "monitor"]


class DaemonProcess:
    """One `opsmon run` process; its combined output goes to `log_path`."""

    def __init__(
        self,
        config: Path,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        nofile: int | None = None,
        port: int | None = None,
    ) -> None:
        self.config = config
        self.log_path = log_path
        self.port = port or free_port()
        self._env = {
            **os.environ,
            "OPSMON_LISTEN": f"127.0.0.1:{self.port}",
            "OPSMON_LOG_FORMAT": "json",
            **(env or {}),
        }
        self._nofile = nofile
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DaemonProcess:
        """Start the process (not waiting for it to be ready)."""
        nofile = self._nofile
        preexec: Callable[[], None] | None = None
        if nofile is not None:

            def preexec() -> None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*OPSMON, "run", "--config", str(self.config)],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=preexec,
            )
        return self

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process is not None and self.process.poll() is None

    def get(self, path: str, timeout: float = 2.0) -> httpx.Response:
        """GET one of the daemon's endpoints."""
        return httpx.get(self.base + path, timeout=timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until /readyz answers 200; fail with the log if the process exits first."""

        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"opsmon run exited early:\n{self.log_text()}")
            try:
                return self.get("/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=timeout, interval=0.1)

    def status(self) -> dict[str, dict[str, Any]]:
        """/api/status as {check name: check}."""
        body = self.get("/api/status").json()
        return {check["name"]: check for check in body["checks"]}

    def signal(self, signum: int) -> None:
        """Send a real signal."""
        assert self.process is not None
        self.process.send_signal(signum)

    def log_text(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON log records (only those with event `name`, if given)."""
        records = []
        for line in self.log_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and (name is None or record.get("event") == name):
                records.append(record)
        return records

    def wait_event(self, name: str, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Block until the log has at least `count` records with event `name`."""
        return wait_until(lambda: len(self.events(name)) >= count and self.events(name), timeout)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code (kills it if it does not stop)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("opsmon run did not stop on SIGTERM") from None
        return self.process.returncode

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit by itself; returns its exit code."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)


@contextmanager
def opsmon_run(
    config: Path,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    nofile: int | None = None,
    ready: bool = True,
) -> Iterator[DaemonProcess]:
    """A started daemon (ready unless told not to wait); stopped with SIGTERM afterwards."""
    daemon = DaemonProcess(config, log_path, env, nofile).start()
    try:
        if ready:
            daemon.wait_ready()
        yield daemon
    finally:
        if daemon.alive():
            daemon.stop()
