"""Runs one check: enforces its timeout, turns every exception into a failed result, records
metrics and state, and hands transitions to whoever listens."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from monitor.checks import CHECK_TYPES
from monitor.checks.base import Check
from monitor.checks.context import CheckContext
from monitor.clock import Clock
from monitor.core.durations import format_duration
from monitor.core.health import Health, HealthChange, Transition
from monitor.core.result import CheckResult, FailureKind
from monitor.core.spec import CheckSpec
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.state import CheckState

TransitionListener = Callable[[Transition], Awaitable[None]]
# Told about every result (check name, result, measured duration or None, time); must not block.
ResultListener = Callable[[str, CheckResult, float | None, datetime], None]
# A check enforces its own timeout with a precise reason; this is the runner's backstop.
_BACKSTOP = 1.0


class CheckRunner:
    """Owns one check's state; `run_once` is what the scheduler calls."""

    def __init__(
        self,
        check: Check,
        metrics: Metrics,
        clock: Clock,
        listeners: list[TransitionListener],
        discovered: bool = False,
        result_listeners: list[ResultListener] | None = None,
    ) -> None:
        self.check = check
        self.spec = check.spec
        self.discovered = discovered
        self.state = CheckState(
            self.spec.name,
            self.spec.failure_threshold,
            self.spec.success_threshold,
            self.spec.startup_grace,
        )
        self._metrics = metrics
        self._clock = clock
        self._listeners = listeners
        self._result_listeners = result_listeners if result_listeners is not None else []
        self._log = get_logger("checks", check=self.spec.name)
        self._labels = (self.spec.name, self.spec.type, self.spec.service or "")
        # Labelled series, looked up once: a label lookup per run adds up with thousands of checks.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    async def run_once(self) -> CheckResult:
        """Run the check one time and account for its result."""
        started = self._clock.monotonic()
        try:
            # asyncio.timeout runs the check in this task; wait_for would start another one.
            async with asyncio.timeout(self.spec.timeout + _BACKSTOP):
                result = await self.check.run()
        except TimeoutError:
            result = CheckResult.failure(
                FailureKind.TIMEOUT, f"timed out after {format_duration(self.spec.timeout)}"
            )
        except Exception as exc:
            # A bug in opsmon, not an unhealthy target: Sentry gets it through the log record.
            self._log.exception("check_crashed")
            result = CheckResult.failure(
                FailureKind.ERROR, f"check failed to run: {type(exc).__name__}"
            )
        duration = self._clock.monotonic() - started
        await self.record(result, duration)
        return result

    async def record(self, result: CheckResult, duration: float | None = None) -> None:
        """Account for a result (from a run, or pushed by an event source such as Docker)."""
        check, check_type, _service = self._labels
        metrics = self._metrics
        if duration is not None:
            self._series(metrics.check_duration, check, check_type).observe(duration)
        outcome = "success" if result.ok else "failure"
        self._series(metrics.check_runs, check, check_type, outcome).inc()
        self._series(metrics.check_success, *self._labels).set(1 if result.ok else 0)
        if not result.ok:
            self._series(metrics.check_failures, check, check_type, result.kind).inc()
        expires_in_ms = result.facts.get("CERTIFICATE_EXPIRATION")
        if isinstance(expires_in_ms, int | float):
            expires_at = self._clock.now().timestamp() + expires_in_ms / 1000
            self._metrics.tls_certificate_expiry.labels(check).set(expires_at)
        now = self._clock.now()
        change = self.state.record(result, now)
        for listen in self._result_listeners:
            try:
                listen(self.spec.name, result, duration, now)
            except Exception:
                self._metrics.internal_task_failures.inc()
                self._log.exception("result_listener_failed")
        if change is None:
            self._series(metrics.check_healthy, *self._labels).set(
                1 if self.state.health is Health.HEALTHY else 0
            )
            # Checked first: structlog would timestamp and process the event before dropping it.
            if self._log.isEnabledFor(logging.DEBUG):
                self._log.debug("check_ran", ok=result.ok, reason=result.reason or None)
            return
        await self._announce(change)

    async def confirm_failure(self) -> bool:
        """A rollback decided on this check's failure: turn unhealthy now, inside the failure
        threshold (see `CheckState.confirm_failure`); whether it changed."""
        change = self.state.confirm_failure(self._clock.now())
        if change is None:
            return False
        await self._announce(change)
        return True

    async def _announce(self, change: HealthChange) -> None:
        """Report a change of health: its gauge, the log line and every transition listener."""
        result = change.result
        healthy = self.state.health is Health.HEALTHY
        self._series(self._metrics.check_healthy, *self._labels).set(1 if healthy else 0)
        transition = Transition.of(change, self.spec)
        self._log.info(
            "check_state_changed",
            previous=transition.previous.value,
            current=transition.current.value,
            reason=result.reason or None,
            kind=str(result.kind),  # the plain value, also in a stdlib record's repr
        )
        for listener in self._listeners:
            try:
                await listener(transition)
            except Exception:
                self._metrics.internal_task_failures.inc()
                self._log.exception("transition_listener_failed")

    def _series(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered for the next run."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def status(self) -> dict[str, Any]:
        """The check as `/api/status` shows it."""
        state = self.state
        last = state.last_result
        return {
            "name": self.spec.name,
            "type": self.spec.type,
            "service": self.spec.service,
            "depends_on": list(self.spec.depends_on),
            "discovered": self.discovered,
            "state": state.health.value,
            "since": state.since.isoformat() if state.since else None,
            "last_run": state.last_run_at.isoformat() if state.last_run_at else None,
            "last_result": None
            if last is None
            else {
                "ok": last.ok,
                "kind": last.kind,
                "reason": last.reason or None,
                "duration_ms": round(last.duration * 1000, 1),
                "facts": dict(last.facts),
                "in_startup_grace": state.in_grace,
            },
            "last_error": state.last_failure.reason if state.last_failure else None,
            "consecutive_failures": state.consecutive_failures,
            "consecutive_successes": state.consecutive_successes,
        }


def build_runner(
    spec: CheckSpec,
    context: CheckContext,
    listeners: list[TransitionListener],
    discovered: bool = False,
    result_listeners: list[ResultListener] | None = None,
) -> CheckRunner:
    """A runner for `spec`, with the check built by its type's registry entry."""
    check = CHECK_TYPES[spec.type].build(spec, context)
    return CheckRunner(
        check, context.metrics, context.clock, listeners, discovered, result_listeners
    )
