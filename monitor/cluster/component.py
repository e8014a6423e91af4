"""The cluster as a daemon component: keeps (or follows) the leader lease and answers the
cluster port that alerting's outbox and rollback ask before they act.

Leadership by Patroni's rule: the lease is renewed every `lease / 3`; this instance acts as
leader only until `act_within` seconds after the *start* of its last successful renewal, which
is earlier than the store can consider the lease expired. Every send and every rollback is
also fenced by the store (monitor/cluster/store.py), so a leader that was paused acts on
nothing. Store unreachable: notifications fail open (each instance sends its own copy),
rollback fails closed; both show in /healthz, the metrics, the log and ClusterDegraded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor import __version__
from monitor.alerting.model import Notification
from monitor.alerting.naming import AlertContent
from monitor.alertnames import AlertName
from monitor.cluster.claims import Claim, content_key, is_reminder, settle
from monitor.cluster.config import ClusterConfig
from monitor.cluster.store import ClusterStore, LeaseRow, NameTaken, StoreUnavailable
from monitor.logs import get_logger

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from monitor.config import Config
    from monitor.ports import ComponentPorts, IncidentPort

CLUSTER_SOURCE = "cluster:store"
PROBLEM_KEY = "cluster"
SILENCE_ENDS_SHARED_FOR = timedelta(days=1)
NAME_PROBLEM_KEY = "cluster-name"


class ClusterComponent:
    """Leader lease, membership and fenced claims; a solo instance without `cluster:`."""

    def __init__(self, ports: ComponentPorts) -> None:
        self._ports = ports
        self._incidents: IncidentPort | None = None
        self.config: ClusterConfig | None = None
        self._lease_store: ClusterStore | None = None
        self._claims: ClusterStore | None = None
        self._task: asyncio.Task[object] | None = None
        self._sync: asyncio.Task[object] | None = None
        self._lead_until = 0.0
        self._leading = False
        self._epoch = 0
        self._leader: str | None = None
        self._down_since: datetime | None = None
        self._down_mono = 0.0
        self._down_reason = ""
        self._paged = False
        self._log = get_logger("cluster")

    def attach(self, incidents: IncidentPort) -> None:
        """Where ClusterDegraded is opened (alerting is built after this component)."""
        self._incidents = incidents

    # --- Component ------------------------------------------------------------------------
    async def start(self) -> None:
        if self._ports.config.cluster is not None:
            self._activate(self._ports.config.cluster)

    async def stop(self) -> None:
        await self._deactivate(leave=True)

    async def reload(self, config: Config) -> None:
        if config.cluster == self.config:
            return
        await self._deactivate(leave=config.cluster is None)
        if config.cluster is not None:
            self._activate(config.cluster)

    def routes(self) -> Sequence[BaseRoute]:
        return []

    def _activate(self, config: ClusterConfig) -> None:
        self.config = config
        timeout = config.renew_every
        self._lease_store = ClusterStore(config.store, config.instance, timeout)
        self._claims = ClusterStore(config.store, config.instance, timeout)
        self._task = asyncio.create_task(self._keep_lease(), name="cluster-lease")
        self._ports.tasks.watch(self._task, True)
        self._sync = asyncio.create_task(self._share_silences(), name="cluster-silences")
        self._ports.tasks.watch(self._sync, True)
        self._log.info(
            "cluster_joining",
            instance=config.instance,
            store=self._lease_store.target,
            lease_s=config.lease,
        )

    async def _deactivate(self, leave: bool) -> None:
        tasks = [t for t in (self._task, self._sync) if t is not None]
        self._task = self._sync = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        lease_store = self._lease_store
        if lease_store is not None and leave:
            try:
                if self.leads():
                    await lease_store.release(self._epoch)
                else:
                    await lease_store.leave()
            except StoreUnavailable as exc:
                self._log.warning("cluster_leave_failed", reason=str(exc))
        for store in (self._lease_store, self._claims):
            if store is not None:
                await store.close()
        self._lease_store = self._claims = None
        self._set_leading(False, "stopped")
        if self.config is not None:
            metrics = self._ports.metrics
            for gauge in (
                metrics.cluster_leader,
                metrics.cluster_members,
                metrics.cluster_epoch,
                metrics.cluster_store_up,
            ):
                with contextlib.suppress(KeyError):
                    gauge.remove(self.config.instance)
        self.config = None

    # --- the lease ------------------------------------------------------------------------
    async def _keep_lease(self) -> None:
        assert self.config is not None and self._lease_store is not None
        config, store, clock = self.config, self._lease_store, self._ports.clock
        while True:
            started = clock.monotonic()
            try:
                row = await store.renew(config.lease, __version__)
                members = await store.live_members(2 * config.lease)
            except StoreUnavailable as exc:
                self._store_failed(str(exc))
            except NameTaken as exc:
                self._name_taken(str(exc))
            else:
                self._ports.problems.clear(NAME_PROBLEM_KEY)
                self._store_answered()
                self._observe(row, started, members)
            self._check_degraded()
            wait = started + config.renew_every - clock.monotonic()
            await asyncio.sleep(max(0.0, wait))

    async def _share_silences(self) -> None:
        """Every renewal period: put this instance's silences in the store and hold to the
        ones made elsewhere, so a silence made through any instance holds for the leader."""
        assert self.config is not None and self._claims is not None
        config, store, clock = self.config, self._claims, self._ports.clock
        while True:
            incidents = self._incidents
            if incidents is not None and self._down_since is None:
                # Silences ended lately are shared too: an early end must reach every peer.
                since = clock.now() - SILENCE_ENDS_SHARED_FOR
                try:
                    await store.share_silences(incidents.stored_silences(since))
                    for silence in await store.shared_silences(since):
                        incidents.adopt_silence(silence)
                except StoreUnavailable as exc:
                    self._log.warning("cluster_silences_not_shared", reason=str(exc))
            await asyncio.sleep(config.renew_every)

    def _observe(self, row: LeaseRow, started: float, members: int) -> None:
        assert self.config is not None
        metrics = self._ports.metrics
        metrics.cluster_members.labels(self.config.instance).set(members)
        if row.holder == self.config.instance:
            self._lead_until = started + self.config.act_within
            if row.epoch != self._epoch or self._leader != row.holder:
                self._epoch = row.epoch
                self._leader = row.holder
                self._log.info("cluster_leader_elected", leader=row.holder, epoch=row.epoch)
            self._set_leading(True, "renewed")
        else:
            self._lead_until = 0.0
            if self._leader != row.holder or self._epoch != row.epoch:
                self._log.info("cluster_following", leader=row.holder or None, epoch=row.epoch)
            self._leader = row.holder or None
            self._epoch = row.epoch
            self._set_leading(False, f"{row.holder} holds the lease")
        metrics.cluster_epoch.labels(self.config.instance).set(self._epoch)

    def _set_leading(self, leading: bool, why: str) -> None:
        was, self._leading = self._leading, leading
        if self.config is not None:
            self._ports.metrics.cluster_leader.labels(self.config.instance).set(int(leading))
        if was and not leading:
            self._log.warning("cluster_leadership_lost", epoch=self._epoch, why=why)

    def _name_taken(self, reason: str) -> None:
        # The store answers, but this process must not lead: it would share the lease.
        self._store_answered()
        self._lead_until = 0.0
        self._set_leading(False, "instance name taken")
        if NAME_PROBLEM_KEY not in self._ports.problems:
            self._log.error("cluster_instance_name_taken", reason=reason)
        self._ports.problems.report(NAME_PROBLEM_KEY, reason)

    def leads(self) -> bool:
        """Whether this instance may act as the leader right now (lease renewed in time)."""
        return self.config is not None and self._ports.clock.monotonic() < self._lead_until

    # --- store health ---------------------------------------------------------------------
    def _store_failed(self, reason: str) -> None:
        clock = self._ports.clock
        if self._down_since is None:
            self._down_since = clock.now()
            self._down_mono = clock.monotonic()
            self._log.error("cluster_store_unreachable", reason=reason)
        self._down_reason = reason
        if self.config is not None:
            self._ports.metrics.cluster_store_up.labels(self.config.instance).set(0)
        if not self.leads():
            self._set_leading(False, "the cluster store does not answer")

    def _store_answered(self) -> None:
        if self.config is not None:
            self._ports.metrics.cluster_store_up.labels(self.config.instance).set(1)
        if self._down_since is None:
            return
        self._log.info("cluster_store_reachable", down_since=self._down_since.isoformat())
        self._down_since = None
        self._ports.problems.clear(PROBLEM_KEY)
        if self._paged:
            self._paged = False
            incidents = self._incidents.incidents() if self._incidents else None
            if incidents is not None:
                tracker, wake = incidents
                if tracker.resolve(CLUSTER_SOURCE, self._ports.clock.now()):
                    wake()

    def store_down(self) -> bool:
        """Whether the store has not answered since a lease period (a blip is not down)."""
        return (
            self._down_since is not None
            and self.config is not None
            and self._ports.clock.monotonic() - self._down_mono >= self.config.lease
        )

    def _check_degraded(self) -> None:
        if not self.store_down() or self._down_since is None:
            return
        since = self._down_since.strftime("%Y-%m-%d %H:%M:%S UTC")
        self._ports.problems.report(
            PROBLEM_KEY, f"cluster store unreachable since {since}: {self._down_reason}"
        )
        if self._paged:
            return
        incidents = self._incidents.incidents() if self._incidents else None
        if incidents is None:
            return
        tracker, wake = incidents
        assert self.config is not None
        content = AlertContent(
            AlertName.CLUSTER_DEGRADED.value,
            "critical",
            f"opsmon instance {self.config.instance} cannot reach the cluster store.",
            f"The cluster store does not answer since {since}: {self._down_reason}. Every "
            "instance now sends its own notifications (duplicates are possible; Alertmanager "
            "drops them by labels) and no instance rolls anything back until the store "
            "answers again.",
        )
        labels = {
            "alertname": AlertName.CLUSTER_DEGRADED.value,
            "severity": "critical",
            "service": "opsmon",
        }
        if tracker.open(CLUSTER_SOURCE, content, labels, self._ports.clock.now()):
            wake()
        self._paged = True

    # --- the cluster port -----------------------------------------------------------------
    def follower(self) -> bool:
        """Whether another instance speaks for the cluster (this one holds its copies)."""
        return self.config is not None and not self.leads() and self._down_since is None

    def may_act(self) -> bool:
        """Whether this instance may roll back: the leader, with the store answering."""
        return self.config is None or (self.leads() and self._down_since is None)

    async def fence(self, action: str) -> bool:
        """Record `action` under this leader's epoch; False if the store refuses (stale)."""
        if self.config is None:
            return True
        if self._claims is None or not self.may_act():
            return False
        try:
            granted = await self._claims.act(self._epoch, action)
        except StoreUnavailable as exc:
            self._log.warning("cluster_fence_failed", action=action, reason=str(exc))
            return False
        if not granted:
            self._log.warning("cluster_action_refused", action=action, epoch=self._epoch)
        return granted

    async def claim(self, notification: Notification) -> Claim:
        """Whether this instance sends its copy of `notification` (claims.py has the rules)."""
        if self.config is None:
            return Claim.SEND
        store = self._claims
        if store is None:
            return Claim.HOLD
        if self.store_down():
            return Claim.SEND_UNFENCED
        try:
            if self.leads() and await store.claim(
                self._epoch,
                notification.channel,
                notification.group_key,
                content_key(notification),
                notification.id,
                notification.created_at,
                is_reminder(notification),
            ):
                return Claim.SEND
            logged = await store.logged(notification.channel, notification.group_key)
        except StoreUnavailable as exc:
            self._log.warning("cluster_claim_failed", reason=str(exc))
            return Claim.SEND_UNFENCED if self.store_down() else Claim.HOLD
        return settle(notification, logged)

    async def delivered(self, notification: Notification) -> None:
        """Record in the notification log that the receiver accepted a claimed copy."""
        if self.config is None or self._claims is None:
            return
        try:
            await self._claims.delivered(
                notification.channel, notification.group_key, notification.id
            )
        except StoreUnavailable as exc:
            # The claim stays undelivered: a later leader sends it again (at least once).
            self._log.warning("cluster_delivery_not_recorded", reason=str(exc))
