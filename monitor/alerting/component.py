"""The alerting part of the daemon: listens to transitions, runs the engine, the outbox and
the heartbeat, and serves `GET /api/alerts`.

The component lives as long as the daemon (it owns the route, which answers
`{"enabled": false}` while alerting is off); what the `alerting:` section turns on is one
`ActiveAlerting`, built whole on start or reload and dropped whole when the section goes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.alerting.config import AlertingConfig
from monitor.alerting.engine import AlertEngine
from monitor.alerting.heartbeat import Heartbeat
from monitor.alerting.incidents import IncidentTracker
from monitor.alerting.inhibition import Dependencies
from monitor.alerting.model import Ack, Incident, Silence, Status
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
from monitor.core.spec import CHECK_NAME, CheckSpec
from monitor.diagnosis import (
    CheckView,
    Snapshot,
    containers_by_service,
    dependency_names,
    diagnose,
)
from monitor.logs import get_logger
from monitor.resilient_db import StoreFault
from monitor.runbook_context import RunbookContext, localize
from monitor.runbooks import default_catalogue

if TYPE_CHECKING:
    from monitor.cluster.claims import PagedAlert
    from monitor.config import Config
    from monitor.ports import ClusterPort, ComponentPorts, TransitionSource
    from monitor.runner import CheckRunner

CHANNEL_SOURCE = "channel:"
STORE_SOURCE = "store:"
# The engine looks again at least this often (new CLI silences, maintenance windows).
_ENGINE_POLL = 1.0
_PRUNE_EVERY = 3600.0
_KEEP_HISTORY = timedelta(days=14)
# Incidents stay as long as the status page's history (its 90 daily bars and timeline).
_KEEP_INCIDENTS = timedelta(days=90)


@dataclass(frozen=True)
class ActiveAlerting:
    """Alerting while the config has an `alerting:` section: its store, incident tracker,
    engine and outbox, built together from the section and dropped together (no part is
    ever missing while the others run)."""

    store: AlertingStore
    tracker: IncidentTracker
    engine: AlertEngine
    outbox: Outbox

    def silenced(self, service: str, checks: Sequence[str], now: datetime) -> str | None:
        """The comment (or id) of an active silence that matches `service` or the labels of
        an open incident of one of `checks`, else None."""
        label_sets: list[dict[str, str]] = [{"service": service}]
        for check in checks:
            incident = self.store.open_incident(check)
            if incident is not None:
                label_sets.append(dict(incident.labels))
        for silence in self.engine.silences.active(now):
            if any(silence.matches(labels) for labels in label_sets):
                return silence.comment or silence.id
        return None

    def document(self, now: datetime) -> dict[str, object]:
        """The body of `GET /api/alerts` (before redaction)."""
        return {
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


class AlertingComponent:
    """Alerting as a daemon component; idle (no `ActiveAlerting`) while the config has no
    `alerting` section."""

    def __init__(
        self,
        ports: ComponentPorts,
        cluster: ClusterPort | None = None,
        transitions: TransitionSource | None = None,
    ) -> None:
        self._ports = ports
        self._cluster = cluster
        # Incidents follow the cluster's view when there is one, else this instance's.
        self._transitions: TransitionSource = transitions or ports.checks
        self._active: ActiveAlerting | None = None
        self._tasks: list[asyncio.Task[object]] = []
        self._heartbeat_task: asyncio.Task[object] | None = None
        self._wake = asyncio.Event()
        self._log = get_logger("alerting")
        self._runbooks = RunbookContext.of(ports.config)

    # --- Component -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transitions.subscribe(self._on_transition)
        self._ports.store_health.on_failing.append(self._store_failing)
        self._ports.store_health.on_recovered.append(self._store_recovered)
        if self._ports.config.alerting is not None:
            self._activate(self._ports.config, self._ports.config.alerting)

    async def stop(self) -> None:
        await self._deactivate()

    async def reload(self, config: Config) -> None:
        if config.alerting is None:
            await self._deactivate()
            return
        if self._active is None:
            self._activate(config, config.alerting)
            return
        self._configure(self._active, config, config.alerting)
        self._spawn(self._resolve_removed_checks(self._active), "alerting-reconcile")

    def routes(self) -> Sequence[BaseRoute]:
        return [Route("/api/alerts", self._api_alerts)]

    # --- life cycle ----------------------------------------------------------------------------
    def _activate(self, config: Config, alerting: AlertingConfig) -> None:
        ports = self._ports
        store = AlertingStore.open(config.state_dir, ports.store_health)
        tracker = IncidentTracker(
            store,
            ports.metrics,
            ports.redactor,
            config.public_url,
            config.runbook_url_template,
            describe=self._describe,
        )
        outbox = Outbox(
            store,
            ports.clock,
            ports.metrics,
            cluster=self._cluster,
            # Bound to this tracker: a late report of an outbox that was dropped opens
            # nothing in the next one.
            on_failing=partial(self._channel_failing, tracker),
            on_recovered=partial(self._channel_recovered, tracker),
        )
        engine = AlertEngine(
            store,
            alerting,
            self._silences(store, config),
            self._dependencies,
            ports.clock,
            ports.metrics,
            config.public_url,
            on_enqueued=outbox.wake,
            recovery=self._recovery,
            firing_elsewhere=ports.elsewhere.failing,
        )
        self._active = active = ActiveAlerting(store, tracker, engine, outbox)
        self._configure(active, config, alerting)
        # Load the runbook catalogue now rather than while the first alert waits for it.
        tracker.runbook_link("HealthCheckFailing")
        for fault in ports.store_health.faults():
            self._store_failing(fault)
        for incident in store.live_incidents():
            if incident.source.startswith(STORE_SOURCE) and not ports.store_health.faults():
                # Left firing by a daemon that stopped before its store recovered.
                tracker.resolve(incident.source, ports.clock.now())
            if incident.source.startswith(CHANNEL_SOURCE) and incident.status.value == "firing":
                # Still reported from before a restart: the next success resolves it.
                channel = incident.source.removeprefix(CHANNEL_SOURCE)
                outbox.restore_failing(channel, incident.started_at)
        self._spawn(self._engine_loop(active), "alerting-engine", forever=True)
        self._spawn(outbox.run(), "alerting-outbox", forever=True)
        self._spawn(self._resolve_removed_checks(active), "alerting-reconcile")
        self._spawn(self._prune_loop(store), "alerting-prune", forever=True)
        self._log.info(
            "alerting_started",
            channels=[c.name for c in alerting.channels],
            pending=store.count_pending(),
            open_incidents=store.count_firing(),
        )

    def vet(self, config: Config) -> None:
        """Every channel of the new `alerting:` section must build."""
        if config.alerting is not None:
            self._notifiers(config.alerting)
        RunbookContext.of(config)

    def _notifiers(self, alerting: AlertingConfig) -> dict[str, Notifier]:
        ports = self._ports
        deps = NotifierDeps(ports.checks.context.http, ports.clock, alerting.delivery.timeout)
        return {spec.name: CHANNEL_TYPES[spec.type].build(spec, deps) for spec in alerting.channels}

    def _configure(self, active: ActiveAlerting, config: Config, alerting: AlertingConfig) -> None:
        ports = self._ports
        notifiers = self._notifiers(alerting)
        active.outbox.configure(
            notifiers, {c.name: c for c in alerting.channels}, alerting.delivery
        )
        active.engine.reconfigure(alerting, self._silences(active.store, config), config.public_url)
        self._runbooks = RunbookContext.of(config)
        active.tracker.public_url = config.public_url
        active.tracker.runbook_template = config.runbook_url_template
        for incident in active.store.live_incidents():
            channel = incident.source.removeprefix(CHANNEL_SOURCE)
            if incident.source.startswith(CHANNEL_SOURCE) and channel not in notifiers:
                active.tracker.resolve(incident.source, ports.clock.now(), " (channel removed)")
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
        active, self._active = self._active, None
        if active is not None:
            await active.outbox.cancel()
            active.store.close()

    def _silences(self, store: AlertingStore, config: Config) -> Silences:
        return Silences(store, config.silences, config.maintenance, self._ports.clock.now())

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
        if self._active is None:
            return
        if self._active.tracker.on_transition(transition, transition.spec) is not None:
            self.wake()

    def _describe(self, spec: CheckSpec, result: CheckResult) -> AlertContent:
        """The alert content, diagnosed against every check's current state (root cause)."""
        ports = self._ports
        snapshot = Snapshot.from_runners(ports.checks.runners.values(), ports.elsewhere.views())
        # The failing check as the transition has it: in a cluster that may be another
        # instance's view, or this one's with where it fails (cluster/verdicts.py).
        snapshot.checks[spec.name] = CheckView.of(spec, Health.UNHEALTHY, result)
        return self._localized(describe_failure(spec, result, snapshot))

    def _localized(self, content: AlertContent) -> AlertContent:
        """The first step as on-call types it for this stack (URLs, compose file, project)."""
        return replace(content, description=localize(content.description, self._runbooks))

    def _dependencies(self) -> Dependencies:
        """Inhibition follows the edges diagnosis uses: depends_on and the service's container
        (indexed once per round: a lookup per firing check must not scan every check)."""
        runners = self._ports.checks.runners
        containers = containers_by_service(r.spec for r in runners.values())

        def of(check: str) -> Sequence[str]:
            runner = runners.get(check)
            if runner is None:  # sharding: its owner runs it, its edges still count here
                return self._ports.elsewhere.depends_on(check)
            return dependency_names(runner.spec, containers)

        return of

    def _store_failing(self, fault: StoreFault) -> None:
        # Called from inside a store write: open the incident once that write is done.
        self._loop.call_soon_threadsafe(self._open_store_incident, fault)

    def _open_store_incident(self, fault: StoreFault) -> None:
        if self._active is None:
            return
        labels = {
            "alertname": AlertName.STATE_STORE_FAILING.value,
            "severity": "critical",
            "service": "opsmon",
        }
        now = self._ports.clock.now()
        content = state_store_failing(str(fault.path), now, fault.error)
        if self._active.tracker.open(STORE_SOURCE + str(fault.path), content, labels, now):
            self.wake()

    def _store_recovered(self, path: Path) -> None:
        if self._active is None:
            return
        if any(f.path == path for f in self._ports.store_health.faults()):
            return
        if self._active.tracker.resolve(STORE_SOURCE + str(path), self._ports.clock.now()):
            self.wake()

    def _recovery(self, check: str) -> float:
        """How long `check` takes to report a recovery: success_threshold runs (and one more
        interval and timeout for the run in flight)."""
        runner = self._ports.checks.runners.get(check)
        if runner is None:
            return 0.0
        spec = runner.spec
        return (spec.success_threshold + 1) * spec.interval + spec.timeout

    def _refresh_incidents(self, active: ActiveAlerting) -> None:
        """Re-diagnose every firing incident that is not held back: when its check now fails
        for another reason (a container stopped by a deploy now runs a release that cannot
        start), the alert it stands for is resolved and the right one opened, so a page
        never keeps saying what is no longer true."""
        runners = self._ports.checks.runners
        now = self._ports.clock.now()
        failing: list[tuple[Incident, CheckRunner, CheckResult]] = []
        for incident in active.store.live_incidents():
            if incident.status.value != "firing" or incident.suppressed is not None:
                continue
            runner = runners.get(incident.source)
            if runner is None or runner.state.health is not Health.UNHEALTHY:
                continue
            result = runner.state.last_result
            if result is None or result.ok or result.unknown:
                continue
            failing.append((incident, runner, result))
        if not failing:
            return
        # One snapshot and one diagnosis for all of them (this runs on every engine round).
        snapshot = Snapshot.from_runners(runners.values(), self._ports.elsewhere.views())
        catalogue = default_catalogue()
        problems = diagnose(snapshot, catalogue)
        for incident, runner, result in failing:
            content = self._localized(
                describe_failure(runner.spec, result, snapshot, catalogue, problems)
            )
            # Only a failure of its own: one that another check's failure explains is that
            # check's incident (and inhibition holds this one back once it opens).
            if content.alertname != incident.alertname and content.root == incident.source:
                active.tracker.resolve(incident.source, now, f" (now: {content.alertname})")
                active.tracker.open_for(runner.spec, content, now)
                self.wake()

    def _channel_failing(
        self, tracker: IncidentTracker, channel: str, since: datetime, error: str
    ) -> None:
        labels = {
            "alertname": "AlertDeliveryFailing",
            "severity": "warning",
            "service": "opsmon",
            "channel": channel,
        }
        content = delivery_failing(channel, since, error)
        if tracker.open(CHANNEL_SOURCE + channel, content, labels, self._ports.clock.now()):
            self.wake()

    def _channel_recovered(self, tracker: IncidentTracker, channel: str) -> None:
        if tracker.resolve(CHANNEL_SOURCE + channel, self._ports.clock.now()):
            self.wake()

    # --- IncidentPort ----------------------------------------------------------------------------
    def incidents(self) -> tuple[IncidentTracker, Callable[[], None]] | None:
        """The incident tracker and the engine's wake-up, or None while alerting is off."""
        if self._active is None:
            return None
        return self._active.tracker, self.wake

    def rolling_back(self, service: str, checks: Sequence[str], since: datetime) -> None:
        """A rollback of `service` starts, decided on the failures of `checks`: page those now
        and hold back what the swap of containers sets off until `rolled_back`."""
        if self._active is None:
            return
        self._active.engine.expedite(checks)
        self._active.engine.hold(service, since)
        self.wake()

    def rolled_back(self, service: str) -> None:
        """The rollback of `service` is over (whatever its verdict)."""
        if self._active is not None:
            self._active.engine.release(service)
            self.wake()

    def silenced(self, service: str, checks: Sequence[str], now: datetime) -> str | None:
        """The comment (or id) of an active silence that matches `service` or the labels of an
        open incident of one of `checks`; None when nothing (or no alerting) silences them."""
        if self._active is None:
            return None
        return self._active.silenced(service, checks, now)

    def stored_silences(self, since: datetime) -> list[Silence]:
        """Silences stored on this instance (made here, or adopted) not ended before `since`."""
        if self._active is None:
            return []
        return self._active.store.silences(since=since)

    def adopt_silences(self, silences: Sequence[Silence]) -> None:
        """Silences made on other instances: add the new ones, end ours that ended earlier
        there (one read of the stored silences for the whole batch)."""
        if self._active is None:
            return
        store = self._active.store
        known = {s.id: s for s in store.silences()}
        now = self._ports.clock.now()
        adopted = []
        for silence in silences:
            mine = known.get(silence.id)
            if mine is None and silence.ends_at > now:
                store.add_silence(silence)
            elif mine is not None and silence.ends_at < mine.ends_at:
                store.expire_silence(silence.id, silence.ends_at)
            else:
                continue  # known as it is, or ended before this instance heard of it
            adopted.append(silence.id)
        if adopted:
            self._log.info("silences_adopted_from_cluster", silences=adopted)
            self.wake()

    def firing_acks(self) -> list[Ack]:
        """The acks of this instance's firing incidents (made here, or adopted)."""
        return [] if self._active is None else self._active.store.firing_acks()

    def unacked_sources(self) -> list[str]:
        """The sources of this instance's firing incidents nobody has acknowledged."""
        return [] if self._active is None else self._active.store.unacked_sources()

    def adopt_acks(self, acks: Sequence[Ack], slack: float) -> None:
        """Acks made on other instances: hold to each on this instance's firing incident of
        the same source (see AlertingStore.adopt_ack), so reminders stop everywhere."""
        if self._active is None:
            return
        store = self._active.store
        adopted = [ack.source for ack in acks if store.adopt_ack(ack, slack)]
        if adopted:
            self._log.info("acks_adopted_from_cluster", sources=adopted)
            self.wake()

    def take_over(self, alerts: Sequence[PagedAlert]) -> None:
        """Checks this instance took over (sharding) whose alerts the receivers were last
        told fire: hold an incident for each, as paged (no FIRING is sent again), so the
        first healthy verdict here pages the recovery. A check with an open incident here
        keeps it."""
        if self._active is None:
            return
        store, tracker = self._active.store, self._active.tracker
        now = self._ports.clock.now()
        for alert in alerts:
            if store.open_incident(alert.check) is not None:
                continue
            labels = dict(alert.labels)
            incident = Incident(
                id=uuid.uuid4().hex,
                source=alert.check,
                alertname=labels.get("alertname", ""),
                severity=labels.get("severity", ""),
                summary=alert.summary,
                description=alert.description,
                runbook_url=alert.runbook_url,
                labels=labels,
                started_at=min(alert.starts_at, now),
                notified=Status.FIRING,
            )
            store.add_incident(incident)
            self._active.engine.paged_elsewhere(incident, now)
            self._log.info("incident_taken_over", source=alert.check, paged_by=alert.paged_by)
        if alerts:
            tracker.update_gauge()
            self.wake()

    def hand_over(self, checks: Sequence[str]) -> None:
        """Checks another instance runs now (sharding): close their incidents here without
        a RESOLVED (the new owner took them over and speaks for them)."""
        if self._active is None:
            return
        store, tracker = self._active.store, self._active.tracker
        now = self._ports.clock.now()
        for check in checks:
            incident = tracker.resolve(check, now, " (handed over: another instance runs it)")
            if incident is not None:
                store.set_notified([incident.id], Status.RESOLVED)
                self._log.info("incident_handed_over", source=check, incident=incident.id)
        self.wake()

    # --- loops ---------------------------------------------------------------------------------
    async def _engine_loop(self, active: ActiveAlerting) -> None:
        clock = self._ports.clock
        while True:
            self._wake.clear()
            next_at = None
            try:
                self._refresh_incidents(active)
                next_at = active.engine.evaluate()
            except Exception:
                self._log.exception("alert_evaluation_failed")
            timeout = _ENGINE_POLL
            if next_at is not None:
                timeout = min(timeout, max(0.0, (next_at - clock.now()).total_seconds()))
            await wait_for_event(self._wake, timeout)

    async def _resolve_removed_checks(self, active: ActiveAlerting) -> None:
        """Resolve incidents of checks that are gone (once the first round has run)."""
        ports = self._ports
        await ports.checks.ready.wait()
        for incident in active.store.live_incidents():
            source = incident.source
            # Only a check's own incidents: channel:, store:, cluster: and rollback: ones are
            # about parts of opsmon (no check name holds a colon).
            if incident.status.value != "firing" or not CHECK_NAME.match(source):
                continue
            if source not in ports.checks.runners:
                active.tracker.resolve(
                    source, ports.clock.now(), " (resolved: the check is no longer configured)"
                )
                self.wake()

    async def _prune_loop(self, store: AlertingStore) -> None:
        while True:
            now = self._ports.clock.now()
            store.prune(now - _KEEP_HISTORY, now - _KEEP_INCIDENTS)
            await asyncio.sleep(_PRUNE_EVERY)

    # --- HTTP ----------------------------------------------------------------------------------
    async def _api_alerts(self, request: Request) -> Response:
        if self._active is None:
            return JSONResponse({"enabled": False})
        body = self._active.document(self._ports.clock.now())
        return JSONResponse(self._ports.redactor.value(body))
