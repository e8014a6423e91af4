"""Per-check health state: thresholds turn raw results into debounced transitions. No I/O."""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.core.health import Health, HealthChange
from monitor.core.result import CheckResult, Outcome


class CheckState:
    """Counts consecutive results and decides when a check changes health.

    From UNKNOWN the first success is enough to be HEALTHY (there is nothing to debounce yet),
    while failures always need `failure_threshold` in a row, so a blip at start-up pages nobody.
    An `unknown` result (the target cannot be observed at all) moves straight to UNKNOWN.
    """

    def __init__(
        self,
        check: str,
        failure_threshold: int,
        success_threshold: int,
        startup_grace: float = 0.0,
    ) -> None:
        self.check = check
        self.failure_threshold = failure_threshold
        self.success_threshold = success_threshold
        self.startup_grace = timedelta(seconds=startup_grace)
        self.health = Health.UNKNOWN
        self.since: datetime | None = None
        self.last_result: CheckResult | None = None
        self.last_run_at: datetime | None = None
        self.last_failure: CheckResult | None = None
        self.consecutive_failures = 0
        self.consecutive_successes = 0
        self.first_answer_at: datetime | None = None
        self.in_grace = False

    def record(self, result: CheckResult, now: datetime) -> HealthChange | None:
        """Account for one result; return the transition it caused, if any."""
        self.last_result = result
        self.last_run_at = now
        if self.since is None:
            self.since = now
        if result.connected and self.first_answer_at is None:
            self.first_answer_at = now
        outcome = result.outcome
        if outcome is Outcome.UNKNOWN:
            self.consecutive_failures = self.consecutive_successes = 0
            return self._move(Health.UNKNOWN, result, now)
        if outcome is Outcome.OK:
            self.in_grace = False
            self.consecutive_successes += 1
            self.consecutive_failures = 0
            needed = 1 if self.health is Health.UNKNOWN else self.success_threshold
            if self.consecutive_successes >= needed:
                return self._move(Health.HEALTHY, result, now)
            return None
        self.last_failure = result
        self.in_grace = self._within_grace(now)
        if self.in_grace:
            return None
        self.consecutive_failures += 1
        self.consecutive_successes = 0
        if self.consecutive_failures >= self.failure_threshold:
            return self._move(Health.UNHEALTHY, result, now)
        return None

    def confirm_failure(self, now: datetime) -> HealthChange | None:
        """A decision taken on this check's failure (a rollback) confirms it: unhealthy now,
        without waiting for the rest of its failure threshold. Nothing when its last result is
        not a failure, or is one inside its startup grace."""
        result = self.last_result
        if result is None or result.outcome is not Outcome.FAILED or self.in_grace:
            return None
        return self._move(Health.UNHEALTHY, result, now)

    def _within_grace(self, now: datetime) -> bool:
        if not self.startup_grace or self.first_answer_at is None:
            return False
        if self.health is Health.HEALTHY:
            return False
        return now - self.first_answer_at < self.startup_grace

    def _move(self, target: Health, result: CheckResult, now: datetime) -> HealthChange | None:
        if self.health is target:
            return None
        transition = HealthChange(self.check, self.health, target, result, now)
        self.health = target
        self.since = now
        return transition
