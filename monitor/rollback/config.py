"""The `rollback:` section of the config file.

```yaml
rollback:
  mode: dry_run                    # dry_run | enforce
  stable_after: 2m                 # healthy this long -> last known good
  window: 15m                      # after a deploy, the time in which a rollback may happen
  max_per_hour: 1
  verify_timeout: 5m
  services:
    backend: {strategy: recreate}
    frontend:
      strategy: command
      command: docker compose -f docker-compose.prod.yml up -d {service}
      cwd: /srv/app
      timeout: 5m
```
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.core.duration_fields import PositiveDuration
from monitor.core.service_kind import ServiceKind, kind_of_check_type, services_of_kind

if TYPE_CHECKING:
    from collections.abc import Sequence

    from monitor.core.spec import CheckSpec

# What a service called like this runs is data, not code: never rolled back.
DATABASE_NAME = re.compile(r"^(database|db|postgres|postgresql|pg|mysql|mariadb|mongo|mongodb)$")
PLACEHOLDERS = frozenset({"service", "project", "lkg_tag", "lkg_image", "bad_image"})
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class Mode(StrEnum):
    """`dry_run` alerts with the plan; `enforce` rolls back."""

    DRY_RUN = "dry_run"
    ENFORCE = "enforce"


class Strategy(StrEnum):
    """How a rollback is carried out."""

    RECREATE = "recreate"
    COMMAND = "command"


class ServiceRollback(BaseModel):
    """One service that opts in to rollback, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Strategy = Strategy.RECREATE
    # `command` strategy: placeholders {service} {project} {lkg_tag} {lkg_image} {bad_image};
    # it runs without a shell (write `sh -c '...'` for one), with CI_COMMIT_SHA={lkg_tag} set.
    command: str | None = None
    cwd: str | None = None
    timeout: PositiveDuration = 300.0
    # The Compose project, when several projects on the engine have a service of this name.
    project: str | None = Field(default=None, min_length=1)

    @field_validator("command")
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot be split into words: {exc}") from None
        if not words:
            raise ValueError("must not be empty")
        unknown = sorted(set(_PLACEHOLDER.findall(value)) - PLACEHOLDERS)
        if unknown:
            known = ", ".join(f"{{{p}}}" for p in sorted(PLACEHOLDERS))
            raise ValueError(
                f"unknown placeholder {', '.join(f'{{{u}}}' for u in unknown)} (known: {known})"
            )
        return value

    @model_validator(mode="after")
    def _strategy_needs(self) -> ServiceRollback:
        if self.strategy is Strategy.COMMAND and not self.command:
            raise ValueError("strategy `command` needs a `command`")
        if self.strategy is Strategy.RECREATE and self.command:
            raise ValueError("`command` is only used by strategy `command`")
        return self


class RollbackConfig(BaseModel):
    """When and how opsmon rolls a bad deploy back to the last known good image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Mode.DRY_RUN
    stable_after: PositiveDuration = 120.0
    window: PositiveDuration = 900.0
    max_per_hour: int = Field(default=1, ge=0)
    verify_timeout: PositiveDuration = 300.0
    services: dict[str, ServiceRollback] = Field(default_factory=dict)

    @field_validator("services")
    @classmethod
    def _service_names(cls, services: dict[str, ServiceRollback]) -> dict[str, ServiceRollback]:
        for name in services:
            if not _SERVICE_NAME.match(name):
                raise ValueError(f"{name!r} is not a Compose service name")
        return services


class HasChecksAndRollback(Protocol):
    """The parts of the whole config these functions read (the subsystem configs never import
    `monitor.config`: it assembles them)."""

    @property
    def rollback(self) -> RollbackConfig | None: ...

    @property
    def checks(self) -> Sequence[CheckSpec]: ...


def database_services(config: HasChecksAndRollback) -> frozenset[str]:
    """Services that hold data: those with a check that watches a database (the same kind
    diagnosis gives them, `monitor.core.service_kind`)."""
    return services_of_kind(config.checks, ServiceKind.DATABASE)


def service_projects(config: HasChecksAndRollback) -> dict[str, str]:
    """The Compose project of each opted-in service: its own `project`, else the project its
    container check selects (so another project's service of the same name is not mixed in)."""
    rollback = config.rollback
    if rollback is None:
        return {}
    found: dict[str, str] = {}
    for spec in config.checks:
        project = getattr(spec, "project", None)
        if spec.type == "container" and spec.service and isinstance(project, str) and project:
            found.setdefault(spec.service, project)
    return {
        name: settings.project or found[name]
        for name, settings in rollback.services.items()
        if settings.project or name in found
    }


def cross_check(config: HasChecksAndRollback) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Problems that need the whole config: a database service opted in to rollback."""
    rollback = config.rollback
    if rollback is None:
        return
    databases = database_services(config)
    watched = {s.service for s in config.checks if s.service}
    projects = service_projects(config)
    for name in rollback.services:
        if DATABASE_NAME.match(name):
            yield (
                ("rollback", "services", name),
                f"{name!r} looks like a database: a database is never rolled back",
            )
        elif name in databases:
            kind = next(
                s.type
                for s in config.checks
                if s.service == name and kind_of_check_type(s.type) is ServiceKind.DATABASE
            )
            yield (
                ("rollback", "services", name),
                f"{name!r} is the service of a {kind} check: a database is never rolled back",
            )
        elif name not in watched:
            yield (
                ("rollback", "services", name),
                f"no check has `service: {name}`, so opsmon could not tell a bad deploy of it "
                "from a good one",
            )
        elif name not in projects:
            # Before anything is written, the selection must be unambiguous: on a shared
            # engine `service: backend` alone also matches another project's backend.
            yield (
                ("rollback", "services", name),
                f"no Compose project for {name!r}: set `project:` on its container check (or "
                f"here); by service name alone another project's {name} could be rolled back",
            )
