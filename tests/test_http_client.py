"""The shared client: cookies a target sets are kept and sent back, as with a plain httpx client."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import pytest

from monitor.checks.http_client import SharedClient


class CookieServer:
    """`/login` sets a cookie, `/plain` sets none, `/me` answers with the Cookie header it got."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ")[1]
                cookie = b""
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"cookie:"):
                        cookie = line.split(b":", 1)[1].strip()
                extra, body = b"", b"ok"
                if path == b"/login":
                    extra = b"Set-Cookie: session=s3cr3t; Path=/\r\n"
                elif path == b"/me":
                    body = cookie or b"-"
                writer.write(
                    b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (extra, len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[CookieServer]:
    cookies = CookieServer()
    cookies.server = await asyncio.start_server(cookies.handle, "127.0.0.1", 0)
    yield cookies
    cookies.server.close()


async def test_cookies_set_by_a_response_are_sent_later(server: CookieServer) -> None:
    """A Set-Cookie answer is stored; responses without one leave the jar as it was."""
    async with SharedClient(ssl.create_default_context(), 10) as client:
        assert (await client.get(f"{server.base}/me")).text == "-"
        await client.get(f"{server.base}/login")
        await client.get(f"{server.base}/plain")
        assert (await client.get(f"{server.base}/me")).text == "session=s3cr3t"
        assert client.cookies.get("session") == "s3cr3t"
