"""The httpx transport behind the shared clients: HTTP/1.1 with h11 straight on asyncio sockets,
and a keep-alive pool that finds an idle connection to an origin in O(1).

httpx's default transport (httpcore over anyio) rescans every pooled connection on each request
and on each response close, so its cost grows with the number of connections: with a few hundred
checks due at once the daemon spent most of its time there. This transport keeps httpx's client
(redirects, timeouts, streaming, the exception types) and speaks the same protocol through the
same h11 state machine; only the socket and pool layers are smaller.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator

import h11
import httpx

_READ_HIGH_WATER = 256 * 1024  # stop reading from the socket beyond this many unread bytes
_MAX_HEADER_BYTES = 100 * 1024  # as httpcore: a larger head is a protocol error
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_SWEEP_EVERY = 1.0

Origin = tuple[bytes, bytes, int]


class _Socket(asyncio.Protocol):
    """One TCP (or TLS) connection: buffers what arrives and lets one reader wait for it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._error: Exception | None = None
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._reading_paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > _READ_HIGH_WATER and not self._reading_paused:
            assert self.transport is not None
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake_reader()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def _wake_reader(self) -> None:
        if self._readable is not None and not self._readable.done():
            self._readable.set_result(None)

    # used by _Connection
    @property
    def idle_clean(self) -> bool:
        """Nothing arrived and nothing closed while the connection sat idle."""
        transport = self.transport
        return (
            not self._eof
            and not self._buffer
            and transport is not None
            and not transport.is_closing()
        )

    async def read(self, wait_limit: float | None) -> bytes:
        """What has arrived (waiting up to `wait_limit` s for something); b"" at end of stream."""
        if not self._buffer and not self._eof:
            self._readable = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(wait_limit):
                    await self._readable
            finally:
                self._readable = None
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            if self._reading_paused and self.transport is not None:
                self._reading_paused = False
                self.transport.resume_reading()
            return data
        if self._error is not None:
            raise self._error
        return b""

    async def write(self, data: bytes, wait_limit: float | None) -> None:
        """Send `data`, waiting up to `wait_limit` s while the socket's buffer is full."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        self.transport.write(data)
        if self._writable is not None:
            async with asyncio.timeout(wait_limit):
                await self._writable


class _Connection:
    """A pooled HTTP/1.1 connection: one socket and its h11 state machine."""

    __slots__ = ("h11", "idle_since", "origin", "socket")

    def __init__(self, origin: Origin, socket: _Socket) -> None:
        self.origin = origin
        self.socket = socket
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEADER_BYTES)
        self.idle_since = 0.0

    def get_extra_info(self, name: str, default: object = None) -> object:
        """Socket details (`ssl_object`, `peername`, ...), as httpcore's network stream has them."""
        transport = self.socket.transport
        return default if transport is None else transport.get_extra_info(name, default)

    def close(self) -> None:
        transport = self.socket.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    async def next_event(self, read_limit: float | None) -> object:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.socket.read(read_limit)
            except TimeoutError:
                raise httpx.ReadTimeout("timed out reading the response") from None
            except OSError as exc:
                raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
            if not data and self.h11.their_state is h11.SEND_RESPONSE:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            self.h11.receive_data(data)


class _ResponseBody(httpx.AsyncByteStream):
    """A response body read from its connection; closing it returns the connection to the pool."""

    def __init__(
        self, pool: H11Transport, connection: _Connection, read_limit: float | None
    ) -> None:
        self._pool = pool
        self._connection = connection
        self._read_limit = read_limit
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while True:
                event = await self._connection.next_event(self._read_limit)
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif (
                    isinstance(event, h11.EndOfMessage | h11.ConnectionClosed)
                    or event is h11.PAUSED
                ):
                    return
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool._release(self._connection)


