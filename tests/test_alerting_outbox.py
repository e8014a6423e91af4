"""The durable outbox: retries with backoff, Retry-After, hanging receivers, long outages,
rate limits, AlertDeliveryFailing through the other channels, and what a cluster's claims
make of each copy."""

from __future__ import annotations

import itertools
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.alerting.config import DeliverySpec
from monitor.alerting.model import Notification
from monitor.alerting.outbox import backoff
from monitor.cluster.claims import Claim
from tests.support.alerting import Harness, alerting_config, alerts_of, http_check
from tests.support.receiver import Answer, Receiver


@pytest.fixture
def backup() -> Iterator[Receiver]:
    """A second channel's receiver."""
    server = Receiver().start()
    yield server
    server.stop()


CHECKS = [http_check("web", "web"), http_check("api", "api"), http_check("db", "db")]


def _harness(tmp_path: Path, channels: list[dict[str, Any]], **delivery: Any) -> Harness:
    config = alerting_config(
        group_wait="0s",
        group_interval="1s",
        channels=channels,
        delivery={"initial_backoff": "1s", "max_backoff": "1m", **delivery},
    )
    return Harness(tmp_path, config, CHECKS)


def _hook(receiver: Receiver, name: str = "hooks", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "webhook", "url": receiver.url(f"/{name}"), **extra}


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    """Retry delays grow exponentially, stay within [50%, 100%] of the step, and are capped."""
    spec = DeliverySpec(initial_backoff=1, max_backoff=60)
    rng = random.Random(1)
    for attempt, step in [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (20, 60)]:
        delays = [backoff(attempt, spec, rng) for _ in range(50)]
        assert all(step * 0.5 <= d <= step for d in delays)
        assert len(set(delays)) > 1  # jittered


async def test_failed_delivery_is_retried_with_growing_delays(
    tmp_path: Path, hooks: Receiver
) -> None:
    """500s are retried, further apart each time, until the receiver takes the notification."""
    h = _harness(tmp_path, [_hook(hooks)])
    hooks.answer(*[Answer(500)] * 4)
    h.fail("web")
    seen_at = []
    for _ in range(120):
        await h.step(0.25)
        while len(seen_at) < len(hooks.requests):
            seen_at.append(h.clock.now())
    assert [r.status for r in hooks.requests] == [500, 500, 500, 500, 200]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(seen_at)]
    # initial_backoff 1s doubling, each delay jittered to 50-100% (plus one 0.25 s tick).
    for gap, step in zip(gaps, (1, 2, 4, 8), strict=True):
        assert step * 0.5 <= gap <= step + 0.25, gaps
    assert h.metrics.alert_delivery_failures.labels("hooks")._value.get() == 4
    assert h.metrics.alerts_sent.labels("hooks", "firing")._value.get() == 1
    assert h.store.count_pending() == 0
    await h.close()


async def test_retry_after_is_honoured(tmp_path: Path, hooks: Receiver) -> None:
    """After a 429 with Retry-After: 30, the next attempt comes 30 s later, not sooner."""
    h = _harness(tmp_path, [_hook(hooks)])
    hooks.answer(Answer(429, retry_after="30"))
    h.fail("web")
    await h.step()
    await h.run_for(29, tick=1)
    assert [r.status for r in hooks.requests] == [429]
    await h.step(1)
    assert [r.status for r in hooks.requests] == [429, 200]
    await h.close()


async def test_a_hanging_receiver_times_out_and_is_retried(tmp_path: Path, hooks: Receiver) -> None:
    """A receiver that never answers costs one timeout, then the retry gets through."""
    h = _harness(tmp_path, [_hook(hooks)], timeout="300ms")
    hooks.answer(Answer(hang=True))
    h.fail("web")
    await h.step()
    assert [r.status for r in hooks.requests] == [None]
    await h.step(2)
    assert [r.status for r in hooks.requests] == [None, 200]
    await h.close()


async def test_receiver_down_for_minutes_loses_nothing_and_keeps_order(
    tmp_path: Path, hooks: Receiver
) -> None:
    """Ten minutes of 500s: afterwards every notification arrives, FIRING before RESOLVED."""
    h = _harness(tmp_path, [_hook(hooks)])
    hooks.default = Answer(500)
    for name in ("web", "api", "db"):
        h.fail(name)
    await h.run_for(60, tick=5)
    for name in ("web", "api"):
        h.recover(name)
    await h.run_for(540, tick=5)
    assert hooks.accepted() == []
    assert h.metrics.alert_outbox_pending._value.get() == 5  # 3 FIRINGs and 2 RESOLVEDs wait
    hooks.default = Answer(200)
    await h.run_for(120, tick=5)
    assert h.metrics.alert_outbox_pending._value.get() == 0
    got = [(r.json["groupLabels"]["service"], r.json["status"]) for r in hooks.accepted()]
    assert sorted(got) == sorted(
        [
            ("web", "firing"),
            ("web", "resolved"),
            ("api", "firing"),
            ("api", "resolved"),
            ("db", "firing"),
        ]
    )
    for service in ("web", "api"):
        assert [s for g, s in got if g == service] == ["firing", "resolved"]
    ids = [r.json["notificationId"] for r in hooks.accepted()]
    assert len(ids) == len(set(ids))
    await h.close()


async def test_rate_limit_spaces_messages_of_a_channel(tmp_path: Path, hooks: Receiver) -> None:
    """With rate_limit 2/s, three groups' messages go out half a second apart."""
    h = _harness(tmp_path, [_hook(hooks, rate_limit=2)])
    for name in ("web", "api", "db"):
        h.fail(name)
    await h.step()
    assert len(hooks.accepted()) == 1
    await h.step(0.3)
    assert len(hooks.accepted()) == 1
    await h.step(0.2)
    assert len(hooks.accepted()) == 2
    await h.step(0.5)
    assert len(hooks.accepted()) == 3
    await h.close()


