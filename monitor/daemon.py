"""The composition root: builds everything from config, runs it, reloads it, stops it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from monitor import __version__
from monitor.checks.context import CheckContext
from monitor.clock import Clock, SystemClock
from monitor.components import Component, build_components
from monitor.config import ConfigError, LoadedConfig, effective_config, load_config
from monitor.core.spec import CheckSpec
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.net.clients import HttpClients
from monitor.ports import ComponentPorts
from monitor.redaction import Redactor
from monitor.runner import CheckRunner, TransitionListener, build_runner
from monitor.scheduler import Scheduler
from monitor.server import HttpServer, bind, build_app
from monitor.settings import Settings

T = TypeVar("T")

# /healthz fails when the event loop has not ticked for this long (a blocked loop).
LOOP_STALL_LIMIT = 5.0
_TICK = 0.25
_FIRST_ROUND_CONCURRENCY = 100
_STOP_GRACE = 3.0


class Daemon:
    """Schedules checks, serves HTTP, reloads on request, stops cleanly."""

    def __init__(
        self,
        loaded: LoadedConfig,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.loaded = loaded
        self.settings = settings
        self.config = effective_config(loaded, settings)
        self.metrics = metrics or Metrics()
        self.clock = clock or SystemClock()
        self.redactor = redactor or Redactor(loaded.secrets)
        self.listeners: list[TransitionListener] = []
        self.runners: dict[str, CheckRunner] = {}
        self.scheduler = Scheduler(self.metrics, self.clock)
        self.started_at = self.clock.now()
        self.server: HttpServer | None = None
        self.components: list[Component] = []
        self._context: CheckContext | None = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._last_tick = self.clock.monotonic()
        self._inflight: set[asyncio.Task[object]] = set()
        self._background: set[asyncio.Task[object]] = set()
        self._log = get_logger("daemon")

    # --- life cycle -------------------------------------------------------------------------
    async def run(self) -> int:
        """Run until `request_stop`; returns the process exit code."""
        sock = bind(self.config.listen)
        self._context = CheckContext(self.metrics, HttpClients(), self.clock)
        ports = ComponentPorts(
            self.config, self.settings, self.metrics, self.clock, self.redactor, self
        )
        self.components = build_components(ports)
        routes = [route for component in self.components for route in component.routes()]
        self.server = HttpServer(build_app(self, routes), sock)
        server_task = asyncio.create_task(self.server.serve(), name="http-server")
        self._spawn(self._watchdog(), "watchdog")
        self.scheduler.start()
        self._apply(self.config.checks)
        for component in self.components:
            await component.start()
        self._log.info(
            "daemon_started",
            version=__version__,
            listen=f"{self.config.listen.rpartition(':')[0]}:{self.server.port}",
            checks=len(self.runners),
            config=str(self.loaded.path),
        )
        self._spawn(self._first_round(), "first-round")
        await self._stop.wait()
        await self._shutdown(server_task)
        return 0

    def request_stop(self) -> None:
        """Ask the daemon to stop (SIGTERM/SIGINT)."""
        self._log.info("daemon_stopping")
        self._stop.set()

    def request_reload(self) -> None:
        """Reload the config from its file (SIGHUP); a bad config keeps the old one running."""
        self._spawn(self.reload(), "reload")

    async def reload(self) -> bool:
        """Load the config file again and apply it; return whether it was applied."""
        try:
            loaded = load_config(self.loaded.path)
        except ConfigError as exc:
            self._log.error("config_reload_rejected", problems=[str(p) for p in exc.problems])
            return False
        self.redactor.update(loaded.secrets)
        new = effective_config(loaded, self.settings)
        if new.listen != self.config.listen:
            self._log.warning("listen_change_needs_restart", listen=self.config.listen)
        self.loaded, self.config = loaded, new
        self._apply(new.checks)
        for component in self.components:
            await component.reload(new)
        self._log.info("config_reloaded", checks=len(self.runners))
        return True

    async def _shutdown(self, server_task: asyncio.Task[None]) -> None:
        self.scheduler.shutdown()
        tasks = [*self._inflight, *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception:
                self._log.exception("component_stop_failed", component=type(component).__name__)
        if self.server is not None:
            self.server.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server_task, _STOP_GRACE)
        if self._context is not None:
            await self._context.http.aclose()
        self._log.info("daemon_stopped")

    @property
    def context(self) -> CheckContext:
        """The dependencies shared by every check (available once `run` has started)."""
        assert self._context is not None, "the daemon is not running"
        return self._context

    # --- checks -----------------------------------------------------------------------------
    def _apply(self, specs: Iterable[CheckSpec]) -> None:
        assert self._context is not None
        wanted = {spec.name: spec for spec in specs}
        for name in list(self.runners):
            runner = self.runners[name]
            if name not in wanted and not runner.discovered:
                self.remove_runner(name)
        for name, spec in wanted.items():
            current = self.runners.get(name)
            if current is not None and current.spec == spec:
                continue
            runner = self.build_runner(spec)
            if current is not None:
                # Keep the history: a changed interval must not reopen or forget an incident.
                runner.state = current.state
                runner.state.failure_threshold = spec.failure_threshold
                runner.state.success_threshold = spec.success_threshold
            self.add_runner(runner)

    @property
    def ready(self) -> asyncio.Event:
        """Set once the first round of checks has run."""
        return self._ready

    def subscribe(self, listener: TransitionListener) -> None:
        """Call `listener` with every transition of every check (present and future)."""
        self.listeners.append(listener)

    def build_runner(self, spec: CheckSpec, *, discovered: bool = False) -> CheckRunner:
        """A runner for `spec` that reports to every transition listener."""
        return build_runner(spec, self.context, self.listeners, discovered)

    def add_runner(self, runner: CheckRunner) -> None:
        """Start scheduling `runner` (config checks and discovered ones alike)."""
        name = runner.spec.name
        self.runners[name] = runner
        interval = runner.spec.interval
        self.scheduler.schedule(
            name, interval, self._job(name), self.scheduler.spread_start(name, interval)
        )

    def remove_runner(self, name: str) -> None:
        """Stop and forget a check."""
        runner = self.runners.pop(name, None)
        self.scheduler.remove(name)
        if runner is not None:
            spec = runner.spec
            self.metrics.forget_check(spec.name, spec.type, spec.service or "")

    def _job(self, name: str) -> Callable[[], Coroutine[object, object, None]]:
        async def job() -> None:
            runner = self.runners.get(name)
            if runner is None:
                return
            last = runner.state.last_run_at
            # The first round ran every check at start; the first scheduled run may come soon after.
            if last is not None and self.clock.now() - last < timedelta(
                seconds=runner.spec.interval / 2
            ):
                return
            await self._tracked(runner.run_once())

        return job

    async def _tracked(self, coroutine: Coroutine[object, object, T]) -> T:
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            return await coroutine
        finally:
            self._inflight.discard(task)

    async def _first_round(self) -> None:
        limit = asyncio.Semaphore(_FIRST_ROUND_CONCURRENCY)

        async def one(runner: CheckRunner) -> None:
            async with limit:
                await runner.run_once()

        await asyncio.gather(*(one(r) for r in list(self.runners.values())))
        self._ready.set()
        self._log.info("first_round_done", checks=len(self.runners))

    async def _watchdog(self) -> None:
        while True:
            self._last_tick = self.clock.monotonic()
            await asyncio.sleep(_TICK)

    def _spawn(self, coroutine: Coroutine[object, object, object], name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- DaemonView -------------------------------------------------------------------------
    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def liveness(self) -> tuple[bool, str]:
        if not self.scheduler.running:
            return False, "scheduler stopped"
        stalled = self.clock.monotonic() - self._last_tick
        if stalled > LOOP_STALL_LIMIT:
            return False, f"event loop stalled for {stalled:.1f}s"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        if not self._ready.is_set():
            return False, "first round of checks still running"
        return True, "ok"

    def status(self) -> dict[str, Any]:
        from monitor.diagnosis import Snapshot, diagnose
        from monitor.explain import problems_by_check
        from monitor.runbooks import default_catalogue

        catalogue = default_catalogue()
        problems = diagnose(Snapshot.from_runners(self.runners.values()), catalogue)
        verdicts = problems_by_check(problems, self.config, catalogue, self.redactor)
        checks = [
            {**self.runners[name].status(), "problems": verdicts.get(name, [])}
            for name in sorted(self.runners)
        ]
        now: datetime = self.clock.now()
        snapshot: dict[str, Any] = self.redactor.value(
            {
                "version": __version__,
                "now": now.isoformat(),
                "started_at": self.started_at.isoformat(),
                "ready": self._ready.is_set(),
                "checks": checks,
            }
        )
        return snapshot
