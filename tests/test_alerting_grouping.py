"""Grouping and timing as an on-call engineer sees it at a webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.alerting.grouping import group_labels
from tests.support.alerting import Harness, alerting_config, alerts_of, http_check
from tests.support.receiver import Receiver


def _config(receiver: Receiver, **timing: object) -> dict[str, object]:
    return {
        "group_wait": "10s",
        "group_interval": "1m",
        "repeat_interval": "4h",
        "channels": [{"name": "hooks", "type": "webhook", "url": receiver.url()}],
        **timing,
    }


@pytest.fixture
async def harness(tmp_path: Path, receiver: Receiver) -> AsyncIterator[Harness]:
    """Three backend checks and one frontend check, default timing."""
    checks = [
        http_check("backend-health", "backend"),
        http_check("backend-ready", "backend"),
        http_check("frontend", "frontend"),
        http_check("worker"),
    ]
    h = Harness(tmp_path, alerting_config(**_config(receiver)), checks)
    yield h
    await h.close()


async def test_one_outage_gives_exactly_one_firing_and_one_resolved(
    harness: Harness, receiver: Receiver
) -> None:
    """A check that fails and recovers produces one FIRING and one RESOLVED, nothing more."""
    harness.fail("frontend")
    await harness.run_for(9)
    assert receiver.accepted() == []  # group_wait
    await harness.run_for(2)
    harness.recover("frontend")
    await harness.run_for(600)
    sent = [r.json for r in receiver.accepted()]
    assert [(p["status"], alerts_of(p)) for p in sent] == [
        ("firing", [("firing", "frontend")]),
        ("resolved", [("resolved", "frontend")]),
    ]
    description = sent[0]["alerts"][0]["annotations"]["description"]
    assert description.startswith("frontend: [STATUS] (503) == 200\n")


async def test_incident_resolving_within_group_wait_is_never_sent(
    harness: Harness, receiver: Receiver
) -> None:
    """A blip shorter than group_wait sends nothing at all."""
    harness.fail("frontend")
    await harness.run_for(5)
    harness.recover("frontend")
    await harness.run_for(300)
    assert receiver.accepted() == []
    assert harness.metrics.alerts_suppressed.labels("grouped")._value.get() == 1


async def test_checks_of_one_service_arrive_in_one_message(
    harness: Harness, receiver: Receiver
) -> None:
    """Several failing checks of a service within group_wait make one message, per service."""
    harness.fail("backend-health")
    await harness.run_for(3)
    harness.fail("backend-ready")
    harness.fail("frontend")
    await harness.run_for(15)
    by_group = {r.json["groupLabels"]["service"]: alerts_of(r.json) for r in receiver.accepted()}
    assert by_group == {
        "backend": [("firing", "backend-health"), ("firing", "backend-ready")],
        "frontend": [("firing", "frontend")],
    }


async def test_flapping_target_sends_at_most_one_message_per_group_interval(
    harness: Harness, receiver: Receiver
) -> None:
    """A check flipping for ten minutes (down 15 s, up 10 s) does not storm the receiver."""
    for _ in range(24):
        harness.fail("frontend")
        await harness.run_for(15)
        harness.recover("frontend")
        await harness.run_for(10)
    messages = receiver.accepted()
    # 600 s of flapping with a 60 s group_interval: at most one message per interval.
    assert 2 <= len(messages) <= 11
    times = [r.json for r in messages]
    assert times[-1]["status"] == "resolved"
    # Never a RESOLVED for an alert whose FIRING was not sent first.
    announced: set[str] = set()
    for payload in times:
        for alert in payload["alerts"]:
            if alert["status"] == "firing":
                announced.add(alert["annotations"]["summary"])
            else:
                assert alert["annotations"]["summary"] in announced


async def test_a_group_still_firing_repeats_after_repeat_interval(
    tmp_path: Path, receiver: Receiver
) -> None:
    """While an alert keeps firing, a reminder goes out every repeat_interval."""
    config = alerting_config(**_config(receiver, group_wait="0s", repeat_interval="30m"))
    h = Harness(tmp_path, config, [http_check("frontend", "frontend")])
    try:
        h.fail("frontend")
        await h.run_for(95 * 60, tick=60)
        reasons = [(r.json["status"], r.json["reason"]) for r in receiver.accepted()]
        assert reasons == [
            ("firing", "new"),
            ("firing", "reminder"),
            ("firing", "reminder"),
            ("firing", "reminder"),
        ]
    finally:
        await h.close()


async def test_an_acknowledged_alert_stops_reminders_and_the_next_message_names_who(
    tmp_path: Path, receiver: Receiver
) -> None:
    """After an ack no reminder goes out; the RESOLVED that follows says who acknowledged it."""
    config = alerting_config(**_config(receiver, group_wait="0s", repeat_interval="30m"))
    h = Harness(tmp_path, config, [http_check("frontend", "frontend")])
    try:
        h.fail("frontend")
        await h.run_for(35 * 60, tick=60)
        [incident] = h.store.live_incidents()
        assert h.store.acknowledge(incident.id, "alice", h.clock.now())
        assert not h.store.acknowledge(incident.id, "bob", h.clock.now())  # the first ack wins
        await h.run_for(95 * 60, tick=60)
        h.recover("frontend")
        await h.run_for(120, tick=10)
        sent = [r.json for r in receiver.accepted()]
        assert [(p["status"], p["reason"]) for p in sent] == [
            ("firing", "new"),
            ("firing", "reminder"),
            ("resolved", "new"),
        ]
        assert sent[-1]["alerts"][0]["annotations"]["acknowledged_by"] == "alice"
    finally:
        await h.close()


async def test_send_resolved_false_keeps_resolves_off_a_channel(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A channel with send_resolved: false gets the FIRING but never the RESOLVED."""
    other = Receiver().start()
    try:
        fields = _config(receiver, group_wait="0s")
        fields["channels"] = [
            {"name": "hooks", "type": "webhook", "url": receiver.url(), "send_resolved": False},
            {"name": "all", "type": "webhook", "url": other.url()},
        ]
        h = Harness(tmp_path, alerting_config(**fields), [http_check("frontend", "frontend")])
        h.fail("frontend")
        await h.step()
        h.recover("frontend")
        await h.run_for(120)
        assert [r.json["status"] for r in receiver.accepted()] == ["firing"]
        assert [r.json["status"] for r in other.accepted()] == ["firing", "resolved"]
        await h.close()
    finally:
        other.stop()


