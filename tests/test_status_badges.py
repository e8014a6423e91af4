"""Badges: valid SVG with the value as text (never colour alone) and an accessible name."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from monitor.status.badges import health_badge, uptime_badge

SVG = "{http://www.w3.org/2000/svg}"


def _texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_health_badge_says_the_state() -> None:
    """The health badge is well-formed SVG naming the check and its state in words."""
    for state, word in (("healthy", "up"), ("unhealthy", "down"), ("unknown", "unknown")):
        svg = health_badge("api", state)
        assert _texts(svg) == ["api", word]
        assert ET.fromstring(svg).get("aria-label") == f"api: {word}"


def test_uptime_badge_colour_follows_the_figure() -> None:
    """Uptime badges show the figure; green, amber and red at 99.9% and 99%."""
    good, fair, bad = (uptime_badge("api", "7d", v) for v in (0.9995, 0.995, 0.9))
    assert _texts(good) == ["api uptime 7d", "99.95%"]
    assert "#1a7f37" in good and "#8a5a00" in fair and "#b42318" in bad
    assert _texts(uptime_badge("api", "90d", None))[1] == "-"


def test_badge_text_is_escaped() -> None:
    """A label cannot break the SVG."""
    ET.fromstring(health_badge("a<b&c", "healthy"))
