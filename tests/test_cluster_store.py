"""The cluster's tables on a real PostgreSQL: one lease holder at a time, an epoch that grows
on every takeover, fenced writes refused under a stale epoch, migrations run once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from monitor.cluster.store import MIGRATIONS, ClusterStore, NameTaken, StoreUnavailable
from tests.support.postgres import APP_PASSWORD, PostgresCluster, PostgresFactory
from tests.support.waiting import async_wait_until

LEASE = 1.0


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
    await new.delivered("hooks", "g", "n-new")
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
    await a.delivered("hooks", "g", "n1")
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
