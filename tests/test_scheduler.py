"""The scheduler: spread start offsets, one run at a time per check, lag recorded."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import timedelta

from monitor.clock import SystemClock
from monitor.logs import configure_logging
from monitor.metrics import Metrics
from monitor.redaction import Redactor
from monitor.scheduler import Scheduler, phase_offset
from tests.support.waiting import async_wait_until


def test_offsets_spread_across_the_interval() -> None:
    """Checks sharing an interval start at different, stable points within it (no herd)."""
    offsets = [phase_offset(f"check-{i}", 10.0) for i in range(200)]
    assert offsets == [phase_offset(f"check-{i}", 10.0) for i in range(200)]
    assert all(0 <= o < 10 for o in offsets)
    buckets = {int(o) for o in offsets}
    assert buckets == set(range(10))


async def test_runs_repeat_and_never_overlap(metrics: Metrics) -> None:
    """A check slower than its interval is never run twice at once; lag is observed."""
    scheduler = Scheduler(metrics, SystemClock())
    running = 0
    most = 0
    runs = 0

    async def slow_job() -> None:
        nonlocal running, most, runs
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.35)
        running -= 1
        runs += 1

    scheduler.start()
    try:
        scheduler.schedule("slow", 0.1, slow_job, SystemClock().now() + timedelta(milliseconds=10))

        async def enough() -> bool:
            return runs >= 3

        await async_wait_until(enough, timeout=10)
    finally:
        scheduler.shutdown()
    assert most == 1
    lag_count = metrics.registry.get_sample_value("opsmon_scheduler_lag_seconds_count")
    assert lag_count is not None and lag_count >= 3


async def test_remove_stops_a_job(metrics: Metrics) -> None:
    """A removed check is no longer scheduled."""
    scheduler = Scheduler(metrics, SystemClock())
    scheduler.start()

    async def job() -> None:
        return None

    try:
        scheduler.schedule("a", 1, job, scheduler.spread_start("a", 1))
        scheduler.schedule("b", 1, job, scheduler.spread_start("b", 1))
        scheduler.remove("a")
        assert scheduler.job_names() == {"b"}
    finally:
        scheduler.shutdown()
    assert not scheduler.running


async def test_stop_with_a_check_in_flight_logs_no_error(metrics: Metrics) -> None:
    """Stopping while a check runs cancels it quietly: no error or traceback in the log."""
    stream = io.StringIO()
    configure_logging(Redactor(), "INFO", "json", stream=stream)
    scheduler = Scheduler(metrics, SystemClock())
    running: asyncio.Queue[asyncio.Task[object]] = asyncio.Queue()

    async def hanging_job() -> None:
        task = asyncio.current_task()
        assert task is not None
        running.put_nowait(task)
        await asyncio.Event().wait()

    scheduler.start()
    scheduler.schedule("hangs", 60, hanging_job, SystemClock().now() + timedelta(milliseconds=20))
    task = await asyncio.wait_for(running.get(), timeout=10)
    accounted = asyncio.Event()
    scheduler.shutdown()
    task.cancel()
    # Runs after APScheduler's own done-callback, which would log a failed job.
    task.add_done_callback(lambda _: accounted.set())
    await asyncio.wait_for(accounted.wait(), timeout=10)
    levels = [json.loads(line)["level"] for line in stream.getvalue().splitlines()]
    assert "error" not in levels
