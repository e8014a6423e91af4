"""The daemon's honesty about itself: internal tasks that died and checks that stopped running.

A monitor that fails quietly is worse than none. An internal task (the alert engine, the
outbox, the Docker event stream, ...) that ends with an exception, or a check whose job
has not completed a run for two intervals, makes /healthz answer 503 with the reason, shows
in /api/status, and is counted in a metric. Decisions are pure functions over plain records;
the daemon feeds them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from monitor.diagnosis import CheckView
from monitor.logs import get_logger

# A run may start up to one interval late (spread start, coalesced misfire) and take its
# timeout; past two intervals plus that, the job is not running.
_STALE_SLACK = 1.0


@dataclass(frozen=True)
class CheckTiming:
    """When a check last completed a run, and since when it has been scheduled."""

    name: str
    interval: float
    timeout: float
    last_run_at: datetime | None
    scheduled_at: datetime


@dataclass(frozen=True)
class Stale:
    """A check that has not run for longer than it should have."""

    name: str
    last_run_at: datetime | None
    silent_for: float

    def reason(self) -> str:
        """One line for /healthz."""
        return f"check {self.name} has not run for {self.silent_for:.0f}s"


def stale_limit(interval: float, timeout: float) -> float:
    """Seconds without a completed run after which a check counts as stale."""
    return 2 * interval + timeout + _STALE_SLACK


def stale_check(timing: CheckTiming, now: datetime) -> Stale | None:
    """`timing`'s check if it is stale at `now`, else None."""
    since = timing.last_run_at or timing.scheduled_at
    silent = (now - since).total_seconds()
    if silent <= stale_limit(timing.interval, timing.timeout):
        return None
    return Stale(timing.name, timing.last_run_at, silent)


def stale_checks(timings: Iterable[CheckTiming], now: datetime) -> list[Stale]:
    """Every stale check, by name."""
    found = (stale_check(timing, now) for timing in timings)
    return sorted((s for s in found if s is not None), key=lambda s: s.name)


class ProblemBoard:
    """Faults a component reports for /healthz until it clears them (one per key)."""

    def __init__(self) -> None:
        self._problems: dict[str, str] = {}

    def report(self, key: str, problem: str) -> None:
        """`key` is failing for this reason (replaces an earlier one of the same key)."""
        self._problems[key] = problem

    def clear(self, key: str) -> None:
        """`key` is fine again."""
        self._problems.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._problems

    def problems(self) -> list[str]:
        """Every reported problem, in a stable order."""
        return [self._problems[key] for key in sorted(self._problems)]


class OwnedElsewhere:
    """Checks this instance leaves to another cluster instance (sharding): not run here, so
    never stale here, and shown in /api/status as owned elsewhere instead of healthy or not."""

    def __init__(self) -> None:
        self._checks: dict[str, dict[str, object]] = {}
        self._views: tuple[CheckView, ...] = ()

    def replace(
        self, checks: dict[str, dict[str, object]], views: Iterable[CheckView] = ()
    ) -> None:
        """These checks (name -> their /api/status entry; their owners' judgements as
        diagnosis sees them) are run elsewhere from now on."""
        self._checks = dict(checks)
        self._views = tuple(views)

    def views(self) -> tuple[CheckView, ...]:
        """Their owners' judgements, for diagnosis: a root cause may be a check run elsewhere."""
        return self._views

    def status(self) -> list[dict[str, object]]:
        """Their /api/status entries."""
        return list(self._checks.values())

    def failing(self) -> dict[str, str | None]:
        """Those their owner judges failing, with their service (inhibition takes them as
        firing roots, and lists them as affected by a root that fails here)."""
        return {
            name: str(entry["service"]) if entry.get("service") else None
            for name, entry in self._checks.items()
            if entry.get("health") == "unhealthy"
        }

    def depends_on(self, name: str) -> list[str]:
        """The `depends_on` of one of them (empty if it is not run elsewhere)."""
        found = self._checks.get(name, {}).get("depends_on")
        return [str(d) for d in found] if isinstance(found, list) else []


class TaskWatch:
    """Remembers every watched task that ended with an exception (or ended while it should
    run forever), logs it once with its traceback, and tells `on_death`."""

    def __init__(self, on_death: Callable[[str], None] | None = None) -> None:
        self._dead: dict[str, str] = {}
        self._on_death = on_death
        self._stopping = False
        self._log = get_logger("daemon")

    def watch(self, task: asyncio.Task[object], forever: bool = True) -> None:
        """Watch `task`; with `forever`, ending without an error counts as dying too."""

        def done(finished: asyncio.Task[object]) -> None:
            if finished.cancelled() or self._stopping:
                return
            exc = finished.exception()
            if exc is None and not forever:
                return
            name = finished.get_name()
            why = f"{type(exc).__name__}: {exc}" if exc is not None else "ended unexpectedly"
            self._dead[name] = why
            self._log.error("internal_task_died", task=name, error=why, exc_info=exc)
            if self._on_death is not None:
                self._on_death(name)

        task.add_done_callback(done)

    def stopping(self) -> None:
        """The daemon is shutting down: tasks ending from now on are expected to."""
        self._stopping = True

    def dead(self) -> dict[str, str]:
        """Task name -> why it died."""
        return dict(self._dead)


def liveness_problems(
    dead_tasks: dict[str, str],
    stale: Iterable[Stale],
    store_faults: Iterable[str],
    reported: Iterable[str] = (),
) -> list[str]:
    """Every reason /healthz should fail, in a stable order (empty: healthy)."""
    problems = [f"internal task {name} died ({why})" for name, why in sorted(dead_tasks.items())]
    problems += [fault for fault in store_faults]
    problems += [problem for problem in reported]
    problems += [s.reason() for s in stale]
    return problems
