"""Status badges as SVG (shields.io's flat look): pure functions, text measured approximately.

A badge always carries its value as text (`up`, `down`, `99.95%`), so it never relies on
colour alone, and has a `<title>` and `aria-label` for screen readers.
"""

from __future__ import annotations

from html import escape

from monitor.status.html import format_uptime

_COLOURS = {"healthy": "#1a7f37", "unhealthy": "#b42318", "unknown": "#57606a"}
_WORDS = {"healthy": "up", "unhealthy": "down", "unknown": "unknown"}
_CHAR_W = 6.6  # average advance of 11px Verdana/DejaVu Sans
_PAD = 6


def _width(text: str) -> int:
    return int(len(text) * _CHAR_W + 2 * _PAD)


def badge(label: str, value: str, colour: str) -> str:
    """A two-part badge: grey `label`, coloured `value`."""
    lw, vw = _width(label), _width(value)
    total = lw + vw
    label_e, value_e = escape(label), escape(value)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img"'
        f' aria-label="{label_e}: {value_e}"><title>{label_e}: {value_e}</title>'
        f'<rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{vw}" height="20" fill="{colour}"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif"'
        ' font-size="11">'
        f'<text x="{lw / 2:.1f}" y="14">{label_e}</text>'
        f'<text x="{lw + vw / 2:.1f}" y="14">{value_e}</text></g></svg>'
    )


def health_badge(check: str, state: str) -> str:
    """`check | up` (green), `down` (red) or `unknown` (grey)."""
    return badge(check, _WORDS.get(state, state), _COLOURS.get(state, _COLOURS["unknown"]))


def uptime_badge(check: str, window: str, value: float | None) -> str:
    """`check uptime 7d | 99.95%`; green at 99.9% or more, amber at 99%, red below."""
    if value is None:
        colour = _COLOURS["unknown"]
    elif value >= 0.999:
        colour = _COLOURS["healthy"]
    elif value >= 0.99:
        colour = "#8a5a00"
    else:
        colour = _COLOURS["unhealthy"]
    return badge(f"{check} uptime {window}", format_uptime(value), colour)
