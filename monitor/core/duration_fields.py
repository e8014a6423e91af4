"""Durations as pydantic config fields. Apart from the text functions in
`monitor.core.durations`, so that commands which only parse a duration (`opsmon gate
--timeout`, `opsmon --help`) do not import pydantic."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from monitor.core.durations import check_duration_range, parse_duration


def _to_seconds(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    return value


Duration = Annotated[float, BeforeValidator(_to_seconds), AfterValidator(check_duration_range)]
"""Seconds, written in config as `500ms`, `30s`, `5m`, `4h` (a bare number means seconds)."""

PositiveDuration = Annotated[Duration, Field(gt=0)]
"""A Duration greater than zero."""
