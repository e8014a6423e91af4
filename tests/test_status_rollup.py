"""History rollups: hour and day rows, uptime windows, mergeable percentiles within their bound."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime

import pytest

from monitor.status.rollup import (
    BUCKETS,
    DAY,
    HOUR,
    PERCENTILE_ERROR,
    Period,
    Rollup,
    Sample,
    bucket_index,
    bucket_upper,
    daily_bars,
    fold,
    merge_histograms,
    percentile,
    period_start,
    retention_cutoffs,
    uptime,
    windows,
)

NOW = datetime(2026, 11, 28, 15, 30, tzinfo=UTC).timestamp()
TODAY = period_start(NOW, Period.DAY)


def _days(check: str, per_day: dict[int, tuple[int, int]]) -> list[Rollup]:
    """Day rows `days_back -> (total, ok)`."""
    return [
        Rollup(check, Period.DAY, TODAY - back * DAY, t, ok) for back, (t, ok) in per_day.items()
    ]


def test_a_result_lands_in_its_utc_hour_and_day() -> None:
    """Each result counts once in the UTC hour row and once in the UTC day row it falls in."""
    rows = fold([Sample("api", NOW, True, 12.0), Sample("api", NOW + 60, False, 900.0)])
    hour = rows[("api", Period.HOUR, TODAY + 15 * HOUR)]
    day = rows[("api", Period.DAY, TODAY)]
    for row in (hour, day):
        assert (row.total, row.ok, row.unknown) == (2, 1, 0)
        assert sum(row.histogram.values()) == 2


def test_unknown_runs_count_but_are_not_judged() -> None:
    """A run that observed nothing (unknown) neither helps nor hurts uptime."""
    rows = fold([Sample("db", NOW, True, 5.0), Sample("db", NOW, False, 0.0, unknown=True)])
    day = rows[("db", Period.DAY, TODAY)]
    assert (day.total, day.unknown, day.judged) == (2, 1, 1)
    assert uptime([day]) == 1.0
    assert uptime([Rollup("db", Period.DAY, TODAY, 1, 0, 1)]) is None


def test_buckets_cover_every_duration_with_increasing_bounds() -> None:
    """Every duration maps to a bucket whose upper bound holds it (the last one catches all)."""
    for ms in (0.0, 0.3, 1.0, 1.01, 7.5, 100.0, 999.9, 5000.0, 54_000.0, 10**7):
        index = bucket_index(ms)
        assert 0 <= index < BUCKETS
        if index < BUCKETS - 1:
            assert ms <= bucket_upper(index) * (1 + 1e-9)
            assert index == 0 or ms > bucket_upper(index - 1)


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_percentile_is_within_the_documented_error(q: float) -> None:
    """On 10,000 skewed response times, p50/p95/p99 are within PERCENTILE_ERROR of the truth."""
    rng = random.Random(7)
    values = sorted(rng.lognormvariate(4.5, 0.8) for _ in range(10_000))
    histogram: dict[int, int] = {}
    for v in values:
        histogram[bucket_index(v)] = histogram.get(bucket_index(v), 0) + 1
    truth = values[math.ceil(q * len(values)) - 1]
    estimate = percentile(histogram, q)
    assert estimate is not None
    assert abs(estimate - truth) / truth <= PERCENTILE_ERROR + 1e-9


def test_histograms_merge_like_the_union_of_their_samples() -> None:
    """Rows of separate hours merged give the same percentile as one row of all the samples."""
    rng = random.Random(3)
    samples = [Sample("api", NOW + i, True, rng.uniform(5, 400)) for i in range(2000)]
    halves = [fold(samples[:1000]), fold(samples[1000:])]
    day = [h[("api", Period.DAY, TODAY)] for h in halves]
    merged = merge_histograms(r.histogram for r in day)
    whole = fold(samples)[("api", Period.DAY, TODAY)].histogram
    assert merged == whole
    assert percentile(merged, 0.95) == percentile(whole, 0.95)
    assert percentile({}, 0.5) is None


def test_uptime_windows_use_hours_for_24h_and_utc_days_for_the_rest() -> None:
    """24 h comes from the last 24 hour rows; 7/30/90 d from day rows, today included."""
    hours = [
        Rollup("api", Period.HOUR, period_start(NOW, Period.HOUR) - back * HOUR, 10, ok)
        for back, ok in ((0, 10), (23, 5), (24, 0))  # the 25th hour back is outside 24 h
    ]
    days = _days("api", {0: (100, 100), 6: (100, 90), 7: (100, 0), 89: (100, 100), 90: (100, 0)})
    result = windows(hours, days, NOW)
    assert result.day == pytest.approx(15 / 20)
    assert result.week == pytest.approx(190 / 200)
    assert result.month == pytest.approx(190 / 300)
    assert result.quarter == pytest.approx(290 / 400)


def test_daily_bars_are_90_days_oldest_first_with_gaps_as_no_data() -> None:
    """The strip always has 90 days ending today; a day without runs has no uptime."""
    bars = daily_bars(_days("api", {0: (10, 9), 2: (4, 4)}), NOW)
    assert len(bars) == 90
    assert bars[-1].day == date(2026, 11, 28)
    assert bars[0].day == date(2026, 8, 31)
    assert bars[-1].uptime == pytest.approx(0.9)
    assert bars[-2].uptime is None and bars[-2].total == 0
    assert bars[-3].uptime == 1.0


def test_retention_keeps_48_hours_and_90_days() -> None:
    """Hour rows older than 48 h and day rows older than 90 days are due for pruning."""
    cutoffs = retention_cutoffs(NOW)
    assert cutoffs[Period.HOUR] == period_start(NOW, Period.HOUR) - 47 * HOUR
    assert cutoffs[Period.DAY] == TODAY - 89 * DAY
