"""Silences (config file and `opsmon silence`, the latter stored in SQLite so the running daemon
picks them up) and recurring maintenance windows."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.alerting.config import WEEKDAYS, MaintenanceWindow, SilenceSpec, check_label_names
from monitor.alerting.model import Silence
from monitor.alerting.store import AlertingStore
from monitor.core.durations import format_duration

_DAY = 86400.0


def new_silence_id() -> str:
    """A short random id for a stored silence."""
    return uuid.uuid4().hex[:12]


def parse_matchers(items: Sequence[str]) -> dict[str, str]:
    """`["service=backend", "severity=critical|warning"]` -> matchers; ValueError if malformed."""
    matchers: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ValueError(
                f"invalid matcher {item!r}: expected LABEL=VALUE, e.g. service=backend"
            )
        matchers[key] = value
    if not matchers:
        raise ValueError("a silence needs at least one --match LABEL=VALUE")
    check_label_names(matchers)
    return matchers


def from_config(specs: Iterable[SilenceSpec], loaded_at: datetime) -> list[Silence]:
    """The config file's silences (a silence without `starts` is in force from now)."""
    result = []
    for spec in specs:
        digest = hashlib.sha256(
            json.dumps([spec.match, str(spec.starts), str(spec.ends)], sort_keys=True).encode()
        ).hexdigest()[:8]
        result.append(
            Silence(
                id=f"config-{digest}",
                matchers=dict(spec.match),
                starts_at=spec.starts or datetime.min.replace(tzinfo=UTC),
                ends_at=spec.ends,
                comment=spec.comment,
                created_by="config",
                created_at=loaded_at,
                origin="config",
            )
        )
    return result


def window_occurrence(window: MaintenanceWindow, index: int, now: datetime) -> Silence | None:
    """The occurrence of `window` in force at `now`, as a silence (None outside the window)."""
    zone = ZoneInfo(window.timezone)
    local_today = now.astimezone(zone).date()
    length = timedelta(seconds=window.duration)
    days_back = math.ceil(window.duration / _DAY)
    for offset in range(days_back, -1, -1):
        day = local_today - timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in window.weekdays:
            continue
        # Start in local wall time, then add the duration in real time (DST-safe).
        starts = datetime.combine(day, window.start_time, tzinfo=zone).astimezone(UTC)
        ends = starts + length
        if starts <= now < ends:
            label = window.name or f"maintenance[{index}]"
            return Silence(
                id=f"maintenance-{index}-{day.isoformat()}",
                matchers=dict(window.match),
                starts_at=starts,
                ends_at=ends,
                comment=window.comment or f"maintenance window {label}",
                created_by="config",
                origin="maintenance",
            )
    return None


def describe_window(window: MaintenanceWindow) -> str:
    """`mon,tue 02:00 Europe/Berlin for 2h`."""
    days = "every day" if set(window.weekdays) == set(WEEKDAYS) else ",".join(window.weekdays)
    return f"{days} {window.start} {window.timezone} for {format_duration(window.duration)}"


class Silences:
    """Every silence in force: config, stored (re-read each time), and maintenance windows."""

    def __init__(
        self,
        store: AlertingStore,
        config: Sequence[SilenceSpec],
        maintenance: Sequence[MaintenanceWindow],
        loaded_at: datetime,
    ) -> None:
        self._store = store
        self._config = from_config(config, loaded_at)
        self._maintenance = list(maintenance)

    def active(self, now: datetime) -> list[Silence]:
        """The silences in force at `now`."""
        found = [s for s in self._config if s.active(now)]
        found += [s for s in self._store.silences(since=now) if s.active(now)]
        for index, window in enumerate(self._maintenance):
            occurrence = window_occurrence(window, index, now)
            if occurrence is not None:
                found.append(occurrence)
        return found


def silenced_by(labels: Mapping[str, str], silences: Iterable[Silence]) -> Silence | None:
    """The first silence that matches `labels`."""
    return next((s for s in silences if s.matches(labels)), None)
