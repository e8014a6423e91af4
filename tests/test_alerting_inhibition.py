"""Inhibition by depends_on: the database going down pages once, listing the services it took
down as affected; a dependent that still fails after the root recovers is sent then."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.alerting.inhibition import inhibit
from tests.support.alerting import Harness, alerting_config, alerts_of, http_check
from tests.support.receiver import Receiver

CHECKS = [
    http_check("database", "db"),
    http_check("backend-health", "backend", depends_on=["database"]),
    http_check("backend-ready", "backend", depends_on=["backend-health"]),
    http_check("frontend", "frontend", depends_on=["backend-health"]),
]


@pytest.fixture
def harness(tmp_path: Path, receiver: Receiver) -> Harness:
    """Database <- backend <- frontend, default group_wait of 10 s."""
    config = alerting_config(
        group_wait="10s",
        group_interval="30s",
        channels=[{"name": "hooks", "type": "webhook", "url": receiver.url()}],
    )
    return Harness(tmp_path, config, CHECKS)


async def test_database_outage_pages_once_with_the_affected_services(
    harness: Harness, receiver: Receiver
) -> None:
    """Only DatabaseConnectionFailing-style root goes out; dependents are listed as affected."""
    for name in ("backend-health", "frontend", "database", "backend-ready"):
        harness.fail(name)
        await harness.step(1)
    await harness.run_for(120, tick=5)
    (message,) = [r.json for r in receiver.accepted()]
    assert alerts_of(message) == [("firing", "database")]
    assert message["alerts"][0]["annotations"]["affected"] == (
        "backend-health (backend), backend-ready (backend), frontend (frontend)"
    )
    assert harness.metrics.alerts_suppressed.labels("inhibited")._value.get() == 3
    await harness.close()


async def test_dependent_still_failing_after_the_root_recovers_is_sent(
    harness: Harness, receiver: Receiver
) -> None:
    """When the root resolves, a dependent that still fails once it has had the time to
    report its recovery (its success_threshold) is a problem of its own."""
    harness.fail("database")
    harness.fail("backend-health")
    await harness.run_for(60, tick=5)
    harness.recover("database")
    await harness.run_for(60, tick=5)
    sent = [alerts_of(r.json) for r in receiver.accepted()]
    assert sent == [[("firing", "database")], [("resolved", "database")]]
    await harness.run_for(120, tick=5)
    sent = [alerts_of(r.json) for r in receiver.accepted()]
    assert sent[2:] == [[("firing", "backend-health")]]
    await harness.close()


async def test_dependents_recovering_after_the_root_are_never_paged(
    harness: Harness, receiver: Receiver
) -> None:
    """The database recovers; its dependents, still inside their success_threshold, recover
    a little later: no release storm, only the root's firing and resolved."""
    for name in ("database", "backend-health", "frontend"):
        harness.fail(name)
        await harness.step(1)
    await harness.run_for(60, tick=5)
    harness.recover("database")
    await harness.run_for(50, tick=5)
    harness.recover("backend-health")
    harness.recover("frontend")
    await harness.run_for(300, tick=5)
    sent = [alerts_of(r.json) for r in receiver.accepted()]
    assert sent == [[("firing", "database")], [("resolved", "database")]]
    await harness.close()


async def test_the_roots_page_is_updated_when_more_checks_are_affected(
    harness: Harness, receiver: Receiver
) -> None:
    """The root pages before its dependents fail; as they do, one update (at most once per
    group_interval) lists them."""
    harness.fail("database")
    await harness.run_for(30, tick=5)
    harness.fail("backend-health")
    await harness.step(1)
    harness.fail("frontend")
    await harness.run_for(60, tick=5)
    messages = [r.json for r in receiver.accepted()]
    assert [alerts_of(m) for m in messages] == [[("firing", "database")]] * 2
    assert "affected" not in messages[0]["alerts"][0]["annotations"]
    assert messages[1]["alerts"][0]["annotations"]["affected"] == (
        "backend-health (backend), frontend (frontend)"
    )
    await harness.run_for(120, tick=5)
    assert len(receiver.accepted()) == 2  # nothing new to say: no more updates
    await harness.close()


def test_root_is_the_deepest_failing_dependency(harness: Harness) -> None:
    """A chain of failures is attributed to its bottom; healthy links are skipped."""
    for name in ("database", "backend-ready"):
        harness.fail(name)
    result = inhibit(harness.store.live_incidents(), lambda n: harness.checks[n].depends_on)
    ready = next(i for i in harness.store.live_incidents() if i.source == "backend-ready")
    assert result.roots == {ready.id: "database"}
    assert result.affected == {"database": ("backend-ready (backend)",)}


def test_a_root_failing_on_another_instance_inhibits_its_dependents(harness: Harness) -> None:
    """Sharding: the database is run and judged failing elsewhere (no incident here); the
    backend that stands on it is held back here, not paged as a root of its own."""
    harness.fail("backend-health")
    result = inhibit(
        harness.store.live_incidents(),
        lambda n: harness.checks[n].depends_on,
        firing_elsewhere={"database": "db"},
    )
    backend = next(i for i in harness.store.live_incidents() if i.source == "backend-health")
    assert result.roots == {backend.id: "database"}
    alone = inhibit(harness.store.live_incidents(), lambda n: harness.checks[n].depends_on)
    assert alone.roots == {}


def test_a_dependent_failing_on_another_instance_is_listed_by_the_root_here(
    harness: Harness,
) -> None:
    """Sharding: the database fails here, the backend that stands on it fails on its owner
    (held back there): the database's page here lists the backend as affected."""
    harness.fail("database")
    result = inhibit(
        harness.store.live_incidents(),
        lambda n: harness.checks[n].depends_on if n in harness.checks else (),
        firing_elsewhere={"backend-health": "backend", "unrelated": None},
    )
    assert result.roots == {}
    assert result.affected == {"database": ("backend-health (backend)",)}
