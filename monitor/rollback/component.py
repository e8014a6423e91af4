"""Rollback as a daemon component: follows deploys through the engine's events, promotes stable
images to last known good, and hands every warranted rollback to the coordinator.

Without a `rollback:` section it holds no `ActiveRollback` (only `/api/rollback` answers, with
`{"enabled": false}`); the section builds one whole, its removal drops it whole. At start it
finishes any rollback a previous process left in flight (the journal says how far it got).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.alertnames import AlertName
from monitor.cluster.claims import Solo
from monitor.cluster.leases import service_leases
from monitor.core.aio import wait_for_event
from monitor.core.health import Health, Transition
from monitor.core.result import FailureKind
from monitor.diagnosis import Snapshot as Situation
from monitor.docker.access import DockerAccess
from monitor.docker.config import needs_docker
from monitor.docker.events import ContainerEvent, EventHandler, EventStream
from monitor.docker.lifecycle import PROJECT_LABEL, SERVICE_LABEL
from monitor.logs import get_logger
from monitor.rollback.alerts import AlertSink, IncidentSink, LogSink, RollbackAlert, SinkRef
from monitor.rollback.config import RollbackConfig, database_services, service_projects
from monitor.rollback.coordinator import Coordinator, Request, Verification
from monitor.rollback.docker_ops import ContainerOps, DockerCallFailed
from monitor.rollback.facts import ServiceFacts, service_facts
from monitor.rollback.guards import StoreGuards
from monitor.rollback.journal import Rollback
from monitor.rollback.lease import owners
from monitor.rollback.policy import Action
from monitor.rollback.snapshot import Snapshot, SnapshotError, short_id
from monitor.rollback.status import status_document
from monitor.rollback.store import Deploy, RollbackStore, open_store
from monitor.rollback.tracker import DeployTracker

if TYPE_CHECKING:
    from monitor.cluster.config import ClusterConfig
    from monitor.cluster.rollback_share import Adoption, GuardState, SharedLkg
    from monitor.config import Config
    from monitor.ports import ClusterPort, ComponentPorts, IncidentPort
    from monitor.runner import CheckRunner

# How often services are looked at (at most; transitions and events wake the loop at once).
MAX_TICK = 1.0
MIN_TICK = 0.1
# After a skip, look again after this many ticks (the reason may go away).
RETRY_SKIPPED_TICKS = 10
# Result kinds that say nothing about the deployed image: a stop someone asked for.
NOT_A_DEPLOY_PROBLEM = frozenset({FailureKind.STOPPED})


# The `result` label values of opsmon_rollbacks_total.
ROLLBACK_RESULTS = ("succeeded", "failed", "skipped", "dry_run")


class DaemonVerifier:
    """Verification by the daemon's own check runners: every check of the service healthy,
    each with a run after the rollback started."""

    def __init__(self, component: RollbackComponent) -> None:
        self._component = component

    async def verify(self, rollback: Rollback, deadline: datetime) -> Verification:
        component = self._component
        clock = component.ports.clock
        since = rollback.updated_at
        evidence: tuple[str, ...] = ()
        while True:
            healthy, evidence = component.service_health(rollback.service, since)
            if healthy:
                return Verification(True, ())
            remaining = (deadline - clock.now()).total_seconds()
            if remaining <= 0:
                return Verification(False, evidence)
            await component.wait_for_change(min(remaining, component.tick))


@dataclass
class ActiveRollback:
    """Rollback while the config has a `rollback:` section: its settings, store, engine
    access, container operations, coordinator and event stream, built together from the
    section and released together (no part is ever missing while the others run). Only
    `config` changes in place, on a reload that keeps the section."""

    config: RollbackConfig
    store: RollbackStore
    access: DockerAccess
    own_access: bool  # opened here (no container check shares the daemon's): closed here
    ops: ContainerOps
    coordinator: Coordinator
    stream: EventStream
    # The `cluster:` section the coordinator's service leases were built for (None: SQLite).
    cluster: ClusterConfig | None = None


class RollbackComponent:
    """Deploy tracking, LKG promotion and automatic rollback in the daemon."""

    def __init__(
        self, ports: ComponentPorts, alerting: IncidentPort, cluster: ClusterPort | None = None
    ) -> None:
        self.ports = ports
        self._alerting = alerting
        self._cluster: ClusterPort = cluster or Solo()
        self._active: ActiveRollback | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._busy: set[str] = set()  # services with a rollback decision being handled
        self._decided: dict[str, int] = {}  # service -> deploy id a rollback or dry run was for
        self._skipped: dict[str, tuple[int, float]] = {}  # service -> (deploy id, retry at)
        self._change = asyncio.Event()
        self._lkg_series: dict[str, str] = {}
        # Shared last known goods without settings on this engine (service, image, promoted).
        self._lkg_unseen: set[tuple[str, str, datetime]] = set()
        self._log = get_logger("rollback")

    @property
    def config(self) -> RollbackConfig | None:
        """The `rollback:` section in force, None while rollback is off."""
        return self._active.config if self._active is not None else None

    @property
    def coordinator(self) -> Coordinator | None:
        """The coordinator of rollbacks, None while rollback is off."""
        return self._active.coordinator if self._active is not None else None

    @property
    def tick(self) -> float:
        """How often the services are looked at."""
        stable = self.config.stable_after if self.config is not None else MAX_TICK
        return max(MIN_TICK, min(MAX_TICK, stable / 4))

    @property
    def services(self) -> list[str]:
        """The services that opted in."""
        return sorted(self.config.services) if self.config is not None else []

    # --- Component --------------------------------------------------------------------------
    async def start(self) -> None:
        self.ports.checks.subscribe(self._on_transition)
        if self.ports.config.rollback is not None:
            await self._activate(self.ports.config, self.ports.config.rollback)

    async def stop(self) -> None:
        await self._deactivate()

    def vet(self, config: Config) -> None:
        """The services and databases must resolve, and an engine access of rollback's own
        (no container check shares the daemon's) must be possible to set up."""
        if config.rollback is None:
            return
        database_services(config)
        service_projects(config)
        if self._active is None and not needs_docker(config):
            DockerAccess.settings_from_environment(os.environ, config.docker.host)

    async def reload(self, config: Config) -> None:
        if config.rollback is None:
            await self._deactivate()
            return
        active = self._active
        if active is None:
            await self._activate(config, config.rollback)
            return
        for service in set(active.config.services) - set(config.rollback.services):
            active.coordinator.tracker.forget(service)
        active.config = config.rollback
        active.coordinator.reconfigure(config)
        if config.cluster != active.cluster:
            # The service leases move with the section (into or out of the cluster store).
            old = active.coordinator.leases
            active.coordinator.leases = service_leases(
                config.cluster, active.store, self.ports.clock
            )
            active.cluster = config.cluster
            await old.aclose()
        self._zero_result_series(config.rollback.services)
        for service in list(self._lkg_series):
            if service not in config.rollback.services:
                self._forget_lkg_series(service)
        self._spawn(self._resync(), "rollback-resync")
        self.wake()

    def routes(self) -> Sequence[BaseRoute]:
        return [Route("/api/rollback", self._api_status)]

    # --- life cycle -------------------------------------------------------------------------
    def _zero_result_series(self, services: Iterable[str]) -> None:
        """Start each opted-in service's result counters at 0, so rate() and increase() see
        the first rollback instead of a series that appears with it."""
        for service in services:
            for result in ROLLBACK_RESULTS:
                self.ports.metrics.rollbacks.labels(service, result)

    async def _activate(self, config: Config, rollback: RollbackConfig) -> None:
        ports = self.ports
        store = open_store(config.state_dir, ports.store_health)
        shared = ports.checks.context.docker
        access = (
            shared
            if shared is not None
            else DockerAccess.from_environment(os.environ, config.docker.host)
        )
        ops = ContainerOps(access)
        tracker = DeployTracker(store, ports.clock, rollback.stable_after, self._new_deploy)
        coordinator = Coordinator(
            config,
            store,
            ops,
            tracker,
            ports.clock,
            ports.metrics,
            ports.redactor,
            SinkRef(self._sink),
            DaemonVerifier(self),
            leases=service_leases(config.cluster, store, ports.clock),
        )
        handler = EventHandler(self._on_event, self._on_connected, self._on_disconnected)
        stream = EventStream(access, handler, {"type": ["container"], "label": [SERVICE_LABEL]})
        self._active = ActiveRollback(
            rollback, store, access, shared is None, ops, coordinator, stream, config.cluster
        )
        self._zero_result_series(rollback.services)
        for service, lkg in store.all_lkg().items():
            if service in rollback.services:
                self._set_lkg_series(service, lkg.image_id)
        stream.start()
        self._spawn(self._resume_orphans(), "rollback-resume")
        self._spawn(self._loop(self._active), "rollback-loop", forever=True)
        self._log.info(
            "rollback_started_watching",
            mode=rollback.mode.value,
            services=self.services,
            host=access.host,
        )

    async def _deactivate(self) -> None:
        tasks = [*self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._busy.clear()
        # Off at once and as a whole: /api/rollback says so only once the LKG series are
        # gone, and no event handled while the parts close reaches a half-closed one.
        active, self._active = self._active, None
        for service in list(self._lkg_series):
            self._forget_lkg_series(service)
        if active is not None:
            await active.stream.stop()
            active.ops.close()
            await active.coordinator.leases.aclose()
            if active.own_access:
                await active.access.aclose()
            active.store.close()

    def _spawn(
        self, coroutine: Coroutine[object, object, object], name: str, forever: bool = False
    ) -> asyncio.Task[object]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.ports.tasks.watch(task, forever)
        return task

    def _sink(self) -> AlertSink:
        incidents = self._alerting.incidents()
        if incidents is not None:
            return IncidentSink(*incidents)
        return LogSink()

    # --- waking -----------------------------------------------------------------------------
    def wake(self) -> None:
        """Look at the services now."""
        self._change.set()

    async def wait_for_change(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until a transition or an event (or `timeout` seconds)."""
        await wait_for_event(self._change, timeout)
        self._change.clear()

    async def _on_transition(self, transition: Transition) -> None:
        if transition.spec.service in (self.config.services if self.config else {}):
            self.wake()

    # --- events -----------------------------------------------------------------------------
    def _service_of(self, attributes: dict[str, str] | Any) -> str | None:
        if self.config is None:
            return None
        service = attributes.get(SERVICE_LABEL)
        if service not in self.config.services or self.coordinator is None:
            return None
        project = self.coordinator.project(service)
        if project and attributes.get(PROJECT_LABEL) != project:
            return None
        return str(service)

    def _on_event(self, event: ContainerEvent) -> None:
        service = self._service_of(event.attributes)
        if service is None or self.coordinator is None:
            return
        tracker = self.coordinator.tracker
        if event.action in ("die", "oom", "restart", "kill"):
            tracker.disturbed(service, event.id, event.action, self.ports.clock.now())
        if event.action == "start" and service not in self._busy:
            self._spawn(self._see(service, event.id), f"rollback-see-{service}")
        self.wake()

    def _on_connected(self) -> None:
        self._spawn(self._resync(), "rollback-resync")

    def _on_disconnected(self, reason: str) -> None:
        self._log.warning("rollback_events_lost", reason=reason)

    async def _see(self, service: str, container_id: str) -> None:
        """A container of `service` started: a new deploy unless it is one we know."""
        active = self._active
        if active is None or service in self._busy:
            return
        coordinator, ops = active.coordinator, active.ops
        if coordinator.in_flight(service) is not None:
            return
        try:
            data = await ops.inspect(container_id)
        except DockerCallFailed as exc:
            self._log.warning("rollback_inspect_failed", service=service, reason=exc.reason)
            return
        if data is None or not (data.get("State") or {}).get("Running"):
            return
        coordinator.see(service, data)  # a new container is announced by `_new_deploy`

    def _new_deploy(self, deploy: Deploy) -> None:
        """The deploy tracker recorded a container for the first time."""
        coordinator = self.coordinator
        if coordinator is None or deploy.origin != "deploy":
            return
        service, image, image_id = deploy.service, deploy.image, deploy.image_id
        now = self.ports.clock.now()
        note = f" (superseded by a deploy of {image})"
        for name in (
            AlertName.ROLLBACK_PERFORMED,
            AlertName.ROLLBACK_SKIPPED,
            AlertName.BAD_IMAGE_REDEPLOYED,
        ):
            coordinator.alerts.resolve(service, name, now, note)
        bad = coordinator.store.bad_image(service, image_id)
        if bad is not None:
            coordinator.alerts.fire(
                RollbackAlert(
                    AlertName.BAD_IMAGE_REDEPLOYED,
                    service,
                    f"{service} runs {image} again, an image it was rolled back from.",
                    f"The image {image} ({short_id(image_id)}) was rolled back from at "
                    f"{bad.marked_at:%Y-%m-%d %H:%M:%S} UTC because: {bad.reason}. It will not "
                    "become the last known good.",
                ),
                now,
            )

    async def _resync(self) -> None:
        """Read every service's current container from the engine (start, reconnect)."""
        coordinator = self.coordinator
        if coordinator is None:
            return
        for service in self.services:
            await self._reconcile(service)
        self.wake()

    async def _reconcile(self, service: str) -> None:
        """Read `service`'s current container from the engine and take a deploy the events
        did not show (a start while the service was busy, or while disconnected). Not while a
        rollback of it is in flight (this process's or a deploy gate's): that rollback adopts
        its replacement itself, as a rollback rather than a deploy."""
        coordinator = self.coordinator
        if coordinator is None or service in self._busy or coordinator.in_flight(service):
            return
        try:
            await coordinator.current(service)  # a new container is announced by `_new_deploy`
        except DockerCallFailed as exc:
            self._log.warning("rollback_resync_failed", service=service, reason=exc.reason)

    async def _resume_orphans(self) -> None:
        coordinator = self.coordinator
        if coordinator is None:
            return
        for rollback in coordinator.orphans():
            self._busy.add(rollback.service)
            try:
                await coordinator.resume(rollback)
            except Exception:
                self._log.exception("rollback_resume_failed", rollback=rollback.id)
            finally:
                self._busy.discard(rollback.service)
        await self._resync()

    # --- the loop ---------------------------------------------------------------------------
    async def _loop(self, active: ActiveRollback) -> None:
        # The first round of checks must have run before health means anything.
        await self.ports.checks.ready.wait()
        await self._resync()
        while True:
            for service in sorted(active.config.services):
                try:
                    await self._look_at(active, service)
                except Exception:
                    self._log.exception("rollback_evaluation_failed", service=service)
            await self.wait_for_change(self.tick)

    def runners_of(self, service: str) -> list[CheckRunner]:
        """The checks of `service` (by their `service` field)."""
        return [r for r in self.ports.checks.runners.values() if r.spec.service == service]

    def service_health(self, service: str, since: datetime) -> tuple[bool, tuple[str, ...]]:
        """Whether every check of `service` is healthy, with a successful run after `since`;
        else why not."""
        runners = self.runners_of(service)
        if not runners:
            return False, (f"no check has service {service}",)
        problems = []
        for runner in runners:
            state = runner.state
            last = state.last_result
            fresh = state.last_run_at is not None and state.last_run_at >= since
            if state.health is not Health.HEALTHY or not fresh or last is None or not last.ok:
                why = last.reason if last is not None and not last.ok else "no run since"
                problems.append(f"{runner.spec.name}: {state.health.value}: {why}")
        return not problems, tuple(problems)

    async def _look_at(self, active: ActiveRollback, service: str) -> None:
        coordinator, config = active.coordinator, active.config
        if service in self._busy:
            return
        if not self._cluster.may_act():
            return  # another instance leads (or the cluster store is away): fail closed
        deploy = coordinator.tracker.current(service)
        if deploy is None:
            return
        now = self.ports.clock.now()
        healthy, _ = self.service_health(service, deploy.started_at)
        due = coordinator.tracker.observe(service, healthy, now)
        if due is not None:
            await self._promote(active, service, due.container_id, now)
            self._cluster.guards_changed()
        if healthy:
            if service in self._skipped:
                self._skipped.pop(service)
                coordinator.alerts.resolve(
                    service, AlertName.ROLLBACK_SKIPPED, now, f" ({service} is healthy again)"
                )
            return
        if self._decided.get(service) == deploy.id:
            return
        skipped = self._skipped.get(service)
        if (
            skipped is not None
            and skipped[0] == deploy.id
            and self.ports.clock.monotonic() < skipped[1]
        ):
            return
        facts = self._service_facts(active, service, deploy, now)
        if facts is None:
            return
        health = facts.health
        deadline = deploy.started_at + timedelta(seconds=config.window)
        never = not deploy.ever_healthy and now >= deadline
        if not (health.unhealthy or health.crash_looping or never):
            return
        if now > deadline + timedelta(seconds=60):
            return  # outside the window: ordinary alerts only
        request = Request(
            service,
            health,
            facts.blockers,
            self._silenced(service, health.unhealthy, now),
            deploy_id=deploy.id,
            on_rollback=lambda: self._rolling_back(service, deploy, health.unhealthy),
        )
        self._busy.add(service)
        self._spawn(self._handle(active, request, deploy.id), f"rollback-{service}")

    async def _rolling_back(self, service: str, deploy: Deploy, unhealthy: Sequence[str]) -> None:
        """A rollback of `service` is decided. Its checks failing about the deploy right now
        are the rollback's evidence: they turn unhealthy at once (a crash loop is seen from
        engine events, often before the checks' thresholds, and the swap would otherwise end
        the outage before anyone is told that, say, the release needs a new variable), and
        alerting pages them now and holds back what the swap sets off."""
        confirmed = [
            runner.spec.name
            for runner in self.runners_of(service)
            if self._fresh(runner, deploy) and await runner.confirm_failure()
        ]
        self._alerting.rolling_back(service, (*unhealthy, *confirmed), self.ports.clock.now())

    async def _handle(self, active: ActiveRollback, request: Request, deploy_id: int) -> None:
        try:
            await self._decide(active.coordinator, request, deploy_id)
        finally:
            self._busy.discard(request.service)
        # A deploy started while the decision was handled had its event ignored: look now.
        await self._reconcile(request.service)

    async def _decide(self, coordinator: Coordinator, request: Request, deploy_id: int) -> None:
        if not await self._cluster.fence(f"rollback decision for {request.service}"):
            # A leader that lost its lease (paused, cut off) decides nothing.
            self._alerting.rolled_back(request.service)
            return
        try:
            outcome = await coordinator.handle(request)
        except DockerCallFailed as exc:
            self._alerting.rolled_back(request.service)
            self._log.warning(
                "rollback_evaluation_failed", service=request.service, reason=exc.reason
            )
            self._skipped[request.service] = (
                deploy_id,
                self.ports.clock.monotonic() + RETRY_SKIPPED_TICKS * self.tick,
            )
            return
        action = outcome.decision.action
        self._alerting.rolled_back(request.service)
        if outcome.rollback is not None and outcome.rollback.status.executed:
            # A rollback done marks an image bad, and a failed one freezes the service: the
            # next leader must know at once, not a round later (this one may die meanwhile).
            self._cluster.guards_changed()
        if action in (Action.ROLLBACK, Action.DRY_RUN):
            self._decided[request.service] = deploy_id
            self._skipped.pop(request.service, None)
        elif action is Action.SKIP or outcome.decision.trigger is not None:
            # Skipped, or not attempted (a rollback cannot help): look again later.
            self._skipped[request.service] = (
                deploy_id,
                self.ports.clock.monotonic() + RETRY_SKIPPED_TICKS * self.tick,
            )
        rollback = outcome.rollback
        if rollback is not None and rollback.status.executed:
            lkg = coordinator.store.lkg(request.service)
            if lkg is not None:
                self._set_lkg_series(request.service, lkg.image_id)

    @staticmethod
    def _fresh(runner: CheckRunner, deploy: Deploy) -> bool:
        """Whether the check's last result is about the deploy's container: run after it
        started, on its image, and not a stop someone asked for."""
        state = runner.state
        result = state.last_result
        if result is None or state.last_run_at is None or state.last_run_at < deploy.started_at:
            return False
        if result.kind in NOT_A_DEPLOY_PROBLEM:
            return False
        image = result.facts.get("IMAGE_ID")
        return not (isinstance(image, str) and image and image != deploy.image_id)

    def _service_facts(
        self, active: ActiveRollback, service: str, deploy: Deploy, now: datetime
    ) -> ServiceFacts | None:
        """The service's health and rollback blockers (monitor/rollback/facts.py); None until
        every check of it has a result about the deploy's container (so the old container's
        last moments are not held against it)."""
        runners = list(self.ports.checks.runners.values())
        own = [r for r in runners if r.spec.service == service]
        if not all(self._fresh(runner, deploy) for runner in own):
            return None
        crash = active.coordinator.tracker.crash_looping(service, active.config.window, now)
        # Checks other instances run (sharding) count as what the service stands on (a
        # database down elsewhere blocks the rollback), never as the service's own health:
        # nothing says their owner judged them after this deploy.
        others = [v for v in self.ports.elsewhere.views() if v.service != service]
        situation = Situation.from_runners(runners, others)
        return service_facts(service, situation, crash_looping=crash)

    def _silenced(self, service: str, checks: Sequence[str], now: datetime) -> str | None:
        return self._alerting.silenced(service, checks, now)

    async def _promote(
        self, active: ActiveRollback, service: str, container_id: str, now: datetime
    ) -> None:
        coordinator, ops = active.coordinator, active.ops
        deploy = coordinator.tracker.current(service)
        if deploy is None or deploy.container_id != container_id:
            return
        try:
            data = await ops.inspect(container_id)
        except DockerCallFailed as exc:
            self._log.warning("rollback_inspect_failed", service=service, reason=exc.reason)
            return
        if data is None or not (data.get("State") or {}).get("Running"):
            return
        try:
            snapshot = Snapshot.from_inspect(data)
        except SnapshotError as exc:
            self._log.warning("rollback_snapshot_failed", service=service, reason=str(exc))
            return
        coordinator.tracker.promote(deploy, snapshot, now)
        if coordinator.store.bad_image(service, deploy.image_id) is None:
            self._set_lkg_series(service, deploy.image_id)

    # --- metrics ----------------------------------------------------------------------------
    def _set_lkg_series(self, service: str, image_id: str) -> None:
        image = short_id(image_id)
        previous = self._lkg_series.get(service)
        if previous == image:
            return
        if previous is not None:
            self._forget_lkg_series(service)
        self.ports.metrics.service_lkg_info.labels(service, image).set(1)
        self._lkg_series[service] = image

    def _forget_lkg_series(self, service: str) -> None:
        image = self._lkg_series.pop(service, None)
        if image is not None:
            with contextlib.suppress(KeyError):
                self.ports.metrics.service_lkg_info.remove(service, image)

    # --- the cluster's guard state (monitor/cluster/guard_sync.py) ---------------------------
    def guard_state(self, me: str, since: datetime) -> GuardState | None:
        """This instance's guard state; None while rollback is off."""
        active = self._active
        return StoreGuards(active.store, active.ops).guard_state(me, since) if active else None

    async def adopt_guards(self, adoption: Adoption) -> None:
        """Take over the freezes, lifts, bad images, last known goods and rollbacks other
        instances recorded, so that this instance holds to them if it leads."""
        active = self._active
        if active is None:
            return
        # A last known good whose settings this engine did not have is not looked for again
        # (two engine calls a round) until it is promoted anew.
        lkgs = tuple(lkg for lkg in adoption.lkgs if _unseen_key(lkg) not in self._lkg_unseen)
        adoption = replace(adoption, lkgs=lkgs)
        if adoption.empty():
            return
        done = await StoreGuards(active.store, active.ops).adopt_guards(adoption)
        now = self.ports.clock.now()
        for service in done.unfrozen:
            active.coordinator.alerts.resolve(
                service, AlertName.ROLLBACK_FAILED, now, " (unfrozen on another instance)"
            )
        for service, image_id in done.lkgs.items():
            if service in active.config.services:
                self._set_lkg_series(service, image_id)
        for lkg in done.lkg_missing:
            self._lkg_unseen.add(_unseen_key(lkg))
            self._log.warning(
                "rollback_lkg_not_adopted",
                service=lkg.service,
                image=lkg.image,
                image_id=short_id(lkg.image_id),
                instance=lkg.instance,
                reason="no container of that image on this engine to take its settings from",
            )
        if done.frozen or done.unfrozen or done.lkgs or done.bad_images or done.rollbacks:
            self._log.info(
                "rollback_guards_adopted",
                frozen=done.frozen,
                unfrozen=done.unfrozen,
                lkgs={s: short_id(i) for s, i in done.lkgs.items()},
                bad_images=done.bad_images,
                rollbacks=done.rollbacks,
            )
            self.wake()

    # --- HTTP -------------------------------------------------------------------------------
    async def _api_status(self, request: HttpRequest) -> Response:
        if self.coordinator is None or self.config is None:
            return JSONResponse({"enabled": False})
        coordinator = self.coordinator
        owned = await owners(coordinator.leases, self.services)
        document = status_document(coordinator, self.services, self.ports.clock.now(), owned)
        return JSONResponse(self.ports.redactor.value(document))


def _unseen_key(lkg: SharedLkg) -> tuple[str, str, datetime]:
    """A shared last known good's promotion: service, image, when."""
    return (lkg.service, lkg.image_id, lkg.promoted_at)
