"""The status page's view model, built by pure functions from plain records.

The daemon gathers the records (check states, rollup rows, incidents) at the edge; everything
the page shows is decided here, so rendering (`monitor.status.html`) only formats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from monitor.status.rollup import (
    DayBar,
    Rollup,
    Windows,
    daily_bars,
    merge_histograms,
    percentile,
    windows,
)

NO_SERVICE = ""


class DayState(StrEnum):
    """How a daily bar is drawn: each state has its own colour *and* bar height and word."""

    UP = "up"  # every judged run was healthy
    DEGRADED = "degraded"  # some failures, uptime at least DEGRADED_FLOOR
    DOWN = "down"  # uptime below DEGRADED_FLOOR
    NO_DATA = "no data"


DEGRADED_FLOOR = 0.99


def day_state(bar: DayBar) -> DayState:
    """The state a daily bar shows."""
    if bar.uptime is None:
        return DayState.NO_DATA
    if bar.uptime >= 1.0:
        return DayState.UP
    return DayState.DEGRADED if bar.uptime >= DEGRADED_FLOOR else DayState.DOWN


@dataclass(frozen=True)
class CheckInfo:
    """A check as the daemon knows it now (the last error is already redacted)."""

    name: str
    type: str
    service: str | None
    state: str  # healthy | unhealthy | unknown
    since: datetime | None
    last_error: str | None = None


@dataclass(frozen=True)
class IncidentRecord:
    """An incident as the page and the API show it (text already redacted)."""

    id: str
    check: str | None
    service: str | None
    alertname: str
    severity: str
    summary: str  # the diagnosis: what is wrong and its root cause
    description: str
    runbook_url: str
    started_at: datetime
    ended_at: datetime | None
    acked_by: str | None = None
    acked_at: datetime | None = None
    rolled_back: bool = False

    @property
    def ongoing(self) -> bool:
        """Whether it has not ended yet."""
        return self.ended_at is None


@dataclass(frozen=True)
class CheckOverview:
    """A check's 90 day bars and uptime windows, as the overview page shows them."""

    bars: tuple[DayBar, ...]
    uptime: Windows


@dataclass(frozen=True)
class CheckRow:
    """One check on the page: its state, daily bars and uptime figures."""

    info: CheckInfo
    bars: tuple[DayBar, ...]
    uptime: Windows


@dataclass(frozen=True)
class ServiceGroup:
    """A service and its checks (the worst check state is the service's)."""

    name: str
    state: str
    checks: tuple[CheckRow, ...]


@dataclass(frozen=True)
class StatusView:
    """Everything `/status` shows."""

    title: str
    now: datetime
    state: str
    services: tuple[ServiceGroup, ...]
    incidents: tuple[IncidentRecord, ...]


@dataclass(frozen=True)
class HourPoint:
    """One hour of response times on the check page."""

    start: datetime
    uptime: float | None
    p50_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True)
class CheckView:
    """Everything `/status/<check>` shows."""

    title: str
    now: datetime
    row: CheckRow
    hours: tuple[HourPoint, ...]
    p50_ms: float | None  # over the 90 days
    p95_ms: float | None
    incidents: tuple[IncidentRecord, ...]


_SEVERITY = {"unhealthy": 2, "unknown": 1, "healthy": 0}


def worst(states: Sequence[str]) -> str:
    """The worst of several check states (healthy when there are none)."""
    return max(states, key=lambda s: _SEVERITY.get(s, 1), default="healthy")


def check_row(
    info: CheckInfo, days: Sequence[Rollup], hours: Sequence[Rollup], now: float
) -> CheckRow:
    """One check's row from its day and hour rows."""
    return CheckRow(info, tuple(daily_bars(days, now)), windows(hours, days, now))


def status_view(
    title: str,
    checks: Sequence[CheckInfo],
    history: Mapping[str, CheckOverview],
    incidents: Sequence[IncidentRecord],
    services: Sequence[str],
    now: datetime,
) -> StatusView:
    """The page: with `services`, only their checks in that order, else every service by name
    (checks without a service come last, each under its own name)."""
    at = now.timestamp()
    grouped: dict[str, list[CheckRow]] = {}
    for info in sorted(checks, key=lambda c: c.name):
        key = info.service or NO_SERVICE
        if services and key not in services:
            continue
        overview = history.get(info.name)
        if overview is None:
            overview = CheckOverview(tuple(daily_bars([], at)), windows([], [], at))
        grouped.setdefault(key, []).append(CheckRow(info, overview.bars, overview.uptime))
    order = [s for s in services if s in grouped] if services else sorted(grouped)
    groups: list[ServiceGroup] = []
    for name in order:
        rows = grouped[name]
        if name == NO_SERVICE:
            groups.extend(ServiceGroup(r.info.name, r.info.state, (r,)) for r in rows)
            continue
        groups.append(ServiceGroup(name, worst([r.info.state for r in rows]), tuple(rows)))
    shown = {r.info.name for g in groups for r in g.checks}
    return StatusView(
        title=title,
        now=now,
        state=worst([g.state for g in groups]),
        services=tuple(groups),
        incidents=tuple(i for i in incidents if i.check is None or i.check in shown),
    )


def check_view(
    title: str,
    info: CheckInfo,
    days: Sequence[Rollup],
    hours: Sequence[Rollup],
    incidents: Sequence[IncidentRecord],
    now: datetime,
) -> CheckView:
    """One check's page: the day bars, hourly response times, 90-day percentiles."""
    at = now.timestamp()
    overall = merge_histograms(r.histogram for r in days)
    points = tuple(
        HourPoint(
            datetime.fromtimestamp(r.start, now.tzinfo),
            r.ok / r.judged if r.judged else None,
            percentile(r.histogram, 0.5),
            percentile(r.histogram, 0.95),
        )
        for r in sorted(hours, key=lambda r: r.start)
    )
    return CheckView(
        title=title,
        now=now,
        row=check_row(info, days, hours, at),
        hours=points,
        p50_ms=percentile(overall, 0.5),
        p95_ms=percentile(overall, 0.95),
        incidents=tuple(i for i in incidents if i.check == info.name),
    )
