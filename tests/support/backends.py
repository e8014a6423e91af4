"""Stand-ins for the reference stack's services, served on 127.0.0.1 in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.environment import free_port
from tests.support.waiting import wait_until


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve `app` on a free loopback port in a thread; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def database_backend(dsn: str) -> Starlette:
    """A backend like the reference one: /api/health reports `services.database` from a real
    connection made with its own DATABASE_URL."""

    async def health(request: Request) -> Response:
        try:
            async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=2) as conn:
                await conn.execute("SELECT 1")
            database = "ok"
        except psycopg.Error:
            database = "error"
        body = {"status": "ok", "services": {"database": database}}
        return JSONResponse(body, status_code=200 if database == "ok" else 503)

    return Starlette(routes=[Route("/api/health", health)])
