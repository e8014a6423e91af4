"""The per-service rollback lease in the cluster store (monitor/cluster/leases.py) on a real
PostgreSQL on 127.0.0.1.

    .venv/bin/python bench/service_leases.py
    .venv/bin/python bench/service_leases.py --ops 1000 --takers 16 --rounds 50

Prints, per operation (take a free lease, find it ours, renew, read the holder, release):
milliseconds per call (median and 95th percentile) and transactions the store committed per
call (each is one autocommit statement, so PgBouncer in transaction mode is fine); then
`--takers` processes' worth of connections taking one free lease at once, `--rounds` times:
how many won each round (must be exactly 1) and how long the race took.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.cluster.leases import ClusterLeases
from monitor.rollback.lease import LeaseHeld
from tests.support.postgres import PostgresCluster, PostgresTemplate, available

_OPEN = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'opsmon%'"


def committed(server: PostgresCluster) -> int:
    """Transactions committed in the app database so far, once every opsmon connection has
    ended (a backend reports its counts when it exits, or only every few seconds)."""
    while server.sql(_OPEN)[0][0]:
        time.sleep(0.05)
    rows = server.sql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    return int(rows[0][0])


async def batch(
    server: PostgresCluster, ops: int, call: Callable[[ClusterLeases, int], Awaitable[object]]
) -> tuple[list[float], int]:
    """One connection: connect, then `call` `ops` times; (ms per call, transactions in all,
    the connection's own and the counter's reads included)."""
    before = committed(server)
    leases = ClusterLeases(server.dsn(), "bench-1", owner="1@bench-1")
    await leases.holder("warmup")  # connected and migrated
    took = []
    for i in range(ops):
        started = time.perf_counter()
        await call(leases, i)
        took.append((time.perf_counter() - started) * 1000)
    await leases.aclose()
    return took, committed(server) - before


async def timed(
    server: PostgresCluster,
    name: str,
    ops: int,
    overhead: int,
    call: Callable[[ClusterLeases, int], Awaitable[object]],
) -> None:
    """Print ms per call and transactions per call of `ops` calls of `call`."""
    took, transactions = await batch(server, ops, call)
    p95 = statistics.quantiles(took, n=20)[-1]
    print(
        f"{name:<18} {statistics.median(took):6.2f} ms median, {p95:6.2f} ms p95, "
        f"{(transactions - overhead) / ops:.2f} transactions per call"
    )


async def figures(server: PostgresCluster, ops: int, takers: int, rounds: int) -> None:
    """Print every figure."""
    dsn = server.dsn()
    await batch(server, 0, lambda leases, i: leases.holder("x"))  # the schema, once
    _, overhead = await batch(server, 0, lambda leases, i: leases.holder("x"))
    await timed(
        server, "take a free lease", ops, overhead, lambda m, i: m.acquire(f"s{i}", "gate", "r")
    )
    await timed(server, "find it ours", ops, overhead, lambda m, i: m.acquire(f"s{i}", "gate", "r"))
    await timed(server, "renew", ops, overhead, lambda m, i: m.renew(f"s{i}"))
    await timed(server, "read the holder", ops, overhead, lambda m, i: m.holder(f"s{i}"))
    await timed(server, "release", ops, overhead, lambda m, i: m.release(f"s{i}"))

    many = [ClusterLeases(dsn, f"host-{n}", owner=f"{n}@host-{n}") for n in range(takers)]
    await asyncio.gather(*(m.holder("warmup") for m in many))

    async def take(taker: ClusterLeases, service: str) -> bool:
        try:
            return await taker.acquire(service, "gate", "r")
        except LeaseHeld:
            return False

    winners, races = [], []
    for round_ in range(rounds):
        started = time.perf_counter()
        won = await asyncio.gather(*(take(m, f"race-{round_}") for m in many))
        races.append((time.perf_counter() - started) * 1000)
        winners.append(sum(won))
    await asyncio.gather(*(m.aclose() for m in many))
    print(
        f"{takers} takers at once, {rounds} rounds: winners per round {sorted(set(winners))}; "
        f"race decided in {statistics.median(races):.1f} ms median, {max(races):.1f} ms max"
    )


def main() -> None:
    """Start a PostgreSQL of its own, print the figures, remove it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--takers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    why = available()
    if why:
        raise SystemExit(why)
    template = PostgresTemplate.create()
    server = template.clone({"max_connections": str(args.takers + 10)})
    try:
        asyncio.run(figures(server, args.ops, args.takers, args.rounds))
    finally:
        server.destroy()
        shutil.rmtree(template.root, ignore_errors=True)


if __name__ == "__main__":
    main()
