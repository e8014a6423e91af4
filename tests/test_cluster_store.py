"""The cluster's tables on a real PostgreSQL: one lease holder at a time, an epoch that grows
on every takeover, fenced writes refused under a stale epoch, migrations run once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from monitor.cluster.rollback_share import GuardState, SharedFreeze, SharedLkg, SharedRollback
from monitor.cluster.store import MIGRATIONS, ClusterStore, NameTaken, StoreUnavailable
from tests.support.postgres import APP_PASSWORD, PostgresCluster, PostgresFactory
from tests.support.waiting import async_wait_until

LEASE = 1.0
WEB_DB = ["web", "db"]


def store(server: PostgresCluster, name: str) -> ClusterStore:
    return ClusterStore(server.dsn(), name, timeout=3.0)


async def test_one_holder_and_a_new_epoch_on_takeover(make_postgres: PostgresFactory) -> None:
    """Two instances race for the lease: one holds it; the other takes it only after it
    expired unrenewed, under a higher epoch; a renewal by the holder keeps the epoch."""
    server = make_postgres()
    a, b = store(server, "a"), store(server, "b")
    first, second = await asyncio.gather(a.renew(LEASE, "t"), b.renew(LEASE, "t"))
    holders = {first.holder, second.holder} - {""}
    assert len(holders) == 1
    holder, other = (a, b) if holders == {"a"} else (b, a)
    epoch = (await holder.renew(LEASE, "t")).epoch
    assert (await holder.renew(LEASE, "t")).epoch == epoch
    assert (await other.renew(LEASE, "t")).holder == holder.instance

    taken = await async_wait_until(lambda: _taken_by(other, holder.instance), timeout=LEASE * 3)
    assert taken.epoch == epoch + 1
    assert (await holder.renew(LEASE, "t")).holder == other.instance
    await asyncio.gather(a.close(), b.close())


async def _taken_by(candidate: ClusterStore, old: str) -> object:
    row = await candidate.renew(LEASE, "t")
    return row if row.holder == candidate.instance else None


async def test_writes_under_a_stale_epoch_insert_nothing(make_postgres: PostgresFactory) -> None:
    """After a takeover, the old leader's claim and action (its epoch) are refused; the new
    leader's are granted; the log keeps the new leader's claim."""
    server = make_postgres()
    old, new = store(server, "old"), store(server, "new")
    stale = (await old.renew(LEASE, "t")).epoch
    await async_wait_until(lambda: _taken_by(new, "old"), timeout=LEASE * 3)
    current = (await new.renew(LEASE, "t")).epoch
    now = datetime.now(UTC)

    assert not await old.claim(stale, "hooks", "g", "c1", "n-old", now, False)
    assert not await old.act(stale, "rollback decision for web")
    assert await new.claim(current, "hooks", "g", "c1", "n-new", now, False)
    assert await new.act(current, "rollback decision for web")
    logged = await new.logged("hooks", "g")
    assert logged is not None and logged.notification_id == "n-new" and not logged.delivered
    await new.delivered("hooks", "g", "n-new", [])
    delivered = await old.logged("hooks", "g")
    assert delivered is not None and delivered.delivered
    await asyncio.gather(old.close(), new.close())


async def test_a_group_is_claimed_again_only_for_news(make_postgres: PostgresFactory) -> None:
    """The leader's second copy of the same content is refused (nothing new), a reminder or
    different content is granted; a later leader re-claims an undelivered claim."""
    server = make_postgres()
    a = store(server, "a")
    epoch = (await a.renew(LEASE, "t")).epoch
    t1 = datetime.now(UTC)
    assert await a.claim(epoch, "hooks", "g", "firing", "n1", t1, False)
    await a.delivered("hooks", "g", "n1", [])
    t2 = datetime.now(UTC)
    assert not await a.claim(epoch, "hooks", "g", "firing", "n2", t2, False)
    assert await a.claim(epoch, "hooks", "g", "firing", "n3", t2, True)
    assert await a.claim(epoch, "hooks", "g", "resolved", "n4", datetime.now(UTC), False)
    await a.close()


async def test_instances_starting_together_migrate_once(make_postgres: PostgresFactory) -> None:
    """Five instances opening a fresh store at once all work, and the schema is recorded
    once per step."""
    server = make_postgres()
    stores = [store(server, f"i{n}") for n in range(5)]
    rows = await asyncio.gather(*(s.renew(LEASE, "t") for s in stores))
    assert len({r.holder for r in rows} - {""}) == 1
    versions = server.sql("SELECT version FROM opsmon_cluster_schema ORDER BY version")
    assert versions == [(n,) for n in range(1, len(MIGRATIONS) + 1)]
    await asyncio.gather(*(s.close() for s in stores))


async def test_an_unreachable_store_says_where_without_the_password(
    make_postgres: PostgresFactory,
) -> None:
    """A stopped server: StoreUnavailable names host:port, never the DSN's password; the next
    call after the server is back works again."""
    server = make_postgres()
    a = store(server, "a")
    await a.renew(LEASE, "t")
    server.stop()
    try:
        await a.renew(LEASE, "t")
    except StoreUnavailable as exc:
        message = str(exc)
    else:
        raise AssertionError("renew worked on a stopped server")
    assert f"127.0.0.1:{server.port}" in message and APP_PASSWORD not in message
    server.start()
    assert (await a.renew(LEASE, "t")).holder == "a"
    await a.close()


async def test_a_second_process_with_the_same_name_is_refused(
    make_postgres: PostgresFactory,
) -> None:
    """Two processes configured with one `cluster.instance`: the second is told the name is
    taken (it would share the first one's lease); once the first has left, it may join."""
    server = make_postgres()
    first, second = store(server, "opsmon"), store(server, "opsmon")
    assert (await first.renew(LEASE, "t")).holder == "opsmon"
    try:
        await second.renew(LEASE, "t")
    except NameTaken as exc:
        assert "give each instance its own `cluster.instance`" in str(exc)
    else:
        raise AssertionError("the second process joined under a name in use")
    await first.release((await first.renew(LEASE, "t")).epoch)
    assert (await second.renew(LEASE, "t")).holder == "opsmon"
    await asyncio.gather(first.close(), second.close())


async def test_concurrent_claimers_never_take_the_same_shard(
    make_postgres: PostgresFactory,
) -> None:
    """Four instances claim from 200 free rows at once, several rounds: no row is taken by
    two of them, and between them they take every row (SKIP LOCKED skips, never waits)."""
    server = make_postgres()
    stores = [store(server, f"i{n}") for n in range(4)]
    names = [f"check-{n:03d}" for n in range(200)]
    await stores[0].add_shards(names)
    taken: dict[str, list[str]] = {}
    for _ in range(3):
        results = await asyncio.gather(*(s.claim_shards(names, 30, 30) for s in stores))
        for member, claimed in zip(stores, results, strict=True):
            for name in claimed:
                taken.setdefault(name, []).append(member.instance)
    assert all(len(owners) == 1 for owners in taken.values()), taken
    assert len(taken) == 200
    rows = await stores[0].shards()
    assert {r.check: r.owner for r in rows if r.owner} == {n: o[0] for n, o in taken.items()}
    await asyncio.gather(*(s.close() for s in stores))


async def test_a_shard_keeps_its_generation_until_it_changes_owner(
    make_postgres: PostgresFactory,
) -> None:
    """Renewal keeps a row's generation; a row released and claimed by another gets a
    higher one; an expired row is claimable, a live one of another instance is not."""
    server = make_postgres()
    a, b = store(server, "a"), store(server, "b")
    await a.add_shards(["web", "db"])
    claimed = await a.claim_shards(WEB_DB, 2, 30)
    assert set(claimed) == {"web", "db"}
    assert await a.renew_shards(["web", "db"], 30) == claimed
    assert await b.claim_shards(WEB_DB, 2, 30) == {}
    await a.release_shards(["web"])
    taken = await b.claim_shards(WEB_DB, 2, 30)
    assert set(taken) == {"web"} and taken["web"] > max(claimed.values())
    assert await a.renew_shards(["web", "db"], 30) == {"db": claimed["db"]}
    # b's row runs out unrenewed: a takes it back under a new generation.
    server.sql("UPDATE opsmon_cluster_shards SET expires_at = now() WHERE owner = 'b'")
    retaken = await a.claim_shards(WEB_DB, 1, 30)
    assert set(retaken) == {"web"} and retaken["web"] > taken["web"]
    await a.drop_shards(["db"])
    assert [r.check for r in await b.shards()] == ["web"]
    await asyncio.gather(a.close(), b.close())


async def test_a_page_about_sharded_checks_is_claimed_only_by_their_owner(
    make_postgres: PostgresFactory,
) -> None:
    """The owner of every check a copy names may claim it; an instance owning only some,
    or one whose shard expired and moved, is refused; the new owner's claim of the same
    news is refused too (already delivered), new news is granted."""
    server = make_postgres()
    a, b = store(server, "a"), store(server, "b")
    await a.add_shards(["web", "db"])
    await a.claim_shards(WEB_DB, 1, 30)
    await b.claim_shards(WEB_DB, 1, 30)
    rows = {r.check: r.owner for r in await a.shards()}
    mine = next(c for c, o in rows.items() if o == "a")
    theirs = next(c for c, o in rows.items() if o == "b")
    now = datetime.now(UTC)
    assert not await a.claim_sharded([mine, theirs], "hooks", "g", "c1", "n0", now, False)
    assert await a.claim_sharded([mine], "hooks", "g", "c1", "n1", now, False)
    await a.delivered("hooks", "g", "n1", [])

    # a stops renewing (paused): its row runs out and b takes it.
    server.sql("UPDATE opsmon_cluster_shards SET expires_at = now() WHERE owner = 'a'")
    assert set(await b.claim_shards(WEB_DB, 1, 30)) == {mine}
    later = datetime.now(UTC)
    assert not await a.claim_sharded([mine], "hooks", "g", "c2", "n2", later, False)
    assert not await b.claim_sharded([mine], "hooks", "g", "c1", "n3", later, False)
    assert await b.claim_sharded([mine], "hooks", "g", "c2", "n4", later, False)
    await asyncio.gather(a.close(), b.close())


async def test_a_claim_takes_only_the_checks_it_names(make_postgres: PostgresFactory) -> None:
    """An instance whose config lacks a check (another's config has it) never claims its
    row: it could not run it."""
    server = make_postgres()
    a = store(server, "a")
    await a.add_shards(["web", "db", "only-elsewhere"])
    assert set(await a.claim_shards(WEB_DB, 3, 30)) == {"web", "db"}
    rows = {r.check: r.owner for r in await a.shards()}
    assert rows["only-elsewhere"] is None
    await a.close()


async def test_guard_rows_keep_the_latest_lkg_and_read_back_whole(
    make_postgres: PostgresFactory,
) -> None:
    """Rollback guard rows: an older last known good written after a newer one does not
    replace it; a freeze written twice is one row; everything reads back as written (times
    to the microsecond, a rollback still without an end), rollbacks only since the given
    time."""
    server = make_postgres()
    a, b = store(server, "a"), store(server, "b")
    t = datetime(2026, 11, 29, 8, 0, 0, 123456, tzinfo=UTC)
    later = t + timedelta(minutes=5)
    freeze = SharedFreeze("web", t, "rollback r1 failed", "a")
    newer = SharedLkg("web", "shop", "app:v2", "sha256:2", "c2", later, "b")
    run = SharedRollback("r1", "web", "a", "in_progress", later, None, "app:v3", "app:v2")
    await b.share_guards(GuardState(lkgs=(newer,)))
    older = SharedLkg("web", "shop", "app:v1", "sha256:1", "c1", t, "a")
    await a.share_guards(GuardState(freezes=(freeze,), lkgs=(older,), rollbacks=(run,)))
    await a.share_guards(GuardState(freezes=(freeze,)))
    await a.share_guards(GuardState())  # nothing new: no statement at all

    shared = await b.shared_guards(t)
    assert shared == GuardState(freezes=(freeze,), lkgs=(newer,), rollbacks=(run,))
    assert (await b.shared_guards(later + timedelta(seconds=1))).rollbacks == ()
    await asyncio.gather(a.close(), b.close())
