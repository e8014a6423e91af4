"""The `docker:` section of the config file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, field_validator

from monitor.core.duration_fields import PositiveDuration

if TYPE_CHECKING:
    from collections.abc import Sequence

    from monitor.core.spec import CheckSpec

_SCHEMES = ("unix", "tcp", "http", "https")


class DockerConfig(BaseModel):
    """Where the engine is and whether to discover containers by their labels.

    ```yaml
    docker:
      host: tcp://docker-proxy:2375   # default: $DOCKER_HOST, else unix:///var/run/docker.sock
      discovery: true                 # containers labelled opsmon.enable=true get checks
      discovery_interval: 60s         # full rescan as a safety net beside the events
    ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str | None = None
    discovery: bool = False
    discovery_interval: PositiveDuration = 60.0

    @field_validator("host")
    @classmethod
    def _supported_host(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in _SCHEMES:
            raise ValueError(
                f"must be a unix:// socket or a tcp:// address (got {parts.scheme or 'no'} scheme)"
            )
        if parts.scheme != "unix":
            try:
                port = parts.port
            except ValueError:
                raise ValueError("the port must be a number from 1 to 65535") from None
            if not parts.hostname or port == 0:
                raise ValueError("must name a host and port, like tcp://127.0.0.1:2375")
        return value


CONTAINER_TYPES = frozenset({"container", "docker"})


class HasChecksAndDocker(Protocol):
    """The parts of the whole config `needs_docker` reads (the subsystem configs never import
    `monitor.config`: it assembles them)."""

    @property
    def docker(self) -> DockerConfig: ...

    @property
    def checks(self) -> Sequence[CheckSpec]: ...


def needs_docker(config: HasChecksAndDocker) -> bool:
    """Whether anything in `config` watches containers (so an engine must be there)."""
    return config.docker.discovery or any(s.type in CONTAINER_TYPES for s in config.checks)
