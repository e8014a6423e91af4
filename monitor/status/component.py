"""The status page and the API as a daemon component: records every check result into the
history rollups, writes them every few seconds, prunes old rows hourly, and serves `/status`,
`/status/<check>`, the badges and `/api/v1/`.

It gets the shared ports (config, metrics, clock, redactor, the check registry, where it
subscribes to every result); it never sees the daemon or another component.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from monitor import __version__
from monitor.alerting.store import TABLES, AlertingStore
from monitor.api.auth import TokenTable
from monitor.api.routes import ApiRoutes
from monitor.core.result import CheckResult
from monitor.logs import get_logger
from monitor.status.data import StatusData
from monitor.status.pages import StatusPages
from monitor.status.rollup import Sample
from monitor.status.sources import RunnerChecks, StoreIncidents, StoreSilences
from monitor.status.store import HISTORY_TABLES, HistoryRecorder, HistoryStore
from monitor.store import Store

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.ports import ComponentPorts

FLUSH_EVERY = 5.0
PRUNE_EVERY = 3600.0


class StatusComponent:
    """History, status pages, badges and the API."""

    def __init__(self, ports: ComponentPorts) -> None:
        self.config = ports.config
        self._ports = ports
        self._metrics = ports.metrics
        self._clock = ports.clock
        self._log = get_logger("status")
        self._tokens = TokenTable(self.config.api.tokens)
        plumbing = Store.open(
            self.config.state_dir, {**TABLES, **HISTORY_TABLES}, ports.store_health
        )
        self.store = AlertingStore(plumbing)
        self.history = HistoryStore(plumbing.connection, plumbing.transaction)
        self.recorder = HistoryRecorder(self.history)
        self.data = StatusData(
            RunnerChecks(lambda: ports.checks.runners, ports.redactor, ports.elsewhere.status),
            self.history,
            self.recorder,
            StoreIncidents(self.store, ports.clock.now),
            ports.clock,
        )
        self._pages = StatusPages(self.data, lambda: self.config.status_page, lambda: self._tokens)
        self._api = ApiRoutes(
            self.data,
            StoreSilences(self.store, lambda: self.config),
            lambda: self._tokens,
            __version__,
        )
        self._tasks: list[asyncio.Task[None]] = []

    # --- Component -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Count every check result from now on, and start writing history."""
        self._ports.checks.subscribe_results(self.record)
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="history-flush"),
            asyncio.create_task(self._prune_loop(), name="history-prune"),
        ]
        for task in self._tasks:
            self._ports.tasks.watch(task)  # a dead history loop shows in /healthz

    async def stop(self) -> None:
        """Write what is pending and close the store."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.flush()
        self.store.close()

    def vet(self, config: Config) -> None:
        """The token table must build from the new `api.tokens`."""
        TokenTable(config.api.tokens)

    async def reload(self, config: Config) -> None:
        """Take the new `status_page` and `api` sections (the state_dir needs a restart)."""
        self.config = config
        self._tokens = TokenTable(config.api.tokens)

    def routes(self) -> Sequence[BaseRoute]:
        """The pages, badges and API, each counted by route template and status code."""
        routes = [*self._pages.routes(), *self._api.routes()]
        return [self._counted(route) for route in routes if isinstance(route, Route)]

    # --- history -------------------------------------------------------------------------------
    def record(self, check: str, result: CheckResult, duration: float | None, at: datetime) -> None:
        """Count one check result (called for every result, in the event loop; no I/O)."""
        seconds = duration if duration is not None else (result.duration or None)
        self.recorder.record(
            Sample(
                check=check,
                at=at.timestamp(),
                ok=result.ok,
                duration_ms=seconds * 1000 if seconds is not None else None,
                unknown=result.unknown,
            )
        )

    def flush(self) -> bool:
        """Write pending history; a failure is logged and counted, and nothing is lost."""
        try:
            self.recorder.flush()
        except Exception as exc:
            self._metrics.history_write_failures.inc()
            self._log.error("history_write_failed", error=f"{type(exc).__name__}: {exc}")
            return False
        return True

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            self.flush()

    async def _prune_loop(self) -> None:
        while True:
            try:
                removed = self.history.prune(self._clock.now().timestamp())
                if removed:
                    self._log.info("history_pruned", rows=removed)
            except Exception as exc:
                self._metrics.history_write_failures.inc()
                self._log.error("history_prune_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(PRUNE_EVERY)

    # --- HTTP ----------------------------------------------------------------------------------
    def _counted(self, route: Route) -> Route:
        endpoint: Callable[[Request], Awaitable[Response]] = route.endpoint
        template = route.path
        counter = self._metrics.http_requests

        async def counted(request: Request) -> Response:
            code = "500"
            try:
                response = await endpoint(request)
                code = str(response.status_code)
                return response
            finally:
                counter.labels(template, request.method, code).inc()

        return Route(template, counted, methods=sorted(route.methods or ()))
