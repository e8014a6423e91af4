"""The checks' HTTP/1.1 transport against a scripted server on 127.0.0.1: keep-alive reuse, the
pool limit, and connections that must not be reused."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from monitor.net.http_transport import H11Transport
from tests.support.waiting import async_wait_until


class Scripted:
    """An HTTP/1.1 server whose answer depends on the path; counts the connections it accepts."""

    def __init__(self) -> None:
        self.connections = 0
        self.release = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path = head.split(b" ")[:2]
                length = 0
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                if not await self.answer(method, path, body, writer):
                    break
        writer.close()

    async def answer(
        self, method: bytes, path: bytes, body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        if path == b"/drop":
            return False
        if path == b"/http10":
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold style")
            return False
        if path == b"/close":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            return False
        if path == b"/chunked":
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            )
        elif path == b"/echo":
            answer = method + b" " + body
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))
        elif path == b"/extra":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE")
        elif path == b"/hold":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
            await writer.drain()
            await self.release.wait()
            writer.write(b"cd")
        else:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
                + (b"" if method == b"HEAD" else b"ok")
            )
        await writer.drain()
        return True

    def close_connections(self) -> None:
        for writer in self.writers:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Scripted]:
    scripted = Scripted()
    scripted.server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    yield scripted
    scripted.release.set()
    scripted.close_connections()
    scripted.server.close()


def _client(max_connections: int = 10, keepalive_expiry: float = 5.0) -> httpx.AsyncClient:
    transport = H11Transport(ssl.create_default_context(), max_connections, keepalive_expiry)
    return httpx.AsyncClient(transport=transport)


async def test_keep_alive_reuses_one_connection(server: Scripted) -> None:
    """Requests one after another to the same origin share one TCP connection."""
    async with _client() as client:
        for _ in range(3):
            assert (await client.get(f"{server.base}/ok")).text == "ok"
    assert server.connections == 1


async def test_server_closing_an_idle_connection_is_not_an_error(server: Scripted) -> None:
    """A connection the server closed while idle is dropped; the next request opens a new one."""
    async with _client() as client:
        await client.get(f"{server.base}/ok")
        transport = client._transport
        assert isinstance(transport, H11Transport)
        server.close_connections()

        async def dropped() -> bool:
            return transport.idle_connections() == 0

        await async_wait_until(dropped, timeout=5)
        assert (await client.get(f"{server.base}/ok")).text == "ok"
    assert server.connections == 2


async def test_connection_close_and_stray_bytes_are_not_reused(server: Scripted) -> None:
    """An answer with `Connection: close`, or bytes beyond the answer, end that connection."""
    async with _client() as client:
        assert (await client.get(f"{server.base}/close")).text == "ok"
        assert (await client.get(f"{server.base}/extra")).text == "ok"
        assert (await client.get(f"{server.base}/ok")).text == "ok"
    assert server.connections == 3


async def test_chunked_head_and_request_body(server: Scripted) -> None:
    """Chunked bodies are joined, HEAD has no body, a request body arrives whole."""
    async with _client() as client:
        assert (await client.get(f"{server.base}/chunked")).text == "hello world"
        head = await client.head(f"{server.base}/ok")
        assert head.status_code == 200 and head.content == b""
        echoed = await client.post(f"{server.base}/echo", content=b'{"probe":1}')
        assert echoed.text == 'POST {"probe":1}'
    assert server.connections == 1


async def test_http10_body_ends_with_the_connection(server: Scripted) -> None:
    """An HTTP/1.0 answer without a length is read to the end of the connection."""
    async with _client() as client:
        response = await client.get(f"{server.base}/http10")
        assert (response.http_version, response.text) == ("HTTP/1.0", "old style")
        assert (await client.get(f"{server.base}/ok")).text == "ok"
    assert server.connections == 2


async def test_disconnect_without_an_answer(server: Scripted) -> None:
    """A server that closes instead of answering is a protocol error that says so."""
    async with _client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="disconnected without sending"):
            await client.get(f"{server.base}/drop")


async def test_abandoned_body_closes_its_connection(server: Scripted) -> None:
    """A response closed before its end (a body cap, a timeout) is not put back in the pool."""
    async with _client() as client:
        async with client.stream("GET", f"{server.base}/hold") as response:
            async for chunk in response.aiter_raw():
                assert chunk == b"ab"
                break
        assert (await client.get(f"{server.base}/ok")).text == "ok"
    assert server.connections == 2


async def test_pool_limit_waits_then_times_out(server: Scripted) -> None:
    """With every connection busy a request waits for one, up to its pool timeout."""
    async with _client(max_connections=1) as client:
        held = await client.send(client.build_request("GET", f"{server.base}/hold"), stream=True)
        with pytest.raises(httpx.PoolTimeout):
            await client.get(f"{server.base}/ok", timeout=httpx.Timeout(5, pool=0.2))
        waiting = asyncio.create_task(client.get(f"{server.base}/ok"))
        server.release.set()
        assert (await held.aread()) == b"abcd"
        await held.aclose()
        assert (await waiting).text == "ok"
    assert server.connections == 1


async def test_limit_closes_an_idle_connection_to_another_origin(server: Scripted) -> None:
    """At the limit, an idle connection to another origin is closed to make room."""
    other = Scripted()
    other.server = await asyncio.start_server(other.handle, "127.0.0.1", 0)
    try:
        async with _client(max_connections=1) as client:
            assert (await client.get(f"{server.base}/ok")).text == "ok"
            assert (await client.get(f"{other.base}/ok")).text == "ok"
            assert (await client.get(f"{server.base}/ok")).text == "ok"
        assert (server.connections, other.connections) == (2, 1)
    finally:
        other.close_connections()
        other.server.close()


async def test_idle_connections_expire(server: Scripted) -> None:
    """A connection idle longer than the keep-alive expiry is not reused."""
    async with _client(keepalive_expiry=0.05) as client:
        await client.get(f"{server.base}/ok")
        await asyncio.sleep(0.1)  # the behaviour under test is the passing of time
        await client.get(f"{server.base}/ok")
    assert server.connections == 2


async def test_unsupported_scheme_is_refused() -> None:
    """Only http and https are spoken."""
    transport = H11Transport(ssl.create_default_context())
    with pytest.raises(httpx.UnsupportedProtocol):
        await transport.handle_async_request(httpx.Request("GET", "ftp://127.0.0.1/"))
