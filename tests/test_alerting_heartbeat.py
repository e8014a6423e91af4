"""The heartbeat (dead man's switch): pinged every interval while opsmon is healthy, silent
otherwise, so the silence of opsmon itself is noticed elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator

import pytest

from monitor.alerting.config import HeartbeatSpec
from monitor.alerting.heartbeat import Heartbeat
from monitor.logs import configure_logging
from monitor.net.clients import HttpClients
from monitor.redaction import Redactor
from tests.support.receiver import Answer, Receiver
from tests.support.waiting import async_wait_until


@pytest.fixture
async def http() -> AsyncIterator[HttpClients]:
    """The shared client pools."""
    clients = HttpClients()
    yield clients
    await clients.aclose()


async def test_pings_every_interval_while_healthy(receiver: Receiver, http: HttpClients) -> None:
    """A healthy opsmon calls the URL again and again."""
    spec = HeartbeatSpec(url=receiver.url("/ping/uuid"), interval=0.05)
    task = asyncio.create_task(Heartbeat(spec, http.get(True), lambda: True).run())

    async def three() -> bool:
        return len(receiver.accepted()) >= 3

    try:
        await async_wait_until(three, timeout=5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert {(r.method, r.path) for r in receiver.accepted()} == {("GET", "/ping/uuid")}


async def test_no_ping_while_unhealthy(receiver: Receiver, http: HttpClients) -> None:
    """A stuck opsmon stops pinging, which is what makes the outside alarm go off."""
    heartbeat = Heartbeat(HeartbeatSpec(url=receiver.url("/p")), http.get(True), lambda: False)
    assert await heartbeat.beat() is False
    assert receiver.requests == []


async def test_rejected_ping_is_reported(receiver: Receiver, http: HttpClients) -> None:
    """A non-2xx answer counts as a failed ping and is logged without the URL."""
    stream = io.StringIO()
    configure_logging(Redactor(), "DEBUG", "json", stream=stream)
    receiver.answer(Answer(500))
    spec = HeartbeatSpec(url=receiver.url("/ping/secret-uuid"), method="POST")
    heartbeat = Heartbeat(spec, http.get(True), lambda: True)
    assert await heartbeat.beat() is False
    assert await heartbeat.beat() is True
    assert [r.method for r in receiver.requests] == ["POST", "POST"]
    out = stream.getvalue()
    assert "heartbeat_failed" in out
    assert "HTTP 500" in out
    assert "secret-uuid" not in out
