"""Check types. Adding one is a new module and one line in CHECK_TYPES."""

from __future__ import annotations

from monitor.checks import container, docker_api, http, postgres
from monitor.checks.base import Check, CheckType

CHECK_TYPES: dict[str, CheckType] = {
    "http": CheckType(http.HttpSpec, http.build),
    "postgres": CheckType(postgres.PostgresSpec, postgres.build),
    "container": CheckType(container.ContainerSpec, container.build),
    "docker": CheckType(docker_api.DockerApiSpec, docker_api.build),
}

__all__ = ["CHECK_TYPES", "Check", "CheckType"]
