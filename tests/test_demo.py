"""`opsmon demo`: a newcomer sees a check go unhealthy and come back."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading

import httpx

from tests.support.cli import OPSMON
from tests.support.environment import free_port
from tests.support.waiting import wait_until


def test_demo_breaks_and_recovers() -> None:
    """The demo prints its URLs; breaking the sample database turns backend-health unhealthy
    and fixing it brings it back; Ctrl-C stops everything with exit 0."""
    port = free_port()
    process = subprocess.Popen(
        [*OPSMON, "demo"],
        env={**os.environ, "OPSMON_LISTEN": f"127.0.0.1:{port}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(process.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        match = wait_until(
            lambda: re.search(r"sample backend\s+(http://\S+)/api/health", "".join(output))
        )
        backend = match.group(1)
        opsmon = f"http://127.0.0.1:{port}"

        def state() -> str:
            try:
                checks = httpx.get(f"{opsmon}/api/status", timeout=2).json()["checks"]
            except httpx.HTTPError:
                return "down"
            return next(c["state"] for c in checks if c["name"] == "backend-health")

        wait_until(lambda: state() == "healthy", timeout=15)
        assert httpx.post(f"{backend}/demo/break/database").status_code == 200
        wait_until(lambda: state() == "unhealthy", timeout=30)
        httpx.post(f"{backend}/demo/fix/database")
        wait_until(lambda: state() == "healthy", timeout=30)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
        reader.join(5)
    text = "".join(output)
    assert code == 0, text
    assert f"{opsmon}/api/status" in text and "/demo/break/database" in text
