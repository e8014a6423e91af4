"""Poll-with-deadline instead of sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Call `predicate` until it returns something truthy; fail with the last value on timeout."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)
        value = predicate()
    return value


async def async_wait_until(
    predicate: Callable[[], Awaitable[T]],
    timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for polling, not a cancellation
    interval: float = 0.05,
) -> T:
    """The asyncio form of `wait_until`."""
    deadline = time.monotonic() + timeout
    value = await predicate()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)
        value = await predicate()
    return value


def holds_for(predicate: Callable[[], object], seconds: float, interval: float = 0.05) -> None:
    """Check that `predicate` stays truthy for a whole observation window (proving that
    something does *not* happen, e.g. a second page); fail at the first moment it does not."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if not value:
            raise AssertionError(f"condition stopped holding (value: {value!r})")
        time.sleep(interval)
