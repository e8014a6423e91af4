"""What kind of service a check watches: the one place that knows which check types watch a
database. Diagnosis (`Snapshot.service_kind`) and rollback's config validation
(`rollback.config.database_services`) both ask here, so neither matches type strings.

Plain data and no imports: `opsmon config validate` loads it without any check library.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Protocol


class ServiceKind(StrEnum):
    """What kind of service a check watches: a database is never rolled back and its outage
    explains its dependents; an app is what deploys change."""

    DATABASE = "database"
    APP = "app"


# The check types that watch a database; every other type watches an app (or its container).
DATABASE_CHECK_TYPES = frozenset({"postgres"})


class WatchesService(Protocol):
    """A check as far as its service's kind goes (a `CheckSpec`, a diagnosis `CheckView`)."""

    @property
    def type(self) -> str: ...

    @property
    def service(self) -> str | None: ...


def kind_of_check_type(check_type: str) -> ServiceKind:
    """The kind of service a check of this type watches."""
    return ServiceKind.DATABASE if check_type in DATABASE_CHECK_TYPES else ServiceKind.APP


def kind_of_service(check_types: Iterable[str]) -> ServiceKind:
    """A service with a check that watches a database is a database; else an app."""
    kinds = {kind_of_check_type(t) for t in check_types}
    return ServiceKind.DATABASE if ServiceKind.DATABASE in kinds else ServiceKind.APP


def services_of_kind(checks: Iterable[WatchesService], kind: ServiceKind) -> frozenset[str]:
    """The services (by the checks' `service` field) that are of `kind`."""
    types: dict[str, list[str]] = {}
    for check in checks:
        if check.service:
            types.setdefault(check.service, []).append(check.type)
    return frozenset(s for s, found in types.items() if kind_of_service(found) is kind)
