"""The daemon never claims health it did not establish: a check whose job stopped running
and an internal task that died both flip /healthz to 503 with the reason, show in
/api/status and in a metric, while the daemon keeps running."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from monitor.alerting.outbox import Outbox
from tests.faults.conftest import CANARY, Started, config_text
from tests.support.receiver import FlipTarget, Receiver
from tests.support.waiting import async_wait_until


async def test_a_check_whose_job_stopped_is_stale_not_healthy(
    tmp_path: Path, target: FlipTarget, start_daemon: Callable[[str], Awaitable[Started]]
) -> None:
    """A check's job vanishes from the scheduler (as a half-applied reload once did): after
    two intervals /healthz is 503 naming it, /api/status says `stale` instead of `healthy`,
    opsmon_check_stale is 1 and opsmon_check_healthy 0."""
    daemon, client = await start_daemon(config_text(target.url, tmp_path / "state"))
    assert (await client.get("/api/status")).json()["checks"][0]["state"] == "healthy"
    daemon.scheduler.remove("backend-health")

    async def unhealthy() -> httpx.Response | None:
        response = await client.get("/healthz")
        return response if response.status_code == 503 else None

    response = await async_wait_until(unhealthy, timeout=10)
    assert "check backend-health has not run for" in response.text
    status = (await client.get("/api/status")).json()
    (check,) = status["checks"]
    assert check["state"] == "stale" and check["stale"] is True
    assert any("backend-health" in problem for problem in status["problems"])

    async def metrics_say_so() -> bool:
        text = (await client.get("/metrics")).text
        return (
            'opsmon_check_stale{check="backend-health"} 1.0' in text
            and 'opsmon_check_healthy{check="backend-health",service="backend",type="http"} 0.0'
            in text
        )

    await async_wait_until(metrics_say_so, timeout=5)
    assert CANARY not in response.text + str(status)


async def test_an_internal_task_that_dies_flips_healthz(
    tmp_path: Path,
    target: FlipTarget,
    receiver: Receiver,
    start_daemon: Callable[[str], Awaitable[Started]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The alert outbox task dies with an exception: /healthz is 503 naming the task and
    the error, /api/status lists it, opsmon_internal_task_failures_total counts it, and the
    checks keep running."""

    async def broken(self: Outbox) -> None:
        raise RuntimeError("outbox lost its way")

    monkeypatch.setattr(Outbox, "run", broken)
    text = config_text(target.url, tmp_path / "state", receiver.url())
    _, client = await start_daemon(text)
    response = await client.get("/healthz")
    assert response.status_code == 503
    assert "internal task alerting-outbox died (RuntimeError: outbox lost its way)" in response.text
    status = (await client.get("/api/status")).json()
    assert any("alerting-outbox" in problem for problem in status["problems"])
    assert "opsmon_internal_task_failures_total 1.0" in (await client.get("/metrics")).text
    first = status["checks"][0]["last_run"]

    async def still_checking() -> bool:
        return (await client.get("/api/status")).json()["checks"][0]["last_run"] != first

    await async_wait_until(still_checking, timeout=5)
