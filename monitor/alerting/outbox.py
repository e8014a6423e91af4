"""The durable outbox: every notification is in SQLite before the first attempt, and stays
there until a receiver accepts it (at least once; the id lets receivers drop repeats).

Per channel: attempts run concurrently across groups (up to `max_in_flight`) but one at a
time within a group, so a group's RESOLVED never overtakes its FIRING; a rate limit spaces
messages (Slack: about one per second); failures back off exponentially with jitter, and a
429/503 `Retry-After` is honoured. A channel that keeps failing for `failing_after` reports
itself (AlertDeliveryFailing through the other channels) until it accepts again.

In a cluster, each attempt first asks the cluster port (monitor/cluster/) whether this
instance sends its copy: the leader claims it, a follower's copy is settled against what the
leader sent or held until this instance leads (docs/cluster.md).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor.alerting.config import DeliverySpec
from monitor.alerting.model import OutboxEntry
from monitor.alerting.notifiers import ChannelSpec, DeliveryError, Notifier
from monitor.alerting.store import AlertingStore
from monitor.clock import Clock
from monitor.cluster.claims import Claim, Solo
from monitor.core.aio import wait_for_event
from monitor.logs import get_logger
from monitor.metrics import Metrics

if TYPE_CHECKING:
    from monitor.ports import ClusterPort

FailingHook = Callable[[str, datetime, str], None]
RecoveredHook = Callable[[str], None]
_IDLE_POLL = 1.0
# A copy the cluster holds (not the leader) is asked about again after this many seconds.
_HOLD_RECHECK = 1.0


def backoff(attempt: int, spec: DeliverySpec, rng: random.Random) -> float:
    """Seconds before retry number `attempt` (1-based): doubling, capped, with jitter."""
    base = min(spec.max_backoff, spec.initial_backoff * 2 ** max(0, attempt - 1))
    return float(base * (0.5 + rng.random() * 0.5))


class Outbox:
    """Delivers what the engine enqueued."""

    def __init__(
        self,
        store: AlertingStore,
        clock: Clock,
        metrics: Metrics,
        *,
        rng: random.Random | None = None,
        cluster: ClusterPort | None = None,
        on_failing: FailingHook = lambda channel, since, error: None,
        on_recovered: RecoveredHook = lambda channel: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._cluster: ClusterPort = cluster or Solo()
        self._held_until: dict[str, float] = {}
        self._on_failing = on_failing
        self._on_recovered = on_recovered
        self._notifiers: dict[str, Notifier] = {}
        self._specs: dict[str, ChannelSpec] = {}
        self._delivery = DeliverySpec()
        self._wake = asyncio.Event()
        self._in_flight: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._next_slot: dict[str, float] = {}
        self.failing_since: dict[str, datetime] = {}
        self._last_error: dict[str, str] = {}
        self._reported: set[str] = set()
        self._log = get_logger("alerting")

    def configure(
        self,
        notifiers: Mapping[str, Notifier],
        specs: Mapping[str, ChannelSpec],
        delivery: DeliverySpec,
    ) -> None:
        """Use these notifiers (by channel name) from now on."""
        self._notifiers = dict(notifiers)
        self._specs = dict(specs)
        self._delivery = delivery
        for channel in list(self.failing_since):
            if channel not in self._notifiers:
                self._clear_failing(channel)
        self.wake()

    def restore_failing(self, channel: str, since: datetime) -> None:
        """A channel was reported failing before a restart; its next success clears that."""
        self.failing_since[channel] = since
        self._reported.add(channel)

    def wake(self) -> None:
        """Something was enqueued or finished: look at the outbox again."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver forever."""
        try:
            while True:
                self._wake.clear()
                try:
                    next_at = self.dispatch()
                except Exception:
                    # e.g. the store busy past its timeout: look again shortly.
                    self._log.exception("alert_outbox_dispatch_failed")
                    next_at = None
                timeout = _IDLE_POLL
                if next_at is not None:
                    wait = (next_at - self._clock.now()).total_seconds()
                    timeout = min(timeout, max(wait, 0.0))
                await wait_for_event(self._wake, timeout)
        finally:
            await self.cancel()

    async def drain(self) -> None:
        """Start every attempt that is due now and wait for them all (tests, benchmarks)."""
        self.dispatch()
        while self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
            self.dispatch()

    async def cancel(self) -> None:
        """Abandon attempts in flight; their notifications stay pending for the next start."""
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._in_flight.clear()

    def dispatch(self) -> datetime | None:
        """Start the attempts that are due; return when the next one will be."""
        now = self._clock.now()
        next_at: datetime | None = None
        per_channel: dict[str, int] = {}
        for channel, _group in self._in_flight:
            per_channel[channel] = per_channel.get(channel, 0) + 1
        for entry in self._store.outbox_heads():
            notification = entry.notification
            channel = notification.channel
            if (channel, notification.group_key) in self._in_flight:
                continue
            if self._held_until.get(entry.id, 0.0) > self._clock.monotonic():
                continue
            notifier = self._notifiers.get(channel)
            if notifier is None:
                self._drop(entry, now, "its channel is no longer configured")
                continue
            if (now - notification.created_at).total_seconds() > self._delivery.max_age:
                if self._cluster.follower():
                    self._settle(entry, now, Claim.SUPERSEDED)
                else:
                    self._drop(entry, now, "not delivered within delivery.max_age")
                continue
            due = entry.next_attempt_at
            slot = self._slot_wait(channel)
            if slot > 0:
                due = max(due, now + timedelta(seconds=slot))
            if due > now:
                next_at = due if next_at is None else min(next_at, due)
                continue
            if per_channel.get(channel, 0) >= self._delivery.max_in_flight:
                continue
            per_channel[channel] = per_channel.get(channel, 0) + 1
            self._take_slot(channel)
            key = (channel, notification.group_key)
            self._in_flight[key] = asyncio.create_task(
                self._attempt(entry, notifier, key), name=f"deliver-{notification.id}"
            )
        self._check_failing(now)
        self._metrics.alert_outbox_pending.set(self._store.count_pending())
        return next_at

    def _slot_wait(self, channel: str) -> float:
        return max(0.0, self._next_slot.get(channel, 0.0) - self._clock.monotonic())

    def _take_slot(self, channel: str) -> None:
        spec = self._specs.get(channel)
        if spec is None or spec.rate_limit is None:
            return
        start = max(self._clock.monotonic(), self._next_slot.get(channel, 0.0))
        self._next_slot[channel] = start + 1.0 / spec.rate_limit

    async def _attempt(self, entry: OutboxEntry, notifier: Notifier, key: tuple[str, str]) -> None:
        try:
            try:
                claim = await self._cluster.claim(entry.notification)
            except Exception:
                # A bug in the cluster's bookkeeping must not swallow the page: send it (the
                # cluster prefers a duplicate to a miss).
                self._log.exception("alert_cluster_claim_crashed", notification=entry.id)
                self._metrics.internal_task_failures.inc()
                claim = Claim.SEND_UNFENCED
            if not claim.sends:
                self._settle(entry, self._clock.now(), claim)
                return
            error, retry_after = await self._send(entry, notifier)
            if error is None:
                self._delivered(entry, unfenced=claim is Claim.SEND_UNFENCED)
                await self._cluster.delivered(entry.notification)
            else:
                self._failed(entry, error, retry_after)
        except Exception:
            # The store was busy past its timeout (or a bug): the entry stays pending and is
            # tried again, under the same id.
            self._log.exception("alert_outbox_bookkeeping_failed", channel=key[0])
        finally:
            self._in_flight.pop(key, None)
            self.wake()

    async def _send(
        self, entry: OutboxEntry, notifier: Notifier
    ) -> tuple[str | None, float | None]:
        """One delivery attempt: (None, None) if accepted, else (reason, Retry-After)."""
        channel = entry.notification.channel
        try:
            # The notifiers have their own timeouts; this only guards against one that hangs.
            async with asyncio.timeout(self._delivery.timeout * 2 + 1):
                await notifier.send(entry.notification)
        except DeliveryError as exc:
            return exc.reason, exc.retry_after
        except TimeoutError:
            return f"{channel}: no answer within {self._delivery.timeout:g}s", None
        except Exception as exc:
            self._log.exception("alert_delivery_crashed", channel=channel)
            return f"{channel}: {type(exc).__name__}", None
        return None, None

    def _settle(self, entry: OutboxEntry, now: datetime, claim: Claim) -> None:
        """A copy this instance does not send: another instance sent it (or something newer),
        or it waits for this instance to lead."""
        if claim is Claim.HOLD:
            self._held_until[entry.id] = self._clock.monotonic() + _HOLD_RECHECK
            return
        self._held_until.pop(entry.id, None)
        if claim is Claim.PEER:
            self._store.mark_delivered(entry.id, now)
        else:
            self._store.mark_dropped(entry.id, now, "superseded: the cluster sent newer news")
        self._log.info(
            "alert_settled_by_cluster",
            channel=entry.notification.channel,
            notification=entry.id,
            outcome=claim.value,
        )

    def _delivered(self, entry: OutboxEntry, unfenced: bool = False) -> None:
        notification = entry.notification
        channel = notification.channel
        now = self._clock.now()
        self._held_until.pop(notification.id, None)
        self._store.mark_delivered(notification.id, now)
        self._metrics.alerts_sent.labels(channel, notification.status.value).inc()
        self._log.info(
            "alert_delivered",
            channel=channel,
            notification=notification.id,
            status=notification.status.value,
            reason=notification.reason.value,
            alerts=len(notification.alerts),
            attempts=entry.attempts + 1,
            unfenced=unfenced,
            latency_ms=round((now - notification.created_at).total_seconds() * 1000, 1),
        )
        self._clear_failing(channel)

    def _failed(self, entry: OutboxEntry, error: str, retry_after: float | None) -> None:
        now = self._clock.now()
        notification = entry.notification
        channel = notification.channel
        attempt = entry.attempts + 1
        delay = (
            retry_after if retry_after is not None else backoff(attempt, self._delivery, self._rng)
        )
        self._store.mark_failed(notification.id, now + timedelta(seconds=delay), error)
        self._metrics.alert_delivery_failures.labels(channel).inc()
        self.failing_since.setdefault(channel, now)
        self._last_error[channel] = error
        self._log.warning(
            "alert_delivery_failed",
            channel=channel,
            notification=notification.id,
            attempt=attempt,
            retry_in_s=round(delay, 2),
            retry_after=retry_after is not None,
            error=error,
        )

    def _drop(self, entry: OutboxEntry, now: datetime, why: str) -> None:
        self._held_until.pop(entry.id, None)
        self._store.mark_dropped(entry.id, now, why)
        self._log.error(
            "alert_notification_dropped",
            channel=entry.notification.channel,
            notification=entry.id,
            why=why,
            attempts=entry.attempts,
        )

    def _check_failing(self, now: datetime) -> None:
        for channel, since in list(self.failing_since.items()):
            if channel in self._reported:
                continue
            if (now - since).total_seconds() >= self._delivery.failing_after:
                self._reported.add(channel)
                self._log.error("alert_channel_failing", channel=channel, since=since.isoformat())
                self._on_failing(channel, since, self._last_error.get(channel, "unknown error"))

    def _clear_failing(self, channel: str) -> None:
        self.failing_since.pop(channel, None)
        self._last_error.pop(channel, None)
        if channel in self._reported:
            self._reported.discard(channel)
            self._log.info("alert_channel_recovered", channel=channel)
            self._on_recovered(channel)
