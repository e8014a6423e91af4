"""The status page HTML: every check with 90 bars, uptime figures, state in words and shapes
(never colour alone), escaped text, the incident timeline, and the response time chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from monitor.status.html import format_ms, format_uptime, render_check, render_status
from monitor.status.rollup import Period, Sample, daily_bars, fold, windows
from monitor.status.view import (
    CheckInfo,
    CheckOverview,
    IncidentRecord,
    check_view,
    status_view,
)

NOW = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)


def _overview(checks: dict[str, list[bool]]) -> dict[str, CheckOverview]:
    """The overview of checks with one result per day (today last)."""
    days, hours = _history(checks)
    at = NOW.timestamp()
    return {
        name: CheckOverview(
            tuple(daily_bars(days[name], at)), windows(hours.get(name, []), days[name], at)
        )
        for name in days
    }


def _history(checks: dict[str, list[bool]]) -> tuple[dict, dict]:
    """Day and hour rows: check -> one result per day, today last."""
    samples = [
        Sample(name, (NOW - timedelta(days=len(results) - 1 - i)).timestamp(), ok, 50.0 + i)
        for name, results in checks.items()
        for i, ok in enumerate(results)
    ]
    days: dict = {}
    hours: dict = {}
    for row in fold(samples).values():
        (days if row.period is Period.DAY else hours).setdefault(row.check, []).append(row)
    return days, hours


def _info(
    name: str, service: str | None, state: str = "healthy", error: str | None = None
) -> CheckInfo:
    return CheckInfo(name, "http", service, state, NOW - timedelta(hours=2), error)


def _incident(check: str, ended: bool, **extra: object) -> IncidentRecord:
    return IncidentRecord(
        id="i-" + check,
        check=check,
        service="backend",
        alertname="HealthCheckFailing",
        severity="critical",
        summary="The api check of backend fails.",
        description="status 503",
        runbook_url="http://localhost:9110/runbooks/health-check-failing",
        started_at=NOW - timedelta(hours=1),
        ended_at=NOW - timedelta(minutes=40) if ended else None,
        **extra,  # type: ignore[arg-type]
    )


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Collector()
    parser.feed(html)
    return parser.tags


def test_every_check_has_90_bars_each_with_a_dated_tooltip() -> None:
    """Each check shows 90 day bars; each bar's tooltip names its date and uptime."""
    history = _overview({"api": [True] * 89 + [False], "web": [True] * 3})
    view = status_view(
        "Acme", [_info("api", "backend"), _info("web", "frontend")], history, [], (), NOW
    )
    html = render_status(view)
    assert html.count('<div class="bars" role="img"') == 2
    assert len(re.findall(r'<i class="\w" title="', html)) == 180
    assert "2026-11-28: 0.00% up, down" in html
    assert "2026-11-27: 100% up, up" in html
    assert "2026-08-31: no data" in html  # web has only three days of history


def test_bar_state_has_a_shape_and_words_not_only_a_colour() -> None:
    """Up, degraded, down and no-data bars differ in height, and the strip has a text summary."""
    history = _overview({"api": [True, False, True]})
    html = render_status(status_view("Acme", [_info("api", None)], history, [], (), NOW))
    heights = dict(re.findall(r"\.(\w)\{height:(\d+)px", html))
    assert len(set(heights.values())) == len(heights) == 4  # up, degraded, down, no data
    assert 'aria-label="api, last 90 days: 2 up, 0 degraded, 1 down, 87 without data"' in html
    assert "up all day" in html and "no data" in html  # the legend says it in words


def test_state_and_uptime_figures_are_shown_in_words() -> None:
    """A down check says Down with an icon and its error; uptime windows are listed."""
    history = _overview({"api": [True] * 6 + [False]})
    info = _info("api", "backend", "unhealthy", "status 503: [STATUS] == 200 failed")
    html = render_status(status_view("Acme", [info], history, [], (), NOW))
    assert "\u2715</span> Down" in html
    assert "Some checks are down" in html
    assert "status 503: [STATUS] == 200 failed" in html
    for label in ("24 h", "7 d", "30 d", "90 d"):
        assert f"<dt>{label}</dt>" in html
    assert "<dd>85.71%</dd>" in html  # 6 of 7 days


def test_services_filter_and_order() -> None:
    """`services` shows only those services' checks, in the given order."""
    checks = [_info("a", "zeta"), _info("b", "alpha"), _info("c", "hidden")]
    html = render_status(status_view("Acme", checks, {}, [], ("zeta", "alpha"), NOW))
    assert html.index("zeta") < html.index("alpha")
    assert "<h3>hidden" not in html and 'id="check-c"' not in html


def test_text_is_escaped() -> None:
    """Titles, names and errors cannot inject markup."""
    info = _info("api", "backend", "unhealthy", "<script>alert(1)</script>")
    html = render_status(status_view("<b>Acme</b>", [info], {}, [], (), NOW))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>Acme</b>" not in html
    assert not [t for t, _ in _tags(html) if t == "script"]


def test_incident_timeline_shows_cause_runbook_ack_and_rollback() -> None:
    """Incidents list start, end, root cause, alert name, runbook, ack and rollback."""
    incidents = [
        _incident("api", ended=False, acked_by="alice", acked_at=NOW - timedelta(minutes=50)),
        _incident("web", ended=True, rolled_back=True),
    ]
    view = status_view(
        "Acme", [_info("api", "backend"), _info("web", "backend")], {}, incidents, (), NOW
    )
    html = render_status(view)
    assert "HealthCheckFailing on api" in html and "HealthCheckFailing on web" in html
    assert "The api check of backend fails." in html
    assert "acknowledged by alice" in html
    assert "rolled back" in html
    assert "still going" in html and "ended" in html and "(20m 0s)" in html
    assert 'href="http://localhost:9110/runbooks/health-check-failing"' in html


def test_page_has_no_scripts_and_is_a_complete_document() -> None:
    """No JavaScript, a language, a viewport for phones and a title."""
    html = render_status(status_view("Acme", [_info("api", None)], {}, [], (), NOW))
    tags = _tags(html)
    names = [t for t, _ in tags]
    assert "script" not in names
    assert ("html", {"lang": "en"}) in tags
    assert any(t == "meta" and a.get("name") == "viewport" for t, a in tags)
    assert "<title>Acme</title>" in html


def test_check_page_has_a_response_time_chart_and_table() -> None:
    """The check page draws p50 (solid) and p95 (dashed) lines and lists each day in a table."""
    days, hours = _history({"api": [True] * 10})
    view = check_view("Acme", _info("api", "backend"), days["api"], hours["api"], [], NOW)
    html = render_check(view)
    assert '<path class="p50" d="M' in html and '<path class="p95" d="M' in html
    assert "2026-11-28: p50" in html
    assert html.count('<tr><th scope="row">') == 10
    assert "within 9.1%" in html


def test_figures_are_formatted_for_people() -> None:
    """Uptime never rounds up to 100%; response times get a sensible unit."""
    assert format_uptime(0.99999) == "99.99%"
    assert format_uptime(1.0) == "100%"
    assert format_uptime(None) == "-"
    assert (format_ms(4.21), format_ms(180.4), format_ms(1500.0)) == ("4.2 ms", "180 ms", "1.50 s")
