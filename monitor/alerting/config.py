"""The `alerting`, `silences` and `maintenance` sections of the config file."""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.alerting.notifiers import CHANNEL_TYPES, ChannelSpec
from monitor.alerting.notifiers.base import http_url
from monitor.core.duration_fields import Duration, PositiveDuration
from monitor.secrets import SECRET

# Labels an alert carries; matchers and group_by may name only these.
LABELS = ("alertname", "severity", "service", "check", "channel")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _channel(value: Any) -> Any:
    """Validate a channel against its type's spec model, chosen through the registry."""
    if isinstance(value, ChannelSpec):
        return value
    if not isinstance(value, dict):
        raise ValueError("must be a mapping")
    kind = value.get("type")
    if kind is None:
        raise ValueError("type: required key is missing")
    entry = CHANNEL_TYPES.get(str(kind))
    if entry is None:
        known = ", ".join(sorted(CHANNEL_TYPES))
        raise ValueError(f"unknown channel type {kind!r} (known: {known})")
    return entry.spec_model.model_validate(value)


Channel = Annotated[SerializeAsAny[ChannelSpec], BeforeValidator(_channel)]


def _matcher_values(value: Any) -> Any:
    """`{service: [a, b]}` is written `a|b` internally."""
    if isinstance(value, dict):
        return {
            k: "|".join(str(x) for x in v) if isinstance(v, list) else v for k, v in value.items()
        }
    return value


def check_label_names(names: Any) -> None:
    """Reject label names that alerts do not have."""
    unknown = [n for n in names if n not in LABELS]
    if unknown:
        raise ValueError(
            f"unknown label {', '.join(map(repr, unknown))} (labels: {', '.join(LABELS)})"
        )


Matchers = Annotated[dict[str, str], BeforeValidator(_matcher_values)]


class RouteSpec(BaseModel):
    """Alerts whose labels match go to these channels (the first matching route wins)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: Matchers = Field(default_factory=dict)
    channels: tuple[str, ...] = Field(min_length=1)

    @field_validator("match")
    @classmethod
    def _known_labels(cls, value: dict[str, str]) -> dict[str, str]:
        check_label_names(value)
        return value


class DeliverySpec(BaseModel):
    """How the outbox retries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: PositiveDuration = 10.0  # one attempt
    initial_backoff: PositiveDuration = 1.0
    max_backoff: PositiveDuration = 300.0
    failing_after: PositiveDuration = 600.0  # then AlertDeliveryFailing goes out elsewhere
    max_age: PositiveDuration = 86400.0  # a notification older than this is dropped
    max_in_flight: int = Field(default=4, ge=1, le=64)  # per channel


class HeartbeatSpec(BaseModel):
    """A dead man's switch: this URL is called every interval while opsmon is healthy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[str, SECRET]
    interval: PositiveDuration = 60.0
    timeout: PositiveDuration = 10.0
    method: str = Field(default="GET", pattern=r"^(GET|POST|HEAD)$")

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        return http_url(value)


class AlertingConfig(BaseModel):
    """Channels, routes, grouping and timing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group_by: tuple[str, ...] = ("service",)
    group_wait: Duration = Field(default=10.0, ge=0)  # 0: send at once
    group_interval: PositiveDuration = 60.0
    repeat_interval: PositiveDuration = 4 * 3600.0
    send_resolved: bool = True
    channels: tuple[Channel, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    delivery: DeliverySpec = DeliverySpec()
    heartbeat: HeartbeatSpec | None = None

    @field_validator("group_by")
    @classmethod
    def _known_group_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        check_label_names(value)
        return value

    @field_validator("channels")
    @classmethod
    def _unique_names(cls, value: tuple[ChannelSpec, ...]) -> tuple[ChannelSpec, ...]:
        seen: set[str] = set()
        for channel in value:
            if channel.name in seen:
                raise ValueError(f"duplicate channel name {channel.name!r}")
            seen.add(channel.name)
        return value

    @field_validator("routes")
    @classmethod
    def _known_channels(
        cls, value: tuple[RouteSpec, ...], info: ValidationInfo
    ) -> tuple[RouteSpec, ...]:
        names = {c.name for c in info.data.get("channels", ())}
        for index, route in enumerate(value):
            unknown = [c for c in route.channels if c not in names]
            if unknown:
                raise ValueError(
                    f"routes[{index}] names unknown channel(s) {', '.join(map(repr, unknown))}"
                    f" (channels: {', '.join(sorted(names)) or 'none'})"
                )
        return value

    def channel(self, name: str) -> ChannelSpec | None:
        """The channel called `name`."""
        return next((c for c in self.channels if c.name == name), None)


def _aware(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"invalid time {value!r}: expected ISO 8601, e.g. 2026-12-01T02:00:00Z"
            ) from None
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("needs a time zone, e.g. 2026-12-01T02:00:00Z")
    return value


AwareTime = Annotated[datetime, BeforeValidator(_aware)]


class SilenceSpec(BaseModel):
    """A one-off silence written in the config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: Matchers = Field(min_length=1)
    starts: AwareTime | None = None
    ends: AwareTime
    comment: str = ""

    @field_validator("match")
    @classmethod
    def _known_labels(cls, value: dict[str, str]) -> dict[str, str]:
        check_label_names(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.starts is not None and self.starts >= self.ends:
            raise ValueError("ends must be after starts")
        return self


class MaintenanceWindow(BaseModel):
    """A recurring silence: on these weekdays, from `start` (local time) for `duration`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    match: Matchers = Field(default_factory=dict)  # empty: every alert
    weekdays: tuple[str, ...] = WEEKDAYS
    start: str
    duration: PositiveDuration
    timezone: str = "UTC"
    comment: str = ""

    @field_validator("match")
    @classmethod
    def _known_labels(cls, value: dict[str, str]) -> dict[str, str]:
        check_label_names(value)
        return value

    @field_validator("weekdays", mode="before")
    @classmethod
    def _weekdays(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            return value
        days = [str(d).strip().lower()[:3] for d in value]
        unknown = [d for d in days if d not in WEEKDAYS]
        if unknown:
            raise ValueError(f"unknown weekday(s) {', '.join(unknown)} (use {', '.join(WEEKDAYS)})")
        return tuple(days)

    @field_validator("start")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value.strip()):
            raise ValueError(f"invalid start {value!r}: expected HH:MM, e.g. 02:30")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Berlin)") from None
        return value

    @property
    def start_time(self) -> time:
        """`start` as a time of day."""
        hours, minutes = self.start.split(":")
        return time(int(hours), int(minutes))
