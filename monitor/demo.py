"""`opsmon demo`: a sample backend shaped like the reference stack's, watched by the daemon."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor.config import ConfigError, load_config
from monitor.daemon import Daemon
from monitor.listen import ListenAddress
from monitor.logs import configure_logging
from monitor.redaction import Redactor
from monitor.server import HttpServer, bind
from monitor.settings import Settings
from monitor.signals import install as install_signals

DEMO_CONFIG = Path(__file__).with_name("demo.yml")
COMPONENTS = ("database", "mastra", "latency")


class SampleBackend:
    """Answers /api/health and /api/ready like the reference backend; components can be broken."""

    def __init__(self) -> None:
        self.broken: set[str] = set()

    def app(self) -> Starlette:
        """The ASGI app of the sample backend."""
        return Starlette(
            routes=[
                Route("/api/health", self.health),
                Route("/api/ready", self.ready),
                Route("/demo/{action:str}/{component:str}", self.toggle, methods=["POST"]),
            ]
        )

    async def health(self, request: Request) -> Response:
        if "latency" in self.broken:
            await asyncio.sleep(1.5)
        services = {c: ("error" if c in self.broken else "ok") for c in ("database", "mastra")}
        healthy = all(v == "ok" for v in services.values())
        body = {
            "status": "ok" if healthy else "error",
            "timestamp": datetime.now(UTC).isoformat(),
            "services": services,
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def ready(self, request: Request) -> Response:
        ready = "database" not in self.broken
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def toggle(self, request: Request) -> Response:
        action, component = request.path_params["action"], request.path_params["component"]
        if action not in ("break", "fix") or component not in COMPONENTS:
            return JSONResponse(
                {"error": f"use /demo/break|fix/{{{'|'.join(COMPONENTS)}}}"}, status_code=404
            )
        (self.broken.add if action == "break" else self.broken.discard)(component)
        return JSONResponse({"broken": sorted(self.broken)})


DEFAULT_BACKEND_PORT = 4000
DEFAULT_LISTEN = "127.0.0.1:9110"


@dataclass(frozen=True)
class DemoAddresses:
    """Where the demo asks to listen, and whether the person chose it (then it must be free)."""

    backend: ListenAddress
    listen: ListenAddress
    backend_chosen: bool = False
    listen_chosen: bool = False

    @classmethod
    def choose(
        cls, backend_port: int | None, listen: str | None, environ: Mapping[str, str]
    ) -> DemoAddresses:
        """`--backend-port` and `--listen` (else $OPSMON_LISTEN) win over the defaults; the
        sample backend listens on the same host as opsmon (so `--listen [::1]:9110` is IPv6)."""
        listen_text = listen or environ.get("OPSMON_LISTEN") or DEFAULT_LISTEN
        address = ListenAddress.parse(listen_text)
        return cls(
            backend=address.with_port(
                DEFAULT_BACKEND_PORT if backend_port is None else backend_port
            ),
            listen=address,
            backend_chosen=backend_port is not None,
            listen_chosen=listen_text != DEFAULT_LISTEN or bool(listen),
        )


@dataclass(frozen=True)
class Bound:
    """A socket bound for the demo; `moved_from` is the busy address it had to avoid."""

    sock: socket.socket
    address: ListenAddress
    moved_from: ListenAddress | None = None


def bind_demo(wanted: ListenAddress, chosen: bool) -> Bound:
    """Bind `wanted`; when it is busy and was only a default, a free port on the same host."""
    try:
        sock = bind(str(wanted))
    except OSError:
        if chosen:
            raise
        sock = bind(str(wanted.with_port(0)))
        return Bound(sock, wanted.with_port(sock.getsockname()[1]), moved_from=wanted)
    return Bound(sock, wanted.with_port(sock.getsockname()[1]))


def banner(backend: Bound, listen: Bound, state_dir: str, temporary: bool) -> str:
    """What the demo prints at start: a loud note when ports moved, then this run's URLs and
    the exact curl lines that work for this run."""
    base, opsmon = backend.address.url, listen.address.url
    lines = ["", "opsmon demo"]
    moved = [
        f"port {bound.moved_from.port} is taken, so {what} listens on {bound.address} instead"
        for bound, what in ((backend, "the sample backend"), (listen, "opsmon"))
        if bound.moved_from is not None
    ]
    if moved:
        lines += [
            "",
            "!! PORTS MOVED: " + "; ".join(moved) + ".",
            "!! The README's curl lines (ports 4000 and 9110) do not reach this demo: use the",
            "!! lines below, or choose ports: opsmon demo --backend-port PORT --listen HOST:PORT",
        ]
    where = "removed when the demo stops" if temporary else "kept"
    lines += [
        "",
        f"  sample backend   {base}/api/health   {base}/api/ready",
        f"  opsmon status    {opsmon}/api/status",
        f"  status page      {opsmon}/status",
        f"  opsmon metrics   {opsmon}/metrics",
        f"  state folder     {state_dir} ({where})",
        "",
        "Break a component and watch backend-health turn unhealthy within ~10 s, then fix it:",
        f"  curl -X POST {base}/demo/break/database     # or mastra, latency",
        f"  curl -s {opsmon}/api/status",
        f"  curl -X POST {base}/demo/fix/database",
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


async def _demo(addresses: DemoAddresses, state_dir: str, temporary: bool) -> int:
    try:
        backend_bound = bind_demo(addresses.backend, addresses.backend_chosen)
    except OSError as exc:
        print(f"opsmon demo: {exc} (choose another with --backend-port)", file=sys.stderr)
        return 2
    try:
        listen_bound = bind_demo(addresses.listen, addresses.listen_chosen)
    except OSError as exc:
        backend_bound.sock.close()
        print(f"opsmon demo: {exc} (choose another with --listen)", file=sys.stderr)
        return 2
    # The daemon binds its own socket from the config: hand it the port found free.
    listen_bound.sock.close()
    listen = str(listen_bound.address)
    environ = dict(
        os.environ,
        DEMO_BACKEND_URL=backend_bound.address.url,
        OPSMON_LISTEN=listen,
        OPSMON_STATE_DIR=state_dir,
    )
    try:
        loaded = load_config(DEMO_CONFIG, environ)
    except ConfigError as exc:
        backend_bound.sock.close()
        print(exc, file=sys.stderr)
        return 2
    backend = HttpServer(SampleBackend().app(), backend_bound.sock)
    daemon = Daemon(loaded, Settings(listen=listen, state_dir=state_dir), redactor=Redactor())
    install_signals(
        asyncio.get_running_loop(),
        {
            signal.SIGINT: daemon.request_stop,
            signal.SIGTERM: daemon.request_stop,
            signal.SIGHUP: daemon.request_reload,
        },
    )
    backend_task = asyncio.create_task(backend.serve())
    print(banner(backend_bound, listen_bound, state_dir, temporary), flush=True)
    started = time.monotonic()
    try:
        code = await daemon.run()
    except OSError as exc:
        print(f"opsmon demo: {exc} (choose another with --listen)", file=sys.stderr)
        code = 2
    backend.stop()
    await backend_task
    print(f"opsmon demo stopped after {time.monotonic() - started:.0f}s", flush=True)
    return code


def run_demo(backend_port: int | None = None, listen: str | None = None) -> int:
    """Run the demo until Ctrl-C; its state lives in a temporary folder removed at the end
    (or in $OPSMON_STATE_DIR, kept)."""
    settings = Settings()
    fmt = settings.log_format if "OPSMON_LOG_FORMAT" in os.environ else "console"
    configure_logging(Redactor(), settings.log_level, fmt)
    try:
        addresses = DemoAddresses.choose(backend_port, listen, os.environ)
    except ValueError as exc:
        source = "--listen" if listen else "OPSMON_LISTEN"
        print(f"opsmon demo: {source}: {exc}", file=sys.stderr)
        return 2
    if settings.state_dir:
        return asyncio.run(_demo(addresses, settings.state_dir, temporary=False))
    with tempfile.TemporaryDirectory(prefix="opsmon-demo-") as state_dir:
        return asyncio.run(_demo(addresses, state_dir, temporary=True))
