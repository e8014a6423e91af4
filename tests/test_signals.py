"""Signals reach the daemon even when its event loop is too busy to drain its self-pipe."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A loop whose self-pipe is full while SIGTERM arrives (what a busy daemon taking over
# hundreds of checks produced): the handler must still run once the loop is free again.
SCRIPT = textwrap.dedent("""\
    import asyncio, os, signal, threading, time
    from monitor.signals import install

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        install(loop, {signal.SIGTERM: stopped.set})
        flood = threading.Thread(
            target=lambda: [loop.call_soon_threadsafe(int) for _ in range(200_000)]
        )
        flood.start()
        time.sleep(0.5)  # the loop is blocked: nobody drains the self-pipe meanwhile
        os.kill(os.getpid(), signal.SIGTERM)
        flood.join()
        await asyncio.wait_for(stopped.wait(), 10)
        print("stopped")

    asyncio.run(main())
    """)


def test_sigterm_is_not_lost_when_the_self_pipe_is_full() -> None:
    """SIGTERM sent while the loop is busy and its wake-up pipe is full still stops it
    (asyncio's add_signal_handler drops it: the pipe write fails)."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped"
