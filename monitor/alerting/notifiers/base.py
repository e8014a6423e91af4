"""What every channel shares: its config fields, the notifier protocol, delivery errors, and
the HTTP POST that the webhook-style channels use."""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.alerting.model import Notification
from monitor.clock import Clock
from monitor.core.duration_fields import PositiveDuration
from monitor.net.errors import describe_transport_error
from monitor.secrets import SECRET

if TYPE_CHECKING:
    import httpx

    from monitor.net.clients import HttpClients

CHANNEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
# Retry-After beyond this is treated as this: a receiver must not park alerts for a day.
MAX_RETRY_AFTER = 3600.0


class ChannelSpec(BaseModel):
    """Fields every channel has; each channel type extends this with its own."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=CHANNEL_NAME, max_length=63)
    type: str
    send_resolved: bool | None = None  # None: alerting.send_resolved
    repeat_interval: PositiveDuration | None = None  # None: alerting.repeat_interval
    rate_limit: float | None = Field(default=None, gt=0)  # messages per second; None: unlimited


def http_url(value: str) -> str:
    """Validate an http(s) URL without echoing it (it may hold a token)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


class HttpChannelSpec(ChannelSpec):
    """A channel that POSTs to a URL."""

    url: Annotated[str, SECRET]
    headers: Annotated[dict[str, str], SECRET] = Field(default_factory=dict)
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        return http_url(value)


class DeliveryError(Exception):
    """A failed delivery attempt. `reason` is safe to log (no URLs, no secrets)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Notifier(Protocol):
    """Delivers notifications to one configured channel."""

    async def send(self, notification: Notification) -> None:
        """Deliver once; raise DeliveryError when the receiver did not accept it."""
        ...


@dataclass(frozen=True)
class NotifierDeps:
    """What notifiers may use, handed in by the alerting component."""

    http: HttpClients
    clock: Clock
    timeout: float = 10.0


@dataclass(frozen=True)
class ChannelType:
    """A registry entry: the spec model config validates against and how to build the notifier."""

    spec_model: type[ChannelSpec]
    build: Callable[[Any, NotifierDeps], Notifier]  # (spec of spec_model, NotifierDeps)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    payload: Any,
    *,
    headers: Mapping[str, str],
    request_timeout: float,
    clock: Clock,
    what: str,
) -> httpx.Response:
    """POST `payload` as JSON; a non-2xx answer raises DeliveryError naming `what`, not the URL."""
    import httpx  # here, not at the top: validating a config needs no HTTP library

    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        response = await client.post(
            url, json=payload, headers=dict(headers), timeout=request_timeout
        )
    except httpx.TimeoutException:
        raise DeliveryError(f"{what}: no answer within {request_timeout:g}s") from None
    except httpx.HTTPError as exc:
        _kind, reason = describe_transport_error(exc, host, port)
        raise DeliveryError(f"{what}: {reason}") from None
    if 200 <= response.status_code < 300:
        return response
    retry_after = None
    if response.status_code in (429, 503):
        retry_after = parse_retry_after(response.headers.get("retry-after"), clock.now())
    body = response.text[:200].strip().replace("\n", " ")
    raise DeliveryError(
        f"{what}: HTTP {response.status_code}" + (f" ({body})" if body else ""),
        retry_after=retry_after,
    )
