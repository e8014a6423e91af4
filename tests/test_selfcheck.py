"""Self-honesty decisions: which checks are stale, which tasks died, what /healthz says."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from monitor.selfcheck import (
    CheckTiming,
    OwnedElsewhere,
    TaskWatch,
    liveness_problems,
    stale_checks,
)

NOW = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)


def _timing(name: str, last: float | None, interval: float = 10, since: float = 600) -> CheckTiming:
    return CheckTiming(
        name,
        interval,
        2.0,
        NOW - timedelta(seconds=last) if last is not None else None,
        NOW - timedelta(seconds=since),
    )


def test_a_check_silent_for_two_intervals_is_stale() -> None:
    """Silent past 2 intervals + timeout is stale; a recent run or a new check is not."""
    stale = stale_checks(
        [
            _timing("ok", last=15),
            _timing("silent", last=40),
            _timing("never-ran", last=None),
            _timing("just-added", last=None, since=5),
        ],
        NOW,
    )
    assert [s.name for s in stale] == ["never-ran", "silent"]
    assert stale[1].reason() == "check silent has not run for 40s"


async def test_a_task_that_dies_is_remembered_with_its_reason() -> None:
    """A watched task ending in an exception is reported; a cancelled one is not."""
    deaths: list[str] = []
    watch = TaskWatch(deaths.append)

    async def boom() -> None:
        raise RuntimeError("outbox exploded")

    async def forever() -> None:
        await asyncio.sleep(3600)

    dying = asyncio.create_task(boom(), name="alerting-outbox")
    cancelled = asyncio.create_task(forever(), name="alerting-engine")
    watch.watch(dying)
    watch.watch(cancelled)
    cancelled.cancel()
    await asyncio.gather(dying, cancelled, return_exceptions=True)
    await asyncio.sleep(0)
    assert watch.dead() == {"alerting-outbox": "RuntimeError: outbox exploded"}
    assert deaths == ["alerting-outbox"]


def test_liveness_lists_every_problem() -> None:
    """Dead tasks, store faults and stale checks all appear, in that order."""
    stale = stale_checks([_timing("silent", last=40)], NOW)
    problems = liveness_problems(
        {"alerting-outbox": "RuntimeError: x"}, stale, ["state store x: full"]
    )
    assert problems == [
        "internal task alerting-outbox died (RuntimeError: x)",
        "state store x: full",
        "check silent has not run for 40s",
    ]
    assert liveness_problems({}, [], []) == []


async def test_tasks_ending_during_shutdown_are_not_deaths() -> None:
    """Once the daemon is stopping, a forever-task that ends is expected, not reported."""
    watch = TaskWatch()

    async def serve() -> None:
        return None

    watch.stopping()
    task = asyncio.create_task(serve(), name="http-server")
    watch.watch(task)
    await task
    await asyncio.sleep(0)
    assert watch.dead() == {}


def test_checks_owned_elsewhere_are_listed_as_given_and_replaced_whole() -> None:
    """The sharding board lists the entries it was given last, none after an empty
    replacement (this instance runs every check again)."""
    board = OwnedElsewhere()
    board.replace({"web": {"name": "web", "state": "elsewhere", "owner": "b"}})
    assert board.status() == [{"name": "web", "state": "elsewhere", "owner": "b"}]
    board.replace({})
    assert board.status() == []
