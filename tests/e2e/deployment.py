"""One deployment of the e2e stack: a Compose project of the stack's images on loopback ports
of its own, driven the way an operator drives the reference's docker-compose.prod.yml
(`CI_COMMIT_SHA=<sha> docker-compose -f docker-compose.prod.yml -p <project> up -d`)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx

from tests.e2e.images import STACK, Images
from tests.support.environment import free_port
from tests.support.waiting import wait_until

COMPOSE_FILE = STACK / "docker-compose.prod.yml"
DB_PASSWORD = "e2e-db-password"  # baked into the test-only db image (loopback only)
# A canary: the backend's API key must never show in a page, a log line or a status page.
API_KEY = "sk-ant-e2e-canary-5f1c0d9a"


@dataclass
class Deployment:
    """A Compose project of the e2e stack; `sha` is what CI_COMMIT_SHA names now."""

    images: Images
    project: str = field(default_factory=lambda: "e2e" + uuid.uuid4().hex[:8])
    backend_port: int = field(default_factory=free_port)
    frontend_port: int = field(default_factory=free_port)
    db_port: int = field(default_factory=free_port)
    sha: str = ""

    @property
    def database_url(self) -> str:
        """The backend's DATABASE_URL (and opsmon's database DSN)."""
        return f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:{self.db_port}/neola"

    @property
    def backend_url(self) -> str:
        """Base URL of the backend."""
        return f"http://127.0.0.1:{self.backend_port}"

    @property
    def frontend_url(self) -> str:
        """Base URL of the frontend."""
        return f"http://127.0.0.1:{self.frontend_port}"

    def environment(self, sha: str | None = None) -> dict[str, str]:
        """What the deploy job exports before calling docker-compose."""
        return {
            **os.environ,
            "CI_COMMIT_SHA": sha if sha is not None else self.sha,
            "FRONTEND_TAG": self.images.frontend.split(":", 1)[1],
            "DB_IMAGE": self.images.db,
            "BACKEND_PORT": str(self.backend_port),
            "FRONTEND_PORT": str(self.frontend_port),
            "DB_PORT": str(self.db_port),
            "DATABASE_URL": self.database_url,
            "ANTHROPIC_API_KEY": API_KEY,
            "OPENAI_API_KEY": "",
        }

    def compose_argv(self) -> list[str]:
        """`docker-compose -f FILE -p PROJECT` (what runbooks call the stack)."""
        return ["docker-compose", "-f", str(COMPOSE_FILE), "-p", self.project]

    def compose(self, *args: str, sha: str | None = None, timeout: float = 120) -> str:
        """Run docker-compose on this project; fail with its output if it fails."""
        done = subprocess.run(
            [*self.compose_argv(), *args],
            env=self.environment(sha),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def deploy(self, variant: str) -> float:
        """`CI_COMMIT_SHA=<variant's tag> docker-compose ... up -d`; the time it was issued."""
        tag = self.images.backend[variant].split(":", 1)[1]
        at = time.monotonic()
        self.compose("up", "-d", sha=tag)
        self.sha = tag
        return at

    def down(self) -> None:
        """Remove every container of the project, the ones rollback kept aside too."""
        client = docker.from_env()
        try:
            # Rollback keeps the failed container as a copy without the Compose labels.
            for label in ("com.docker.compose.project", "opsmon.failed-project"):
                for container in client.containers.list(
                    all=True, filters={"label": f"{label}={self.project}"}
                ):
                    container.remove(force=True)
        finally:
            client.close()

    # --- what runs ----------------------------------------------------------------------------
    def container(self, service: str) -> dict[str, Any] | None:
        """`docker inspect` of the service's container (not the ones rollback set aside)."""
        client = docker.from_env()
        try:
            found = [
                c
                for c in client.containers.list(
                    all=True,
                    filters={
                        "label": [
                            f"com.docker.compose.project={self.project}",
                            f"com.docker.compose.service={service}",
                        ]
                    },
                )
                if "_failed_" not in c.name
            ]
            if not found:
                return None
            attrs: dict[str, Any] = max(found, key=lambda c: c.attrs["Created"]).attrs
            return attrs
        finally:
            client.close()

    def running_image(self, service: str) -> str | None:
        """The image reference the service's running container was created from."""
        attrs = self.container(service)
        if attrs is None or not attrs["State"]["Running"]:
            return None
        image: str = attrs["Config"]["Image"]
        return image

    def backend_healthy(self) -> bool:
        """The backend answers /api/health 200 with status ok."""
        try:
            answer = httpx.get(f"{self.backend_url}/api/health", timeout=2)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200 and answer.json().get("status") == "ok"

    def frontend_up(self) -> bool:
        """The frontend answers / with 200."""
        try:
            return httpx.get(self.frontend_url + "/", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_serving(self, timeout: float = 60) -> None:
        """Until the backend is healthy and the frontend answers."""
        wait_until(lambda: self.backend_healthy() and self.frontend_up(), timeout, interval=0.2)


def logs(deployment: Deployment, service: str) -> str:
    """The service container's log (for failure messages)."""
    done = subprocess.run(
        [*deployment.compose_argv(), "logs", "--no-color", "--tail=30", service],
        env=deployment.environment(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout + done.stderr


def stack_folder() -> Path:
    """Where the compose file lives (runbook commands run there)."""
    return STACK
