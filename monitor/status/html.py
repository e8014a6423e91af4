"""The status pages as HTML: pure functions from a view model to a string.

No JavaScript and no external files: the CSS is inline and the charts are inline SVG, so the
page works in any browser, through any proxy, and renders on a phone. State is never told by
colour alone: every state has a word and an icon, and each daily bar has a height for its
state (full: up, two thirds: degraded, one third: down, a thin line: no data) and a tooltip
(SVG `<title>`) with the date and the uptime; each strip has a text summary for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from monitor.status.rollup import DayBar, Windows
from monitor.status.view import (
    CheckRow,
    CheckView,
    DayState,
    IncidentRecord,
    ServiceGroup,
    StatusView,
    day_state,
)

_STATE_WORDS = {"healthy": "Up", "unhealthy": "Down", "unknown": "Unknown"}
_STATE_ICONS = {"healthy": "\u2713", "unhealthy": "\u2715", "unknown": "?"}
_OVERALL = {
    "healthy": "All checks are up",
    "unhealthy": "Some checks are down",
    "unknown": "Some checks cannot be observed",
}
# The CSS class per day state; the class sets the colour *and* the bar's height (the shape
# cue: full for up, two thirds degraded, one third down, a thin line for no data).
_DAY_CLASS = {DayState.UP: "u", DayState.DEGRADED: "g", DayState.DOWN: "d", DayState.NO_DATA: "n"}
_DAY_ORDER = {DayState.UP: 0, DayState.DEGRADED: 1, DayState.DOWN: 2, DayState.NO_DATA: 3}

CSS = """
:root{--up:#1a7f37;--deg:#8a5a00;--down:#b42318;--none:#767676;--fg:#1f2328;--muted:#57606a;
--bg:#fff;--line:#d0d7de}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg)}
header,main,footer{max-width:60rem;margin:0 auto;padding:0 1rem}
h1{font-size:1.6rem;margin:1rem 0 .25rem}
h2{font-size:1.25rem;margin:1.5rem 0 .5rem;border-bottom:1px solid var(--line)}
h3{font-size:1.05rem;margin:1rem 0 .25rem}
a{color:#0550ae}
.meta,.since,.axis,.legend{color:var(--muted);font-size:.875rem}
.pill{display:inline-block;padding:0 .5rem;border-radius:1rem;color:#fff;font-weight:600;
font-size:.875rem;white-space:nowrap}
.s-healthy{background:var(--up)}.s-unhealthy{background:var(--down)}
.s-unknown{background:var(--none)}
.overall{font-size:1.1rem;padding:.5rem .75rem;border-radius:.4rem}
ul.checks,ol.timeline{list-style:none;margin:0;padding:0}
li.check{padding:.5rem 0;border-bottom:1px solid var(--line)}
.head{display:flex;flex-wrap:wrap;gap:.25rem .75rem;align-items:baseline}
.name{font-weight:600}
.bars{display:flex;align-items:flex-end;gap:1px;height:24px;margin:.25rem 0 0}
.bars i{flex:1 1 0;min-width:1px}
.u{height:24px;background:var(--up)}.g{height:16px;background:var(--deg)}
.d{height:8px;background:var(--down)}.n{height:2px;background:var(--none)}
.swatch{display:inline-flex;align-items:flex-end;height:24px;width:6px;vertical-align:middle}
.swatch i{width:6px}
.axis{display:flex;justify-content:space-between}
dl.uptime{display:flex;flex-wrap:wrap;gap:.25rem 1.25rem;margin:.25rem 0 0}
dl.uptime div{display:flex;gap:.35rem}dt{color:var(--muted)}dd{margin:0;font-weight:600}
.legend svg{vertical-align:middle}
.legend>span{margin-right:1rem;white-space:nowrap}
ol.timeline li{border-left:4px solid var(--line);padding:.25rem 0 .5rem .75rem;margin:.5rem 0}
ol.timeline li.ongoing{border-left-color:var(--down)}
.tag{display:inline-block;border:1px solid var(--muted);border-radius:.25rem;padding:0 .35rem;
font-size:.8rem;margin-right:.25rem}
.err{font-family:ui-monospace,monospace;font-size:.85rem;overflow-wrap:anywhere}
svg.chart{width:100%;height:auto;max-width:46rem}
.p50{stroke:#0550ae;fill:none;stroke-width:2}
.p95{stroke:#6e3800;fill:none;stroke-width:2;stroke-dasharray:6 4}
.grid{stroke:var(--line)}
.chart text{font-size:11px;fill:var(--muted)}
table{border-collapse:collapse;font-size:.875rem}
td,th{padding:.1rem .6rem;text-align:right;border-bottom:1px solid var(--line)}
footer{margin-top:2rem;padding-bottom:2rem}
"""


def _time(value: datetime | None) -> str:
    if value is None:
        return "-"
    text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f'<time datetime="{value.astimezone(UTC).isoformat()}">{text}</time>'


def format_uptime(value: float | None) -> str:
    """`99.95%`; never rounds up to 100% (truncates to two decimals); `-` without data."""
    if value is None:
        return "-"
    if value >= 1.0:
        return "100%"
    return f"{math.floor(value * 10000) / 100:.2f}%"


def format_ms(value: float | None) -> str:
    """A response time for people: `4.2 ms`, `180 ms`, `1.50 s`."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f} ms"
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.2f} s"


def _duration(start: datetime, end: datetime) -> str:
    seconds = int((end - start).total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    return f"{hours // 24}d {hours % 24}h"


def state_pill(state: str) -> str:
    """The state as an icon and a word on a coloured pill."""
    word = _STATE_WORDS.get(state, state.title())
    icon = _STATE_ICONS.get(state, "?")
    return (
        f'<span class="pill s-{escape(state)}"><span aria-hidden="true">{icon}</span> {word}</span>'
    )


def _page(title: str, body: str, now: datetime) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{body}"
        f'<footer class="meta">Generated {_time(now)} by opsmon; reload for newer figures.'
        " Times are UTC; days are UTC days.</footer></body></html>"
    )


Cells = tuple[str, tuple[int, int, int, int]]  # the bars' HTML, and how many up/deg/down/none


def bar_cells(bars: Sequence[DayBar]) -> Cells:
    """The HTML of some daily bars, each with a tooltip (date, uptime and state in words), and
    how many are up, degraded, down and without data."""
    counts = [0, 0, 0, 0]
    parts = []
    for bar in bars:
        state = day_state(bar)
        counts[_DAY_ORDER[state]] += 1
        if bar.uptime is None:
            parts.append(f'<i class="n" title="{bar.day.isoformat()}: no data"></i>')
        else:
            parts.append(
                f'<i class="{_DAY_CLASS[state]}" title="{bar.day.isoformat()}:'
                f' {format_uptime(bar.uptime)} up, {state.value}"></i>'
            )
    return "".join(parts), (counts[0], counts[1], counts[2], counts[3])


def join_cells(first: Cells, second: Cells) -> Cells:
    """Two runs of bars as one."""
    a, b = first[1], second[1]
    return first[0] + second[0], (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def strip_html(name: str, cells: Cells) -> str:
    """The strip of bars with a summary of them as its label (for screen readers)."""
    up, degraded, down, none = cells[1]
    summary = (
        f"{escape(name)}, last {up + degraded + down + none} days: {up} up,"
        f" {degraded} degraded, {down} down, {none} without data"
    )
    return f'<div class="bars" role="img" aria-label="{summary}">{cells[0]}</div>'


def bar_strip(name: str, bars: Sequence[DayBar]) -> str:
    """The daily bars of one check as a labelled strip."""
    return strip_html(name, bar_cells(bars))


Strip = Callable[[CheckRow], str]


def plain_strip(row: CheckRow) -> str:
    """A check row's strip, rendered afresh."""
    return bar_strip(row.info.name, row.bars)


def legend() -> str:
    """What the bar shapes and colours mean."""
    words = {
        DayState.UP: "up all day",
        DayState.DEGRADED: "degraded (99% or more)",
        DayState.DOWN: "down (below 99%)",
        DayState.NO_DATA: "no data",
    }
    items = "".join(
        f'<span><span class="swatch" aria-hidden="true"><i class="{_DAY_CLASS[state]}"></i>'
        f"</span> {text}</span>"
        for state, text in words.items()
    )
    return f'<p class="legend">Each bar is one day: {items}</p>'


def uptime_list(uptime: Windows) -> str:
    """The uptime figures as a definition list."""
    pairs = (
        ("24 h", uptime.day),
        ("7 d", uptime.week),
        ("30 d", uptime.month),
        ("90 d", uptime.quarter),
    )
    cells = "".join(
        f"<div><dt>{label}</dt><dd>{format_uptime(value)}</dd></div>" for label, value in pairs
    )
    return f'<dl class="uptime" aria-label="uptime">{cells}</dl>'


def _check_item(row: CheckRow, strip: Strip) -> str:
    info = row.info
    name = escape(info.name)
    error = ""
    if info.state != "healthy" and info.last_error:
        error = f'<div class="err">{escape(info.last_error)}</div>'
    return (
        f'<li class="check" id="check-{name}"><div class="head">'
        f'<a class="name" href="/status/{quote(info.name)}">{name}</a>{state_pill(info.state)}'
        f'<span class="since">since {_time(info.since)}</span></div>{error}'
        f"{strip(row)}"
        f'<div class="axis" aria-hidden="true"><span>{len(row.bars)} days ago</span>'
        f"<span>today</span></div>{uptime_list(row.uptime)}</li>"
    )


def _service(group: ServiceGroup, strip: Strip) -> str:
    items = "".join(_check_item(row, strip) for row in group.checks)
    return (
        f'<section class="service"><h3>{escape(group.name)} {state_pill(group.state)}</h3>'
        f'<ul class="checks">{items}</ul></section>'
    )


def incident_item(incident: IncidentRecord, now: datetime) -> str:
    """One incident in the timeline."""
    end = incident.ended_at
    status = "ongoing" if end is None else "resolved"
    lasted = _duration(incident.started_at, end or now)
    tags = [f'<span class="tag">{escape(incident.severity)}</span>']
    if incident.rolled_back:
        tags.append('<span class="tag">rolled back</span>')
    if incident.acked_by:
        tags.append(
            f'<span class="tag">acknowledged by {escape(incident.acked_by)}'
            f" at {_time(incident.acked_at)}</span>"
        )
    where = escape(incident.check or incident.service or "opsmon")
    runbook = (
        f' <a href="{escape(incident.runbook_url)}">Runbook</a>' if incident.runbook_url else ""
    )
    return (
        f'<li class="{status}"><h3>{escape(incident.alertname)} on {where}</h3>'
        f'<div>{"".join(tags)}<span class="tag">{status}</span></div>'
        f"<p>{escape(incident.summary)}</p>"
        f'<p class="meta">Started {_time(incident.started_at)}, '
        + (f"ended {_time(end)}" if end is not None else "still going")
        + f" ({lasted}).{runbook}</p></li>"
    )


def _timeline(incidents: Sequence[IncidentRecord], now: datetime) -> str:
    if not incidents:
        return "<p>No incidents in the last 90 days.</p>"
    return '<ol class="timeline">' + "".join(incident_item(i, now) for i in incidents) + "</ol>"


def render_status(view: StatusView, strip: Strip = plain_strip) -> str:
    """`GET /status`; `strip` draws each check's bars (the server passes one that reuses the
    bars of past days between requests)."""
    services = "".join(_service(group, strip) for group in view.services) or "<p>No checks.</p>"
    body = (
        f"<header><h1>{escape(view.title)}</h1>"
        f'<p class="overall pill s-{view.state}"><span aria-hidden="true">'
        f"{_STATE_ICONS.get(view.state, '?')}</span> {_OVERALL.get(view.state, '')}</p></header>"
        f'<main><h2 id="services">Services</h2>{legend()}{services}'
        f'<h2 id="incidents">Incidents</h2>{_timeline(view.incidents, view.now)}</main>'
    )
    return _page(view.title, body, view.now)


def response_chart(bars: Sequence[DayBar], label: str) -> str:
    """Daily p50 (solid line) and p95 (dashed line) response times as an inline SVG chart."""
    width, height, left, right, top, bottom = 720, 220, 56, 8, 10, 28
    values = [v for b in bars for v in (b.p50_ms, b.p95_ms) if v is not None]
    if not values:
        return "<p>No response times recorded yet.</p>"
    top_value = 4 * _nice(max(values) * 1.05 / 4)  # four round steps
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(bars) - 1)

    def x(i: int) -> float:
        return left + i * step

    def y(v: float) -> float:
        return top + plot_h * (1 - v / top_value)

    grid = []
    for k in range(5):
        value = top_value * k / 4
        gy = y(value)
        grid.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{gy:.1f}" y2="{gy:.1f}"/>'
            f'<text x="{left - 4}" y="{gy + 4:.1f}" text-anchor="end">{format_ms(value)}</text>'
        )
    lines = []
    points = []
    for attr, css in (("p50_ms", "p50"), ("p95_ms", "p95")):
        path, pen_down = [], False
        for i, bar in enumerate(bars):
            value = getattr(bar, attr)
            if value is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{x(i):.1f} {y(value):.1f}")
            pen_down = True
        lines.append(f'<path class="{css}" d="{" ".join(path)}"/>')
    for i, bar in enumerate(bars):
        if bar.p50_ms is None:
            continue
        points.append(
            f'<circle cx="{x(i):.1f}" cy="{y(bar.p95_ms or bar.p50_ms):.1f}" r="3"'
            ' fill="transparent">'
            f"<title>{bar.day.isoformat()}: p50 {format_ms(bar.p50_ms)},"
            f" p95 {format_ms(bar.p95_ms)}</title></circle>"
        )
    first, last = bars[0].day.isoformat(), bars[-1].day.isoformat()
    axis = (
        f'<text x="{left}" y="{height - 8}">{first}</text>'
        f'<text x="{width - right}" y="{height - 8}" text-anchor="end">{last}</text>'
    )
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{escape(label)}">'
        f"{''.join(grid)}{''.join(lines)}{''.join(points)}{axis}</svg>"
        '<p class="legend"><span><svg width="24" height="8" aria-hidden="true">'
        '<line class="p50" x1="0" x2="24" y1="4" y2="4"/></svg> p50 (median, solid)</span>'
        '<span><svg width="24" height="8" aria-hidden="true"><line class="p95" x1="0" x2="24"'
        ' y1="4" y2="4"/></svg> p95 (dashed)</span></p>'
    )


def _nice(value: float) -> float:
    """A round axis maximum at or above `value`."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= value:
            return float(factor * magnitude)
    return 10.0 * magnitude


def _day_table(bars: Sequence[DayBar]) -> str:
    rows = "".join(
        f'<tr><th scope="row">{b.day.isoformat()}</th><td>{format_uptime(b.uptime)}</td>'
        f"<td>{b.total}</td><td>{format_ms(b.p50_ms)}</td><td>{format_ms(b.p95_ms)}</td></tr>"
        for b in reversed(bars)
        if b.total
    )
    return (
        '<details><summary>Every day as a table</summary><table><thead><tr><th scope="col">Day'
        '</th><th scope="col">Uptime</th><th scope="col">Runs</th><th scope="col">p50</th>'
        f'<th scope="col">p95</th></tr></thead><tbody>{rows}</tbody></table></details>'
    )


def render_check(view: CheckView) -> str:
    """`GET /status/<check>`."""
    info = view.row.info
    name = escape(info.name)
    error = ""
    if info.state != "healthy" and info.last_error:
        error = f'<p>Last error: <span class="err">{escape(info.last_error)}</span></p>'
    service = f" of service {escape(info.service)}" if info.service else ""
    body = (
        f'<header><p><a href="/status">\u2190 {escape(view.title)}</a></p>'
        f"<h1>{name}</h1><p>{escape(info.type)} check{service}. {state_pill(info.state)}"
        f' <span class="since">since {_time(info.since)}</span></p>{error}</header><main>'
        f'<h2 id="uptime">Uptime</h2>{uptime_list(view.row.uptime)}{legend()}'
        f"{bar_strip(info.name, view.row.bars)}"
        f'<div class="axis" aria-hidden="true"><span>{len(view.row.bars)} days ago</span>'
        "<span>today</span></div>"
        f'<h2 id="response-time">Response time</h2><p>Over 90 days: p50'
        f" {format_ms(view.p50_ms)}, p95 {format_ms(view.p95_ms)} (estimates within 9.1%).</p>"
        f"{response_chart(view.row.bars, f'{info.name}: daily p50 and p95 response time')}"
        f"{_day_table(view.row.bars)}"
        f'<h2 id="incidents">Incidents</h2>{_timeline(view.incidents, view.now)}</main>'
    )
    return _page(f"{info.name} - {view.title}", body, view.now)


def render_not_found(title: str, name: str, now: datetime) -> str:
    """The page for a check that does not exist."""
    body = (
        f'<header><p><a href="/status">\u2190 {escape(title)}</a></p><h1>No such check</h1>'
        f"</header><main><p>There is no check called {escape(name)!s}.</p></main>"
    )
    return _page(title, body, now)
