"""What a rollback outside the daemon needs (`opsmon rollback`, `opsmon gate`): the engine,
the state, the alert sink and a coordinator, built once and released together; and the
verification of a rollback by running the service's own checks."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import datetime

from monitor.alerting.incidents import IncidentTracker
from monitor.alerting.store import AlertingStore
from monitor.checks.context import CheckContext
from monitor.clock import Clock, SystemClock
from monitor.cluster.guard_sync import GuardSharer
from monitor.cluster.leases import service_leases
from monitor.cluster.rollback_share import Adoption, GuardState
from monitor.cluster.store import ClusterStore, StoreUnavailable
from monitor.config import LoadedConfig
from monitor.core.health import Health
from monitor.core.spec import CheckSpec
from monitor.docker.access import DockerAccess
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.net.clients import HttpClients
from monitor.redaction import Redactor
from monitor.rollback.alerts import AlertSink, IncidentSink, LogSink
from monitor.rollback.coordinator import Coordinator, Verification
from monitor.rollback.docker_ops import ContainerOps
from monitor.rollback.guards import StoreGuards
from monitor.rollback.journal import Rollback
from monitor.rollback.store import RollbackStore, open_store
from monitor.rollback.tracker import DeployTracker
from monitor.runner import build_runner

# Pause between verification rounds of the service's checks.
VERIFY_PAUSE = 1.0
# stable_after when the config has no `rollback:` section (the gate still tracks deploys).
DEFAULT_STABLE_AFTER = 120.0
# How long a command waits for the cluster store to share rollback's guard state.
SHARE_TIMEOUT = 3.0


class CheckVerifier:
    """Verification by running the service's checks (with their thresholds) until they are
    all healthy or the deadline passes."""

    def __init__(self, specs: Sequence[CheckSpec], context: CheckContext) -> None:
        self._specs = specs
        self._context = context

    async def verify(self, rollback: Rollback, deadline: datetime) -> Verification:
        runners = [build_runner(spec, self._context, []) for spec in self._specs]
        if not runners:
            return Verification(False, (f"no check has service {rollback.service}",))
        clock = self._context.clock
        while True:
            await asyncio.gather(*(r.run_once() for r in runners))
            failing = [
                f"{r.spec.name}: {r.state.health.value}: "
                + (r.state.last_result.reason if r.state.last_result else "")
                for r in runners
                if r.state.health is not Health.HEALTHY
            ]
            if not failing:
                return Verification(True)
            remaining = (deadline - clock.now()).total_seconds()
            if remaining <= 0:
                return Verification(False, tuple(failing))
            await asyncio.sleep(min(VERIFY_PAUSE, remaining))


class _CommandGuards:
    """A command's rollback state as the cluster shares it (the daemon's `RollbackStatePort`)."""

    def __init__(self, guards: StoreGuards) -> None:
        self._guards = guards

    def guard_state(self, me: str, since: datetime) -> GuardState | None:
        return self._guards.guard_state(me, since)

    async def adopt_guards(self, adoption: Adoption) -> None:
        await self._guards.adopt_guards(adoption)


class RollbackSession:
    """The engine, the rollback and alerting state, and (with a `rollback:` section) a
    coordinator acting as `lease_kind`, for one command; `aclose()` releases them all."""

    def __init__(
        self, loaded: LoadedConfig, redactor: Redactor, lease_kind: str, checks_use_docker: bool
    ) -> None:
        config = loaded.config
        self.loaded = loaded
        self.config = config
        self.redactor = redactor
        self.clock: Clock = SystemClock()
        self.metrics = Metrics()
        self.access = DockerAccess.from_environment(os.environ, config.docker.host)
        self.ops = ContainerOps(self.access)
        self.context = CheckContext(self.metrics, HttpClients(), self.clock)
        if checks_use_docker:
            self.context.docker = self.access
        self.store: RollbackStore = open_store(config.state_dir)
        stable_after = config.rollback.stable_after if config.rollback else DEFAULT_STABLE_AFTER
        self.tracker = DeployTracker(self.store, self.clock, stable_after)
        self.alert_store: AlertingStore | None = None
        self.sink: AlertSink = LogSink()
        if config.alerting is not None:
            self.alert_store = AlertingStore.open(config.state_dir)
            self.sink = IncidentSink(
                IncidentTracker(
                    self.alert_store,
                    self.metrics,
                    redactor,
                    config.public_url,
                    config.runbook_url_template,
                )
            )
        # Who owns each service's rollback: with a `cluster:` section, the cluster store (the
        # leader and every gate or manual rollback on any host see one lease per service).
        self.leases = service_leases(config.cluster, self.store, self.clock)
        self._store_away = False  # the cluster store did not answer a guard-sharing round
        self.coordinator: Coordinator | None = None
        if config.rollback is not None:
            self.coordinator = Coordinator(
                config,
                self.store,
                self.ops,
                self.tracker,
                self.clock,
                self.metrics,
                redactor,
                self.sink,
                CheckVerifier([], self.context),
                leases=self.leases,
            )
            self.coordinator.lease_kind = lease_kind

    async def share_guards(self) -> None:
        """With a `cluster:` section, one round of sharing rollback's guard state through the
        cluster store (monitor/cluster/guard_sync.py): before a command, to hold to what other
        instances recorded (a freeze the leader made on another host); after it, so that what
        the command changed (a lift, a rollback, a last known good) is known to the cluster at
        once, not at this host's daemon's next round, or never if no daemon runs here. A store
        that does not answer is logged once (and not asked again by this command); the daemon
        shares the changes when it can."""
        cluster = self.config.cluster
        if cluster is None or self.config.rollback is None or self._store_away:
            return
        store = ClusterStore(cluster.store, cluster.instance, SHARE_TIMEOUT)
        guards = _CommandGuards(StoreGuards(self.store, self.ops))
        try:
            await GuardSharer(store, lambda: guards, self.redactor.text, self.clock).round()
        except StoreUnavailable as exc:
            self._store_away = True
            get_logger("rollback").warning(
                "cluster_rollback_state_not_shared",
                reason=str(exc),
                note="this host's daemon shares it when the store answers",
            )
        finally:
            await store.close()

    def specs_of(self, service: str) -> list[CheckSpec]:
        """The checks of `service` (its own, not its dependencies)."""
        return [s for s in self.config.checks if s.service == service]

    def verifier_for(self, service: str) -> CheckVerifier:
        """Verification of a rollback of `service` by its own checks."""
        return CheckVerifier(self.specs_of(service), self.context)

    async def aclose(self) -> None:
        """Release everything."""
        self.ops.close()
        await self.context.http.aclose()
        await self.access.aclose()
        await self.leases.aclose()
        self.store.close()
        if self.alert_store is not None:
            self.alert_store.close()
