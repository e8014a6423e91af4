"""The HTTP connection guards on real sockets: the oldest idle connection makes room for a
new one at the limit, a stalled request head is cut off, accept failures fold into one line."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from monitor.http_guard import ACCEPT_FAILED, AcceptErrorLog, ConnectionGuard, ServerLimits
from monitor.server import HttpServer, bind


def _app() -> Starlette:
    async def ok(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/healthz", ok)])


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    limits = ServerLimits(header_timeout=0.5, max_connections=3)
    http = HttpServer(_app(), bind("127.0.0.1:0"), limits)
    task = asyncio.create_task(http.serve())
    await asyncio.sleep(0.1)
    yield http
    http.stop()
    await asyncio.wait_for(task, 5)


async def _idle(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def test_idle_connections_make_room_for_a_request(server: HttpServer) -> None:
    """With 3 allowed and 3 idle connections open, a real request is still answered; the
    oldest idle connection is the one closed."""
    idle = [await _idle(server.port) for _ in range(3)]
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
    assert answer.text == "ok"
    assert await asyncio.wait_for(idle[0][0].read(), 5) == b""  # the oldest was closed
    assert server.stats.evicted >= 1
    for _, writer in idle:
        writer.close()


async def test_a_stalled_request_head_is_cut_off(server: HttpServer) -> None:
    """Half a request head and silence: the server closes the connection after the header
    timeout, without answering."""
    reader, writer = await _idle(server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert server.stats.header_timeouts == 1
    writer.close()


def test_limit_is_a_quarter_of_the_descriptor_limit() -> None:
    """The connection limit leaves most descriptors to the rest of the daemon."""
    limits = ServerLimits(max_connections=512)
    assert limits.connection_limit(256) == 64
    assert limits.connection_limit(100_000) == 512
    assert limits.connection_limit(20) == 8


async def test_accept_failures_fold_into_one_line_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Many EMFILE reports within an interval give one log line, the next one carries the
    count; other loop errors go to the default handler."""
    clock = [0.0]
    guard = ConnectionGuard(8, 10.0, lambda: clock[0])
    seen: list[None] = []
    handler = AcceptErrorLog(guard, 10.0, lambda: seen.append(None))
    loop = asyncio.get_running_loop()
    error = OSError(errno.EMFILE, "Too many open files")
    for second in range(25):
        clock[0] = float(second)
        handler(loop, {"message": ACCEPT_FAILED, "exception": error, "socket": socket.socket()})
    lines = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    lines = [line for line in lines if line.get("event") == "http_accept_failed"]
    assert [line["count"] for line in lines] == [1, 10, 10]
    assert len(seen) == 25 and guard.stats.accept_errors == 25