async def test_a_new_alert_in_a_firing_group_waits_for_group_interval(
    harness: Harness, receiver: Receiver
) -> None:
    """A second check of an already-announced service is sent after group_interval, with both."""
    harness.fail("backend-health")
    await harness.run_for(11)
    harness.fail("backend-ready")
    await harness.run_for(30)
    assert len(receiver.accepted()) == 1
    await harness.run_for(40)
    second = receiver.accepted()[1].json
    assert alerts_of(second) == [("firing", "backend-health"), ("firing", "backend-ready")]


def test_a_check_without_a_service_groups_by_its_name() -> None:
    """Checks without a service do not all land in one anonymous group."""
    assert group_labels({"check": "worker"}, ["service"]) == {"service": "worker"}
    assert group_labels({"check": "a", "service": "b"}, ["service", "check"]) == {
        "service": "b",
        "check": "a",
    }


async def test_a_rollback_pages_its_outage_at_once_and_holds_back_the_swap(
    harness: Harness, receiver: Receiver
) -> None:
    """A rollback decided on backend-health pages that outage without the group's wait, even
    if the rollback ends it within seconds; what the swap of containers sets off meanwhile
    (backend-ready failing for a moment) is never paged; a failure still there after the
    rollback is."""
    harness.fail("backend-health")
    await harness.step(1)
    harness.engine.expedite(["backend-health"])
    harness.engine.hold("backend", harness.clock.now())
    await harness.step(0)
    assert [alerts_of(r.json) for r in receiver.accepted()] == [[("firing", "backend-health")]]
    harness.fail("backend-ready")
    await harness.run_for(30, tick=5)
    harness.recover("backend-ready")
    harness.recover("backend-health")
    harness.engine.release("backend")
    await harness.run_for(120, tick=5)
    sent = [alerts_of(r.json) for r in receiver.accepted()]
    assert sent == [[("firing", "backend-health")], [("resolved", "backend-health")]]

    harness.fail("frontend")
    harness.engine.hold("frontend", harness.clock.now())
    await harness.run_for(30, tick=5)
    assert len(receiver.accepted()) == 2
    harness.engine.release("frontend")
    await harness.run_for(5, tick=1)
    assert alerts_of(receiver.accepted()[-1].json) == [("firing", "frontend")]
