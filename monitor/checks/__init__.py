"""Check types. Adding one is a new module and one line in CHECK_TYPES (its spec model, its
builder and the table of placeholders its conditions may use)."""

from __future__ import annotations

from monitor.checks import container, docker_api, http, postgres
from monitor.checks.base import Check, CheckType

CHECK_TYPES: dict[str, CheckType] = {
    "http": CheckType(http.HttpSpec, http.build, http.PLACEHOLDERS),
    "postgres": CheckType(postgres.PostgresSpec, postgres.build, postgres.PLACEHOLDERS),
    "container": CheckType(container.ContainerSpec, container.build, container.PLACEHOLDERS),
    "docker": CheckType(docker_api.DockerApiSpec, docker_api.build, docker_api.PLACEHOLDERS),
}

__all__ = ["CHECK_TYPES", "Check", "CheckType"]
