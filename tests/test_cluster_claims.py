"""The claim rules: which instance's copy of a notification reaches the receiver."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from monitor.alerting.model import AlertView, Notification, Reason, Status
from monitor.cluster.claims import Claim, Logged, content_key, is_reminder, settle

T0 = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)


def notification(
    nid: str, status: Status = Status.FIRING, at: datetime = T0, reason: Reason = Reason.NEW
) -> Notification:
    alert = AlertView(
        incident_id=f"incident-of-{nid}",  # each instance has its own incident ids
        fingerprint="f1",
        status=status,
        alertname="HealthCheckFailing",
        severity="critical",
        summary="s",
        description="d",
        runbook_url="u",
        labels={"check": "backend-health"},
        starts_at=at,
    )
    return Notification(nid, "hooks", "g", {}, status, reason, (alert,), at)


def test_copies_written_by_different_instances_have_one_content() -> None:
    """Two instances' copies of the same news (other ids, incident ids and times) have the
    same content key; a resolved one differs."""
    mine, theirs = notification("a"), notification("b", at=T0 + timedelta(seconds=2))
    assert content_key(mine) == content_key(theirs)
    assert content_key(mine) != content_key(notification("c", Status.RESOLVED))


def test_an_update_naming_more_affected_checks_is_news() -> None:
    """A root's page updated to list a dependent as affected (held back on its owner) is new
    content, so the leader's claim is granted and the update reaches the receiver."""
    first = notification("a")
    update = replace(first, id="b", alerts=(replace(first.alerts[0], affected=("api (api)",)),))
    assert content_key(update) != content_key(first)
    assert content_key(update) == content_key(replace(update, id="c"))


def test_the_same_news_delivered_by_the_leader_settles_a_copy() -> None:
    """A follower's copy of what the leader delivered is PEER: nothing is sent twice."""
    copy = notification("b")
    logged = Logged(content_key(notification("a")), "a", T0, True, "a")
    assert settle(copy, logged) is Claim.PEER


def test_a_claimed_but_undelivered_copy_is_held() -> None:
    """The leader claimed but has not delivered yet: the follower's copy waits (it is the
    one sent if that leader dies before delivering)."""
    logged = Logged(content_key(notification("a")), "a", T0, False, "a")
    assert settle(notification("b"), logged) is Claim.HOLD


def test_older_news_is_superseded_by_what_was_sent_after_it() -> None:
    """A FIRING copy written before the leader sent RESOLVED is dropped, never sent late."""
    logged = Logged(content_key(notification("r", Status.RESOLVED)), "r", T0, True, "a")
    stale = notification("b", at=T0 - timedelta(seconds=5))
    assert settle(stale, logged) is Claim.SUPERSEDED


def test_news_the_log_has_not_seen_waits_for_a_leader() -> None:
    """No row, or newer news than the row: the copy is held, not dropped."""
    assert settle(notification("b"), None) is Claim.HOLD
    logged = Logged(content_key(notification("r", Status.RESOLVED)), "r", T0, True, "a")
    assert settle(notification("b", at=T0 + timedelta(seconds=5)), logged) is Claim.HOLD


def test_own_claim_delivered_is_settled() -> None:
    """This instance's own copy, delivered under its claim, is PEER (not sent again)."""
    logged = Logged(content_key(notification("a")), "a", T0, True, "a")
    assert settle(notification("a"), logged) is Claim.PEER


def test_only_a_firing_reminder_repeats_the_same_content() -> None:
    """A reminder may repeat the group's content; a new notification may not."""
    assert is_reminder(notification("a", reason=Reason.REMINDER))
    assert not is_reminder(notification("a"))
    assert Claim.SEND.sends and Claim.SEND_UNFENCED.sends and not Claim.HOLD.sends
