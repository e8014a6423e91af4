"""The only APScheduler import: one job per check at its own interval, spread, never overlapping."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.clock import Clock
from monitor.logs import get_logger
from monitor.metrics import Metrics

Job = Callable[[], Awaitable[object]]


class _LoopScheduler(AsyncIOScheduler):  # type: ignore[misc]
    """AsyncIOScheduler whose own timer runs the due jobs directly.

    AsyncIOScheduler.wakeup may be called from any thread, so it hops to the loop with
    call_soon_threadsafe: a write to the loop's self-pipe, a read and one more loop iteration,
    on every timer expiry, which is about once per check run. The timer already fires on the
    loop, so it skips the hop; `wakeup` stays thread-safe for everyone else.
    """

    def _start_timer(self, wait_seconds: float | None) -> None:
        self._stop_timer()
        if wait_seconds is not None:
            self._timeout = self._eventloop.call_later(wait_seconds, self._wakeup_on_loop)

    def _wakeup_on_loop(self) -> None:
        self._stop_timer()
        self._start_timer(self._process_jobs())


def phase_offset(name: str, interval: float) -> float:
    """A stable start offset within one interval, so checks with the same interval spread out."""
    return (zlib.crc32(name.encode()) % 10_000) / 10_000 * interval


@dataclass(frozen=True)
class Timing:
    """A checked trigger and misfire grace for one job (see `Scheduler.prepare`)."""

    trigger: IntervalTrigger
    misfire_grace: int


class Scheduler:
    """Runs each check's job every `interval` seconds and records how late each run starts."""

    def __init__(self, metrics: Metrics, clock: Clock) -> None:
        self._metrics = metrics
        self._clock = clock
        self._scheduler = _LoopScheduler(timezone="UTC")
        self._scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._scheduler.add_listener(self._on_overlap, EVENT_JOB_MAX_INSTANCES)
        self._scheduled_for: dict[str, datetime] = {}
        # APScheduler's asyncio shutdown takes effect on the next loop iteration; this is now.
        self._stopped = False
        self._log = get_logger("scheduler")

    @property
    def running(self) -> bool:
        """Whether the scheduler is started and not shut down."""
        return bool(self._scheduler.running) and not self._stopped

    def start(self) -> None:
        """Start dispatching jobs on the running event loop."""
        self._scheduler.start()

    def prepare(self, name: str, interval: float, first_run: datetime | None = None) -> Timing:
        """The trigger for a job every `interval` seconds (from its spread start), computed
        far enough to fail now, not in the scheduler's loop: an interval that overflows a
        date (`.inf`, 99999999999d) raises OverflowError or ValueError here."""
        if first_run is None:
            first_run = self.spread_start(name, interval)
        trigger = IntervalTrigger(seconds=interval, start_date=first_run, timezone="UTC")
        first = trigger.get_next_fire_time(None, first_run)
        # The run after the first is where APScheduler would overflow inside its own loop.
        trigger.get_next_fire_time(first, first)
        return Timing(trigger, max(1, int(interval)))

    def schedule(self, name: str, interval: float, job: Job, first_run: datetime | Timing) -> None:
        """Run `job` every `interval` seconds from `first_run` (or by a prepared timing);
        replaces a job of the same name."""
        timing = (
            first_run if isinstance(first_run, Timing) else self.prepare(name, interval, first_run)
        )
        self._scheduler.add_job(
            self._timed,
            timing.trigger,
            args=(name, job),
            id=name,
            name=name,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=timing.misfire_grace,
        )

    def spread_start(self, name: str, interval: float) -> datetime:
        """When a check's first scheduled run should be, by its stable phase offset."""
        return self._clock.now() + timedelta(seconds=phase_offset(name, interval))

    def remove(self, name: str) -> None:
        """Stop scheduling `name` (a running instance finishes or is cancelled by the caller)."""
        if self._scheduler.get_job(name) is not None:
            self._scheduler.remove_job(name)
        self._scheduled_for.pop(name, None)

    def job_names(self) -> set[str]:
        """The names of every scheduled job."""
        return {job.id for job in self._scheduler.get_jobs()}

    def shutdown(self) -> None:
        """Stop dispatching; in-flight runs are the caller's to cancel."""
        if self.running:
            self._stopped = True
            self._scheduler.shutdown(wait=False)

    async def _timed(self, name: str, job: Job) -> None:
        scheduled = self._scheduled_for.pop(name, None)
        if scheduled is not None:
            lag = (self._clock.now() - scheduled).total_seconds()
            self._metrics.scheduler_lag.observe(max(0.0, lag))
        try:
            await job()
        except asyncio.CancelledError:
            # Cancelled on purpose (stop, removal). Re-raised, APScheduler would log it as a job
            # that "raised an exception", with a traceback, for every check in flight at a stop.
            return
        except Exception:
            self._log.exception("job_failed", check=name)

    def _on_submitted(self, event: JobEvent) -> None:
        times = getattr(event, "scheduled_run_times", None)
        if times:
            self._scheduled_for[event.job_id] = times[-1]

    def _on_overlap(self, event: JobEvent) -> None:
        self._log.warning("check_still_running_skipped", check=event.job_id)
