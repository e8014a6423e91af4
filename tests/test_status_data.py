"""What the pages read: stored rows plus the recorder's unwritten ones, and the overview's
kept bars of past days stay equal to a fresh computation when history changes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from monitor.status.data import NoIncidents, StatusData
from monitor.status.rollup import DAY, HOUR, Period, Sample, daily_bars, windows
from monitor.status.store import HistoryRecorder, open_history
from monitor.status.view import CheckInfo

NOW = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)


class _Clock:
    def now(self) -> datetime:
        return NOW

    def monotonic(self) -> float:
        return 0.0


class _Checks:
    def checks(self) -> list[CheckInfo]:
        return [CheckInfo("api", "http", "backend", "healthy", NOW)]


def _fresh(data: StatusData, check: str) -> tuple[list, object]:
    """The bars and windows computed from every row, without any kept state."""
    at = NOW.timestamp()
    days, hours = data.history(at, check)
    rows = days.get(check, [])
    bars = [(b.day, b.total, b.ok) for b in daily_bars(rows, at)]
    return bars, windows(hours.get(check, []), rows, at)


def test_overview_matches_a_fresh_computation_as_history_changes(tmp_path: Path) -> None:
    """Past-day bars kept between requests follow new results, late writes and pending rows."""
    store, close = open_history(tmp_path)
    recorder = HistoryRecorder(store)
    data = StatusData(_Checks(), store, recorder, NoIncidents(), _Clock())
    at = NOW.timestamp()
    store.add_samples(Sample("api", at - d * DAY, d % 5 != 0, 30.0) for d in range(120))

    def same() -> None:
        overview = data.overview(at)["api"]
        bars, uptime = _fresh(data, "api")
        assert [(b.day, b.total, b.ok) for b in overview.bars] == bars
        assert overview.uptime == uptime

    same()
    recorder.record(Sample("api", at - 60, False, 10.0))  # today, not yet written
    same()
    recorder.flush()
    same()
    store.add_samples([Sample("api", at - 3 * DAY, False, 10.0)])  # a late write to the past
    same()
    recorder.record(Sample("api", at - DAY, False, 10.0))  # a pending row for yesterday
    same()
    recorder.record(Sample("api", at - 2 * HOUR, False, 10.0))  # and for an earlier hour
    same()
    recorder.flush()
    same()
    assert data.overview(at)["api"].bars[-2].total == 2
    close()


def test_rows_include_what_the_recorder_holds(tmp_path: Path) -> None:
    """The pages and the API show results that are not yet written to the file."""
    store, close = open_history(tmp_path)
    recorder = HistoryRecorder(store)
    data = StatusData(_Checks(), store, recorder, NoIncidents(), _Clock())
    at = NOW.timestamp()
    store.add_samples([Sample("api", at - HOUR, True, 10.0)])
    recorder.record(Sample("api", at, False, 10.0))
    days = data.rows(Period.DAY, 0, "api")["api"]
    assert [(r.total, r.ok) for r in days] == [(2, 1)]
    hours = data.rows(Period.HOUR, 0, "api", histograms=True)["api"]
    assert [(r.total, sum(r.histogram.values())) for r in hours] == [(1, 1), (1, 1)]
    close()
