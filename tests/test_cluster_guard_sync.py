"""Rollback's guard state shared through a real PostgreSQL cluster store between two
instances, each with its own SQLite state and the real coordinator: a new leader holds to the
old leader's freezes, bad images, last known good and rollbacks done; the store away loses
nothing; another instance's rollback is never resumed here as an orphan."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.clock import SystemClock
from monitor.cluster.guard_sync import GuardSharer
from monitor.cluster.store import ClusterStore, StoreUnavailable
from monitor.config import load_config
from monitor.redaction import Redactor
from monitor.rollback.coordinator import Coordinator, Request
from monitor.rollback.guards import StoreGuards
from monitor.rollback.journal import Journal, Rollback, Status, Step, hour_ago, new_id
from monitor.rollback.policy import Action, HealthFacts
from monitor.rollback.session import RollbackSession
from monitor.rollback.store import RollbackStore
from tests.support.postgres import PostgresCluster, PostgresFactory
from tests.support.rollback import Deployment
from tests.support.waiting import async_wait_until

CANARY = "canary-" + uuid.uuid4().hex
UNHEALTHY = HealthFacts(unhealthy=("web-health",), evidence=("web-health: 404",))


@dataclass
class Instance:
    """One opsmon instance's rollback state and its share of the cluster store."""

    name: str
    session: RollbackSession
    cluster: ClusterStore
    sharer: GuardSharer

    @property
    def store(self) -> RollbackStore:
        return self.session.store

    @property
    def coordinator(self) -> Coordinator:
        assert self.session.coordinator is not None
        return self.session.coordinator

    async def round(self) -> None:
        """One renewal period's share of the guard state."""
        assert await self.sharer.round()

    async def first_round_that_works(self) -> None:
        """Rounds, as the member runs them every period, until one reaches the store (the
        first after a restart of the server may find its old connection closed)."""

        async def worked() -> bool:
            try:
                await self.round()
            except StoreUnavailable:
                return False
            return True

        await async_wait_until(worked, timeout=15)


@pytest.fixture
async def instances(tmp_path: Path) -> AsyncIterator[Callable[[PostgresCluster, str], Instance]]:
    """Builds instances (config, state folder, coordinator on the local engine) that share
    one cluster store; releases them after the test."""
    made: list[Instance] = []

    def make(server: PostgresCluster, name: str, project: str = "shop") -> Instance:
        folder = tmp_path / name
        folder.mkdir()
        path = folder / "opsmon.yml"
        path.write_text(
            f"state_dir: {folder / 'state'}\n"
            "checks:\n"
            "  - {name: web-health, type: http, service: web, url: 'http://127.0.0.1:1/health'}\n"
            "rollback:\n"
            "  mode: enforce\n"
            "  max_per_hour: 1\n"
            "  services:\n"
            f"    web: {{project: {project}}}\n"
        )
        session = RollbackSession(
            load_config(path, environ={}), Redactor([CANARY]), "daemon", False
        )
        cluster = ClusterStore(server.dsn(), name, timeout=3.0)
        sharer = GuardSharer(
            cluster,
            lambda: StoreGuards(session.store, session.ops),
            session.redactor.text,
            SystemClock(),
        )
        instance = Instance(name, session, cluster, sharer)
        made.append(instance)
        return instance

    yield make
    for instance in made:
        await instance.cluster.close()
        await instance.session.aclose()


def in_flight_record(service: str, owner: str) -> Rollback:
    """A rollback some process began (it changes containers) and has not finished."""
    now = datetime.now(UTC)
    return Rollback(
        id=new_id(),
        service=service,
        project="shop",
        strategy="recreate",
        trigger="auto",
        status=Status.IN_PROGRESS,
        step=Step.STOP_OLD,
        bad_image="app:v2",
        bad_image_id="sha256:" + "2" * 64,
        target_image="app:v1",
        target_image_id="sha256:" + "1" * 64,
        target_tag="v1",
        old_container_id="c" * 64,
        old_name="shop_web_1",
        old_was_running=True,
        failed_name="shop_web_1_failed",
        reason="web is unhealthy since its deploy",
        evidence=[],
        owner=owner,
        started_at=now,
        updated_at=now,
    )


