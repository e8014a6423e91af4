"""The cluster as a daemon component: holds one `ClusterMember` (monitor/cluster/member.py)
built whole from the `cluster:` section, and answers the cluster port that alerting's outbox
and rollback ask before they act. Without the section this instance runs alone: it sends
everything and may act.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from monitor.alerting.model import Notification
from monitor.cluster.claims import Claim
from monitor.cluster.member import ClusterMember
from monitor.logs import get_logger

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from monitor.alerting.store import AlertingStore
    from monitor.config import Config
    from monitor.core.health import Health, Transition
    from monitor.ports import ComponentPorts, IncidentPort, RollbackStatePort
    from monitor.runner import TransitionListener
    from monitor.status.store import HistoryStore


class ClusterComponent:
    """This instance's membership in a cluster, or none (it runs alone)."""

    def __init__(self, ports: ComponentPorts) -> None:
        self._ports = ports
        self._incidents: IncidentPort | None = None
        self._history: HistoryStore | None = None
        self._shown: AlertingStore | None = None
        self._rollback: RollbackStatePort | None = None
        self._listeners: list[TransitionListener] = []
        self.member: ClusterMember | None = None

    def attach(self, incidents: IncidentPort, history: HistoryStore, shown: AlertingStore) -> None:
        """Where ClusterDegraded is opened, and the check history and incidents the status
        page shows (alerting and status are built after this component)."""
        self._incidents = incidents
        self._history = history
        self._shown = shown

    def attach_rollback(self, rollback: RollbackStatePort) -> None:
        """Whose guard state is shared (rollback is built after this component)."""
        self._rollback = rollback

    # --- Component ------------------------------------------------------------------------
    async def start(self) -> None:
        self._ports.checks.subscribe(self._on_local)
        self._join(self._ports.config)

    async def stop(self) -> None:
        await self._leave(leave=True, restore_checks=False)

    async def reload(self, config: Config) -> None:
        current = self.member.config if self.member is not None else None
        if config.cluster == current:
            if self.member is not None:
                self.member.reload_checks(config.checks)
            return
        # A member rebuilt for a changed section goes on from what alerting has heard.
        emitted = self.member.verdicts.emitted() if self.member is not None else None
        sharded = config.cluster is not None and config.cluster.sharding
        await self._leave(leave=config.cluster is None, restore_checks=not sharded)
        self._join(config, emitted)

    def vet(self, config: Config) -> None:
        """Nothing to ask beyond validation: a store that does not answer is a run-time fault
        this component reports (fail open), not a reason to refuse the config."""

    def routes(self) -> Sequence[BaseRoute]:
        return []

    def _join(self, config: Config, emitted: Mapping[str, Health] | None = None) -> None:
        if config.cluster is not None:
            self.member = ClusterMember(
                config.cluster,
                self._ports,
                lambda: self._incidents,
                self._emit,
                emitted,
                config.checks,
                history=lambda: self._history,
                shown_incidents=lambda: self._shown,
                rollback=lambda: self._rollback,
            )
            self.member.start()

    async def _leave(self, leave: bool, restore_checks: bool) -> None:
        member, self.member = self.member, None
        if member is not None:
            await member.stop(leave, restore_checks)

    # --- the cluster's view of the checks -------------------------------------------------
    def subscribe(self, listener: TransitionListener) -> None:
        """Call `listener` with every change of a check's health as the cluster judges it
        (cluster/verdicts.py); alone, every local transition as it is."""
        self._listeners.append(listener)

    async def _on_local(self, transition: Transition) -> None:
        if self.member is None:
            await self._emit(transition)
            return
        try:
            await self.member.verdicts.local(transition)
        except Exception:
            # A bug in judging must not swallow the transition: alerting gets this
            # instance's own view (fail open), and the failure is counted and logged.
            self._ports.metrics.internal_task_failures.inc()
            get_logger("cluster").exception("cluster_verdict_failed", check=transition.check)
            await self._emit(transition)

    async def _emit(self, transition: Transition) -> None:
        for listener in self._listeners:
            await listener(transition)

    # --- the cluster port -----------------------------------------------------------------
    async def claim(self, notification: Notification) -> Claim:
        """Whether this instance sends its copy of `notification` (claims.py has the rules)."""
        return await self.member.claim(notification) if self.member else Claim.SEND

    async def delivered(self, notification: Notification) -> None:
        """Record in the notification log that the receiver accepted a claimed copy."""
        if self.member is not None:
            await self.member.delivered(notification)

    def follower(self) -> bool:
        """Whether another instance speaks for the cluster (this one holds its copies)."""
        return self.member is not None and self.member.follower()

    def may_act(self) -> bool:
        """Whether this instance may roll back: alone, or the leader with the store answering."""
        return self.member is None or self.member.may_act()

    async def fence(self, action: str) -> bool:
        """Record `action` under this leader's epoch; False if the store refuses (stale)."""
        return await self.member.fence(action) if self.member else True

    def guards_changed(self) -> None:
        """Rollback recorded guard state: share it now (alone: nothing to share)."""
        if self.member is not None:
            self.member.guards_due.set()
