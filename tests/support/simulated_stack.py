"""A stand-in for a user's Compose stack on 127.0.0.1: the reference backend (`/api/health`,
`/api/ready`) and frontend (`/`) as real HTTP servers on fixed ports, and a `docker` command
that stops and starts them the way `docker compose stop|start SERVICE` stops and starts
containers (a stopped service refuses connections). Compose v2 is not installed on the test
machines, so the documentation's `docker compose` lines act on this stand-in instead."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.environment import free_port

COMPOSE_FILE = """\
services:
  frontend:
    build: ./frontend
    ports:
      - "3000:3000"
    depends_on: [backend]
  backend:
    build: ./backend
    ports:
      - "4000:4000"
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://localhost:4000/api/health"]
  db:
    image: pgvector/pgvector:pg16
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
"""

DOCKER_SHIM = """\
#!/bin/sh
# Test stand-in for `docker compose stop|start SERVICE` on the simulated stack.
if [ "$1" = compose ] && [ $# -eq 3 ] && { [ "$2" = stop ] || [ "$2" = start ]; }; then
  exec curl -sf -X POST "http://127.0.0.1:{control}/$2/$3"
fi
echo "docker $*: not part of the simulated stack" >&2
exit 127
"""


def _answers(service: str, path: str) -> tuple[int, Any]:
    if service == "backend" and path == "/api/health":
        services = {"database": "ok", "mastra": "ok"}
        return 200, {
            "status": "ok",
            "timestamp": datetime.now(UTC).isoformat(),
            "services": services,
        }
    if service == "backend" and path == "/api/ready":
        return 200, {"ready": True}
    if service == "frontend" and path == "/":
        return 200, "<!doctype html><title>app</title>"
    return 404, {"error": "not found"}


def _service_handler(service: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            status, body = _answers(service, self.path.split("?")[0])
            text = body if isinstance(body, str) else json.dumps(body)
            payload = text.encode()
            self.send_response(status)
            kind = "text/html" if isinstance(body, str) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class SimulatedStack:
    """`backend` and `frontend` on free 127.0.0.1 ports, stoppable like Compose services."""

    def __init__(self) -> None:
        self.ports = {"backend": free_port(), "frontend": free_port()}
        self._servers: dict[str, tuple[_Server, threading.Thread]] = {}
        self._control = _Server(("127.0.0.1", 0), self._control_handler())
        self._control_thread = threading.Thread(target=self._control.serve_forever, daemon=True)
        self.log: list[str] = []

    def _control_handler(self) -> type[BaseHTTPRequestHandler]:
        stack = self

        class Control(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                _, action, service = self.path.split("/")
                known = action in ("stop", "start") and service in stack.ports
                if known:
                    (stack.stop if action == "stop" else stack.start)(service)
                self.send_response(200 if known else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Control

    def start(self, service: str | None = None) -> None:
        """Start one service (or all, and the control endpoint)."""
        if service is None:
            self._control_thread.start()
            for name in self.ports:
                self.start(name)
            return
        if service in self._servers:
            return
        server = _Server(("127.0.0.1", self.ports[service]), _service_handler(service))
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        self._servers[service] = (server, thread)
        self.log.append(f"start {service}")

    def stop(self, service: str | None = None) -> None:
        """Stop one service (it refuses connections), or everything."""
        if service is None:
            for name in list(self._servers):
                self.stop(name)
            self._control.shutdown()
            self._control.server_close()
            return
        if service not in self._servers:
            return
        server, thread = self._servers.pop(service)
        server.shutdown()
        server.server_close()
        thread.join(5)
        self.log.append(f"stop {service}")

    def install(self, folder: Path, bin_dir: Path) -> None:
        """Write the stack's docker-compose.yml into `folder` and the `docker` stand-in into
        `bin_dir`."""
        (folder / "docker-compose.yml").write_text(COMPOSE_FILE)
        shim = bin_dir / "docker"
        shim.write_text(DOCKER_SHIM.replace("{control}", str(self._control.server_address[1])))
        shim.chmod(0o755)
