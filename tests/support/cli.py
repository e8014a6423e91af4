"""Runs the real `opsmon` command in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.waiting import wait_until

OPSMON = [sys.executable, "-m", "monitor"]


def run_opsmon(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `opsmon ARGS` to completion and return its exit code and output."""
    return subprocess.run(
        [*OPSMON, *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def running_daemon(
    config: Path, port: int, env: Mapping[str, str] | None = None, ready: bool = True
) -> Iterator[subprocess.Popen[str]]:
    """`opsmon run` in the background, listening on 127.0.0.1:port; stopped with SIGTERM after."""
    process = subprocess.Popen(
        [*OPSMON, "run", "--config", str(config)],
        env={**os.environ, "OPSMON_LISTEN": f"127.0.0.1:{port}", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        if ready:

            def answered() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"opsmon run exited early: {process.stdout.read()}")  # type: ignore[union-attr]
                try:
                    return (
                        httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
                    )
                except httpx.HTTPError:
                    return False

            wait_until(answered, timeout=20)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
