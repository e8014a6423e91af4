"""The result of one run of one check: plain data, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.conditions import ConditionResult


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
