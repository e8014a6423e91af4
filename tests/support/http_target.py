"""A real HTTP(S) server on 127.0.0.1 whose answers each test scripts per path."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    """What the server sends for one path."""

    status: int = 200
    body: bytes | str | dict[str, Any] = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the headers
    stall_after_headers: float = 0.0  # headers sent, then silence for this long
    stream_bytes: int = 0  # send this many bytes of body in chunks (for huge bodies)


Handler = Callable[[BaseHTTPRequestHandler], Answer]


class Target:
    """The server's routing table plus what it received; tests mutate `routes` between runs."""

    def __init__(self) -> None:
        self.routes: dict[str, Answer | Handler] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.bodies: list[bytes] = []
        self.port = 0
        self.scheme = "http"
        self.stop_event = threading.Event()

    def url(self, path: str = "/") -> str:
        """The full URL of `path` on this server."""
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"


def _make_handler(target: Target) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            path = self.path.split("?", 1)[0]
            target.requests.append((self.command, self.path, dict(self.headers)))
            length = int(self.headers.get("Content-Length") or 0)
            target.bodies.append(self.rfile.read(length) if length else b"")
            route = target.routes.get(path, Answer(status=404, body=b"not found"))
            answer = route(self) if callable(route) else route
            if answer.delay and target.stop_event.wait(answer.delay):
                return
            body = answer.body
            if isinstance(body, dict):
                body = json.dumps(body).encode()
            elif isinstance(body, str):
                body = body.encode()
            size = answer.stream_bytes or len(body)
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.flush()
            if answer.stall_after_headers:
                target.stop_event.wait(answer.stall_after_headers)
                return
            if answer.stream_bytes:
                chunk = b"x" * 65536
                sent = 0
                try:
                    while sent < size and not target.stop_event.is_set():
                        piece = chunk[: size - sent]
                        self.wfile.write(piece)
                        sent += len(piece)
                except (BrokenPipeError, ConnectionResetError):
                    return
                return
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve

    return RequestHandler


@contextmanager
def serve(ssl_context: ssl.SSLContext | None = None) -> Iterator[Target]:
    """Run a target server on a free 127.0.0.1 port for the duration of the block."""
    target = Target()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(target))
    server.daemon_threads = True
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
        target.scheme = "https"
    target.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield target
    finally:
        target.stop_event.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        time.sleep(0)  # let handler threads observe stop_event
