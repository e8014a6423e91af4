"""Check history rolled up per hour and per day: pure functions over plain records.

Every check result lands in two rows of its check: the UTC hour and the UTC day it belongs
to. A row counts runs (`total`, `ok`, `unknown`) and keeps the response times in a small
fixed-bucket histogram, so rows merge by adding counts and the page's cost depends on the
number of days shown, never on the check interval.

Percentiles from the histogram: bucket `i` holds durations in (2^((i-1)/4), 2^(i/4)] ms
(bucket 0 everything up to 1 ms, the last one everything above ~55 s). A percentile is
the geometric middle of the bucket that holds the wanted rank (nearest-rank definition),
so for durations between 1 ms and 55 s the estimate is within a factor 2^(1/8) of the
true value: at most 9.1 % off (`PERCENTILE_ERROR`). Durations up to 1 ms report as 1 ms,
above the last bound as that bound.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

STEPS_PER_OCTAVE = 4
BUCKETS = 64  # 2^(63/4) ms is about 55 s: above any sane check timeout
PERCENTILE_ERROR = 2 ** (1 / (2 * STEPS_PER_OCTAVE)) - 1
HOUR = 3600.0
DAY = 86400.0


class Period(StrEnum):
    """The length of a rollup row."""

    HOUR = "hour"
    DAY = "day"


PERIOD_SECONDS: Mapping[Period, float] = {Period.HOUR: HOUR, Period.DAY: DAY}


def bucket_index(duration_ms: float) -> int:
    """The histogram bucket of a response time in milliseconds."""
    if duration_ms <= 1.0:
        return 0
    index = math.ceil(STEPS_PER_OCTAVE * math.log2(duration_ms) - 1e-9)
    return min(index, BUCKETS - 1)


def bucket_upper(index: int) -> float:
    """The upper bound of bucket `index`, in milliseconds."""
    return float(2 ** (index / STEPS_PER_OCTAVE))


def bucket_estimate(index: int) -> float:
    """The value reported for bucket `index`: its geometric middle (1 ms for bucket 0)."""
    if index == 0:
        return 1.0
    return float(2 ** ((index - 0.5) / STEPS_PER_OCTAVE))


@dataclass(frozen=True)
class Sample:
    """One check result as history sees it."""

    check: str
    at: float  # Unix seconds
    ok: bool
    duration_ms: float | None  # None: pushed by an event, no response time
    unknown: bool = False


@dataclass(slots=True)
class Rollup:
    """The runs of one check in one hour or day (the start is Unix seconds, UTC aligned)."""

    check: str
    period: Period
    start: float
    total: int = 0
    ok: int = 0
    unknown: int = 0
    histogram: dict[int, int] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, Period, float]:
        """What identifies the row."""
        return (self.check, self.period, self.start)

    @property
    def judged(self) -> int:
        """Runs that said healthy or not (an `unknown` run observed nothing)."""
        return self.total - self.unknown

    def add(self, sample: Sample) -> None:
        """Count one result in this row."""
        self.total += 1
        if sample.unknown:
            self.unknown += 1
            return
        if sample.ok:
            self.ok += 1
        if sample.duration_ms is None:
            return
        index = bucket_index(sample.duration_ms)
        self.histogram[index] = self.histogram.get(index, 0) + 1

    def merge(self, other: Rollup) -> None:
        """Add the counts of `other` (the same check and period) into this row."""
        self.total += other.total
        self.ok += other.ok
        self.unknown += other.unknown
        for index, count in other.histogram.items():
            self.histogram[index] = self.histogram.get(index, 0) + count


def period_start(at: float, period: Period) -> float:
    """The start of the UTC hour or day that `at` falls in."""
    size = PERIOD_SECONDS[period]
    return at - (at % size)


def fold(samples: Iterable[Sample]) -> dict[tuple[str, Period, float], Rollup]:
    """Hour and day rows for `samples`."""
    rows: dict[tuple[str, Period, float], Rollup] = {}
    for sample in samples:
        for period in Period:
            key = (sample.check, period, period_start(sample.at, period))
            row = rows.get(key)
            if row is None:
                row = rows[key] = Rollup(sample.check, period, key[2])
            row.add(sample)
    return rows


def merge_histograms(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """The sum of several histograms."""
    total: dict[int, int] = {}
    for histogram in histograms:
        for index, count in histogram.items():
            total[index] = total.get(index, 0) + count
    return total


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The `q` quantile (0 < q <= 1) in milliseconds, within PERCENTILE_ERROR; None if empty."""
    count = sum(histogram.values())
    if count == 0:
        return None
    rank = max(1, math.ceil(q * count))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return bucket_estimate(index)
    return bucket_estimate(max(histogram))  # unreachable: the ranks add up to count


