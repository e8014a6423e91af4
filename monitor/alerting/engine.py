"""The alerting pipeline between incidents and the outbox: silences and inhibition mute,
routing picks channels, grouping decides when, and each message is written to the outbox in
the same transaction that records what was sent (so a crash neither loses nor repeats it)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from monitor.alerting.config import AlertingConfig
from monitor.alerting.grouping import GroupState, Plan, Timing, group_key, group_labels, plan
from monitor.alerting.inhibition import Dependencies, Inhibitions, inhibit
from monitor.alerting.model import AlertView, Incident, Notification, Reason, Status
from monitor.alerting.routing import Route, Router
from monitor.alerting.silences import Silences, silenced_by
from monitor.alerting.store import AlertingStore
from monitor.clock import Clock
from monitor.logs import get_logger
from monitor.metrics import Metrics


@dataclass
class _Group:
    route: Route
    labels: dict[str, str]
    members: list[Incident] = field(default_factory=list)


class AlertEngine:
    """Evaluates every live incident and enqueues the notifications that are due."""

    def __init__(
        self,
        store: AlertingStore,
        config: AlertingConfig,
        silences: Silences,
        dependencies: Callable[[], Dependencies],
        clock: Clock,
        metrics: Metrics,
        public_url: str,
        on_enqueued: Callable[[], None] = lambda: None,
        recovery: Callable[[str], float] = lambda check: 0.0,
        firing_elsewhere: Callable[[], Mapping[str, str | None]] = dict,
    ) -> None:
        self._store = store
        # Sharding: checks other instances run and judge failing count as firing roots.
        self._firing_elsewhere = firing_elsewhere
        self._clock = clock
        self._metrics = metrics
        # Asked once per evaluation: the graph may change with a reload or discovery.
        self._dependencies = dependencies
        self._on_enqueued = on_enqueued
        self._recovery = recovery
        # Held-back dependents whose root resolved: incident id -> until when they stay held.
        self._released: dict[str, datetime] = {}
        # What each alert that went out said it affects (incident id -> checks).
        self._affected_sent: dict[str, frozenset[str]] = {}
        # Checks whose firing incident is sent without waiting for its group (a rollback was
        # decided on it: that outage is paged, however fast the rollback ends it).
        self._expedited: set[str] = set()
        # Services being rolled back: their new incidents wait until it is over (the swap of
        # containers fails checks for a moment; a failed rollback pages RollbackFailed).
        self._held: dict[str, datetime] = {}
        self._log = get_logger("alerting")
        self.reconfigure(config, silences, public_url)

    def expedite(self, checks: Sequence[str]) -> None:
        """Send the firing incidents of `checks` now, without their group's wait."""
        self._expedited.update(checks)

    def hold(self, service: str, since: datetime) -> None:
        """Hold back incidents of `service` opened from `since` on, until `release`."""
        self._held[service] = since

    def release(self, service: str) -> None:
        """End a hold: what still fires is sent as usual."""
        self._held.pop(service, None)

    def reconfigure(self, config: AlertingConfig, silences: Silences, public_url: str) -> None:
        """Apply a new config (channels, routes, timings, silences)."""
        self.config = config
        self.silences = silences
        self.public_url = public_url
        self._router = Router(config)
        self._timing = Timing(
            group_wait=config.group_wait,
            group_interval=config.group_interval,
            repeat={c.name: c.repeat_interval or config.repeat_interval for c in config.channels},
        )
        self._send_resolved = {
            c.name: config.send_resolved if c.send_resolved is None else c.send_resolved
            for c in config.channels
        }

    def paged_elsewhere(self, incident: Incident, at: datetime) -> None:
        """An incident another instance paged, taken over with its check (sharding): its
        group counts as told at `at` on every channel, so no reminder repeats it before a
        repeat interval has passed (and its recovery is sent as soon as it is due)."""
        route = self._router.route(incident.labels)
        key = group_key(route.key, group_labels(incident.labels, self.config.group_by))
        last_flush_at, _ = self._store.group_state(key)
        self._store.save_group_state(key, last_flush_at, {ch: at for ch in route.channels})

    def evaluate(self) -> datetime | None:
        """Send whatever is due now; return when something is next due (None: nothing waits)."""
        now = self._clock.now()
        incidents = self._store.live_incidents()
        inhibitions = inhibit(incidents, self._dependencies(), self._firing_elsewhere())
        muted = self._mute(incidents, inhibitions, now)
        next_at: datetime | None = None
        for key, group in self._groups(incidents).items():
            state = GroupState(*self._store.group_state(key))
            grown = self._grown(group.members, muted, inhibitions)
            timing = self._timing
            urgent = [i for i in group.members if i.check in self._expedited and i.id not in muted]
            if any(i.status is Status.FIRING and i.notified is None for i in urgent):
                timing = replace(timing, group_wait=0.0, group_interval=0.0)
            decision = plan(group.members, muted, state, group.route.channels, timing, now, grown)
            if decision.flush:
                self._flush(key, group, decision, state, inhibitions, now, group.route.channels)
            elif decision.reminders:
                self._flush(key, group, decision, state, inhibitions, now, decision.reminders)
            if decision.next_at is not None and (next_at is None or decision.next_at < next_at):
                next_at = decision.next_at
        return next_at

    def _grown(
        self, members: Sequence[Incident], muted: set[str], inhibitions: Inhibitions
    ) -> bool:
        """Whether an alert of the group that went out affects checks it did not list."""
        grown = False
        for incident in members:
            if incident.status is not Status.FIRING or incident.id in muted:
                continue
            if incident.notified is not Status.FIRING:
                continue
            now_affected = frozenset(inhibitions.affected.get(str(incident.check), ()))
            # First seen already sent (a restart): take what it affects now as said.
            sent = self._affected_sent.setdefault(incident.id, now_affected)
            grown = grown or not now_affected <= sent
        return grown

    def _held_after_root(self, incident: Incident, now: datetime) -> bool:
        """A dependent held back behind a root that has resolved, never paged on its own:
        held a while longer, as long as it takes to report its own recovery (its
        success_threshold), so the root's recovery does not page it as a new alert."""
        if incident.suppressed != "inhibited" or incident.notified is not None:
            self._released.pop(incident.id, None)
            return False
        until = self._released.setdefault(
            incident.id, now + timedelta(seconds=self._recovery(str(incident.check)))
        )
        return now < until

    def _held_for_rollback(self, incident: Incident) -> bool:
        since = self._held.get(incident.labels.get("service", ""))
        return (
            since is not None
            and incident.notified is None
            and incident.started_at >= since
            and incident.check not in self._expedited
        )

    def _mute(
        self, incidents: Sequence[Incident], inhibitions: Inhibitions, now: datetime
    ) -> set[str]:
        active = self.silences.active(now)
        muted: set[str] = set()
        live = {incident.id for incident in incidents}
        for gone in set(self._released) - live:
            self._released.pop(gone)
        for gone in set(self._affected_sent) - live:
            self._affected_sent.pop(gone)
        for incident in incidents:
            if incident.status is not Status.FIRING:
                continue
            reason = None
            if incident.id in inhibitions.roots:
                reason = "inhibited"
                self._released.pop(incident.id, None)
            elif self._held_after_root(incident, now):
                reason = "inhibited"
            elif self._held_for_rollback(incident):
                reason = "rollback"
            elif silenced_by(incident.labels, active) is not None:
                reason = "silenced"
            if reason is not None:
                muted.add(incident.id)
            if reason != incident.suppressed:
                self._store.set_suppressed(incident.id, reason)
                if reason is not None and incident.notified is None:
                    self._metrics.alerts_suppressed.labels(reason).inc()
                self._log.info(
                    "incident_suppressed" if reason else "incident_unsuppressed",
                    incident=incident.id,
                    alertname=incident.alertname,
                    reason=reason,
                    root=inhibitions.roots.get(incident.id),
                )
                incident.suppressed = reason
        return muted

    def _groups(self, incidents: Sequence[Incident]) -> dict[str, _Group]:
        groups: dict[str, _Group] = {}
        for incident in incidents:
            route = self._router.route(incident.labels)
            labels = group_labels(incident.labels, self.config.group_by)
            key = group_key(route.key, labels)
            groups.setdefault(key, _Group(route, labels)).members.append(incident)
        return groups

    def _flush(
        self,
        key: str,
        group: _Group,
        decision: Plan,
        state: GroupState,
        inhibitions: Inhibitions,
        now: datetime,
        channels: Sequence[str],
    ) -> None:
        reason = Reason.NEW if decision.flush else Reason.REMINDER
        firing = [
            AlertView.of(i, inhibitions.affected.get(str(i.check), ())) for i in decision.firing
        ]
        resolving = [AlertView.of(i) for i in decision.resolving] if decision.flush else []
        sent_to: list[str] = []
        with self._store.transaction():
            for channel in channels:
                alerts = firing + (resolving if self._send_resolved.get(channel, True) else [])
                # An alert about a channel (AlertDeliveryFailing) never goes through it.
                alerts = [a for a in alerts if a.labels.get("channel") != channel]
                if reason is Reason.REMINDER and (not alerts or self._store.pending(channel, key)):
                    # Nothing for it, or it has not taken the last one yet (no pile-up while
                    # it is down): look again after another repeat interval.
                    state.channel_sent[channel] = now
                    continue
                if not alerts:
                    continue
                status = (
                    Status.FIRING
                    if any(a.status is Status.FIRING for a in alerts)
                    else Status.RESOLVED
                )
                notification = Notification(
                    id=uuid.uuid4().hex,
                    channel=channel,
                    group_key=key,
                    group_labels=group.labels,
                    status=status,
                    reason=reason,
                    alerts=tuple(alerts),
                    created_at=now,
                    external_url=self.public_url,
                )
                self._store.enqueue(notification)
                state.channel_sent[channel] = now
                sent_to.append(channel)
            if decision.flush:
                for view in firing:
                    self._affected_sent[view.incident_id] = frozenset(view.affected)
                    self._expedited.discard(view.check)
                self._store.set_notified([i.id for i in decision.firing], Status.FIRING)
                self._store.set_notified([i.id for i in decision.resolving], Status.RESOLVED)
                state.last_flush_at = now
                if len(decision.new) > 1:
                    self._metrics.alerts_suppressed.labels("grouped").inc(len(decision.new) - 1)
            self._store.save_group_state(key, state.last_flush_at, state.channel_sent)
        if sent_to:
            self._log.info(
                "alert_group_notified",
                group=key,
                reason=reason.value,
                firing=[a.alertname + "/" + a.check for a in firing],
                resolved=[a.alertname + "/" + a.check for a in resolving],
                channels=sent_to,
            )
            self._on_enqueued()
