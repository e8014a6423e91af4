"""Gathers what the status pages and the API show: the narrow read side over the history store,
the recorder's unwritten rows, the daemon's check states and the incidents.

The sources are Protocols the composition root fills in; nothing here knows the daemon.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.clock import Clock
from monitor.status.rollup import (
    DAY,
    HOUR,
    DayBar,
    Period,
    Rollup,
    Windows,
    daily_bars,
    period_start,
    uptime,
    windows,
)
from monitor.status.store import HistoryRecorder, HistoryStore
from monitor.status.view import CheckInfo, CheckOverview, IncidentRecord


class CheckSource(Protocol):
    """The daemon's checks as they are now (errors already redacted)."""

    def checks(self) -> Sequence[CheckInfo]:
        """Every check, in any order."""
        ...


@dataclass(frozen=True)
class Cursor:
    """Where a page of incidents continues: older than this start time and id."""

    started_at: float
    id: str


class IncidentSource(Protocol):
    """Incidents (alerting's records) for the timeline and the API, and acknowledging them."""

    def page(
        self, limit: int, after: Cursor | None = None, status: str | None = None
    ) -> list[IncidentRecord]:
        """Up to `limit` incidents, newest first, older than `after`."""
        ...

    def get(self, incident_id: str) -> IncidentRecord | None:
        """One incident."""
        ...

    def acknowledge(self, incident_id: str, by: str, at: datetime) -> IncidentRecord | None:
        """Mark a firing incident acknowledged (the first ack wins); None if there is none."""
        ...


class NoIncidents:
    """The incident source while the state store has no incidents to give."""

    def page(
        self, limit: int, after: Cursor | None = None, status: str | None = None
    ) -> list[IncidentRecord]:
        """Nothing."""
        return []

    def get(self, incident_id: str) -> IncidentRecord | None:
        """Nothing."""
        return None

    def acknowledge(self, incident_id: str, by: str, at: datetime) -> IncidentRecord | None:
        """Nothing to acknowledge."""
        return None


def _merged(stored: Iterable[Rollup], pending: Iterable[Rollup]) -> dict[str, list[Rollup]]:
    """Stored rows by check (in start order), with the pending rows added in."""
    grouped: dict[str, list[Rollup]] = {}
    for row in stored:
        rows = grouped.get(row.check)
        if rows is None:
            rows = grouped[row.check] = []
        rows.append(row)
    for row in pending:
        rows = grouped.setdefault(row.check, [])
        same = next((r for r in reversed(rows) if r.start == row.start), None)
        if same is None:
            rows.append(Rollup(row.check, row.period, row.start))
            rows.sort(key=lambda r: r.start)
            same = next(r for r in rows if r.start == row.start)
        same.merge(row)
    return grouped


@dataclass
class _PastDays:
    """Day bars before today and their counts per uptime window, for every check."""

    key: tuple[object, ...]
    bars: dict[str, list[DayBar]]
    sums: dict[str, tuple[Rollup, Rollup, Rollup]]  # 6, 29 and 89 days before today


@dataclass
class _PastHours:
    """Per check, the counts of the 23 hours before the current one."""

    key: tuple[object, ...]
    sums: dict[str, Rollup]


