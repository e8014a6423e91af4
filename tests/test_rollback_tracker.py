"""Deploy tracking: new containers are new deploys, stable ones become last known good, a die
or restart starts the stable time again, crash loops are counted, bad images never promoted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.clock import SystemClock
from monitor.rollback.snapshot import Snapshot
from monitor.rollback.store import RollbackStore, open_store
from monitor.rollback.tracker import DeployTracker

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
V1, V2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RollbackStore]:
    """Rollback's tables in a fresh state folder."""
    opened = open_store(tmp_path)
    yield opened
    opened.close()


def snapshot(container: str, image_id: str) -> Snapshot:
    """A minimal snapshot of a container."""
    return Snapshot(container, "shop_web_1", "app:x", image_id, {"Env": []}, {}, {})


def see(tracker: DeployTracker, container: str, image_id: str, at: datetime = T0) -> bool:
    """Report a running container of `web`; True when it is a new deploy."""
    return tracker.seen("web", "shop", container, "shop_web_1", "app:x", image_id, at).new


def seconds(n: float) -> datetime:
    """T0 + n seconds."""
    return T0 + timedelta(seconds=n)


def test_each_new_container_is_one_deploy(store: RollbackStore) -> None:
    """The same container seen again is not a new deploy; another container is."""
    tracker = DeployTracker(store, SystemClock(), stable_after=120)
    assert see(tracker, "c1", V1)
    assert not see(tracker, "c1", V1)
    assert see(tracker, "c2", V2, seconds(300))
    current = tracker.current("web")
    assert current is not None and current.container_id == "c2" and current.image_id == V2
    assert [d.status for d in store.deploys("web")] == ["new", "replaced"]


def test_every_new_container_is_announced_once(store: RollbackStore) -> None:
    """Each container recorded for the first time is announced once, as it is recorded: a
    redeploy first read by a rollback decision (not by its start event) still gets its
    BadImageRedeployed check."""
    announced: list[str] = []
    tracker = DeployTracker(
        store,
        SystemClock(),
        stable_after=120,
        on_new_deploy=lambda d: announced.append(d.container_id),
    )
    see(tracker, "c1", V1)
    see(tracker, "c1", V1)
    see(tracker, "c2", V2, seconds(300))
    see(tracker, "c1", V1, seconds(400))  # a kept older container current again: known
    assert announced == ["c1", "c2"]


def test_healthy_for_stable_after_becomes_lkg(store: RollbackStore) -> None:
    """Healthy without interruption for stable_after: due for promotion, then LKG with its
    snapshot; a die in between starts the stable time again."""
    tracker = DeployTracker(store, SystemClock(), stable_after=120)
    see(tracker, "c1", V1)
    assert tracker.observe("web", True, seconds(0)) is None
    assert tracker.observe("web", True, seconds(100)) is None
    tracker.disturbed("web", "c1", "die", seconds(101))
    assert tracker.observe("web", True, seconds(110)) is None
    assert tracker.observe("web", True, seconds(200)) is None
    due = tracker.observe("web", True, seconds(230))
    assert due is not None and due.container_id == "c1"

    tracker.promote(due, snapshot("c1", V1), seconds(230))
    lkg = store.lkg("web")
    assert lkg is not None and lkg.image_id == V1 and lkg.snapshot.container_id == "c1"
    assert tracker.observe("web", True, seconds(500)) is None  # promoted once


def test_unhealthy_resets_and_ever_healthy_is_remembered(store: RollbackStore) -> None:
    """An unhealthy moment starts the stable time again; having been healthy once is kept
    (it decides the never-became-healthy trigger)."""
    tracker = DeployTracker(store, SystemClock(), stable_after=60)
    see(tracker, "c1", V1)
    current = tracker.current("web")
    assert current is not None and not current.ever_healthy
    tracker.observe("web", True, seconds(0))
    tracker.observe("web", False, seconds(50))
    assert tracker.observe("web", True, seconds(70)) is None
    current = tracker.current("web")
    assert current is not None and current.ever_healthy


def test_crash_loop_is_three_deaths_within_the_window(store: RollbackStore) -> None:
    """Three die/oom events of the current container within the window count as a crash loop;
    the deaths of a previous container do not."""
    tracker = DeployTracker(store, SystemClock(), stable_after=60)
    see(tracker, "c1", V1)
    tracker.disturbed("web", "c1", "die", seconds(1))
    see(tracker, "c2", V2, seconds(2))
    for moment in (10, 20):
        tracker.disturbed("web", "c2", "die", seconds(moment))
    assert not tracker.crash_looping("web", 900, seconds(30))
    tracker.disturbed("web", "c2", "oom", seconds(25))
    assert tracker.crash_looping("web", 900, seconds(30))
    assert not tracker.crash_looping("web", 10, seconds(60))


def test_bad_image_is_never_promoted(store: RollbackStore) -> None:
    """An image marked bad is not promoted, even when a later deploy of it runs healthy."""
    tracker = DeployTracker(store, SystemClock(), stable_after=10)
    see(tracker, "c1", V2)
    deploy = tracker.current("web")
    assert deploy is not None
    tracker.mark_bad(deploy, "unhealthy after deploy", seconds(5))
    see(tracker, "c2", V2, seconds(60))
    again = tracker.current("web")
    assert again is not None and again.status == "bad"
    tracker.observe("web", True, seconds(60))
    assert tracker.observe("web", True, seconds(100)) is None
    tracker.promote(again, snapshot("c2", V2), seconds(100))
    assert store.lkg("web") is None


def test_deploys_recorded_by_another_process_are_followed(store: RollbackStore) -> None:
    """A deploy recorded by `opsmon rollback` (another tracker on the same file) becomes the
    daemon's current one."""
    daemon = DeployTracker(store, SystemClock(), stable_after=60)
    cli = DeployTracker(store, SystemClock(), stable_after=60)
    see(daemon, "c1", V2)
    cli.seen("web", "shop", "c3", "shop_web_1", "app:v1", V1, seconds(10), origin="rollback")
    current = daemon.current("web")
    assert current is not None and current.container_id == "c3" and current.origin == "rollback"


def test_an_older_container_can_be_current_again(store: RollbackStore) -> None:
    """Compose may start a kept container again (e.g. the failed one at the next `up`): it is
    followed as the current one, not replaced by the newest record."""
    tracker = DeployTracker(store, SystemClock(), stable_after=60)
    see(tracker, "c1", V2)
    see(tracker, "c2", V1, seconds(10))
    assert not see(tracker, "c1", V2, seconds(20))
    current = tracker.current("web")
    assert current is not None and current.container_id == "c1"
