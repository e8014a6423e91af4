"""One running member of a cluster: built whole from the `cluster:` section, it keeps (or
follows) the leader lease, shares silences, and answers the cluster port.

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
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor import __version__
from monitor.alerting.model import Ack, Notification
from monitor.alerting.naming import AlertContent
from monitor.alertnames import AlertName
from monitor.cluster.claims import (
    Claim,
    PagedAlert,
    content_key,
    is_reminder,
    paged_alerts,
    settle,
)
from monitor.cluster.config import ClusterConfig
from monitor.cluster.guard_sync import GuardSharer
from monitor.cluster.history import HistoryShare
from monitor.cluster.shards import ShardKeeper
from monitor.cluster.share import sharded_checks
from monitor.cluster.store import ClusterStore, LeaseRow, NameTaken, StoreUnavailable
from monitor.cluster.verdicts import Emit, VerdictGate
from monitor.core.aio import wait_for_event
from monitor.core.health import Health
from monitor.logs import get_logger

if TYPE_CHECKING:
    from monitor.alerting.store import AlertingStore
    from monitor.core.spec import CheckSpec
    from monitor.ports import ComponentPorts, IncidentPort, RollbackStatePort
    from monitor.status.store import HistoryStore

CLUSTER_SOURCE = "cluster:store"
PROBLEM_KEY = "cluster"
NAME_PROBLEM_KEY = "cluster-name"
SILENCE_ENDS_SHARED_FOR = timedelta(days=1)


class ClusterMember:
    """This instance in the cluster named by one `cluster:` section."""

    def __init__(
        self,
        config: ClusterConfig,
        ports: ComponentPorts,
        incidents: Callable[[], IncidentPort | None],
        emit: Emit,
        emitted: Mapping[str, Health] | None = None,
        checks: Sequence[CheckSpec] = (),
        history: Callable[[], HistoryStore | None] = lambda: None,
        shown_incidents: Callable[[], AlertingStore | None] = lambda: None,
        rollback: Callable[[], RollbackStatePort | None] = lambda: None,
    ) -> None:
        self.config = config
        self._ports = ports
        self._incidents = incidents
        self._lease_store = ClusterStore(config.store, config.instance, config.renew_every)
        self._claims = ClusterStore(config.store, config.instance, config.renew_every)
        self._views = ClusterStore(config.store, config.instance, config.renew_every)
        self._history_store = ClusterStore(config.store, config.instance, config.renew_every)
        self._history = HistoryShare(self._history_store, history, shown_incidents, ports.clock)
        self.verdicts = VerdictGate(
            config.aggregate,
            config.instance,
            config.lease,
            self._views,
            ports.clock,
            lambda: {name: r.spec for name, r in ports.checks.runners.items()},
            emit,
            ports.redactor.text,
            ports.metrics.internal_task_failures.inc,
        )
        self.verdicts.seed(ports.checks.runners.values(), emitted)
        self._tasks: list[asyncio.Task[object]] = []
        self._lead_until = 0.0
        self._leading = False
        self._epoch = 0
        self._leader: str | None = None
        self._down_since: datetime | None = None
        self._down_mono = 0.0
        self._down_reason = ""
        self._paged = False
        self._shared: dict[str, datetime] = {}  # silence id -> end, as last written
        self._acks_shared: set[Ack] = set()  # the acks written, as last seen firing
        self.guards = GuardSharer(self._claims, rollback, ports.redactor.text, ports.clock)
        # Set when rollback recorded guard state: the next round runs at once.
        self.guards_due = asyncio.Event()
        self._log = get_logger("cluster")
        # With sharding, the configured checks this instance runs are the ones it owns.
        self.shards = (
            ShardKeeper(config, ports, checks, self._checks_moved) if config.sharding else None
        )

    def start(self) -> None:
        """Start renewing the lease, sharing silences, acks and history, and judging checks
        (and keeping shards)."""
        loops = [
            (self._keep_lease(), "cluster-lease"),  # first: _keeper_dead looks at it
            (self._share_what_people_did(), "cluster-shared"),
            (self._share_rollback_state(), "cluster-rollback-state"),
            (self.verdicts.run(self.config.renew_every), "cluster-verdicts"),
            (self._history.run(), "cluster-history"),
        ]
        if self.shards is not None:
            self.shards.start()
            loops.append((self.shards.run(), "cluster-shards"))
        for coroutine, name in loops:
            task = asyncio.create_task(coroutine, name=name)
            self._ports.tasks.watch(task, True)
            self._tasks.append(task)
        self._log.info(
            "cluster_joining",
            instance=self.config.instance,
            store=self._lease_store.target,
            lease_s=self.config.lease,
            sharding=self.config.sharding,
        )

    def reload_checks(self, checks: Sequence[CheckSpec]) -> None:
        """The configured checks changed (the cluster section did not)."""
        if self.shards is not None:
            self.shards.reload(checks)

    async def stop(self, leave: bool, restore_checks: bool = False) -> None:
        """Stop; with `leave`, give the lease up (if held) and leave the members now; with
        `restore_checks`, schedule every configured check again (no longer sharded)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if leave:
            try:
                if self.leads():
                    await self._lease_store.release(self._epoch)
                else:
                    await self._lease_store.leave()
            except StoreUnavailable as exc:
                self._log.warning("cluster_leave_failed", reason=str(exc))
        for store in (self._lease_store, self._claims, self._views, self._history_store):
            await store.close()
        if leave:
            # Alone from now on: alerting follows this instance's own view again.
            await self.verdicts.follow_local()
        if self.shards is not None:
            await self.shards.close(leave, restore_checks)
        self._set_leading(False, "stopped")
        metrics = self._ports.metrics
        for gauge in (
            metrics.cluster_leader,
            metrics.cluster_members,
            metrics.cluster_epoch,
            metrics.cluster_store_up,
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(self.config.instance)

    # --- the lease ------------------------------------------------------------------------
    async def _keep_lease(self) -> None:
        config, store, clock = self.config, self._lease_store, self._ports.clock
        while True:
            started = clock.monotonic()
            try:
                row = await store.renew(config.lease, __version__)
            except StoreUnavailable as exc:
                self._store_failed(str(exc))
            except NameTaken as exc:
                self._name_taken(str(exc))
            else:
                self._ports.problems.clear(NAME_PROBLEM_KEY)
                self._store_answered()
                self._observe(row, started)
            self._check_degraded()
            wait = started + config.renew_every - clock.monotonic()
            await asyncio.sleep(max(0.0, wait))

    async def _share_what_people_did(self) -> None:
        """Every renewal period: share this instance's silences and acks through the store
        and hold to the ones made elsewhere, so what someone did through any instance holds
        for the leader (and for every instance's status page)."""
        while True:
            incidents = self._incidents()
            if incidents is not None and self._down_since is None:
                try:
                    await self._share_silences(incidents)
                    await self._share_acks(incidents)
                except StoreUnavailable as exc:
                    self._log.warning("cluster_silences_and_acks_not_shared", reason=str(exc))
            await asyncio.sleep(self.config.renew_every)

    async def _share_silences(self, incidents: IncidentPort) -> None:
        store = self._claims
        # Silences ended lately are shared too: an early end must reach every peer.
        since = self._ports.clock.now() - SILENCE_ENDS_SHARED_FOR
        # Only what changed since the last round is written.
        local = incidents.stored_silences(since)
        fresh = [s for s in local if self._shared.get(s.id) != s.ends_at]
        if fresh:
            await store.share_silences(fresh)
        self._shared = {s.id: s.ends_at for s in local}
        incidents.adopt_silences(await store.shared_silences(since))

    async def _share_acks(self, incidents: IncidentPort) -> None:
        # Only new acks are written, and the store is read only while an incident here waits
        # for one: a quiet cluster spends no round trip on acks.
        acks = incidents.firing_acks()
        fresh = [a for a in acks if a not in self._acks_shared]
        if fresh:
            await self._claims.share_acks(fresh)
        self._acks_shared = set(acks)
        waiting = incidents.unacked_sources()
        if waiting:
            # An instance opens its incident of an outage up to a round after another.
            slack = 2 * self.config.lease
            incidents.adopt_acks(await self._claims.shared_acks(waiting), slack)

    def _checks_moved(self, taken: Sequence[PagedAlert], handed: Sequence[str]) -> None:
        """Sharding moved checks: take over the incidents the receivers were paged about (so
        this instance pages their recovery, and never their failure again) and close the
        incidents of checks another instance runs now (it speaks for them from here on)."""
        incidents = self._incidents()
        if incidents is not None:
            incidents.take_over(taken)
            incidents.hand_over(handed)

    async def _share_rollback_state(self) -> None:
        """Every renewal period: share rollback's guard state (freezes, bad images, last
        known goods, rollbacks done), so that any future leader holds to it (guard_sync.py)."""
        while True:
            self.guards_due.clear()
            if self._down_since is None:
                try:
                    await self.guards.round()
                except StoreUnavailable as exc:
                    self._log.warning("cluster_rollback_state_not_shared", reason=str(exc))
            await wait_for_event(self.guards_due, self.config.renew_every)

    def _observe(self, row: LeaseRow, started: float) -> None:
        metrics = self._ports.metrics
        metrics.cluster_members.labels(self.config.instance).set(row.members)
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
        return self._ports.clock.monotonic() < self._lead_until

    # --- store health ---------------------------------------------------------------------
    def _store_failed(self, reason: str) -> None:
        clock = self._ports.clock
        if self._down_since is None:
            self._down_since = clock.now()
            self._down_mono = clock.monotonic()
            self._log.error("cluster_store_unreachable", reason=reason)
        self._down_reason = reason
        self._ports.metrics.cluster_store_up.labels(self.config.instance).set(0)
        if not self.leads():
            self._set_leading(False, "the cluster store does not answer")

    def _store_answered(self) -> None:
        self._ports.metrics.cluster_store_up.labels(self.config.instance).set(1)
        if self._down_since is None:
            return
        self._log.info("cluster_store_reachable", down_since=self._down_since.isoformat())
        self._down_since = None
        self._ports.problems.clear(PROBLEM_KEY)
        if self._paged:
            self._paged = False
            port = self._incidents()
            incidents = port.incidents() if port is not None else None
            if incidents is not None:
                tracker, wake = incidents
                if tracker.resolve(CLUSTER_SOURCE, self._ports.clock.now()):
                    wake()

    def store_down(self) -> bool:
        """Whether the store has not answered since a lease period (a blip is not down)."""
        return (
            self._down_since is not None
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
        port = self._incidents()
        incidents = port.incidents() if port is not None else None
        if incidents is None:
            return
        tracker, wake = incidents
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
    def _keeper_dead(self) -> bool:
        """The lease keeper died (a bug: /healthz names it): this instance can no longer
        tell who leads, so it treats the cluster as unreachable."""
        return bool(self._tasks) and self._tasks[0].done()

    def follower(self) -> bool:
        """Whether another instance speaks for the cluster (this one holds its copies)."""
        return not self.leads() and self._down_since is None and not self._keeper_dead()

    def may_act(self) -> bool:
        """Whether this instance may roll back: the leader, with the store answering."""
        return self.leads() and self._down_since is None and not self._keeper_dead()

    async def fence(self, action: str) -> bool:
        """Record `action` under this leader's epoch; False if the store refuses (stale)."""
        if not self.may_act():
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
        """Whether this instance sends its copy of `notification` (claims.py has the rules).

        With sharding, a copy about sharded checks is claimed by their owner, fenced by the
        shard rows (see `_claim_sharded`); anything else by the leader."""
        store = self._claims
        if self.store_down() or self._keeper_dead():
            return Claim.SEND_UNFENCED
        if self.shards is not None:
            labels = (a.labels.get("check") for a in notification.alerts)
            checks = sharded_checks(labels, self.shards.checks)
            if checks:
                return await self._claim_sharded(notification, checks)
        granted = (
            store.claim(
                self._epoch,
                notification.channel,
                notification.group_key,
                content_key(notification),
                notification.id,
                notification.created_at,
                is_reminder(notification),
            )
            if self.leads()
            else None
        )
        return await self._claimed_or_settled(notification, granted)

    async def _claim_sharded(self, notification: Notification, checks: list[str]) -> Claim:
        """The owner of every check in the copy sends it: the claim's row comes from the
        shard table only while this instance owns them all, unexpired by the database's
        clock, so an owner that was paused while its shards moved sends nothing."""
        assert self.shards is not None
        if self.shards.failing_open():
            return Claim.SEND_UNFENCED
        granted = self._claims.claim_sharded(
            checks,
            notification.channel,
            notification.group_key,
            content_key(notification),
            notification.id,
            notification.created_at,
            is_reminder(notification),
        )
        return await self._claimed_or_settled(notification, granted)

    async def _claimed_or_settled(
        self, notification: Notification, granted: Coroutine[object, object, bool] | None
    ) -> Claim:
        """SEND when the claim (`granted`, None: none to try) is granted, else the copy
        settled against the group's log row; a store that does not answer fails open once
        it is down."""
        try:
            if granted is not None and await granted:
                return Claim.SEND
            logged = await self._claims.logged(notification.channel, notification.group_key)
        except StoreUnavailable as exc:
            self._log.warning("cluster_claim_failed", reason=str(exc))
            return Claim.SEND_UNFENCED if self.store_down() else Claim.HOLD
        return settle(notification, logged)

    async def delivered(self, notification: Notification) -> None:
        """Record in the notification log that the receiver accepted a claimed copy."""
        try:
            await self._claims.delivered(
                notification.channel,
                notification.group_key,
                notification.id,
                paged_alerts(notification),
            )
        except StoreUnavailable as exc:
            # The claim stays undelivered: a later leader sends it again (at least once).
            self._log.warning("cluster_delivery_not_recorded", reason=str(exc))
