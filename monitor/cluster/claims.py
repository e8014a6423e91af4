"""Who sends a notification in a cluster: the claim rules, as pure functions over plain records.

Every instance runs its own alerting engine, so each one queues its own copy of every
notification. The cluster keeps a notification log in PostgreSQL (after Alertmanager's nflog):
per channel and group, what the receivers were last told (`content`), by which instance and
under which leader epoch. Only the leader may claim a group, and a claim is granted when the
receivers would learn something new; everyone else's copy is then settled without sending.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from monitor.alerting.model import Notification, Reason, Status


class Claim(StrEnum):
    """What an instance does with its copy of a notification."""

    SEND = "send"  # this instance leads and the claim was granted
    SEND_UNFENCED = "send_unfenced"  # the store cannot be reached: send (fail open)
    PEER = "peer"  # the leader already told the receivers the same: nothing to send
    SUPERSEDED = "superseded"  # the leader told the receivers something newer: drop it
    HOLD = "hold"  # not the leader (or not yet known): keep it and look again

    @property
    def sends(self) -> bool:
        """Whether this copy goes to the receiver."""
        return self in (Claim.SEND, Claim.SEND_UNFENCED)


@dataclass(frozen=True)
class Logged:
    """A group's row in the cluster's notification log."""

    content: str
    notification_id: str
    claimed_at: datetime
    delivered: bool
    instance: str


@dataclass(frozen=True)
class PagedAlert:
    """A check's alert that the receivers were last told is firing (the log keeps the firing
    alerts of each delivered notification), and the instance that told them."""

    check: str
    labels: Mapping[str, str]
    summary: str
    description: str
    runbook_url: str
    starts_at: datetime
    paged_by: str


def paged_alerts(notification: Notification) -> list[dict[str, object]]:
    """What the log keeps of a delivered notification: its firing alerts about checks, so a
    new owner of a check (sharding) knows the receivers still believe it is failing."""
    return [
        {
            "labels": dict(alert.labels),
            "summary": alert.summary,
            "description": alert.description,
            "runbook_url": alert.runbook_url,
            "starts_at": alert.starts_at.isoformat(),
        }
        for alert in notification.alerts
        if alert.status is Status.FIRING and "check" in alert.labels
    ]


def content_key(notification: Notification) -> str:
    """What a notification tells its receiver, independent of which instance wrote it: the
    channel's group, its status, which alerts fire or resolved in it, and the checks each
    lists as affected (so an update that only names more affected checks is news)."""
    alerts = sorted(
        f"{a.fingerprint}:{a.status.value}:{','.join(sorted(a.affected))}"
        for a in notification.alerts
    )
    text = "\n".join([notification.status.value, *alerts])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def is_reminder(notification: Notification) -> bool:
    """A reminder repeats what the group already said (repeat_interval)."""
    return notification.reason is Reason.REMINDER and notification.status is Status.FIRING


def settle(copy: Notification, logged: Logged | None) -> Claim:
    """What a copy that cannot be (or was not) claimed becomes, given the group's log row.

    The same content already delivered: PEER. Something newer was sent after this copy was
    written: SUPERSEDED (sending it now would tell the receivers an older truth). Otherwise
    the copy waits for a leader."""
    if logged is None:
        return Claim.HOLD
    if logged.notification_id == copy.id:
        return Claim.PEER if logged.delivered else Claim.HOLD
    if logged.content == content_key(copy) and logged.delivered:
        return Claim.PEER
    if logged.claimed_at > copy.created_at and logged.content != content_key(copy):
        return Claim.SUPERSEDED
    return Claim.HOLD


class Solo:
    """The cluster port of an instance that runs alone: it sends everything, it may act."""

    async def claim(self, notification: Notification) -> Claim:
        """Always send."""
        return Claim.SEND

    async def delivered(self, notification: Notification) -> None:
        """Nothing to record."""

    def follower(self) -> bool:
        """Never a follower."""
        return False

    def may_act(self) -> bool:
        """Always allowed to roll back."""
        return True

    async def fence(self, action: str) -> bool:
        """Always allowed."""
        return True

    def guards_changed(self) -> None:
        """Nothing to share."""
