"""Durations as operators write them."""

from __future__ import annotations

import pytest

from monitor.core.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("5m", 300), ("4h", 14400), ("7d", 604800), ("1h30m", 5400)],
)
def test_parse(text: str, seconds: float) -> None:
    """Every unit the config accepts converts to seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "-1s", "1x"])
def test_rejects_malformed(text: str) -> None:
    """Anything that is not NUMBER+UNIT is rejected with an example of the right form."""
    with pytest.raises(ValueError, match=r"expected e\.g\. 500ms"):
        parse_duration(text)


def test_format_round_trips() -> None:
    """Durations print back in the unit an operator would write."""
    assert [format_duration(s) for s in (0.5, 30, 300, 7200, 90)] == [
        "500ms",
        "30s",
        "5m",
        "2h",
        "90s",
    ]