class H11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for httpx.AsyncClient with a per-origin keep-alive pool.

    At most `max_connections` sockets are open; a request that finds none free closes an idle
    connection to another origin, or waits (the request's pool timeout) for one to be released.
    Idle connections live for `keepalive_expiry` seconds and are dropped as soon as the server
    closes them or sends anything unasked.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        max_connections: int = 100,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._ssl_context = ssl_context
        ssl_context.set_alpn_protocols(["http/1.1"])
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._opening = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._last_sweep = time.monotonic()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{scheme.decode()}://'."
            )
        origin: Origin = (scheme, url.raw_host, url.port or _DEFAULT_PORTS[scheme])
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        connection = await self._checkout(origin, request, timeouts)
        try:
            await self._send(connection, request, timeouts.get("write"))
            response = await self._receive_head(connection, timeouts.get("read"))
        except BaseException:
            self._discard(connection)
            raise
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers.raw_items(),
            stream=_ResponseBody(self, connection, timeouts.get("read")),
            extensions={
                "http_version": b"HTTP/" + response.http_version,
                "reason_phrase": response.reason,
                "network_stream": connection,
            },
        )

    def idle_connections(self) -> int:
        """How many pooled connections wait, still usable, for a next request."""
        return sum(c.socket.idle_clean for idle in self._idle.values() for c in idle)

    async def aclose(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # --- the pool ---------------------------------------------------------------------------
    async def _checkout(
        self, origin: Origin, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> _Connection:
        """An idle connection to `origin`, else a new one once the limit allows."""
        loop = asyncio.get_running_loop()
        timeout = timeouts.get("pool")
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self._closed:
                raise RuntimeError("the transport is closed")
            connection = self._idle_connection(origin)
            if connection is not None:
                return connection
            if len(self._open) + self._opening < self._max_connections or self._evict_one():
                break
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except TimeoutError:
                raise httpx.PoolTimeout("no free connection in the pool in time") from None
            finally:
                if not waiter.done():
                    waiter.cancel()
        self._opening += 1
        try:
            connection = await self._connect(origin, request, timeouts.get("connect"))
        except BaseException:
            self._wake_waiter()
            raise
        finally:
            self._opening -= 1
        return connection

    def _idle_connection(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the others may expire unused
            if (
                now - connection.idle_since < self._keepalive_expiry
                and connection.socket.idle_clean
            ):
                return connection
            self._discard(connection)
        return None

    def _evict_one(self) -> bool:
        for origin, idle in self._idle.items():
            if idle:
                self._discard(idle.pop(0))  # the longest idle
                if not idle:
                    del self._idle[origin]
                return True
        return False

    def _wake_waiter(self) -> None:
        """Let the first request that waits for a socket look again."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _release(self, connection: _Connection) -> None:
        state = connection.h11
        if (
            self._closed
            or state.our_state is not h11.DONE
            or state.their_state is not h11.DONE
            or any(state.trailing_data)  # bytes beyond the response: the stream is out of step
            or not connection.socket.idle_clean
        ):
            self._discard(connection)
            return
        state.start_next_cycle()
        now = time.monotonic()
        connection.idle_since = now
        self._idle.setdefault(connection.origin, []).append(connection)
        self._wake_waiter()  # a waiting request may reuse it, or close it to make room
        if now - self._last_sweep > _SWEEP_EVERY:
            self._sweep(now)

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        if connection in self._open:
            self._open.discard(connection)
            self._wake_waiter()

    def _sweep(self, now: float) -> None:
        """Close idle connections that expired or that the server closed."""
        self._last_sweep = now
        for origin in list(self._idle):
            idle = self._idle[origin]
            keep = [
                c
                for c in idle
                if now - c.idle_since < self._keepalive_expiry and c.socket.idle_clean
            ]
            if len(keep) < len(idle):
                for connection in idle:
                    if connection not in keep:
                        self._discard(connection)
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]

    # --- one exchange -----------------------------------------------------------------------
    async def _connect(
        self, origin: Origin, request: httpx.Request, connect_limit: float | None
    ) -> _Connection:
        scheme, raw_host, port = origin
        host = raw_host.decode("ascii")
        tls = self._ssl_context if scheme == b"https" else None
        server_hostname = request.extensions.get("sni_hostname", host) if tls else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_limit):
                _transport, socket = await loop.create_connection(
                    _Socket, host, port, ssl=tls, server_hostname=server_hostname
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        connection = _Connection(origin, socket)
        self._open.add(connection)
        if self._closed:
            self._discard(connection)
            raise RuntimeError("the transport is closed")
        return connection

    async def _send(
        self, connection: _Connection, request: httpx.Request, write_limit: float | None
    ) -> None:
        state = connection.h11
        try:
            head = state.send(
                h11.Request(
                    method=request.method,
                    target=request.url.raw_path,
                    headers=request.headers.raw,
                )
            )
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc
        assert head is not None
        out = [head]
        assert isinstance(request.stream, httpx.AsyncByteStream)
        try:
            async for chunk in request.stream:
                data = state.send(h11.Data(data=chunk))
                if data:
                    out.append(data)
                    if sum(map(len, out)) >= 64 * 1024:
                        await self._write(connection, b"".join(out), write_limit)
                        out = []
            out.append(state.send(h11.EndOfMessage()) or b"")
            await self._write(connection, b"".join(out), write_limit)
        except httpx.WriteError:
            # As httpcore: a server may answer (e.g. 413) and close before reading the whole
            # request, so a failed write is not the end; the response (or its absence) decides.
            pass
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc

    async def _write(self, connection: _Connection, data: bytes, write_limit: float | None) -> None:
        try:
            await connection.socket.write(data, write_limit)
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request") from None
        except OSError as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__) from exc

    async def _receive_head(
        self, connection: _Connection, read_limit: float | None
    ) -> h11.Response:
        while True:
            event = await connection.next_event(read_limit)
            if isinstance(event, h11.Response):
                return event
            # 1xx informational answers (100 Continue, 103 Early Hints) precede the real one.
            if not isinstance(event, h11.InformationalResponse):
                raise httpx.RemoteProtocolError(
                    f"unexpected {type(event).__name__} before a response"
                )
