"""What every check type shares: the spec fields, the result, and the protocol a check follows."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
)

from monitor.conditions import Condition, ConditionResult, Facts, evaluate_all
from monitor.durations import check_duration_range, parse_duration

CHECK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _to_seconds(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    return value


Duration = Annotated[float, BeforeValidator(_to_seconds), AfterValidator(check_duration_range)]
"""Seconds, written in config as `500ms`, `30s`, `5m`, `4h` (a bare number means seconds)."""

PositiveDuration = Annotated[Duration, Field(gt=0)]


def _parse_condition(value: Any) -> Condition:
    if isinstance(value, Condition):
        return value
    return Condition.parse(value)


ConditionField = Annotated[
    Condition, PlainValidator(_parse_condition), PlainSerializer(lambda c: c.text)
]


class CheckSpec(BaseModel):
    """Fields every check has; each check type extends this with its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=CHECK_NAME.pattern, max_length=63)
    type: str
    service: str | None = Field(default=None, max_length=63)
    depends_on: tuple[str, ...] = ()
    interval: PositiveDuration = 30.0
    timeout: PositiveDuration = 5.0
    failure_threshold: int = Field(default=3, ge=1)
    success_threshold: int = Field(default=2, ge=1)
    startup_grace: Duration = Field(default=0.0, ge=0)
    conditions: tuple[ConditionField, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    """One run of one check. `reason` says, for a person, why it failed; `kind` is bounded."""

    ok: bool
    reason: str = ""
    kind: str = "ok"
    duration: float = 0.0
    facts: Mapping[str, Any] = field(default_factory=dict)
    failed_conditions: tuple[ConditionResult, ...] = ()
    connected: bool = False
    unknown: bool = False

    @classmethod
    def failure(cls, kind: str, reason: str, **extra: Any) -> CheckResult:
        """A failed run with a bounded `kind` and a readable `reason`."""
        return cls(ok=False, kind=kind, reason=reason, **extra)


class Check(Protocol):
    """A check type's runtime object: built once per spec, run many times."""

    @property
    def spec(self) -> CheckSpec:
        """The validated config of this check."""
        ...

    async def run(self) -> CheckResult:
        """Observe the target once. Unhealthy targets give a failed result, never an exception."""
        ...


@dataclass(frozen=True)
class CheckType:
    """A registry entry: the spec model that config validates against and how to build the check."""

    spec_model: type[CheckSpec]
    build: Callable[[Any, Any], Check]  # (spec of spec_model, CheckContext)


def judge(
    conditions: tuple[Condition, ...],
    facts: Mapping[str, Any],
    evaluation_facts: Facts,
    *,
    duration: float,
    connected: bool,
) -> CheckResult:
    """Turn gathered facts into a result: every condition must hold."""
    results = evaluate_all(list(conditions), evaluation_facts)
    failed = tuple(r for r in results if not r.ok)
    if not failed:
        return CheckResult(ok=True, duration=duration, facts=facts, connected=connected)
    return CheckResult(
        ok=False,
        kind="condition",
        reason="; ".join(r.detail for r in failed),
        duration=duration,
        facts=facts,
        failed_conditions=failed,
        connected=connected,
    )
