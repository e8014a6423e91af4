"""Keeps the daemon's HTTP endpoint answerable under connection floods.

uvicorn alone waits forever for a request head (a slowloris holds a descriptor per
connection), accepts connections until the process runs out of descriptors, and asyncio
then reports every failed accept. Three guards, all inside the event loop:

- a request head must arrive within `header_timeout` of the connection (or of its first byte
  after a keep-alive pause), else the connection is closed;
- at most `max_connections` connections are open; a new one past the limit closes the
  connection that has waited longest without a request in flight (an idle or half-open one),
  so a flood cannot lock out the container's HEALTHCHECK; with none idle, the new one is
  closed;
- failed accepts (EMFILE and friends) are logged at most once per `accept_log_interval`,
  with how many happened since the last line, instead of one line each.

The last needs a fix below asyncio too: on EMFILE its accept loop (3.11/3.12) does not stop
but tries `backlog` more times, each failure logged and each scheduling its own retry, so
the retries multiply (about 28,000 failures a second were measured here). GuardedListener
makes the first failure in a burst end the burst, which is what asyncio intends: one
failure, the listener paused, one retry a second later.
"""

from __future__ import annotations

import asyncio
import errno
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from monitor.logs import get_logger

ACCEPT_FAILED = "socket.accept() out of system resource"
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Descriptors kept for everything else the daemon does (checks, SQLite, Docker, SMTP).
_FD_SHARE = 4


