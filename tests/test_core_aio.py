"""monitor.core.aio: a wake-up wait that never loses a cancellation."""

from __future__ import annotations

import asyncio

from monitor.core.aio import wait_for_event


async def _wake_loop(event: asyncio.Event, waits: list[bool]) -> None:
    while True:
        event.clear()
        waits.append(await wait_for_event(event, 30.0))


async def test_cancel_arriving_with_the_wake_up_stops_the_loop() -> None:
    """A loop cancelled in the same step its event is set stops (asyncio.wait_for on 3.11
    swallowed that cancellation and the loop ran on, hanging reload and shutdown)."""
    event = asyncio.Event()
    waits: list[bool] = []
    task = asyncio.create_task(_wake_loop(event, waits))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    event.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2.0)
    assert done == {task}, "the loop kept running after cancel()"
    assert task.cancelled()


async def test_returns_whether_the_event_was_set() -> None:
    """True when the event is set before the deadline, False when the deadline passes."""
    event = asyncio.Event()
    assert await wait_for_event(event, 0.01) is False
    assert await wait_for_event(event, 0.0) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_for_event(event, 5.0) is True
