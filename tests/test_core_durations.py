"""Durations as operators write them."""

from __future__ import annotations

import pytest

from monitor.core.durations import check_duration_range, format_duration, parse_duration


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


@pytest.mark.parametrize("text", ["99999999999d", "3651d", "9999999d"])
def test_rejects_durations_that_would_overflow(text: str) -> None:
    """A duration past 10 years is refused before any datetime arithmetic can overflow."""
    with pytest.raises(ValueError, match=r"^too long: at most 3650d$"):
        parse_duration(text)


@pytest.mark.parametrize("seconds", [float("inf"), float("nan")])
def test_range_check_refuses_infinite_and_nan(seconds: float) -> None:
    """`.inf` and `.nan` written as numbers in YAML are refused too."""
    with pytest.raises(ValueError, match=r"too long|NaN"):
        check_duration_range(seconds)


def test_longest_duration_is_accepted() -> None:
    """Exactly the limit still parses."""
    assert parse_duration("3650d") == check_duration_range(3650 * 86400.0)
