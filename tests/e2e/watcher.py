"""A real `opsmon run` watching one e2e deployment, configured as an operator would for the
reference stack (the checks of config/opsmon.yml, containers selected by project AND service,
rollback of the backend in `enforce` mode), with timings tightened so scenarios are quick,
and its pages arriving at a local webhook receiver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.e2e.deployment import COMPOSE_FILE, Deployment
from tests.support.environment import free_port
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until


def stack_config(deployment: Deployment, port: int, state_dir: Path, hook: str) -> dict[str, Any]:
    """The opsmon config for the deployment (config/opsmon.yml's checks, tightened timings)."""

    def container(service: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": f"{service}-container",
            "type": "container",
            "service": service,
            "project": deployment.project,
            **extra,
        }

    backend = deployment.backend_url
    return {
        "listen": f"127.0.0.1:{port}",
        "state_dir": str(state_dir),
        "public_url": f"http://127.0.0.1:{port}",
        "defaults": {
            "interval": "1s",
            "timeout": "1s",
            "failure_threshold": 2,
            "success_threshold": 2,
        },
        "checks": [
            {
                "name": "database",
                "type": "postgres",
                "service": "db",
                "dsn": deployment.database_url,
                "conditions": [
                    "has([EXTENSIONS], vector)",
                    "[CONNECTIONS_USED_RATIO] < 0.8",
                    "[IN_RECOVERY] == false",
                    "[RESPONSE_TIME] < 1000",
                ],
            },
            {
                "name": "backend-health",
                "type": "http",
                "service": "backend",
                "url": f"{backend}/api/health",
                "depends_on": ["database"],
                # Long enough to see a slow answer as slow, not as a timeout, and a release
                # that takes a few seconds to listen as starting, not failing.
                "interval": "3s",
                "timeout": "3s",
                "failure_threshold": 3,
                "conditions": [
                    "[STATUS] == 200",
                    "[BODY].status == ok",
                    "[BODY].services.database == ok",
                    "[RESPONSE_TIME] < 1500",
                ],
            },
            {
                "name": "backend-ready",
                "type": "http",
                "service": "backend",
                "url": f"{backend}/api/ready",
                "interval": "3s",
                "timeout": "3s",
                "failure_threshold": 3,
                "depends_on": ["database"],  # /api/ready asks the database
                "startup_grace": "5s",
                "conditions": ["[STATUS] == 200", "[BODY].ready == true"],
            },
            {
                "name": "frontend",
                "type": "http",
                "service": "frontend",
                "url": f"{deployment.frontend_url}/",
                "timeout": "1s",
                "conditions": ["[STATUS] == 200", "[RESPONSE_TIME] < 2000"],
            },
            container(
                "backend",
                required_env=["DATABASE_URL", "ANTHROPIC_API_KEY"],
                inspect_logs=True,
            ),
            container("frontend"),
            container("db"),
        ],
        "alerting": {
            # Long enough that a container replaced by `up -d` (gone for a second) is no page.
            "group_wait": "5s",
            "group_interval": "5s",
            "repeat_interval": "1h",
            "send_resolved": True,
            "channels": [{"name": "oncall", "type": "webhook", "url": hook}],
        },
        # Runbook commands as on-call types them next to this stack (Compose v1 here).
        "runbooks": {
            "compose_command": "docker-compose",
            "compose_file": str(COMPOSE_FILE),
            "project": deployment.project,
            "escalation": ["backend owners: #backend-oncall"],
        },
        "rollback": {
            "mode": "enforce",
            "stable_after": "3s",
            "window": "5m",
            "max_per_hour": 3,
            "verify_timeout": "40s",
            "services": {"backend": {"strategy": "recreate"}},
        },
    }


@dataclass(frozen=True)
class Page:
    """One alert of one notification as it reached the receiver."""

    at: float  # time.monotonic() of arrival
    status: str  # firing | resolved
    alertname: str
    service: str | None
    check: str | None
    severity: str | None
    affected: tuple[str, ...]
    runbook_url: str
    summary: str
    description: str
    starts_at: str

    @property
    def key(self) -> tuple[str, str, str]:
        """One outage of one alert: a later message about it (an update) has the same key."""
        return (self.alertname, self.check or "", self.starts_at)


@dataclass
class Watcher:
    """`opsmon run` on the deployment; restartable, killable."""

    deployment: Deployment
    folder: Path
    hooks: Receiver
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The daemon's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        """Where the config is written."""
        return self.folder / "opsmon.yml"

    def configure(self) -> Path:
        """Write the config file."""
        config = stack_config(self.deployment, self.port, self.folder / "state", self.hooks.url())
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        return self.config_path

    def start(self) -> Watcher:
        """Start `opsmon run` and wait until it is ready."""
        if not self.config_path.exists():
            self.configure()
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(self.config_path)],
            env={**os.environ, "DOCKER_HOST": "unix:///var/run/docker.sock"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.process = process
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError("opsmon run exited early:\n" + "".join(self.output[-40:]))
            try:
                return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=30, interval=0.1)
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

    def kill(self) -> None:
        """SIGKILL: no cleanup at all."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    # --- what it said -------------------------------------------------------------------------
    def events(self, name: str) -> list[dict[str, Any]]:
        """Log lines (JSON) with this event name."""
        found = []
        for line in list(self.output):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == name:
                found.append(record)
        return found

    def decisions(self) -> list[str]:
        """The distinct rollback decisions it logged, in order, as `action: reason`."""
        found: list[str] = []
        for d in self.events("rollback_decision"):
            text = f"{d.get('action')}: {d.get('reason')}"
            if text not in found:
                found.append(text)
        return found

    def first_firing(self, timeout: float = 60) -> Page:
        """The first firing page, whatever it is."""
        try:
            return wait_until(lambda: self.firing()[:1], timeout=timeout, interval=0.1)[0]
        except AssertionError as exc:
            raise AssertionError(
                f"no page within {timeout}s; decisions: {self.decisions()}"
            ) from exc

    def quiet(self, seconds: float = 7, timeout: float = 60) -> None:
        """Until no message has reached the receiver for `seconds` (longer than group_wait and
        group_interval: what is still to be sent about the current state has been sent)."""
        since = time.monotonic()

        def calm() -> bool:
            requests = self.hooks.requests
            last = max(requests[-1].at if requests else 0.0, since)
            return time.monotonic() - last >= seconds

        wait_until(calm, timeout=timeout, interval=0.2)

    def status(self) -> dict[str, Any]:
        """`GET /api/status`."""
        answer: dict[str, Any] = httpx.get(f"{self.url}/api/status", timeout=5).json()
        return answer

    def rollback_status(self) -> dict[str, Any]:
        """`GET /api/rollback`."""
        answer: dict[str, Any] = httpx.get(f"{self.url}/api/rollback", timeout=5).json()
        return answer

    def lkg(self) -> str | None:
        """The backend's last known good image."""
        for row in self.rollback_status()["services"]:
            if row["service"] == "backend" and row["last_known_good"]:
                image: str = row["last_known_good"]["image"]
                return image
        return None

    def check_states(self) -> dict[str, str]:
        """Each check's state."""
        return {c["name"]: c["state"] for c in self.status()["checks"]}

    def pages(self) -> list[Page]:
        """Every alert of every notification that reached the receiver, in arrival order."""
        found = []
        for request in self.hooks.accepted():
            for alert in request.json.get("alerts", []):
                labels = alert["labels"]
                notes = alert["annotations"]
                affected = tuple(
                    a.strip() for a in notes.get("affected", "").split(",") if a.strip()
                )
                found.append(
                    Page(
                        at=request.at,
                        status=alert["status"],
                        alertname=labels.get("alertname", ""),
                        service=labels.get("service"),
                        check=labels.get("check"),
                        severity=labels.get("severity"),
                        affected=affected,
                        runbook_url=notes.get("runbook_url", ""),
                        summary=notes.get("summary", ""),
                        description=notes.get("description", ""),
                        starts_at=alert.get("startsAt", ""),
                    )
                )
        return found

    def firing(self) -> list[Page]:
        """The first message of each firing outage (updates of it left out)."""
        seen: dict[tuple[str, str, str], Page] = {}
        for page in self.pages():
            if page.status == "firing":
                seen.setdefault(page.key, page)
        return list(seen.values())

    def resolved(self) -> list[Page]:
        """The first resolved message of each outage."""
        seen: dict[tuple[str, str, str], Page] = {}
        for page in self.pages():
            if page.status == "resolved":
                seen.setdefault(page.key, page)
        return list(seen.values())

    def latest(self, alertname: str, status: str = "firing") -> Page | None:
        """The last message about an alert with this status (the one with the fullest view)."""
        matching = [p for p in self.pages() if p.alertname == alertname and p.status == status]
        return matching[-1] if matching else None

    def wait_page(self, alertname: str, status: str = "firing", timeout: float = 60) -> Page:
        """The first page of this alert with this status."""

        def arrived() -> Page | None:
            pages = [p for p in self.pages() if p.alertname == alertname and p.status == status]
            return pages[0] if pages else None

        try:
            return wait_until(arrived, timeout=timeout, interval=0.1)
        except AssertionError as exc:
            raise AssertionError(
                f"no {status} {alertname} within {timeout}s; pages: {describe(self.pages())}; "
                f"decisions: {self.decisions()}"
            ) from exc


def describe(pages: list[Page]) -> str:
    """A short listing of pages for messages and the report."""
    if not pages:
        return "none"
    return "; ".join(
        f"{p.status} {p.alertname}[{p.service}/{p.check}]"
        + (f" affected={list(p.affected)}" if p.affected else "")
        for p in pages
    )
