"""Deploy-gate test material: a small backend in several versions built FROM local/busybox:1,
a Compose v1 project that deploys it the reference's way (`CI_COMMIT_SHA=<tag> docker-compose
up -d`, host network, 127.0.0.1 only), an opsmon config for it, and `opsmon gate` runs.

The versions (image tags, passed as CI_COMMIT_SHA):
- `good1`, `good2`: `/cgi-bin/health` answers 200 `{"status":"ok",...}`, or 503
  `{"services":{"database":"error"}}` while nothing accepts connections on $DB_PORT;
- `badhealth`: starts fine, `/cgi-bin/health` answers 500; ignores SIGTERM;
- `crash`: exits with code 3 at once (a crash loop under `restart: always`);
- `noenv`: exits with code 1 at start unless API_KEY is set, and says so in its log.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import yaml

from tests.support.environment import free_port, missing
from tests.support.receiver import Receiver
from tests.support.rollback import compose_available, docker_client
from tests.support.waiting import wait_until

OPSMON = [sys.executable, "-m", "monitor"]
VERSIONS = {
    "good1": "good",
    "good2": "good",
    "badhealth": "badhealth",
    "crash": "crash",
    "noenv": "noenv",
}
DOCKERFILE = """
FROM local/busybox:1
ARG MODE
ARG VERSION
COPY start.sh /start.sh
COPY health /www/cgi-bin/health
RUN chmod +x /start.sh /www/cgi-bin/health && echo "$VERSION" > /www/version
ENV MODE=$MODE PORT=8080
LABEL org.opencontainers.image.version=$VERSION
CMD ["sh", "/start.sh"]
"""
START = """#!/bin/sh
case "$MODE" in
  crash) echo "backend: cannot find module dist/index.js (session ${SESSION_SECRET:-none})" >&2
         exit 3 ;;
  noenv)
    if [ -z "$API_KEY" ]; then
      echo "Invalid environment variables:" >&2
      echo "API_KEY is not set" >&2
      exit 1
    fi ;;
esac
# Like Node as PID 1, the bad version ignores SIGTERM: `docker stop` waits out the grace
# period (so a rollback of it takes a few seconds).
if [ "$MODE" = badhealth ]; then trap '' TERM; else trap 'kill $pid; exit 0' TERM; fi
httpd -f -p "127.0.0.1:$PORT" -h /www & pid=$!
wait $pid
"""
# An invalid startup packet makes PostgreSQL hang up at once; a refused connection (exit 1)
# means the database is down.
HEALTH = """#!/bin/sh
answer() { printf 'Status: %s\\r\\nContent-Type: application/json\\r\\n\\r\\n%s' "$1" "$2"; }
if [ "$MODE" = badhealth ]; then
  answer "500 Internal Server Error" '{"status":"error","error":"TypeError: x is undefined"}'
  exit 0
fi
if [ -n "$DB_PORT" ]; then
  printf '\\000\\000\\000\\001' | timeout 2 nc 127.0.0.1 "$DB_PORT" >/dev/null 2>&1
  if [ $? -eq 1 ]; then
    answer "503 Service Unavailable" '{"status":"error","services":{"database":"error"}}'
    exit 0
  fi
fi
answer "200 OK" '{"status":"ok","services":{"database":"ok"}}'
"""


def _context(files: dict[str, str]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


@dataclass(frozen=True)
class GateImages:
    """The backend's versions: `repo:tag` for each tag in VERSIONS."""

    repo: str
    ids: dict[str, str]

    def ref(self, tag: str) -> str:
        """`repo:tag`."""
        return f"{self.repo}:{tag}"


def build_gate_images(client: docker.DockerClient, repo: str) -> GateImages:
    """Build every version (no network needed)."""
    ids: dict[str, str] = {}
    for tag, mode in VERSIONS.items():
        image, _ = client.images.build(
            fileobj=_context({"Dockerfile": DOCKERFILE, "start.sh": START, "health": HEALTH}),
            custom_context=True,
            tag=f"{repo}:{tag}",
            buildargs={"MODE": mode, "VERSION": tag},
            network_mode="none",
            rm=True,
            forcerm=True,
        )
        ids[tag] = str(image.id)
    return GateImages(repo, ids)


def remove_gate_images(client: docker.DockerClient, images: GateImages) -> None:
    """Remove every tag."""
    for tag in images.ids:
        with contextlib.suppress(docker.errors.DockerException):
            client.images.remove(images.ref(tag), force=True)


@pytest.fixture(scope="session")
def gate_images() -> Iterator[GateImages]:
    """The backend's versions, built once per session and removed at the end."""
    if not compose_available():
        missing("docker-compose")
    client = docker_client()
    images = build_gate_images(client, f"local/opsmon-gate-{uuid.uuid4().hex[:8]}")
    try:
        yield images
    finally:
        remove_gate_images(client, images)
        client.close()


