"""A cheap HTTP target for many checks at once: one asyncio server on 127.0.0.1 (keep-alive,
in its own thread) answering every path, recording per path who asked and when.

A check's URL is `/<check>?by=<instance>`, so a test can tell which instance ran which check
(`hits`), and `failing` makes chosen paths answer 503."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Hit:
    """One request: the path asked, the instance that asked, when (monotonic)."""

    path: str
    by: str
    at: float


class PathTarget:
    """The server and what it has seen."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self._hits: list[Hit] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    def url(self, check: str, by: str) -> str:
        """The URL instance `by` uses for `check`."""
        return f"http://127.0.0.1:{self.port}/{check}?by={by}"

    def start(self) -> PathTarget:
        """Listen on a free port and serve in a thread."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.port = future.result(timeout=10)
        return self

    def stop(self) -> None:
        """Stop serving."""

        async def close() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def hits(self, since: float = 0.0) -> list[Hit]:
        """Every request that arrived at or after `since` (monotonic)."""
        with self._lock:
            return [hit for hit in self._hits if hit.at >= since]

    def runners(self, since: float = 0.0) -> dict[str, set[str]]:
        """Check -> the instances that ran it since `since`."""
        found: dict[str, set[str]] = {}
        for hit in self.hits(since):
            found.setdefault(hit.path, set()).add(hit.by)
        return found

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
                target = request_line.split(" ")[1] if " " in request_line else "/"
                parts = urlsplit(target)
                path = parts.path.lstrip("/")
                by = parse_qs(parts.query).get("by", [""])[0]
                with self._lock:
                    self._hits.append(Hit(path, by, time.monotonic()))
                status = b"503 Service Unavailable" if path in self.failing else b"200 OK"
                body = b'{"status":"ok"}'
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


@contextmanager
def path_target() -> Iterator[PathTarget]:
    """A started target, stopped afterwards."""
    target = PathTarget().start()
    try:
        yield target
    finally:
        target.stop()
