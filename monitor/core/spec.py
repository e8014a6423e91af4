"""The fields every check has, as config validates them (each check type extends CheckSpec)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, ValidationInfo

from monitor.conditions import Condition, check_placeholders
from monitor.core.duration_fields import Duration, PositiveDuration

CHECK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _parse_condition(value: Any, info: ValidationInfo) -> Condition:
    condition = value if isinstance(value, Condition) else Condition.parse(value)
    # The registry entry hands in its check type's placeholders (CheckType.validate).
    context = info.context if isinstance(info.context, dict) else {}
    table = context.get("placeholders")
    if table is not None:
        check_placeholders(condition, table, str(context.get("check_type", "these")))
    return condition


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
