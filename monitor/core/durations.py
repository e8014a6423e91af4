"""Durations as operators write them: `500ms`, `30s`, `5m`, `4h`, `7d`, or `1h30m`."""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")
# The longest duration anything accepts. Longer ones overflow datetime arithmetic (timedelta
# tops out at 999999999 days, datetime at year 9999) and are never what was meant.
MAX_DURATION = 3650 * 86400.0


def parse_duration(text: str) -> float:
    """Return the number of seconds that `text` denotes; raise ValueError if it is malformed
    or longer than MAX_DURATION."""
    cleaned = text.strip()
    if not _WHOLE.match(cleaned):
        raise ValueError(f"invalid duration {text!r}: expected e.g. 500ms, 30s, 5m, 4h")
    return check_duration_range(
        sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(cleaned))
    )


def check_duration_range(seconds: float) -> float:
    """`seconds` if it is finite and at most MAX_DURATION; else a ValueError saying so."""
    if math.isnan(seconds):
        raise ValueError("must be a duration, not NaN")
    if seconds > MAX_DURATION or math.isinf(seconds):
        raise ValueError(f"too long: at most {format_duration(MAX_DURATION)}")
    return seconds


def is_duration(text: str) -> bool:
    """Tell whether `text` is written as a duration."""
    return bool(_WHOLE.match(text.strip()))


def format_duration(seconds: float) -> str:
    """Render seconds back in the shortest unit that is exact, e.g. 90 -> `90s`, 7200 -> `2h`."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
