"""The daemon's HTTP side: /metrics, /healthz, /readyz, /api/status (and routes others add)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, Protocol

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.http_guard import (
    AcceptErrorLog,
    ConnectionGuard,
    GuardStats,
    ServerLimits,
    guarded_listener,
    guarded_protocol,
)


class DaemonView(Protocol):
    """What the HTTP endpoints need to know about the running daemon."""

    def metrics_text(self) -> bytes:
        """The Prometheus exposition."""
        ...

    def liveness(self) -> tuple[bool, str]:
        """Whether the scheduler runs and the loop is not stuck, and why not."""
        ...

    def readiness(self) -> tuple[bool, str]:
        """Whether the config is loaded and the first round of checks has run."""
        ...

    def status(self) -> dict[str, Any]:
        """Every check with its state."""
        ...


def build_app(view: DaemonView, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The ASGI app serving the daemon's endpoints."""

    async def metrics(request: Request) -> Response:
        return Response(view.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        ok, why = view.liveness()
        return PlainTextResponse(why, status_code=200 if ok else 503)

    async def readyz(request: Request) -> Response:
        ok, why = view.readiness()
        return PlainTextResponse(why, status_code=200 if ok else 503)

    async def status(request: Request) -> Response:
        return JSONResponse(view.status())

    routes: list[BaseRoute] = [
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/api/status", status),
        *extra_routes,
    ]
    return Starlette(routes=routes)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns SIGTERM, SIGINT and SIGHUP."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(listen: str) -> socket.socket:
    """A listening socket on `host:port`; raises OSError with the address in the message."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted connections of such
    # sockets, and without it a keep-alive client waits ~40 ms (delayed ACK) for every answer.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {listen}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class HttpServer:
    """Serves an ASGI app on an already-bound socket inside the daemon's event loop.

    The connections are guarded (monitor.http_guard): a request-head deadline, a connection
    limit that closes idle connections first, and accept failures logged once per interval.
    """

    def __init__(
        self,
        app: Starlette,
        sock: socket.socket,
        limits: ServerLimits | None = None,
        on_accept_error: Callable[[], None] | None = None,
    ) -> None:
        self.limits = limits or ServerLimits()
        self.guard = ConnectionGuard(
            self.limits.connection_limit(), self.limits.header_timeout, time.monotonic
        )
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            http=guarded_protocol(self.guard),
        )
        self._server = _QuietServer(config)
        # Half the limit per loop iteration: evictions keep pace with a flood.
        self._socket = guarded_listener(sock, self.guard.limit // 2)
        self._on_accept_error = on_accept_error

    @property
    def stats(self) -> GuardStats:
        """What the connection guards did so far."""
        return self.guard.stats

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        port: int = self._socket.getsockname()[1]
        return port

    async def serve(self) -> None:
        """Serve until `stop` is called."""
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(
            AcceptErrorLog(self.guard, self.limits.accept_log_interval, self._on_accept_error)
        )
        await self._server.serve(sockets=[self._socket])

    def stop(self) -> None:
        """Ask the server to finish in-flight requests and close."""
        self._server.should_exit = True
