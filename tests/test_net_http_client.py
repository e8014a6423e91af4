"""The shared client: probes are stateless, a cookie one target sets is never sent again."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import pytest

from monitor.net.http_client import SharedClient


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


async def test_cookies_set_by_a_response_are_not_kept(server: CookieServer) -> None:
    """A Set-Cookie answer does not leak into later requests (other checks share the client)."""
    async with SharedClient(ssl.create_default_context(), 10) as client:
        await client.get(f"{server.base}/login")
        assert (await client.get(f"{server.base}/me")).text == "-"
        assert client.cookies.get("session") is None
