"""Rollback test material: two versions of a small HTTP service built from local/busybox:1,
and Compose-style deploys of it on the real engine (host network, 127.0.0.1 only).

v1 answers `GET /health` with 200 as long as the file `health` exists in its bind-mounted
state folder (so a test can make the LKG unhealthy too); v2 has no /health at all (404).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.support.environment import free_port, missing
from tests.support.waiting import wait_until

BASE_IMAGE = "local/busybox:1"
DOCKERFILE = """
FROM local/busybox:1
ARG VERSION
RUN mkdir -p /www /data /state /cache \\
 && if [ "$VERSION" = v1 ]; then ln -s /state/health /www/health; fi \\
 && echo "$VERSION" > /www/version
VOLUME /cache
ENV PORT=8080
LABEL org.opencontainers.image.version=$VERSION
CMD ["sh", "-c", "trap 'kill $pid; exit 0' TERM; echo start >> /data/starts; \
httpd -f -p 127.0.0.1:$PORT -h /www & pid=$!; wait $pid"]
"""
COMPOSE_VERSION = "1.29.2"


def docker_client() -> docker.DockerClient:
    """A client of the local engine, or skip/fail (CI) when there is none."""
    try:
        client = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=30)
        client.ping()
    except Exception:
        missing("Docker engine on unix:///var/run/docker.sock")
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        missing(f"image {BASE_IMAGE}")
    return client


@dataclass(frozen=True)
class ServiceImages:
    """Two tags of one image family: `v1` healthy, `v2` without a health endpoint."""

    repo: str
    ids: dict[str, str]

    def ref(self, version: str) -> str:
        """`repo:version`."""
        return f"{self.repo}:{version}"


def build_images(client: docker.DockerClient, repo: str) -> ServiceImages:
    """Build v1 and v2 of the test service (no network needed)."""
    ids: dict[str, str] = {}
    for version in ("v1", "v2"):
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            data = DOCKERFILE.encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        context.seek(0)
        image, _ = client.images.build(
            fileobj=context,
            custom_context=True,
            tag=f"{repo}:{version}",
            buildargs={"VERSION": version},
            network_mode="none",
            rm=True,
            forcerm=True,
        )
        ids[version] = str(image.id)
    return ServiceImages(repo, ids)


def remove_images(client: docker.DockerClient, images: ServiceImages) -> None:
    """Remove both tags (and their layers)."""
    for version in images.ids:
        with contextlib.suppress(docker.errors.DockerException):
            client.images.remove(images.ref(version), force=True)


@pytest.fixture(scope="session")
def service_images() -> Iterator[ServiceImages]:
    """v1 and v2 of the test service, built once per session and removed at the end."""
    client = docker_client()
    images = build_images(client, f"local/opsmon-rb-{uuid.uuid4().hex[:8]}")
    try:
        yield images
    finally:
        remove_images(client, images)
        client.close()


@dataclass
class Deployment:
    """One Compose-style service on the engine: project `project`, service `service`, its
    container `<project>_<service>_1` on the host network, port `port` on 127.0.0.1."""

    client: docker.DockerClient
    images: ServiceImages
    state_dir: Path
    project: str = field(default_factory=lambda: f"rb{uuid.uuid4().hex[:8]}")
    service: str = "web"
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    # Networks instead of the host network (the first is the network mode, each gets aliases);
    # nothing is ever sent over them.
    networks: list[str] = field(default_factory=list)
    docker_healthcheck: bool = True  # a HEALTHCHECK on /health (1 s interval)
    created: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The container name Compose v1 gives the first replica."""
        return f"{self.project}_{self.service}_1"

    @property
    def volume(self) -> str:
        """The named volume mounted at /data."""
        return f"{self.project}_data"

    @property
    def health_url(self) -> str:
        """The health endpoint on 127.0.0.1."""
        return f"http://127.0.0.1:{self.port}/health"

    def labels(self) -> dict[str, str]:
        """The labels Compose v1 puts on a service container."""
        return {
            "com.docker.compose.project": self.project,
            "com.docker.compose.service": self.service,
            "com.docker.compose.container-number": "1",
            "com.docker.compose.oneoff": "False",
            "com.docker.compose.version": COMPOSE_VERSION,
            "com.docker.compose.config-hash": uuid.uuid4().hex,
            "app.tier": "web",
        }

    def deploy(self, version: str, extra_env: dict[str, str] | None = None) -> str:
        """Deploy `version` as Compose does: stop the old container, rename it aside, create
        the new one (same volumes), start it, remove the old one. Returns the new id."""
        api = self.client.api
        old = None
        with contextlib.suppress(docker.errors.NotFound):
            old = api.inspect_container(self.name)
        if old is not None:
            api.stop(old["Id"], timeout=5)
            api.rename(old["Id"], f"{old['Id'][:12]}_{self.name}")
        environment = {"PORT": str(self.port), **self.env, **(extra_env or {})}
        binds = [f"{self.state_dir}:/state:rw", f"{self.volume}:/data:rw"]
        if old is not None:
            binds += [
                f"{m['Name']}:{m['Destination']}:rw"
                for m in old.get("Mounts", [])
                if m.get("Type") == "volume" and m.get("Destination") == "/cache"
            ]
        host_config = api.create_host_config(
            binds=binds,
            network_mode=self.networks[0] if self.networks else "host",
            restart_policy={"Name": "unless-stopped"},
            mem_limit="64m",
        )
        aliases = [self.service, f"{self.service}-alias"]
        networking = (
            api.create_networking_config(
                {self.networks[0]: api.create_endpoint_config(aliases=aliases)}
            )
            if self.networks
            else None
        )
        created = api.create_container(
            self.images.ref(version),
            networking_config=networking,
            name=self.name,
            environment=environment,
            labels=self.labels(),
            host_config=host_config,
            healthcheck={
                "test": ["CMD", "wget", "-q", "-O", "/dev/null", self.health_url],
                "interval": 1_000_000_000,
                "timeout": 1_000_000_000,
                "retries": 2,
            }
            if self.docker_healthcheck
            else None,
        )
        new_id = str(created["Id"])
        self.created.append(new_id)
        for network in self.networks[1:]:
            api.connect_container_to_network(new_id, network, aliases=aliases)
        api.start(new_id)
        if old is not None:
            api.remove_container(old["Id"])
        return new_id

    def add_networks(self, count: int) -> list[str]:
        """Use `count` new internal networks instead of the host network."""
        for index in range(count):
            name = f"{self.project}_net{index}"
            self.client.api.create_network(name, internal=True)
            self.networks.append(name)
        return self.networks

    def set_healthy(self, healthy: bool) -> None:
        """Make v1's health endpoint answer 200 (or 404)."""
        marker = self.state_dir / "health"
        if healthy:
            marker.write_text("ok\n")
        else:
            marker.unlink(missing_ok=True)

    def inspect(self, container: str | None = None) -> dict[str, Any]:
        """`docker inspect` of the service container (or another one)."""
        data: dict[str, Any] = self.client.api.inspect_container(container or self.name)
        return data

    def containers(self) -> list[dict[str, Any]]:
        """Every container of the project, running or not."""
        found: list[dict[str, Any]] = self.client.api.containers(
            all=True, filters={"label": f"com.docker.compose.project={self.project}"}
        )
        return found

    def cleanup(self) -> None:
        """Remove every container of the project (and the failed ones rollback kept as copies
        without its Compose labels), its volumes and its network."""
        api = self.client.api
        volumes: set[str] = {self.volume}
        kept: list[dict[str, Any]] = api.containers(
            all=True, filters={"label": f"opsmon.failed-project={self.project}"}
        )
        for summary in [*self.containers(), *kept]:
            with contextlib.suppress(docker.errors.DockerException):
                for mount in api.inspect_container(summary["Id"]).get("Mounts", []):
                    if mount.get("Type") == "volume":
                        volumes.add(str(mount["Name"]))
            with contextlib.suppress(docker.errors.DockerException):
                api.remove_container(summary["Id"], force=True)
        for volume in volumes:
            with contextlib.suppress(docker.errors.DockerException):
                api.remove_volume(volume, force=True)
        for network in self.networks:
            with contextlib.suppress(docker.errors.DockerException):
                api.remove_network(network)


@pytest.fixture
def deployment(service_images: ServiceImages, tmp_path: Path) -> Iterator[Deployment]:
    """A Compose-style service (not deployed yet) whose containers, volumes and network are
    removed after the test."""
    client = docker_client()
    state = tmp_path / "service-state"
    state.mkdir()
    state.chmod(0o777)
    found = Deployment(client, service_images, state)
    found.set_healthy(True)
    try:
        yield found
    finally:
        found.cleanup()
        client.close()


def answers(url: str) -> int | None:
    """The HTTP status `url` answers with (None: no answer)."""
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def wait_answers(url: str, status: int, timeout: float = 15) -> None:
    """Poll `url` until it answers `status`."""
    wait_until(lambda: answers(url) == status, timeout=timeout)


def compose_available() -> bool:
    """Whether Debian's docker-compose (v1) is installed."""
    try:
        subprocess.run(["docker-compose", "version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def docker_env() -> dict[str, str]:
    """The environment with DOCKER_HOST pointing at the local engine."""
    return {**os.environ, "DOCKER_HOST": "unix:///var/run/docker.sock"}
