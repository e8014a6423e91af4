"""What every check type shares: the protocol a check follows, its registry entry, judging."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from monitor.conditions import Condition, Facts, PlaceholderTable, evaluate_all
from monitor.core.result import CheckResult, FailureKind
from monitor.core.spec import CheckSpec


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
    """A registry entry: the spec model that config validates against, how to build the check,
    and the placeholders its conditions may use (with what each holds)."""

    spec_model: type[CheckSpec]
    build: Callable[[Any, Any], Check]  # (spec of spec_model, CheckContext)
    placeholders: PlaceholderTable = field(default_factory=dict)

    def validate(self, raw: object) -> CheckSpec:
        """The spec for `raw` config; conditions are checked against this type's placeholders,
        so one that could never work is a config error (pydantic's ValidationError)."""
        context = {"placeholders": self.placeholders, "check_type": self.spec_model_type(raw)}
        return self.spec_model.model_validate(raw, context=context)

    @staticmethod
    def spec_model_type(raw: object) -> str:
        """The `type` written in `raw`, for messages."""
        return str(raw.get("type")) if isinstance(raw, dict) else "these"


def judge(
    conditions: tuple[Condition, ...],
    facts: Mapping[str, object],
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
        kind=FailureKind.CONDITION,
        reason="; ".join(r.detail for r in failed),
        duration=duration,
        facts=facts,
        failed_conditions=failed,
        connected=connected,
    )