@pytest.mark.docker
async def test_a_new_leader_uses_the_shared_lkg_and_holds_to_the_freeze(
    make_postgres: PostgresFactory, instances: Callable[..., Instance], deployment: Deployment
) -> None:
    """B never saw v1 run: after one round it plans the rollback to A's last known good v1;
    after A's failed rollback froze web and marked v2 bad, B refuses to roll web back; an
    unfreeze on B ends the freeze on A too; no env value or secret in a reason reaches the
    store."""
    server = make_postgres()
    project = deployment.project
    a, b = instances(server, "opsmon-1", project), instances(server, "opsmon-2", project)
    deployment.env = {"API_TOKEN": CANARY}
    deployment.deploy("v1")
    current = await a.coordinator.current("web")
    assert current is not None and current.snapshot is not None
    a.session.tracker.promote(current.deploy, current.snapshot, datetime.now(UTC))
    await a.round()
    await b.round()  # B adopts v1 while its container still runs on this engine

    deployment.deploy("v2")
    dry = Request("web", UNHEALTHY, manual=True, dry_run=True)
    plan = await b.coordinator.handle(dry)
    assert plan.decision.action is Action.DRY_RUN
    assert plan.decision.target_image_id == deployment.images.ids["v1"]

    # A (the leader) rolls back, the rollback fails: v2 is bad and web is frozen.
    bad = await a.coordinator.current("web")
    assert bad is not None
    a.session.tracker.mark_bad(bad.deploy, f"web said token={CANARY}", datetime.now(UTC))
    a.store.freeze("web", f"rollback r1 failed: token={CANARY}", datetime.now(UTC))
    before = await b.coordinator.handle(dry)
    assert before.decision.action is Action.DRY_RUN  # not shared yet: B would roll back

    await a.round()
    await b.round()
    refused = await b.coordinator.handle(Request("web", UNHEALTHY))
    assert refused.decision.action is Action.SKIP
    assert "automation is frozen for web" in refused.decision.reason
    assert (await b.coordinator.handle(dry)).decision.action is Action.SKIP
    assert b.store.bad_image("web", deployment.images.ids["v2"]) is not None

    assert b.coordinator.unfreeze("web")
    await b.round()
    await a.round()
    assert a.store.frozen("web") is None and b.store.frozen("web") is None
    await a.round()
    await b.round()
    assert b.store.frozen("web") is None  # the old freeze does not come back

    # The env value and the secret in the reasons are nowhere in the store; B's own copy of
    # the last known good has the settings (read from the engine), as A's has.
    tables = ("freezes", "lifts", "bad_images", "lkg")
    rows = [server.sql(f"SELECT * FROM opsmon_cluster_rollback_{t}") for t in tables]
    assert all(rows) and CANARY not in repr(rows)
    lkg = b.store.lkg("web")
    assert lkg is not None and lkg.snapshot.env.get("API_TOKEN") == CANARY


async def test_a_rollback_done_elsewhere_counts_and_is_never_resumed_here(
    make_postgres: PostgresFactory, instances: Callable[..., Instance]
) -> None:
    """A's rollback of web (in flight, its owner on another host) reaches B within one round:
    B counts it against max_per_hour, so the policy refuses a second one, and B's crash
    recovery finds no orphan to resume; when A finishes it, B's count stays."""
    server = make_postgres()
    a, b = instances(server, "opsmon-1"), instances(server, "opsmon-2")
    record = in_flight_record("web", owner="4242@another-host")
    Journal(a.store).begin(record)
    since = hour_ago(datetime.now(UTC))
    assert b.coordinator.journal.executed_since("web", since) == 0

    await a.round()
    await b.round()
    assert b.coordinator.journal.executed_since("web", since) == 1
    assert b.coordinator.orphans() == [] and b.coordinator.journal.in_flight() == []
    # The orphan search of A, for comparison, does find its own record.
    assert [r.id for r in a.coordinator.orphans()] == [record.id]

    Journal(a.store).finish(record, Status.SUCCEEDED, Step.VERIFIED, "done", datetime.now(UTC))
    await a.round()
    await b.round()
    assert b.coordinator.journal.executed_since("web", since) == 1
    assert b.coordinator.orphans() == []
    row = server.sql(f"SELECT status FROM opsmon_cluster_rollbacks WHERE id = '{record.id}'")
    assert row == [("succeeded",)]


async def test_the_store_away_loses_nothing_and_catches_up(
    make_postgres: PostgresFactory, instances: Callable[..., Instance]
) -> None:
    """With the store stopped, A's freeze holds on A and a round fails (nothing written, no
    exception swallowed); when the store answers again the next rounds bring it to B."""
    server = make_postgres()
    a, b = instances(server, "opsmon-1"), instances(server, "opsmon-2")
    await a.round()
    await b.round()
    server.stop()
    a.store.freeze("web", "rollback r9 failed", datetime.now(UTC))
    a.store.mark_bad("web", "sha256:" + "9" * 64, "app:v9", "crash-looped", datetime.now(UTC))
    with pytest.raises(StoreUnavailable):
        await a.round()
    assert a.store.frozen("web") is not None
    server.start()

    await b.first_round_that_works()
    assert b.store.frozen("web") is None  # A has not written it yet
    await a.first_round_that_works()
    await b.round()
    frozen = b.store.frozen("web")
    assert frozen is not None and frozen.reason == "rollback r9 failed"
    assert b.store.bad_image("web", "sha256:" + "9" * 64) is not None


async def test_times_survive_the_round_trip(
    make_postgres: PostgresFactory, instances: Callable[..., Instance]
) -> None:
    """A freeze adopted through the store keeps its time to the microsecond, so an unfreeze
    of the adopted copy lifts the original."""
    server = make_postgres()
    a, b = instances(server, "opsmon-1"), instances(server, "opsmon-2")
    since = datetime.now(UTC) - timedelta(seconds=1.2345678)
    a.store.freeze("web", "rollback r2 failed", since)
    await a.round()
    await b.round()
    adopted = b.store.frozen("web")
    original = a.store.frozen("web")
    assert adopted is not None and original is not None and adopted.since == original.since
    assert b.store.unfreeze("web")
    await b.round()
    await a.round()
    assert a.store.frozen("web") is None
