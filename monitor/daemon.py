"""The composition root: builds everything from config, runs it, reloads it, stops it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from monitor import __version__
from monitor.checks.context import CheckContext
from monitor.clock import Clock, SystemClock
from monitor.components import Component, build_components
from monitor.config import Config, ConfigError, LoadedConfig, effective_config, load_config
from monitor.core.spec import CheckSpec
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.net.clients import HttpClients
from monitor.ports import ComponentPorts
from monitor.redaction import Redactor
from monitor.resilient_db import StoreFault, StoreHealth
from monitor.runner import CheckRunner, ResultListener, TransitionListener, build_runner
from monitor.scheduler import Scheduler, Timing
from monitor.selfcheck import (
    CheckTiming,
    OwnedElsewhere,
    ProblemBoard,
    Stale,
    TaskWatch,
    liveness_problems,
    stale_checks,
)
from monitor.server import HttpServer, bind, build_app
from monitor.settings import Settings

T = TypeVar("T")

# /healthz fails when the event loop has not ticked for this long (a blocked loop).
LOOP_STALL_LIMIT = 5.0
_TICK = 0.25
_FIRST_ROUND_CONCURRENCY = 100
_STOP_GRACE = 3.0
# How often the watchdog looks for stale checks and tries to write a memory store back.
_SELF_CHECK_EVERY = 1.0
_STORE_RETRY_EVERY = 5.0
EXIT_CONFIG = 2


@dataclass(frozen=True)
class ChecksPlan:
    """What a config changes in the checks: runners to (re)schedule and names to drop."""

    schedule: list[tuple[CheckRunner, Timing]]
    remove: list[str]


class ChecksRejected(Exception):
    """A config's checks cannot all be built and scheduled; nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


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
        self.result_listeners: list[ResultListener] = []
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
        self.tasks = TaskWatch(lambda _name: self.metrics.internal_task_failures.inc())
        self.store_health = StoreHealth(
            on_failing=[self._store_failing],
            on_recovered=[self._store_recovered],
            on_write_failure=[self.metrics.state_write_failures.inc],
        )
        self.problems = ProblemBoard()
        self.elsewhere = OwnedElsewhere()
        self._scheduled_at: dict[str, datetime] = {}
        self._stale: set[str] = set()

    # --- life cycle -------------------------------------------------------------------------
    async def run(self) -> int:
        """Run until `request_stop`; returns the process exit code."""
        sock = bind(self.config.listen)
        self._context = CheckContext(self.metrics, HttpClients(), self.clock)
        ports = ComponentPorts(
            self.config,
            self.settings,
            self.metrics,
            self.clock,
            self.redactor,
            self,
            store_health=self.store_health,
            tasks=self.tasks,
            problems=self.problems,
            elsewhere=self.elsewhere,
        )
        self.components = build_components(ports)
        routes = [route for component in self.components for route in component.routes()]
        self.server = HttpServer(
            build_app(self, routes), sock, on_accept_error=self.metrics.http_accept_failures.inc
        )
        try:
            plan = self._plan(self.config.checks)
        except ChecksRejected as exc:
            sock.close()
            self._log.error("config_cannot_be_applied", problems=exc.problems)
            await self._context.http.aclose()
            return EXIT_CONFIG
        server_task = asyncio.create_task(self.server.serve(), name="http-server")
        self.tasks.watch(server_task)
        self._spawn(self._watchdog(), "watchdog", forever=True)
        self.scheduler.start()
        self._commit(plan)
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
        """Load the config file again and apply it; return whether it was applied.

        All or nothing: every check is built and scheduled on paper first; any problem
        rejects the whole reload and the old config keeps running unchanged.
        """
        try:
            loaded = load_config(self.loaded.path)
        except ConfigError as exc:
            return self._reject([str(p) for p in exc.problems])
        self.redactor.update(loaded.secrets)
        new = effective_config(loaded, self.settings)
        try:
            plan = self._plan(new.checks)
        except ChecksRejected as exc:
            return self._reject(exc.problems)
        problems = self._vet_components(new)
        if problems:
            return self._reject(problems)
        if new.listen != self.config.listen:
            self._log.warning("listen_change_needs_restart", listen=self.config.listen)
        self.loaded, self.config = loaded, new
        self._commit(plan)
        for component in self.components:
            await self._reload_component(component, new)
        self.metrics.config_reloads.labels("applied").inc()
        self._log.info("config_reloaded", checks=len(self.runners))
        return True

    def _vet_components(self, config: Config) -> list[str]:
        """What each component says it cannot apply of `config` (nothing is changed yet)."""
        problems = []
        for component in self.components:
            try:
                component.vet(config)
            except Exception as exc:
                name = type(component).__name__
                problems.append(self.redactor.text(f"{name}: {type(exc).__name__}: {exc}"))
        return problems

    async def _reload_component(self, component: Component, config: Config) -> None:
        """Apply `config` to one component. Config problems were refused by `vet`; what fails
        here is the machine (a disk, the engine), so the component is reported on /healthz,
        counted and logged until a later reload applies cleanly."""
        name = type(component).__name__
        key = f"reload:{name}"
        try:
            await component.reload(config)
        except Exception as exc:
            self.metrics.internal_task_failures.inc()
            self._log.exception("component_reload_failed", component=name)
            reason = self.redactor.text(f"{type(exc).__name__}: {exc}")
            self.problems.report(key, f"{name} could not apply the reloaded config: {reason}")
        else:
            self.problems.clear(key)

    def _reject(self, problems: list[str]) -> bool:
        self.metrics.config_reloads.labels("rejected").inc()
        self._log.error("config_reload_rejected", problems=problems)
        return False

    async def _shutdown(self, server_task: asyncio.Task[None]) -> None:
        self.tasks.stopping()
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
    def _plan(self, specs: Sequence[CheckSpec]) -> ChecksPlan:
        """Build and schedule (on paper) every new or changed check; raise ChecksRejected
        naming each one that cannot be, before anything running is touched."""
        assert self._context is not None
        plan: list[tuple[CheckRunner, Timing]] = []
        problems: list[str] = []
        for spec in specs:
            current = self.runners.get(spec.name)
            if current is not None and current.spec == spec:
                continue
            try:
                runner = self.build_runner(spec)
                timing = self.scheduler.prepare(spec.name, spec.interval)
            except Exception as exc:
                problems.append(self.redactor.text(f"check {spec.name}: {_explain(exc)}"))
                continue
            plan.append((runner, timing))
        if problems:
            raise ChecksRejected(problems)
        wanted = {spec.name for spec in specs}
        remove = [n for n, r in self.runners.items() if n not in wanted and not r.discovered]
        return ChecksPlan(plan, remove)

    def _commit(self, plan: ChecksPlan) -> None:
        """Swap in a plan made by `_plan` (nothing here can fail on the config's account)."""
        for name in plan.remove:
            self.remove_runner(name)
        for runner, timing in plan.schedule:
            current = self.runners.get(runner.spec.name)
            if current is not None:
                # Keep the history: a changed interval must not reopen or forget an incident.
                spec = runner.spec
                runner.state = current.state
                runner.state.failure_threshold = spec.failure_threshold
                runner.state.success_threshold = spec.success_threshold
            self.add_runner(runner, timing)

    @property
    def ready(self) -> asyncio.Event:
        """Set once the first round of checks has run."""
        return self._ready

    def subscribe(self, listener: TransitionListener) -> None:
        """Call `listener` with every transition of every check (present and future)."""
        self.listeners.append(listener)

    def subscribe_results(self, listener: ResultListener) -> None:
        """Call `listener` with every result of every check (present and future)."""
        self.result_listeners.append(listener)

    def build_runner(self, spec: CheckSpec, *, discovered: bool = False) -> CheckRunner:
        """A runner for `spec` that reports to every transition and result listener."""
        return build_runner(spec, self.context, self.listeners, discovered, self.result_listeners)

    def add_runner(self, runner: CheckRunner, timing: Timing | None = None) -> None:
        """Start scheduling `runner` (config checks and discovered ones alike)."""
        name = runner.spec.name
        interval = runner.spec.interval
        timing = timing or self.scheduler.prepare(name, interval)
        self.runners[name] = runner
        self._scheduled_at[name] = self.clock.now()
        self.scheduler.schedule(name, interval, self._job(name), timing)

    def remove_runner(self, name: str) -> None:
        """Stop and forget a check."""
        runner = self.runners.pop(name, None)
        self.scheduler.remove(name)
        self._scheduled_at.pop(name, None)
        self._stale.discard(name)
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
        last_check = last_store = self.clock.monotonic()
        while True:
            now = self._last_tick = self.clock.monotonic()
            if now - last_check >= _SELF_CHECK_EVERY:
                last_check = now
                self._mark_stale()
            if now - last_store >= _STORE_RETRY_EVERY:
                last_store = now
                self.store_health.try_recover()
            await asyncio.sleep(_TICK)

    def _spawn(
        self, coroutine: Coroutine[object, object, object], name: str, forever: bool = False
    ) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        self.tasks.watch(task, forever)

    # --- self-honesty -----------------------------------------------------------------------
    def _stale_checks(self) -> list[Stale]:
        now = self.clock.now()
        timings = (
            CheckTiming(
                name,
                runner.spec.interval,
                runner.spec.timeout,
                runner.state.last_run_at,
                self._scheduled_at.get(name, self.started_at),
            )
            for name, runner in self.runners.items()
        )
        return stale_checks(timings, now)

    def _mark_stale(self) -> None:
        """Keep opsmon_check_stale and the healthy gauge of stale checks honest."""
        stale = {s.name for s in self._stale_checks()}
        for name in stale | self._stale:
            runner = self.runners.get(name)
            if runner is None:
                continue
            spec = runner.spec
            self.metrics.check_stale.labels(name).set(1 if name in stale else 0)
            if name in stale:
                # No run established health lately: do not keep claiming it.
                self.metrics.check_healthy.labels(name, spec.type, spec.service or "").set(0)
        newly, again = stale - self._stale, self._stale - stale
        if newly:
            self._log.error("checks_not_running", checks=sorted(newly))
        if again:
            self._log.info("checks_running_again", checks=sorted(again))
        self._stale = stale

    def _store_failing(self, fault: StoreFault) -> None:
        self.metrics.state_degraded.set(1)
        self._log.error("state_store_failing", path=str(fault.path), error=fault.error)

    def _store_recovered(self, path: Path) -> None:
        if not self.store_health.faults():
            self.metrics.state_degraded.set(0)
        self._log.info("state_store_recovered", path=str(path))

    # --- DaemonView -------------------------------------------------------------------------
    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def liveness(self) -> tuple[bool, str]:
        if not self.scheduler.running:
            return False, "scheduler stopped"
        stalled = self.clock.monotonic() - self._last_tick
        if stalled > LOOP_STALL_LIMIT:
            return False, f"event loop stalled for {stalled:.1f}s"
        problems = self._problems()
        if problems:
            return False, "; ".join(problems)
        return True, "ok"

    def _problems(self) -> list[str]:
        """Every internal failure /healthz and /api/status report (empty: none)."""
        problems = liveness_problems(
            self.tasks.dead(),
            self._stale_checks(),
            [f"state store {f.path} failing: {f.error}" for f in self.store_health.faults()],
            self.problems.problems(),
        )
        return [self.redactor.text(problem) for problem in problems]

    def readiness(self) -> tuple[bool, str]:
        if not self._ready.is_set():
            return False, "first round of checks still running"
        return True, "ok"

    def status(self) -> dict[str, Any]:
        from monitor.diagnosis import Snapshot, diagnose
        from monitor.explain import problems_by_check
        from monitor.runbooks import default_catalogue

        catalogue = default_catalogue()
        situation = Snapshot.from_runners(self.runners.values(), self.elsewhere.views())
        problems = diagnose(situation, catalogue)
        verdicts = problems_by_check(problems, self.config, catalogue, self.redactor)
        stale = {s.name for s in self._stale_checks()}
        checks = [
            {**self.runners[name].status(), "problems": verdicts.get(name, [])}
            for name in sorted(self.runners)
        ]
        for check in checks:
            check["stale"] = check["name"] in stale
            if check["stale"]:
                # Its last state is no longer evidence of anything.
                check["state"] = "stale"
        # Sharding: checks another instance runs; no health claimed for them here.
        checks = sorted([*checks, *self.elsewhere.status()], key=lambda c: str(c["name"]))
        now: datetime = self.clock.now()
        snapshot: dict[str, Any] = self.redactor.value(
            {
                "version": __version__,
                "now": now.isoformat(),
                "started_at": self.started_at.isoformat(),
                "ready": self._ready.is_set(),
                "problems": self._problems(),
                "checks": checks,
            }
        )
        return snapshot


def _explain(exc: BaseException) -> str:
    """A problem as one line: what kind, and what was wrong."""
    if isinstance(exc, OverflowError | ValueError):
        return f"cannot be scheduled ({type(exc).__name__}: {exc})"
    return f"{type(exc).__name__}: {exc}"
