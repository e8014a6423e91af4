"""HTTP servers on 127.0.0.1 for alerting tests: a receiver standing in for Slack and webhooks
(records every request, answers 200, 429 with Retry-After, 500, slowly, or hangs), and a
target whose health a test flips."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Answer:
    """How the receiver answers one request."""

    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0
    hang: bool = False
    body: str = "ok"


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and the status it got (None: it was left hanging)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int | None

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: Receiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        owner = self.server.owner
        answer = owner.next_answer()
        arrived = time.monotonic()
        if answer.hang:
            owner.record(self, body, arrived, None)
            owner.released.wait(60)
            self.close_connection = True
            return
        if answer.delay:
            owner.released.wait(answer.delay)
        payload = answer.body.encode()
        # Recorded before answering, so a client that has its answer finds the request here.
        index = owner.record(self, body, arrived, answer.status)
        try:
            self.send_response(answer.status)
            if answer.retry_after is not None:
                self.send_header("Retry-After", answer.retry_after)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            owner.unanswered(index)  # the client gave up (its timeout): nothing arrived

    do_POST = do_GET = do_PUT = do_HEAD = _handle


class Receiver:
    """Records requests; answers per `script` (one answer per request), then `default`."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._lock = threading.Lock()
        self._script: list[Answer] = []
        self.default = Answer()
        self.requests: list[Received] = []
        self.released = threading.Event()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        """The port it listens on."""
        port: int = self._server.server_address[1]
        return port

    def url(self, path: str = "/hook") -> str:
        """`http://127.0.0.1:PORT/path`."""
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        """Start serving in a thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests and stop."""
        self.released.set()
        self._server.shutdown()
        self._server.server_close()

    def answer(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order; then with `default`."""
        with self._lock:
            self._script.extend(answers)

    def next_answer(self) -> Answer:
        with self._lock:
            return self._script.pop(0) if self._script else self.default

    def record(
        self, handler: BaseHTTPRequestHandler, body: bytes, at: float, status: int | None
    ) -> int:
        with self._lock:
            self.requests.append(
                Received(handler.command, handler.path, dict(handler.headers), body, at, status)
            )
            return len(self.requests) - 1

    def unanswered(self, index: int) -> None:
        """The answer to request `index` never reached the client."""
        with self._lock:
            old = self.requests[index]
            self.requests[index] = Received(
                old.method, old.path, old.headers, old.body, old.at, None
            )

    def accepted(self) -> list[Received]:
        """The requests answered 2xx, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.status is not None and 200 <= r.status < 300]

    def wait_accepted(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least `count` requests were accepted."""
        wait_until(lambda: len(self.accepted()) >= count, timeout=timeout)
        return self.accepted()


class FlipTarget:
    """A health endpoint answering 200 `{"status":"ok"}` or 503, as the test sets `healthy`."""

    def __init__(self) -> None:
        self.healthy = True
        self.receiver = Receiver()
        self.receiver.next_answer = self._answer  # type: ignore[method-assign]

    def _answer(self) -> Answer:
        if self.healthy:
            return Answer(200, body='{"status":"ok"}')
        return Answer(503, body='{"status":"error"}')

    @property
    def url(self) -> str:
        """The health URL."""
        return self.receiver.url("/health")

    def hits(self) -> int:
        """How many times it was asked."""
        return len(self.receiver.requests)

    def start(self) -> FlipTarget:
        """Start serving."""
        self.receiver.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.receiver.stop()


def serving(*servers: Receiver | FlipTarget) -> Iterator[None]:
    """Start the servers, yield, stop them (for fixtures)."""
    for server in servers:
        server.start()
    try:
        yield
    finally:
        for server in servers:
            server.stop()
