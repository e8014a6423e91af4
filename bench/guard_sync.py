"""The cost of sharing rollback's guard state through the cluster store (cluster/guard_sync.py).

    .venv/bin/python bench/guard_sync.py                     # 50 services, 200 rounds
    .venv/bin/python bench/guard_sync.py --services 200 --rounds 500

A real PostgreSQL 15 on 127.0.0.1 and two instances' real SQLite stores in a temporary
folder. Instance A has, per service, a last known good, a bad image and a rollback done in
the last hour, and a freeze on every fifth service; both instances run rounds until B holds
all of it. Then the steady state, which is what every round costs forever: both instances
run `--rounds` rounds each with nothing new. Printed: the time of one steady round (p50,
p95, max, in ms, both instances alternating) and the store transactions per steady round
(`xact_commit` of the database; one statement is one transaction in autocommit).
B takes A's last known goods over from this engine's containers only, so in this benchmark
(no containers) they are left out of B's state (logged once per image).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.clock import SystemClock
from monitor.cluster.guard_sync import GuardSharer
from monitor.cluster.rollback_share import Adoption
from monitor.cluster.store import ClusterStore
from monitor.rollback.guards import adopt, local_guards
from monitor.rollback.journal import Journal, Rollback, Status, Step, new_id
from monitor.rollback.snapshot import Snapshot
from monitor.rollback.store import RollbackStore, open_store
from tests.support.postgres import PostgresCluster, PostgresTemplate, available


class NoEngine:
    """Guard state of one SQLite store; no engine behind it (adopted LKGs are skipped)."""

    def __init__(self, store: RollbackStore) -> None:
        self.store = store

    def guard_state(self, me: str, since: datetime) -> object:
        return local_guards(self.store, me, since)

    async def adopt_guards(self, adoption: Adoption) -> None:
        async def no_snapshot(_: object) -> None:
            return None

        await adopt(self.store, adoption, no_snapshot)


def committed(server: PostgresCluster) -> int:
    """Transactions committed in the app database so far."""
    rows = server.sql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    return int(rows[0][0])


def seed(store: RollbackStore, services: int) -> None:
    """Per service an LKG, a bad image and a finished rollback; every fifth one frozen."""
    now = datetime.now(UTC)
    journal = Journal(store)
    for n in range(services):
        service = f"s{n}"
        snapshot = Snapshot(
            f"c{n}", f"shop-{service}-1", f"app{n}:v1", f"sha256:{n:064x}", {}, {}, {}
        )
        store.save_lkg(service, "shop", snapshot, now - timedelta(minutes=30))
        store.mark_bad(service, f"sha256:{n + 10**6:064x}", f"app{n}:v2", "crash-looped", now)
        if n % 5 == 0:
            store.freeze(service, f"rollback r{n} failed", now)
        record = Rollback(
            new_id(), service, "shop", "recreate", "auto", Status.SUCCEEDED, Step.VERIFIED,
            f"app{n}:v2", "", f"app{n}:v1", "", "v1", "", "", True, "", "unhealthy", [],
            "1@host", now - timedelta(minutes=5), now, finished_at=now,
        )  # fmt: skip
        journal.note(record)


async def measure(server: PostgresCluster, folder: Path, services: int, rounds: int) -> None:
    a_store, b_store = open_store(folder / "a"), open_store(folder / "b")
    seed(a_store, services)
    clock = SystemClock()
    instances = []
    for name, store in (("a", a_store), ("b", b_store)):
        cluster = ClusterStore(server.dsn(), name, timeout=5.0)
        port = NoEngine(store)
        instances.append((GuardSharer(cluster, lambda p=port: p, str, clock), cluster))
    for sharer, _ in (*instances, *instances):  # A writes, B adopts (and writes back once)
        await sharer.round()
    for sharer, _ in (*instances, *instances):
        await sharer.round()
    frozen = sum(1 for n in range(services) if b_store.frozen(f"s{n}") is not None)
    counted = sum(
        Journal(b_store).executed_since(f"s{n}", datetime.now(UTC) - timedelta(hours=1))
        for n in range(services)
    )
    print(f"B after the first rounds: {frozen} freezes, {counted} rollbacks of A counted")

    # A backend reports its counters when it exits: close, count, run, close, count.
    for _, cluster in instances:
        await cluster.close()
    await asyncio.sleep(1.0)
    before = committed(server)
    times: list[float] = []
    for _ in range(rounds):
        for sharer, _ in instances:
            started = time.perf_counter()
            await sharer.round()
            times.append((time.perf_counter() - started) * 1000)
    for _, cluster in instances:
        await cluster.close()
    await asyncio.sleep(1.0)
    after = committed(server)
    steady = 2 * rounds
    # The first counter read is a transaction of its own.
    per_round = (after - before - 1) / steady
    times.sort()
    p50 = statistics.median(times)
    print(
        f"{services} services, {steady} steady rounds: one round p50 {p50:.2f} ms, "
        f"p95 {times[int(0.95 * len(times))]:.2f} ms, max {times[-1]:.2f} ms; "
        f"{per_round:.2f} store transactions per round"
    )
    a_store.close()
    b_store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    why = available()
    if why:
        raise SystemExit(why)
    logging.disable(logging.WARNING)
    template = PostgresTemplate.create()
    server = template.clone()
    try:
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(measure(server, Path(folder), args.services, args.rounds))
    finally:
        server.destroy()


if __name__ == "__main__":
    main()