class StatusData:
    """History (stored plus not yet written), checks and incidents, read together.

    The overview page reads 90 days of every check; the days before today only change when
    the store says so (its `generation`), so their bars and sums are kept between requests.
    """

    def __init__(
        self,
        checks: CheckSource,
        store: HistoryStore,
        recorder: HistoryRecorder,
        incidents: IncidentSource,
        clock: Clock,
    ) -> None:
        self.checks = checks
        self.store = store
        self.recorder = recorder
        self.incidents = incidents
        self.clock = clock
        self._past: _PastDays | None = None
        self._past_hours: _PastHours | None = None

    def rows(
        self, period: Period, since: float, check: str | None = None, histograms: bool = False
    ) -> dict[str, list[Rollup]]:
        """Rows of `period` from `since` by check, including what the recorder still holds."""
        stored = self.store.rollups(
            period, since, [check] if check else None, with_histograms=histograms
        )
        pending = [
            r
            for r in self.recorder.pending()
            if r.period is period and r.start >= since and (check is None or r.check == check)
        ]
        if not histograms:
            pending = [
                Rollup(r.check, r.period, r.start, r.total, r.ok, r.unknown) for r in pending
            ]
        return _merged(stored, pending)

    def history(
        self, now: float, check: str | None = None, histograms: bool = False
    ) -> tuple[dict[str, list[Rollup]], dict[str, list[Rollup]]]:
        """Day rows of the last 90 days and hour rows of the last 48 hours, by check."""
        days = self.rows(Period.DAY, period_start(now, Period.DAY) - 89 * DAY, check, histograms)
        hours = self.rows(
            Period.HOUR, period_start(now, Period.HOUR) - 47 * HOUR, check, histograms
        )
        return days, hours

    def _past_days(self, today: float) -> _PastDays:
        pending = tuple(
            (r.check, r.start, r.total)
            for r in self.recorder.pending()
            if r.period is Period.DAY and r.start < today
        )
        key = (today, self.store.generation, pending)
        if self._past is not None and self._past.key == key:
            return self._past
        first = today - 89 * DAY
        stored = self.store.rollups(Period.DAY, first, with_histograms=False, before=today)
        late = [
            Rollup(r.check, r.period, r.start, r.total, r.ok, r.unknown)
            for r in self.recorder.pending()
            if r.period is Period.DAY and first <= r.start < today
        ]
        bars: dict[str, list[DayBar]] = {}
        sums: dict[str, tuple[Rollup, Rollup, Rollup]] = {}
        floors = (today - 6 * DAY, today - 29 * DAY, first)
        for check, rows in _merged(stored, late).items():
            bars[check] = daily_bars(rows, today - DAY, 89, with_percentiles=False)
            windows_ = tuple(Rollup(check, Period.DAY, floor) for floor in floors)
            for row in rows:
                for window, floor in zip(windows_, floors, strict=True):
                    if row.start >= floor:
                        window.merge(row)
            sums[check] = (windows_[0], windows_[1], windows_[2])
        self._past = _PastDays(key, bars, sums)
        return self._past

    def _hours_before(self, this_hour: float) -> dict[str, Rollup]:
        """Stored counts of the 23 hours before `this_hour`, kept while the store's past and
        the hour are unchanged."""
        key = (this_hour, self.store.generation)
        if self._past_hours is None or self._past_hours.key != key:
            floor = this_hour - 23 * HOUR
            self._past_hours = _PastHours(key, self.store.sums(Period.HOUR, floor, this_hour))
        return self._past_hours.sums

    @property
    def past_key(self) -> object:
        """What the bars of past days last given by `overview` depend on (equal keys: the
        same bars)."""
        return self._past.key if self._past is not None else None

    def overview(self, now: float) -> dict[str, CheckOverview]:
        """Every check with history: its 90 day bars and uptime windows."""
        today = period_start(now, Period.DAY)
        past = self._past_days(today)
        current = self.rows(Period.DAY, today)
        this_hour = period_start(now, Period.HOUR)
        hour_floor = this_hour - 23 * HOUR
        hours = {
            check: Rollup(check, Period.HOUR, hour_floor, r.total, r.ok, r.unknown)
            for check, r in self._hours_before(this_hour).items()
        }
        # This hour's rows, stored and pending, and pending rows of earlier hours.
        late = [
            r
            for r in self.recorder.pending()
            if r.period is Period.HOUR and hour_floor <= r.start < this_hour
        ]
        for rows in [*self.rows(Period.HOUR, this_hour).values(), late]:
            for row in rows:
                total = hours.setdefault(row.check, Rollup(row.check, Period.HOUR, hour_floor))
                total.merge(
                    Rollup(row.check, row.period, row.start, row.total, row.ok, row.unknown)
                )
        result = {}
        for check in set(past.bars) | set(current) | set(hours):
            today_rows = current.get(check, [])
            bars = past.bars.get(check) or daily_bars([], today - DAY, 89)
            bars = [*bars, *daily_bars(today_rows, now, 1, with_percentiles=False)]
            week, month, quarter = (
                uptime([window, *today_rows])
                for window in past.sums.get(check, (Rollup(check, Period.DAY, 0),) * 3)
            )
            day = uptime([hours[check]]) if check in hours else None
            result[check] = CheckOverview(tuple(bars), Windows(day, week, month, quarter))
        return result

    def uptime(self, check: str, now: float) -> Windows:
        """The uptime windows of one check."""
        days, hours = self.history(now, check)
        return windows(hours.get(check, []), days.get(check, []), now)

    def check(self, name: str) -> CheckInfo | None:
        """One check's current state."""
        for info in self.checks.checks():
            if info.name == name:
                return info
        return None

    def recent_incidents(self, limit: int = 50) -> list[IncidentRecord]:
        """The newest incidents (for the timeline)."""
        return self.incidents.page(limit)
