"""Silences and maintenance windows: a silenced alert is recorded, not sent, and sent when the
silence ends if it still fires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.alerting.config import MaintenanceWindow, SilenceSpec
from monitor.alerting.model import Silence
from monitor.alerting.silences import parse_matchers, window_occurrence
from tests.support.alerting import FakeClock, Harness, alerting_config, alerts_of, http_check
from tests.support.receiver import Receiver

# A Monday, 09:00 UTC.
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHECKS = [http_check("backend-health", "backend"), http_check("frontend", "frontend")]


def _harness(tmp_path: Path, receiver: Receiver, **extra: object) -> Harness:
    config = alerting_config(
        group_wait="0s",
        group_interval="10s",
        channels=[{"name": "hooks", "type": "webhook", "url": receiver.url()}],
    )
    return Harness(tmp_path, config, CHECKS, clock=FakeClock(T0), **extra)  # type: ignore[arg-type]


async def test_silenced_alert_is_recorded_not_sent_then_sent_when_the_silence_ends(
    tmp_path: Path, receiver: Receiver
) -> None:
    """During the silence nothing goes out; once it ends, the still-firing alert is sent."""
    h = _harness(tmp_path, receiver)
    h.store.add_silence(
        Silence("s1", {"service": "backend"}, T0, T0 + timedelta(hours=2), "deploy", "alice")
    )
    h.fail("backend-health")
    h.fail("frontend")
    await h.run_for(600, tick=10)
    assert [alerts_of(r.json) for r in receiver.accepted()] == [[("firing", "frontend")]]
    (silenced,) = [i for i in h.store.live_incidents() if i.source == "backend-health"]
    assert silenced.suppressed == "silenced"
    assert h.metrics.alerts_suppressed.labels("silenced")._value.get() == 1
    assert h.store.expire_silence("s1", h.clock.now())
    await h.step(1)
    assert alerts_of(receiver.accepted()[-1].json) == [("firing", "backend-health")]


async def test_alert_that_resolves_while_silenced_is_never_sent(
    tmp_path: Path, receiver: Receiver
) -> None:
    """An outage entirely inside a silence stays quiet, before and after the silence."""
    h = _harness(tmp_path, receiver)
    h.store.add_silence(Silence("s1", {"check": "frontend"}, T0, T0 + timedelta(minutes=30)))
    h.fail("frontend")
    await h.run_for(600, tick=10)
    h.recover("frontend")
    await h.run_for(1800, tick=60)
    assert receiver.accepted() == []


async def test_config_silence_holds_between_starts_and_ends(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A silence from the config file mutes only inside its time range."""
    spec = SilenceSpec.model_validate(
        {
            "match": {"service": "frontend"},
            "starts": "2026-03-02T09:00:00Z",
            "ends": "2026-03-02T10:00:00Z",
            "comment": "CDN migration",
        }
    )
    h = _harness(tmp_path, receiver, silences=[spec])
    h.fail("frontend")
    await h.run_for(3540, tick=60)
    assert receiver.accepted() == []
    await h.run_for(120, tick=60)
    assert [alerts_of(r.json) for r in receiver.accepted()] == [[("firing", "frontend")]]


async def test_maintenance_window_mutes_then_releases(tmp_path: Path, receiver: Receiver) -> None:
    """A weekly window (Monday 10:00 Berlin time, 30 min) mutes alerts only inside it."""
    window = MaintenanceWindow.model_validate(
        {
            "match": {"service": "backend"},
            "weekdays": ["mon"],
            "start": "10:00",  # 09:00 UTC in winter
            "duration": "30m",
            "timezone": "Europe/Berlin",
        }
    )
    h = _harness(tmp_path, receiver, maintenance=[window])
    h.fail("backend-health")
    await h.run_for(1740, tick=60)
    assert receiver.accepted() == []
    await h.run_for(120, tick=60)
    assert [alerts_of(r.json) for r in receiver.accepted()] == [[("firing", "backend-health")]]


def _window(**fields: object) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate({"start": "02:00", "duration": "2h", **fields})


def test_window_follows_weekdays_and_time_zone() -> None:
    """Sunday 02:00-04:00 in New York is 07:00-09:00 UTC in winter, not on other days."""
    window = _window(weekdays=["sun"], timezone="America/New_York")
    sunday = datetime(2026, 1, 4, 7, 30, tzinfo=UTC)
    hit = window_occurrence(window, 0, sunday)
    assert hit is not None
    assert (hit.starts_at, hit.ends_at) == (
        datetime(2026, 1, 4, 7, 0, tzinfo=UTC),
        datetime(2026, 1, 4, 9, 0, tzinfo=UTC),
    )
    assert window_occurrence(window, 0, sunday + timedelta(hours=2)) is None
    assert window_occurrence(window, 0, sunday + timedelta(days=1)) is None


def test_window_crossing_midnight_belongs_to_the_day_it_starts() -> None:
    """Friday 23:00 for 3 hours still holds at Saturday 01:00, but not Saturday 23:30."""
    window = _window(weekdays=["fri"], start="23:00", duration="3h")
    assert window_occurrence(window, 0, datetime(2026, 3, 7, 1, 0, tzinfo=UTC)) is not None
    assert window_occurrence(window, 0, datetime(2026, 3, 7, 23, 30, tzinfo=UTC)) is None


def test_window_duration_is_real_time_across_a_dst_change() -> None:
    """On the night clocks go forward, a 3 h window still lasts 3 real hours."""
    window = _window(start="01:00", duration="3h", timezone="Europe/Berlin")
    hit = window_occurrence(window, 0, datetime(2026, 3, 29, 1, 0, tzinfo=UTC))
    assert hit is not None
    assert hit.ends_at - hit.starts_at == timedelta(hours=3)
    assert hit.starts_at == datetime(2026, 3, 29, 0, 0, tzinfo=UTC)


def test_matchers_from_the_command_line() -> None:
    """`service=backend` parses; malformed or unknown labels are explained."""
    assert parse_matchers(["service=backend", "severity=critical|warning"]) == {
        "service": "backend",
        "severity": "critical|warning",
    }
    with pytest.raises(ValueError, match="expected LABEL=VALUE"):
        parse_matchers(["backend"])
    with pytest.raises(ValueError, match="unknown label 'team'"):
        parse_matchers(["team=x"])
