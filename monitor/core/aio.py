"""Waiting on an asyncio.Event with a deadline, without losing a cancellation."""

from __future__ import annotations

import asyncio


async def wait_for_event(event: asyncio.Event, timeout: float) -> bool:  # noqa: ASYNC109
    """Wait until `event` is set or `timeout` seconds pass; return whether it was set.

    Loops that sleep on a wake-up event must use this rather than `asyncio.wait_for`: on
    Python 3.11 `wait_for` swallows a cancellation that arrives in the same loop step as the
    event (gh-86296), so `task.cancel()` on such a loop is lost and whoever awaits the task
    (a reload, a shutdown) waits forever. `asyncio.timeout` does not lose it.
    """
    try:
        async with asyncio.timeout(max(timeout, 0.0)):
            await event.wait()
    except TimeoutError:
        return False
    return True
