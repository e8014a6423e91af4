"""Sentry reporting of the daemon's own unexpected errors (never of failed checks)."""

from __future__ import annotations

from typing import Any

from monitor import __version__
from monitor.redaction import Redactor


def scrubber(redactor: Redactor) -> Any:
    """A Sentry `before_send` hook that masks every secret in the event."""

    def before_send(event: dict[str, object], hint: dict[str, object]) -> dict[str, object]:
        scrubbed: dict[str, object] = redactor.value(event)
        return scrubbed

    return before_send


def init_sentry(dsn: str | None, environment: str, redactor: Redactor) -> bool:
    """Start Sentry when a DSN is given; without one nothing is sent. Returns whether it started."""
    if not dsn:
        return False
    import sentry_sdk  # only with a DSN: it costs start-up time and memory

    sentry_sdk.init(
        dsn=dsn,
        release=f"opsmon@{__version__}",
        environment=environment,
        before_send=scrubber(redactor),
        traces_sample_rate=0.0,
    )
    return True
