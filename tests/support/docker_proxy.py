"""A Docker socket proxy on 127.0.0.1 that allows only the API calls opsmon's rollback needs
(the same list docs/rollback.md gives for a production proxy), records every call, and can
hold a request so a test can kill the caller at that exact moment.

Each request is forwarded on its own upstream connection with `Connection: close`, so every
request of a keep-alive client passes the rules; the event stream is piped as it comes.
"""

from __future__ import annotations

import re
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

DOCKER_SOCKET = "/var/run/docker.sock"
_VERSION = r"(?:/v[0-9.]+)?"
# (method, path pattern): reads, the event stream, and the six changes rollback makes.
ALLOWED: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (method, re.compile(f"^{_VERSION}{path}$"))
    for method, path in (
        ("GET", r"/_ping"),
        ("HEAD", r"/_ping"),
        ("GET", r"/version"),
        ("GET", r"/events"),
        ("GET", r"/containers/json"),
        ("GET", r"/containers/[^/]+/json"),
        ("GET", r"/containers/[^/]+/logs"),
        ("GET", r"/images/.+/json"),
        ("POST", r"/containers/create"),
        ("POST", r"/containers/[^/]+/start"),
        ("POST", r"/containers/[^/]+/stop"),
        ("POST", r"/containers/[^/]+/rename"),
        ("POST", r"/networks/[^/]+/connect"),
        ("DELETE", r"/containers/[^/]+"),
    )
)
_CHANGES = ("create", "start", "stop", "rename", "connect")
# A removal passes only without these (a running container or its volumes never go).
_REMOVE_FLAGS = ("force", "v", "link")


@dataclass(frozen=True)
class Call:
    """One request the proxy saw, and what it did with it."""

    method: str
    path: str  # without the query string
    verdict: str  # forwarded | denied | held

    @property
    def change(self) -> str | None:
        """`create`, `start`, ... for a call that changes something, else None."""
        if self.method == "DELETE":
            return "remove"
        if self.method != "POST":
            return None
        last = self.path.rstrip("/").rsplit("/", 1)[-1]
        return last if last in _CHANGES else "other"


def allowed(method: str, path: str, query: str = "") -> bool:
    """Whether the rules let `method path?query` through."""
    if method == "DELETE":
        flags = parse_qs(query)
        if any(v.lower() in ("1", "true") for f in _REMOVE_FLAGS for v in flags.get(f, [])):
            return False
    return any(m == method and p.match(path) for m, p in ALLOWED)


class DockerProxy:
    """`tcp://127.0.0.1:PORT` in front of the engine's unix socket."""

    def __init__(self, upstream: str = DOCKER_SOCKET, allow_remove: bool = True) -> None:
        self._upstream = upstream
        # False: a proxy set up before rollback removed anything (DELETE refused).
        self._allow_remove = allow_remove
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self._hold: Callable[[str, str], bool] | None = None
        self.held = threading.Event()
        self._release = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="docker-proxy", daemon=True)

    @property
    def host(self) -> str:
        """The address to give opsmon as `docker.host`."""
        return f"tcp://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> DockerProxy:
        """Serve in a thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and release a held request."""
        self._stopping.set()
        self._release.set()
        self._listener.close()

    def hold(self, predicate: Callable[[str, str], bool]) -> None:
        """Hold the first request matching `predicate(method, path)` until `drop_held`."""
        self.held.clear()
        self._release.clear()
        self._hold = predicate

    def drop_held(self) -> None:
        """Close the held request's connection without forwarding it."""
        self._hold = None
        self._release.set()

    def changes(self) -> list[Call]:
        """The calls that change something, in order."""
        with self._lock:
            return [c for c in self.calls if c.change is not None]

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    # --- serving ----------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            self._serve_one(client)
        except OSError:
            pass
        finally:
            client.close()

    def _serve_one(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                return
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        path, _, query = target.partition("?")
        headers = [line for line in lines[1:] if not line.lower().startswith("connection:")]
        length = next(
            (int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")),
            0,
        )
        while len(rest) < length:
            chunk = client.recv(65536)
            if not chunk:
                return
            rest += chunk
        if not allowed(method, path, query) or (method == "DELETE" and not self._allow_remove):
            self._record(Call(method, path, "denied"))
            body = b'{"message":"forbidden by the socket proxy"}'
            client.sendall(
                b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            return
        hold = self._hold
        if hold is not None and hold(method, path):
            self._hold = None
            self._record(Call(method, path, "held"))
            self.held.set()
            self._release.wait()
            return  # dropped: the caller never gets an answer
        self._record(Call(method, path, "forwarded"))
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(self._upstream)
        try:
            request = "\r\n".join([lines[0], *headers, "Connection: close"]).encode("latin-1")
            upstream.sendall(request + b"\r\n\r\n" + rest)
            self._pipe(client, upstream)
        finally:
            upstream.close()

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            while not self._stopping.is_set():
                for key, _ in selector.select(timeout=0.5):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
