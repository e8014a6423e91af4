"""`opsmon demo`: a sample backend shaped like the reference stack's, watched by the daemon."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor.config import ConfigError, load_config
from monitor.daemon import Daemon
from monitor.logs import configure_logging
from monitor.redaction import Redactor
from monitor.server import HttpServer, bind
from monitor.settings import Settings

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


def _bind_preferred(preferred: str) -> tuple[object, str]:
    try:
        sock = bind(preferred)
    except OSError:
        sock = bind(preferred.rpartition(":")[0] + ":0")
    host, port = sock.getsockname()[:2]
    return sock, f"{host}:{port}"


async def _demo() -> int:
    backend_sock, backend_addr = _bind_preferred("127.0.0.1:4000")
    listen_sock, listen = _bind_preferred(os.environ.get("OPSMON_LISTEN", "127.0.0.1:9110"))
    listen_sock.close()  # type: ignore[attr-defined]
    state_dir = tempfile.mkdtemp(prefix="opsmon-demo-")
    environ = dict(
        os.environ,
        DEMO_BACKEND_URL=f"http://{backend_addr}",
        OPSMON_LISTEN=listen,
        OPSMON_STATE_DIR=state_dir,
    )
    try:
        loaded = load_config(DEMO_CONFIG, environ)
    except ConfigError as exc:
        print(exc)
        return 2
    backend = HttpServer(SampleBackend().app(), backend_sock)  # type: ignore[arg-type]
    daemon = Daemon(loaded, Settings(listen=listen, state_dir=state_dir), redactor=Redactor())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, daemon.request_stop)
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
    backend_task = asyncio.create_task(backend.serve())
    base = f"http://{backend_addr}"
    print(
        f"""
opsmon demo
  sample backend   {base}/api/health   {base}/api/ready
  opsmon status    http://{listen}/api/status
  status page      http://{listen}/status
  opsmon metrics   http://{listen}/metrics

Break a component and watch backend-health turn unhealthy within ~10 s, then fix it:
  curl -X POST {base}/demo/break/database     (or mastra, latency)
  curl -X POST {base}/demo/fix/database
  curl -s http://{listen}/api/status

Ctrl-C stops everything.
""",
        flush=True,
    )
    started = time.monotonic()
    code = await daemon.run()
    backend.stop()
    await backend_task
    print(f"opsmon demo stopped after {time.monotonic() - started:.0f}s", flush=True)
    return code


def run_demo() -> int:
    """Run the demo until Ctrl-C."""
    settings = Settings()
    fmt = settings.log_format if "OPSMON_LOG_FORMAT" in os.environ else "console"
    configure_logging(Redactor(), settings.log_level, fmt)
    return asyncio.run(_demo())