async def test_a_failing_channel_raises_alert_delivery_failing_elsewhere(
    tmp_path: Path, hooks: Receiver, backup: Receiver
) -> None:
    """A channel failing past failing_after is reported through the others, and cleared."""
    h = _harness(tmp_path, [_hook(hooks), _hook(backup, "backup")], failing_after="2m")
    hooks.default = Answer(500)
    h.fail("web")
    await h.run_for(110, tick=5)
    assert [alerts_of(r.json) for r in backup.accepted()] == [[("firing", "web")]]
    await h.run_for(20, tick=5)
    report = backup.accepted()[-1].json
    assert report["status"] == "firing"
    (alert,) = report["alerts"]
    assert alert["labels"]["alertname"] == "AlertDeliveryFailing"
    assert alert["labels"]["channel"] == "hooks"
    assert "HTTP 500" in alert["annotations"]["description"]
    assert alert["annotations"]["runbook_url"].endswith("/runbooks/alert-delivery-failing")
    hooks.default = Answer(200)
    await h.run_for(120, tick=5)
    assert backup.accepted()[-1].json["status"] == "resolved"
    # The broken channel never carried its own failure report.
    for request in hooks.accepted():
        assert all(
            a["labels"]["alertname"] != "AlertDeliveryFailing" for a in request.json["alerts"]
        )
    await h.close()


async def test_notifications_of_a_removed_channel_are_dropped(
    tmp_path: Path, hooks: Receiver, backup: Receiver
) -> None:
    """Taking a channel out of the config drops its queue instead of retrying forever."""
    h = _harness(tmp_path, [_hook(hooks), _hook(backup, "backup")])
    hooks.default = Answer(500)
    h.fail("web")
    await h.step()
    assert h.store.count_pending() == 1
    h.reconfigure(alerting_config(group_wait="0s", channels=[_hook(backup, "backup")]))
    await h.step(60)
    assert h.store.count_pending() == 0
    await h.close()


class ScriptedCluster:
    """A cluster port answering claims from a script (then SEND), recording what it was told."""

    def __init__(self, *claims: Claim, follower: bool = True) -> None:
        self.script = list(claims)
        self.asked: list[str] = []
        self.recorded: list[str] = []
        self._follower = follower

    async def claim(self, notification: Notification) -> Claim:
        self.asked.append(notification.id)
        return self.script.pop(0) if self.script else Claim.SEND

    async def delivered(self, notification: Notification) -> None:
        self.recorded.append(notification.id)

    def follower(self) -> bool:
        return self._follower

    def may_act(self) -> bool:
        return True

    async def fence(self, action: str) -> bool:
        return True


async def test_a_held_copy_is_asked_about_again_and_sent_once_granted(
    tmp_path: Path, hooks: Receiver
) -> None:
    """The cluster holds the copy twice (another instance leads), then grants it: nothing
    reaches the receiver before, exactly one request after, and the claim is recorded."""
    cluster = ScriptedCluster(Claim.HOLD, Claim.HOLD)
    h = _harness_with(tmp_path, [_hook(hooks)], cluster)
    h.fail("web")
    await h.step()
    assert hooks.requests == [] and len(cluster.asked) == 1
    await h.step(0.5)  # within the hold: not asked again
    assert len(cluster.asked) == 1
    for _ in range(4):
        await h.step(1.0)
    assert len(hooks.accepted()) == 1 and len(cluster.asked) == 3
    assert cluster.recorded == cluster.asked[-1:]
    assert h.store.count_pending() == 0
    await h.close()


@pytest.mark.parametrize(
    ("claim", "state"), [(Claim.PEER, "delivered"), (Claim.SUPERSEDED, "dropped")]
)
async def test_a_copy_settled_by_the_cluster_is_never_sent(
    tmp_path: Path, hooks: Receiver, claim: Claim, state: str
) -> None:
    """A copy the leader already delivered (peer) or made obsolete (superseded) is settled
    without a request and without counting as sent."""
    h = _harness_with(tmp_path, [_hook(hooks)], ScriptedCluster(claim))
    h.fail("web")
    await h.step()
    await h.step(2.0)
    assert hooks.requests == []
    assert h.store.count_pending() == 0
    assert h.metrics.alerts_sent.labels("hooks", "firing")._value.get() == 0
    with sqlite3.connect(tmp_path / "opsmon.db") as db:
        assert db.execute("SELECT state FROM outbox").fetchall() == [(state,)]
    await h.close()


def _harness_with(tmp_path: Path, channels: list[dict[str, Any]], cluster: Any) -> Harness:
    config = alerting_config(group_wait="0s", group_interval="1s", channels=channels)
    return Harness(tmp_path, config, CHECKS, cluster=cluster)


class CrashingCluster(ScriptedCluster):
    """A cluster port whose claim raises (a bug in its bookkeeping)."""

    async def claim(self, notification: Notification) -> Claim:
        raise RuntimeError("claim bookkeeping bug")


async def test_a_crashing_claim_never_swallows_the_page(tmp_path: Path, hooks: Receiver) -> None:
    """When the cluster's claim raises, the copy is sent anyway (a duplicate beats a miss) and
    the failure is counted as an internal one."""
    h = _harness_with(tmp_path, [_hook(hooks)], CrashingCluster())
    h.fail("web")
    await h.step()
    assert len(hooks.accepted()) == 1
    assert h.metrics.internal_task_failures._value.get() == 1
    assert h.store.count_pending() == 0
    await h.close()