@dataclass
class ComposeProject:
    """The backend as a Compose v1 project: `up(tag)` is the reference's deploy."""

    client: docker.DockerClient
    images: GateImages
    folder: Path
    project: str = field(default_factory=lambda: f"gate{uuid.uuid4().hex[:8]}")
    service: str = "web"
    port: int = field(default_factory=free_port)
    db_port: int | None = None
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        """The compose file (written by `up`)."""
        return self.folder / "docker-compose.prod.yml"

    @property
    def health_url(self) -> str:
        """The backend's health endpoint on 127.0.0.1."""
        return f"http://127.0.0.1:{self.port}/cgi-bin/health"

    def write(self) -> Path:
        """The compose file: the reference's production shape on the host network."""
        env = {"PORT": str(self.port), **self.environment}
        if self.db_port is not None:
            env["DB_PORT"] = str(self.db_port)
        spec = {
            "version": "2.4",
            "services": {
                self.service: {
                    "image": self.images.repo + ":${CI_COMMIT_SHA}",
                    "network_mode": "host",
                    "environment": env,
                    "restart": "always",
                    "stop_grace_period": "3s",
                }
            },
        }
        self.file.write_text(yaml.safe_dump(spec))
        return self.file

    def up(self, tag: str) -> float:
        """`CI_COMMIT_SHA=tag docker-compose up -d`; returns when it returned (monotonic)."""
        self.write()
        subprocess.run(
            ["docker-compose", "-p", self.project, "-f", str(self.file), "up", "-d"],
            env={**os.environ, "CI_COMMIT_SHA": tag},
            check=True,
            capture_output=True,
            timeout=120,
        )
        return time.monotonic()

    def containers(self) -> list[dict[str, Any]]:
        """Every container of the project."""
        found: list[dict[str, Any]] = self.client.api.containers(
            all=True, filters={"label": f"com.docker.compose.project={self.project}"}
        )
        return found

    def running(self) -> dict[str, Any]:
        """`docker inspect` of the service's running container."""
        running = [c for c in self.containers() if c["State"] == "running"]
        assert len(running) == 1, [(c["Names"], c["State"]) for c in self.containers()]
        data: dict[str, Any] = self.client.api.inspect_container(running[0]["Id"])
        return data

    def cleanup(self) -> None:
        """Remove every container of the project, and the failed ones rollback retired as
        copies without its Compose labels."""
        retired: list[dict[str, Any]] = self.client.api.containers(
            all=True, filters={"label": f"opsmon.failed-project={self.project}"}
        )
        for summary in [*self.containers(), *retired]:
            with contextlib.suppress(docker.errors.DockerException):
                self.client.api.remove_container(summary["Id"], force=True)


@pytest.fixture
def compose_project(gate_images: GateImages, tmp_path: Path) -> Iterator[ComposeProject]:
    """A Compose project of the backend (not deployed yet), removed after the test."""
    client = docker_client()
    project = ComposeProject(client, gate_images, tmp_path)
    try:
        yield project
    finally:
        project.cleanup()
        client.close()


# Fast, but with room for a loaded machine: a slow answer is not a bad deploy.
FAST_DEFAULTS = {
    "interval": "1s",
    "timeout": "1s",
    "failure_threshold": 3,
    "success_threshold": 1,
}


def gate_config(
    project: ComposeProject,
    state_dir: Path,
    hooks: Receiver | None = None,
    dsn: str | None = None,
    mode: str = "enforce",
    listen_port: int | None = None,
    required_env: list[str] | None = None,
) -> dict[str, Any]:
    """opsmon's config for the backend: its health and container checks (and the database
    the health check depends on), webhook alerting, rollback of `web` by recreate."""
    container: dict[str, Any] = {
        "name": "web-container",
        "type": "container",
        "service": project.service,
        "project": project.project,
    }
    if required_env:
        container["required_env"] = required_env
    health: dict[str, Any] = {
        "name": "web-health",
        "type": "http",
        "service": project.service,
        "url": project.health_url,
        "conditions": ["[STATUS] == 200", "[BODY].status == ok"],
    }
    checks: list[dict[str, Any]] = [health, container]
    if dsn is not None:
        health["depends_on"] = ["database"]
        checks.append({"name": "database", "type": "postgres", "dsn": dsn, "service": "db"})
    port = listen_port or free_port()
    config: dict[str, Any] = {
        "listen": f"127.0.0.1:{port}",
        "state_dir": str(state_dir),
        "public_url": f"http://127.0.0.1:{port}",
        "defaults": FAST_DEFAULTS,
        "checks": checks,
        "rollback": {
            "mode": mode,
            "stable_after": "1m",
            "window": "5m",
            "verify_timeout": "20s",
            "max_per_hour": 10,
            "services": {project.service: {"strategy": "recreate"}},
        },
    }
    if hooks is not None:
        config["alerting"] = {
            "group_wait": "0s",
            "group_interval": "300ms",
            "channels": [{"name": "hooks", "type": "webhook", "url": hooks.url()}],
        }
    return config


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write `config` as YAML to `path`."""
    path.write_text(yaml.safe_dump(config))
    return path


def start_gate(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`opsmon gate --config CONFIG ARGS` in the background."""
    return subprocess.Popen(
        [*OPSMON, "gate", "--config", str(config), *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class Finished:
    """A finished gate: exit code, output, when it ended (monotonic)."""

    code: int
    stdout: str
    stderr: str
    ended: float


def finish(process: subprocess.Popen[str], timeout: float = 120) -> Finished:
    """Wait for a gate started with `start_gate`."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"opsmon gate did not finish:\n{stdout}\n{stderr}") from None
    return Finished(process.returncode, stdout, stderr, time.monotonic())


def run_gate(config: Path, *args: str, env: dict[str, str] | None = None) -> Finished:
    """`opsmon gate` to completion."""
    return finish(start_gate(config, *args, env=env))


def wait_healthy(url: str, timeout: float = 20) -> None:
    """Until `url` answers 200."""
    import httpx

    def ok() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ok, timeout=timeout, interval=0.1)
