"""A check's health after thresholds and the transitions between health states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from monitor.core.result import CheckResult
from monitor.core.spec import CheckSpec


class Health(StrEnum):
    """A check's state after thresholds."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class HealthChange:
    """A change of health, with the result that caused it (the evidence)."""

    check: str
    previous: Health
    current: Health
    result: CheckResult
    at: datetime


@dataclass(frozen=True)
class Transition(HealthChange):
    """A change of health as listeners get it: with a snapshot of the check's spec, so a
    listener never needs to look the check up again (it may be gone by then)."""

    spec: CheckSpec

    @classmethod
    def of(cls, change: HealthChange, spec: CheckSpec) -> Transition:
        """`change` of the check whose spec is `spec`."""
        return cls(change.check, change.previous, change.current, change.result, change.at, spec)
