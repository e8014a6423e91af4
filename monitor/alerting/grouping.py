"""Grouping and timing, with Alertmanager's semantics where they fit.

Alerts that share the values of `group_by` (default: service) and a route form a group, and
a group speaks in one message per channel. A new group waits `group_wait` so that alerts of
the same outage arrive together (and one that resolves meanwhile is never sent); after any
message, the group's next change waits until `group_interval` has passed, which bounds a
flapping target to one message per interval; while nothing changes and something fires, the
group repeats itself every `repeat_interval` per channel, unless every firing alert has been
acknowledged (`POST /api/v1/incidents/<id>/ack`). A RESOLVED is only ever sent for an
alert whose FIRING went out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.alerting.model import Incident, Status


@dataclass(frozen=True)
class Timing:
    """The group timers, in seconds; `repeat` holds each channel's repeat interval."""

    group_wait: float
    group_interval: float
    repeat: Mapping[str, float]


@dataclass
class GroupState:
    """What a group sent and when (persisted, so a restart keeps the rhythm)."""

    last_flush_at: datetime | None = None
    channel_sent: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """What a group should do now, and when to look at it again."""

    firing: tuple[Incident, ...]  # firing and not muted
    resolving: tuple[Incident, ...]  # resolved, FIRING sent, RESOLVED not yet
    flush: bool  # send the change to every channel of the route
    reminders: tuple[str, ...]  # channels due a reminder (only when nothing changed)
    new: tuple[Incident, ...] = ()  # firing but never sent
    next_at: datetime | None = None


def group_labels(labels: Mapping[str, str], group_by: Sequence[str]) -> dict[str, str]:
    """The group's label values; an alert without a service is grouped by its check."""
    result = {}
    for name in group_by:
        value = labels.get(name, "")
        if name == "service" and not value:
            value = labels.get("check") or labels.get("channel", "")
        result[name] = value
    return result


def group_key(route_key: str, labels: Mapping[str, str]) -> str:
    """`default:{service="backend"}`."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{route_key}:{{{inner}}}"


def _at(start: datetime | None, seconds: float) -> datetime | None:
    return start + timedelta(seconds=seconds) if start is not None else None


def plan(
    members: Sequence[Incident],
    muted: set[str],
    state: GroupState,
    channels: Sequence[str],
    timing: Timing,
    now: datetime,
    grown: bool = False,
) -> Plan:
    """Decide whether the group sends now (a change, or reminders) and when it is next due.
    `grown`: an alert that went out now affects more checks than it said (an update, due
    like any change: at most once per `group_interval`)."""
    firing = tuple(i for i in members if i.status is Status.FIRING and i.id not in muted)
    new = tuple(i for i in firing if i.notified is not Status.FIRING)
    resolving = tuple(
        i for i in members if i.status is Status.RESOLVED and i.notified is Status.FIRING
    )
    ongoing = any(i.notified is Status.FIRING for i in members)
    after_interval = _at(state.last_flush_at, timing.group_interval)
    due: list[datetime] = []
    if new:
        if ongoing:
            due.append(after_interval or now)
        else:
            first = min(i.started_at for i in new) + timedelta(seconds=timing.group_wait)
            due.append(max(first, after_interval) if after_interval else first)
    if resolving or (grown and ongoing):
        due.append(after_interval or now)
    change_at = min(due) if due else None
    if change_at is not None:
        flush = change_at <= now
        return Plan(firing, resolving, flush, (), new, None if flush else change_at)
    reminders: list[str] = []
    next_at: datetime | None = None
    # Reminders stop once every firing alert of the group is acknowledged.
    if any(i.acked_by is None for i in firing):
        for channel in channels:
            sent = state.channel_sent.get(channel)
            when = _at(sent, timing.repeat.get(channel, 0.0)) if sent is not None else now
            assert when is not None
            if when <= now:
                reminders.append(channel)
            elif next_at is None or when < next_at:
                next_at = when
    return Plan(firing, resolving, False, tuple(reminders), new, next_at)
