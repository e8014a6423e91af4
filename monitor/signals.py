"""Signal handlers a busy event loop cannot lose.

asyncio's `loop.add_signal_handler` learns of a signal through one byte written to the loop's
self-pipe. When that pipe is full (a busy loop with many `call_soon_threadsafe` wake-ups from
the Docker event thread and executor callbacks), the write fails ("Exception ignored when
trying to write to the signal wakeup fd: BlockingIOError") and the signal is gone: a SIGTERM
that never stops the daemon. A Python-level handler runs in the main thread (the loop's)
between two bytecodes whatever the pipe holds, and schedules the callback on the loop.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Mapping
from types import FrameType


def install(
    loop: asyncio.AbstractEventLoop, handlers: Mapping[signal.Signals, Callable[[], None]]
) -> None:
    """Call each handler on `loop` when its signal arrives (from the main thread only)."""
    for signum, handler in handlers.items():

        def deliver(
            _signum: int, _frame: FrameType | None, handler: Callable[[], None] = handler
        ) -> None:
            loop.call_soon_threadsafe(handler)

        signal.signal(signum, deliver)
