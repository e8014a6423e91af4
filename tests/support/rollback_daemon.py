"""`opsmon run` watching a test Deployment with rollback configured, its alerts arriving at a
local webhook receiver, and helpers to read what it did (/api/rollback, /metrics, alerts)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.environment import free_port
from tests.support.receiver import Receiver
from tests.support.rollback import Deployment
from tests.support.waiting import wait_until

TEST_ROLLBACK = {"stable_after": "500ms", "window": "1m", "verify_timeout": "15s"}
FAST_DEFAULTS = {
    "interval": "300ms",
    "timeout": "250ms",
    "failure_threshold": 2,
    "success_threshold": 1,
}


def service_checks(deployment: Deployment, required_env: list[str] | None = None) -> list[Any]:
    """An HTTP check of the health endpoint and a container check, both of service `web`."""
    container: dict[str, Any] = {
        "name": "web-container",
        "type": "container",
        "service": deployment.service,
        "project": deployment.project,
    }
    if required_env:
        container["required_env"] = required_env
    return [
        {
            "name": "web-health",
            "type": "http",
            "service": deployment.service,
            "url": deployment.health_url,
            "conditions": ["[STATUS] == 200"],
        },
        container,
    ]


@dataclass
class Opsmon:
    """One `opsmon run` (restartable) with rollback for the deployment's service."""

    deployment: Deployment
    folder: Path
    hooks: Receiver
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)  # added to the daemon's

    @property
    def url(self) -> str:
        """The daemon's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        """Where the config is written."""
        return self.folder / "opsmon.yml"

    @property
    def state_dir(self) -> Path:
        """The daemon's state folder."""
        return self.folder / "state"

    def configure(
        self,
        mode: str = "enforce",
        checks: list[Any] | None = None,
        service: dict[str, Any] | None = None,
        docker_host: str | None = None,
        defaults: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        **rollback: Any,
    ) -> Path:
        """Write the config: fast checks, webhook alerting, rollback of the service."""
        config: dict[str, Any] = {
            "listen": f"127.0.0.1:{self.port}",
            "state_dir": str(self.state_dir),
            "public_url": self.url,
            "defaults": FAST_DEFAULTS if defaults is None else defaults,
            "checks": checks if checks is not None else service_checks(self.deployment),
            "alerting": {
                "group_wait": "0s",
                "group_interval": "300ms",
                "channels": [{"name": "hooks", "type": "webhook", "url": self.hooks.url()}],
            },
            "rollback": {
                "mode": mode,
                **(TEST_ROLLBACK if defaults is None else {}),
                **rollback,
                "services": {self.deployment.service: service or {"strategy": "recreate"}},
            },
        }
        if docker_host is not None:
            config["docker"] = {"host": docker_host}
        config.update(extra or {})
        self.config_path.write_text(yaml.safe_dump(config))
        return self.config_path

    def start(self) -> Opsmon:
        """Start `opsmon run` and wait until it is ready."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(self.config_path)],
            env={**os.environ, **self.environment, "OPSMON_LISTEN": f"127.0.0.1:{self.port}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        process = self.process
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError("opsmon run exited early:\n" + "".join(self.output))
            try:
                return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=20)
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)

    def stop(self) -> None:
        """SIGTERM, and wait."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def reload(self) -> None:
        """SIGHUP: the daemon reads its config file again."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    # --- what it says -----------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """`GET /api/rollback`."""
        answer: dict[str, Any] = httpx.get(f"{self.url}/api/rollback", timeout=5).json()
        return answer

    def service(self) -> dict[str, Any]:
        """The status row of the deployment's service."""
        row: dict[str, Any] = self.status()["services"][0]
        return row

    def metrics(self) -> str:
        """`GET /metrics`."""
        return httpx.get(f"{self.url}/metrics", timeout=5).text

    def alerts(self, name: str, status: str = "firing") -> list[dict[str, Any]]:
        """Every alert called `name` with `status` that reached the webhook, in order."""
        found = []
        for request in self.hooks.accepted():
            for alert in request.json.get("alerts", []):
                if alert["labels"].get("alertname") == name and alert["status"] == status:
                    found.append(alert)
        return found

    def wait_alert(self, name: str, timeout: float = 30, status: str = "firing") -> dict[str, Any]:
        """The first alert `name` to arrive."""
        wait_until(lambda: self.alerts(name, status), timeout=timeout)
        return self.alerts(name, status)[0]

    def wait_lkg(self, version: str, timeout: float = 20) -> None:
        """Until the service's last known good image is `version` of the test images."""
        image = self.deployment.images.ref(version)

        def promoted() -> bool:
            lkg = self.service()["last_known_good"]
            return lkg is not None and lkg["image"] == image

        wait_until(promoted, timeout=timeout)

    def rollbacks(self) -> list[dict[str, Any]]:
        """The recent rollbacks (newest first)."""
        found: list[dict[str, Any]] = self.status()["rollbacks"]
        return found

    def text(self) -> str:
        """Everything it printed so far."""
        return "".join(self.output)


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    """The webhook receiver standing in for the on-call channel."""
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def opsmon(deployment: Deployment, hooks: Receiver, tmp_path: Path) -> Iterator[Opsmon]:
    """An opsmon for the deployment (configure, then start); stopped after the test."""
    daemon = Opsmon(deployment, tmp_path / "opsmon", hooks)
    daemon.folder.mkdir()
    try:
        yield daemon
    finally:
        daemon.stop()
