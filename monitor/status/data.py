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
from monitor.status.rollup import DAY, HOUR, Period, Rollup, Windows, period_start, windows
from monitor.status.store import HistoryRecorder, HistoryStore
from monitor.status.view import CheckInfo, IncidentRecord


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
    rows: dict[tuple[str, float], Rollup] = {}
    for row in stored:
        rows[(row.check, row.start)] = row
    for row in pending:
        key = (row.check, row.start)
        existing = rows.get(key)
        if existing is None:
            rows[key] = Rollup(row.check, row.period, row.start)
            existing = rows[key]
        existing.merge(row)
    grouped: dict[str, list[Rollup]] = {}
    for row in sorted(rows.values(), key=lambda r: (r.check, r.start)):
        grouped.setdefault(row.check, []).append(row)
    return grouped


class StatusData:
    """History (stored plus not yet written), checks and incidents, read together."""

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