def uptime(rows: Iterable[Rollup]) -> float | None:
    """The share of healthy runs (0..1) across `rows`; None when nothing was judged."""
    ok = judged = 0
    for row in rows:
        ok += row.ok
        judged += row.judged
    return ok / judged if judged else None


@dataclass(frozen=True)
class Windows:
    """Uptime over the windows the page shows (None: no runs in that window)."""

    day: float | None  # the last 24 hours (hour rows)
    week: float | None  # the last 7 UTC days, today included (day rows)
    month: float | None  # 30 days
    quarter: float | None  # 90 days


def windows(hours: Sequence[Rollup], days: Sequence[Rollup], now: float) -> Windows:
    """Uptime over 24 h, 7 d, 30 d and 90 d from one check's hour and day rows."""
    hour_floor = period_start(now, Period.HOUR) - 23 * HOUR
    ok = judged = 0
    for row in hours:
        if row.start >= hour_floor:
            ok += row.ok
            judged += row.total - row.unknown
    day = ok / judged if judged else None
    today = period_start(now, Period.DAY)
    floors = (today - 6 * DAY, today - 29 * DAY, today - 89 * DAY)
    oks, judgeds = [0, 0, 0], [0, 0, 0]
    for row in days:
        for i, floor in enumerate(floors):
            if row.start >= floor:
                oks[i] += row.ok
                judgeds[i] += row.total - row.unknown
    week, month, quarter = (o / j if j else None for o, j in zip(oks, judgeds, strict=True))
    return Windows(day=day, week=week, month=month, quarter=quarter)


@dataclass(frozen=True)
class DayBar:
    """One of the page's daily bars."""

    day: date
    total: int
    ok: int
    uptime: float | None  # None: no runs that day
    p50_ms: float | None
    p95_ms: float | None


@functools.lru_cache(maxsize=4)
def day_axis(today: float, count: int) -> tuple[tuple[float, date], ...]:
    """The start and date of the `count` UTC days ending with the one starting at `today`."""
    starts = [today - back * DAY for back in range(count - 1, -1, -1)]
    return tuple((start, datetime.fromtimestamp(start, UTC).date()) for start in starts)


def daily_bars(
    days: Sequence[Rollup], now: float, count: int = 90, with_percentiles: bool = True
) -> list[DayBar]:
    """`count` bars, oldest first, ending today (UTC); days without runs have no uptime."""
    by_start = {row.start: row for row in days}
    bars = []
    for start, day in day_axis(period_start(now, Period.DAY), count):
        row = by_start.get(start)
        if row is None:
            bars.append(DayBar(day, 0, 0, None, None, None))
            continue
        judged = row.total - row.unknown
        histogram = row.histogram if with_percentiles else None
        bars.append(
            DayBar(
                day,
                row.total,
                row.ok,
                row.ok / judged if judged else None,
                percentile(histogram, 0.5) if histogram else None,
                percentile(histogram, 0.95) if histogram else None,
            )
        )
    return bars


def retention_cutoffs(now: float) -> dict[Period, float]:
    """Rows that start before these times are dropped: hours after 48 h, days after 90 d."""
    return {
        Period.HOUR: period_start(now, Period.HOUR) - 47 * HOUR,
        Period.DAY: period_start(now, Period.DAY) - 89 * DAY,
    }


def day_of(at: float) -> date:
    """The UTC date of a Unix time."""
    return datetime.fromtimestamp(at, UTC).date()


def start_of(day: date) -> float:
    """The Unix time a UTC date starts."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