@dataclass(frozen=True)
class ServerLimits:
    """How long a request head may take and how many connections may be open."""

    header_timeout: float = 10.0
    max_connections: int = 512
    accept_log_interval: float = 10.0

    def connection_limit(self, nofile: int | None = None) -> int:
        """`max_connections`, lowered to a quarter of the descriptor limit of this process."""
        if nofile is None:
            nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if nofile == resource.RLIM_INFINITY or nofile <= 0:
            return self.max_connections
        return min(self.max_connections, max(8, nofile // _FD_SHARE))


@dataclass
class GuardStats:
    """What the guards did, for metrics and tests."""

    header_timeouts: int = 0
    evicted: int = 0
    refused: int = 0
    accept_errors: int = 0


@dataclass
class ConnectionGuard:
    """The open connections, oldest first, and the limit they are held to.

    When the process runs out of descriptors anyway (checks, files), the limit drops to half
    the open connections and idle ones above it are closed at once, so accept() works again
    and the next health probe gets in; the configured limit returns after `recover_after`
    seconds without such a failure.
    """

    limit: int
    header_timeout: float
    monotonic: Callable[[], float]
    recover_after: float = 60.0
    stats: GuardStats = field(default_factory=GuardStats)
    _open: dict[GuardedProtocol, None] = field(default_factory=dict)
    _configured: int = 0
    _exhausted_at: float | None = None

    def __post_init__(self) -> None:
        self._configured = self.limit

    def admit(self, connection: GuardedProtocol) -> None:
        """Register a new connection; past the limit, close the oldest idle one (or this one)."""
        self._open[connection] = None
        if (
            self._exhausted_at is not None
            and self.monotonic() - self._exhausted_at > self.recover_after
        ):
            self.limit, self._exhausted_at = self._configured, None
        if len(self._open) <= self.limit:
            return
        for candidate in self._open:
            if candidate is not connection and candidate.waiting_for_request():
                self.forget(candidate)
                candidate.transport.close()
                self.stats.evicted += 1
                return
        self.forget(connection)
        connection.transport.close()
        self.stats.refused += 1

    def descriptors_exhausted(self) -> None:
        """accept() failed for want of descriptors: shed idle connections, lower the limit."""
        self._exhausted_at = self.monotonic()
        self.limit = max(1, min(self.limit, len(self._open) // 2))
        idle = [c for c in self._open if c.waiting_for_request()]
        for connection in idle[: max(0, len(self._open) - self.limit)]:
            self.forget(connection)
            connection.transport.close()
            self.stats.evicted += 1

    def forget(self, connection: GuardedProtocol) -> None:
        """The connection is closed (or closing)."""
        self._open.pop(connection, None)

    @property
    def open_connections(self) -> int:
        """How many connections are open."""
        return len(self._open)


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and a place under the limit."""

    guard: ConnectionGuard

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._armed_for: object = None
        self._arm_head_timer()
        self.guard.admit(self)

    def waiting_for_request(self) -> bool:
        """No request is being served on this connection (it is idle or sending a head)."""
        return self.cycle is None or self.cycle.response_complete

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self.waiting_for_request():
            self._arm_head_timer()
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._armed_for = self.cycle
        self._head_timer = self.loop.call_later(self.guard.header_timeout, self._head_deadline)

    def _head_deadline(self) -> None:
        self._head_timer = None
        # A new request cycle since arming means the head arrived in time.
        if self.cycle is self._armed_for and self.waiting_for_request():
            self.guard.stats.header_timeouts += 1
            self.guard.forget(self)
            self.transport.close()


class GuardedListener(socket.socket):
    """A listening socket whose accept() takes at most `burst` connections per loop iteration
    and ends a burst after the first resource failure.

    asyncio accepts up to `backlog` (2,048 with uvicorn) connections in one callback, before
    any of them reaches the connection limit (that happens in the next iteration). A flood
    would take every descriptor first, and a check opening a socket at that moment would fail
    with EMFILE. With a burst cap the limit evicts as connections arrive.
    """

    _paused = False
    _accepted = 0
    burst = 64

    def accept(self) -> tuple[socket.socket, object]:
        if self._paused:
            # asyncio's loop asks again right after the failure it just reported: "no more
            # connections now" ends that loop; its one scheduled retry comes a second later.
            self._paused = False
            raise BlockingIOError(errno.EAGAIN, "accept paused after a resource failure")
        if self._accepted >= self.burst:
            # The rest waits one loop iteration, while the guard makes room.
            raise BlockingIOError(errno.EAGAIN, "accept burst done")
        try:
            accepted = super().accept()
        except OSError as exc:
            if exc.errno in _RESOURCE_ERRORS:
                self._paused = True
            raise
        if self._accepted == 0:
            asyncio.get_running_loop().call_soon(self._next_burst)
        self._accepted += 1
        return accepted

    def _next_burst(self) -> None:
        self._accepted = 0


def guarded_listener(sock: socket.socket, burst: int = 64) -> GuardedListener:
    """The same listening socket (the descriptor moves over) with a guarded accept()."""
    listener = GuardedListener(sock.family, sock.type, sock.proto, fileno=sock.detach())
    listener.setblocking(False)
    listener.burst = max(1, burst)
    return listener


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedProtocol]:
    """A protocol class bound to `guard` (uvicorn builds one instance per connection)."""
    return type("BoundGuardedProtocol", (GuardedProtocol,), {"guard": guard})


class AcceptErrorLog:
    """A loop exception handler that folds repeated accept failures into one line per interval.

    Every other exception goes to the loop's default handler unchanged.
    """

    def __init__(
        self,
        guard: ConnectionGuard,
        interval: float,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        self._guard = guard
        self._stats = guard.stats
        self._interval = interval
        self._on_error = on_error
        self._last_logged: float | None = None
        self._unlogged = 0
        self._log = get_logger("http")

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_FAILED:
            loop.default_exception_handler(context)
            return
        self._stats.accept_errors += 1
        self._unlogged += 1
        self._guard.descriptors_exhausted()
        if self._on_error is not None:
            self._on_error()
        now = self._guard.monotonic()
        if self._last_logged is not None and now - self._last_logged < self._interval:
            return
        exc = context.get("exception")
        error = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self._log.error(
            "http_accept_failed",
            error=error,
            count=self._unlogged,
            total=self._stats.accept_errors,
            next_report_in_s=self._interval,
        )
        self._last_logged = now
        self._unlogged = 0
