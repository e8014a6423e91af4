"""The alerting part of the daemon: listens to transitions, runs the engine, the outbox and
the heartbeat, and serves `GET /api/alerts`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.alerting.config import AlertingConfig
from monitor.alerting.engine import AlertEngine
from monitor.alerting.heartbeat import Heartbeat
from monitor.alerting.incidents import IncidentTracker
from monitor.alerting.naming import (
    AlertContent,
    delivery_failing,
    describe_failure,
    state_store_failing,
)
from monitor.alerting.notifiers import CHANNEL_TYPES, Notifier, NotifierDeps
from monitor.alerting.outbox import Outbox
from monitor.alerting.silences import Silences
from monitor.alerting.store import AlertingStore
from monitor.alertnames import AlertName
from monitor.core.aio import wait_for_event
from monitor.core.health import Health, Transition
from monitor.core.result import CheckResult
from monitor.core.spec import CheckSpec
from monitor.diagnosis import Snapshot, dependency_names
from monitor.logs import get_logger
from monitor.resilient_db import StoreFault
from monitor.runbook_context import RunbookContext, localize

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.ports import ClusterPort, ComponentPorts

CHANNEL_SOURCE = "channel:"
STORE_SOURCE = "store:"
# The engine looks again at least this often (new CLI silences, maintenance windows).
_ENGINE_POLL = 1.0
_PRUNE_EVERY = 3600.0
_KEEP_HISTORY = timedelta(days=14)
# Incidents stay as long as the status page's history (its 90 daily bars and timeline).
_KEEP_INCIDENTS = timedelta(days=90)


class AlertingComponent:
    """Alerting as a daemon component; idle while the config has no `alerting` section."""

    def __init__(self, ports: ComponentPorts, cluster: ClusterPort | None = None) -> None:
        self._ports = ports
        self._cluster = cluster
        self.store: AlertingStore | None = None
        self.tracker: IncidentTracker | None = None
        self.engine: AlertEngine | None = None
        self.outbox: Outbox | None = None
        self._tasks: list[asyncio.Task[object]] = []
        self._heartbeat_task: asyncio.Task[object] | None = None
        self._wake = asyncio.Event()
        self._log = get_logger("alerting")
        self._runbooks = RunbookContext.of(ports.config)

    # --- Component -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._ports.checks.subscribe(self._on_transition)
        self._ports.store_health.on_failing.append(self._store_failing)
        self._ports.store_health.on_recovered.append(self._store_recovered)
        if self._ports.config.alerting is not None:
            self._activate(self._ports.config)

    async def stop(self) -> None:
        await self._deactivate()

    async def reload(self, config: Config) -> None:
        if config.alerting is None:
            await self._deactivate()
            return
        if self.engine is None:
            self._activate(config)
            return
        self._configure(config)
        self._spawn(self._resolve_removed_checks(), "alerting-reconcile")

    def routes(self) -> Sequence[BaseRoute]:
        return [Route("/api/alerts", self._api_alerts)]

    # --- life cycle ----------------------------------------------------------------------------
    def _activate(self, config: Config) -> None:
        ports = self._ports
        assert config.alerting is not None
        self.store = store = AlertingStore.open(config.state_dir, ports.store_health)
        self.tracker = IncidentTracker(
            store,
            ports.metrics,
            ports.redactor,
            config.public_url,
            config.runbook_url_template,
            describe=self._describe,
        )
        self.outbox = Outbox(
            store,
            ports.clock,
            ports.metrics,
            cluster=self._cluster,
            on_failing=self._channel_failing,
            on_recovered=self._channel_recovered,
        )
        self.engine = AlertEngine(
            store,
            config.alerting,
            self._silences(config),
            self._dependencies,
            ports.clock,
            ports.metrics,
            config.public_url,
            on_enqueued=self.outbox.wake,
            recovery=self._recovery,
        )
        self._configure(config)
        # Load the runbook catalogue now rather than while the first alert waits for it.
        self.tracker.runbook_link("HealthCheckFailing")
        for fault in ports.store_health.faults():
            self._store_failing(fault)
        for incident in store.live_incidents():
            if incident.source.startswith(STORE_SOURCE) and not ports.store_health.faults():
                # Left firing by a daemon that stopped before its store recovered.
                self.tracker.resolve(incident.source, ports.clock.now())
            if incident.source.startswith(CHANNEL_SOURCE) and incident.status.value == "firing":
                # Still reported from before a restart: the next success resolves it.
                channel = incident.source.removeprefix(CHANNEL_SOURCE)
                self.outbox.restore_failing(channel, incident.started_at)
        self._spawn(self._engine_loop(), "alerting-engine", forever=True)
        self._spawn(self.outbox.run(), "alerting-outbox", forever=True)
        self._spawn(self._resolve_removed_checks(), "alerting-reconcile")
        self._spawn(self._prune_loop(), "alerting-prune", forever=True)
        self._log.info(
            "alerting_started",
            channels=[c.name for c in config.alerting.channels],
            pending=store.count_pending(),
            open_incidents=store.count_firing(),
        )

    def _configure(self, config: Config) -> None:
        ports = self._ports
        alerting = config.alerting
        assert alerting is not None
        assert self.engine is not None and self.outbox is not None and self.tracker is not None
        deps = NotifierDeps(ports.checks.context.http, ports.clock, alerting.delivery.timeout)
        notifiers: dict[str, Notifier] = {
            spec.name: CHANNEL_TYPES[spec.type].build(spec, deps) for spec in alerting.channels
        }
        self.outbox.configure(notifiers, {c.name: c for c in alerting.channels}, alerting.delivery)
        self.engine.reconfigure(alerting, self._silences(config), config.public_url)
        self._runbooks = RunbookContext.of(config)
        self.tracker.public_url = config.public_url
        self.tracker.runbook_template = config.runbook_url_template
        assert self.store is not None
        for incident in self.store.live_incidents():
            channel = incident.source.removeprefix(CHANNEL_SOURCE)
            if incident.source.startswith(CHANNEL_SOURCE) and channel not in notifiers:
                self.tracker.resolve(incident.source, ports.clock.now(), " (channel removed)")
        self._restart_heartbeat(alerting)
        self.wake()

    def _restart_heartbeat(self, alerting: AlertingConfig) -> None:
        ports = self._ports
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            self._heartbeat_task = None
        if alerting.heartbeat is not None:
            heartbeat = Heartbeat(
                alerting.heartbeat,
                ports.checks.context.http.get(True),
                lambda: ports.checks.liveness()[0],
            )
            self._heartbeat_task = self._spawn(heartbeat.run(), "alerting-heartbeat")

    async def _deactivate(self) -> None:
        tasks = [*self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._heartbeat_task = None
        if self.outbox is not None:
            await self.outbox.cancel()
        if self.store is not None:
            self.store.close()
        self.store = self.tracker = self.engine = self.outbox = None

    def _silences(self, config: Config) -> Silences:
        assert self.store is not None
        return Silences(self.store, config.silences, config.maintenance, self._ports.clock.now())

    def _spawn(
        self, coroutine: Coroutine[object, object, object], name: str, forever: bool = False
    ) -> asyncio.Task[object]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.append(task)
        task.add_done_callback(self._forget_task)
        self._ports.tasks.watch(task, forever)
        return task

    def _forget_task(self, task: asyncio.Task[object]) -> None:
        if task in self._tasks:
            self._tasks.remove(task)

    # --- events --------------------------------------------------------------------------------
    def wake(self) -> None:
        """Evaluate the groups now (an incident opened or resolved)."""
        self._wake.set()

    async def _on_transition(self, transition: Transition) -> None:
        if self.tracker is None:
            return
        if self.tracker.on_transition(transition, transition.spec) is not None:
            self.wake()

    def _describe(self, spec: CheckSpec, result: CheckResult) -> AlertContent:
        """The alert content, diagnosed against every check's current state (root cause)."""
        snapshot = Snapshot.from_runners(self._ports.checks.runners.values())
        content = describe_failure(spec, result, snapshot)
        # The first step as on-call types it for this stack (URLs, compose file and project).
        return replace(content, description=localize(content.description, self._runbooks))

    def _dependencies(self, check: str) -> Sequence[str]:
        """Inhibition follows the edges diagnosis uses: depends_on and the service's container."""
        runners = self._ports.checks.runners
        runner = runners.get(check)
        if runner is None:
            return ()
        return dependency_names(runner.spec, (r.spec for r in runners.values()))

    def _store_failing(self, fault: StoreFault) -> None:
        # Called from inside a store write: open the incident once that write is done.
        self._loop.call_soon_threadsafe(self._open_store_incident, fault)

    def _open_store_incident(self, fault: StoreFault) -> None:
        if self.tracker is None:
            return
        labels = {
            "alertname": AlertName.STATE_STORE_FAILING.value,
            "severity": "critical",
            "service": "opsmon",
        }
        now = self._ports.clock.now()
        content = state_store_failing(str(fault.path), now, fault.error)
        if self.tracker.open(STORE_SOURCE + str(fault.path), content, labels, now):
            self.wake()

    def _store_recovered(self, path: Path) -> None:
        if self.tracker is None:
            return
        if any(f.path == path for f in self._ports.store_health.faults()):
            return
        if self.tracker.resolve(STORE_SOURCE + str(path), self._ports.clock.now()):
            self.wake()

    def _recovery(self, check: str) -> float:
        """How long `check` takes to report a recovery: success_threshold runs (and one more
        interval and timeout for the run in flight)."""
        runner = self._ports.checks.runners.get(check)
        if runner is None:
            return 0.0
        spec = runner.spec
        return (spec.success_threshold + 1) * spec.interval + spec.timeout

    def _refresh_incidents(self) -> None:
        """Re-diagnose every firing incident that is not held back: when its check now fails
        for another reason (a container stopped by a deploy now runs a release that cannot
        start), the alert it stands for is resolved and the right one opened, so a page
        never keeps saying what is no longer true."""
        if self.store is None or self.tracker is None:
            return
        runners = self._ports.checks.runners
        now = self._ports.clock.now()
        for incident in self.store.live_incidents():
            if incident.status.value != "firing" or incident.suppressed is not None:
                continue
            runner = runners.get(incident.source)
            if runner is None or runner.state.health is not Health.UNHEALTHY:
                continue
            result = runner.state.last_result
            if result is None or result.ok or result.unknown:
                continue
            content = self._describe(runner.spec, result)
            # Only a failure of its own: one that another check's failure explains is that
            # check's incident (and inhibition holds this one back once it opens).
            if content.alertname != incident.alertname and content.root == incident.source:
                self.tracker.resolve(incident.source, now, f" (now: {content.alertname})")
                self.tracker.open_for(runner.spec, content, now)
                self.wake()

    def _channel_failing(self, channel: str, since: datetime, error: str) -> None:
        assert self.tracker is not None
        labels = {
            "alertname": "AlertDeliveryFailing",
            "severity": "warning",
            "service": "opsmon",
            "channel": channel,
        }
        content = delivery_failing(channel, since, error)
        if self.tracker.open(CHANNEL_SOURCE + channel, content, labels, self._ports.clock.now()):
            self.wake()

    def _channel_recovered(self, channel: str) -> None:
        assert self.tracker is not None
        if self.tracker.resolve(CHANNEL_SOURCE + channel, self._ports.clock.now()):
            self.wake()

    # --- IncidentPort ----------------------------------------------------------------------------
    def incidents(self) -> tuple[IncidentTracker, Callable[[], None]] | None:
        """The incident tracker and the engine's wake-up, or None while alerting is off."""
        if self.tracker is None:
            return None
        return self.tracker, self.wake

    def rolling_back(self, service: str, checks: Sequence[str], since: datetime) -> None:
        """A rollback of `service` starts, decided on the failures of `checks`: page those now
        and hold back what the swap of containers sets off until `rolled_back`."""
        if self.engine is None:
            return
        self.engine.expedite(checks)
        self.engine.hold(service, since)
        self.wake()

    def rolled_back(self, service: str) -> None:
        """The rollback of `service` is over (whatever its verdict)."""
        if self.engine is not None:
            self.engine.release(service)
            self.wake()

    def silenced(self, service: str, checks: Sequence[str], now: datetime) -> str | None:
        """The comment (or id) of an active silence that matches `service` or the labels of an
        open incident of one of `checks`; None when nothing (or no alerting) silences them."""
        if self.engine is None or self.store is None:
            return None
        label_sets: list[dict[str, str]] = [{"service": service}]
        for check in checks:
            incident = self.store.open_incident(check)
            if incident is not None:
                label_sets.append(dict(incident.labels))
        for silence in self.engine.silences.active(now):
            if any(silence.matches(labels) for labels in label_sets):
                return silence.comment or silence.id
        return None

    # --- loops ---------------------------------------------------------------------------------
    async def _engine_loop(self) -> None:
        clock = self._ports.clock
        while True:
            self._wake.clear()
            next_at = None
            if self.engine is not None:
                try:
                    self._refresh_incidents()
                    next_at = self.engine.evaluate()
                except Exception:
                    self._log.exception("alert_evaluation_failed")
            timeout = _ENGINE_POLL
            if next_at is not None:
                timeout = min(timeout, max(0.0, (next_at - clock.now()).total_seconds()))
            await wait_for_event(self._wake, timeout)

    async def _resolve_removed_checks(self) -> None:
        """Resolve incidents of checks that are gone (once the first round has run)."""
        ports = self._ports
        await ports.checks.ready.wait()
        if self.store is None or self.tracker is None:
            return
        for incident in self.store.live_incidents():
            source = incident.source
            if incident.status.value != "firing" or source.startswith(CHANNEL_SOURCE):
                continue
            if source not in ports.checks.runners:
                self.tracker.resolve(
                    source, ports.clock.now(), " (resolved: the check is no longer configured)"
                )
                self.wake()

    async def _prune_loop(self) -> None:
        while True:
            if self.store is not None:
                now = self._ports.clock.now()
                self.store.prune(now - _KEEP_HISTORY, now - _KEEP_INCIDENTS)
            await asyncio.sleep(_PRUNE_EVERY)

    # --- HTTP ----------------------------------------------------------------------------------
    async def _api_alerts(self, request: Request) -> Response:
        ports = self._ports
        if self.store is None or self.engine is None or self.outbox is None:
            return JSONResponse({"enabled": False})
        now = ports.clock.now()
        body = {
            "enabled": True,
            "incidents": [
                {
                    "id": i.id,
                    "alertname": i.alertname,
                    "severity": i.severity,
                    "status": i.status.value,
                    "labels": i.labels,
                    "summary": i.summary,
                    "description": i.description,
                    "runbook_url": i.runbook_url,
                    "started_at": i.started_at.isoformat(),
                    "ended_at": i.ended_at.isoformat() if i.ended_at else None,
                    "notified": i.notified.value if i.notified else None,
                    "suppressed": i.suppressed,
                }
                for i in self.store.recent_incidents()
            ],
            "silences": [
                {
                    "id": s.id,
                    "matchers": dict(s.matchers),
                    "starts_at": s.starts_at.isoformat(),
                    "ends_at": s.ends_at.isoformat(),
                    "comment": s.comment,
                    "origin": s.origin,
                }
                for s in self.engine.silences.active(now)
            ],
            "outbox_pending": self.store.count_pending(),
            "failing_channels": {
                channel: since.isoformat() for channel, since in self.outbox.failing_since.items()
            },
        }
        return JSONResponse(ports.redactor.value(body))
