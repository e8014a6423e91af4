"""PostgreSQL check cost: connect and query time per run against a real local PostgreSQL 15.

    .venv/bin/python bench/postgres_check.py              # 200 runs of each variant
    .venv/bin/python bench/postgres_check.py --runs 500

A throwaway cluster (initdb, scram-sha-256 passwords, 127.0.0.1) is started for the run and
removed after. Variants, each run sequentially `--runs` times after a few warm-up runs:
- `check`: the default check (fresh connection, facts + SELECT 1 in one round trip, close);
- `check+query`: the same with a configured `query` (a second round trip);
- `baseline`: bare psycopg — connect, SELECT 1, close — the floor any connectivity check pays.
Printed per variant: p50/p95 of connect, query and total time in ms (the check's own
[CONNECT_TIME], [QUERY_TIME], [RESPONSE_TIME] facts; the baseline is timed the same way).
Most of the connect time is SCRAM's key derivation, on both sides; it is the same for the app.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from monitor.checks.context import CheckContext
from monitor.checks.postgres import PostgresCheck, PostgresSpec
from monitor.metrics import Metrics
from tests.support.postgres import PostgresTemplate, available

WARMUP = 20  # runs discarded first (imports, caches, the server's first backends)


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):6.1f}  p95 {p95:6.1f}"


async def run_check(dsn: str, runs: int, query: str | None) -> dict[str, list[float]]:
    fields = {"name": "database", "type": "postgres", "dsn": dsn, "timeout": 5}
    if query:
        fields["query"] = query
    check = PostgresCheck(PostgresSpec.model_validate(fields), CheckContext(Metrics()))
    times: dict[str, list[float]] = {"connect": [], "query": [], "total": []}
    for _ in range(WARMUP):
        await check.run()
    for _ in range(runs):
        result = await check.run()
        if not result.ok:
            raise SystemExit(f"check failed: {result.reason}")
        times["connect"].append(result.facts["CONNECT_TIME"])
        times["query"].append(result.facts["QUERY_TIME"])
        times["total"].append(result.facts["RESPONSE_TIME"])
    return times


async def run_baseline(dsn: str, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"connect": [], "query": [], "total": []}
    for index in range(WARMUP + runs):
        started = time.perf_counter()
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        connected = time.perf_counter()
        await (await conn.execute("SELECT 1")).fetchone()
        finished = time.perf_counter()
        await conn.close()
        if index < WARMUP:
            continue
        times["connect"].append((connected - started) * 1000)
        times["query"].append((finished - connected) * 1000)
        times["total"].append((finished - started) * 1000)
    return times


async def main(runs: int) -> None:
    why = available()
    if why:
        raise SystemExit(f"needs {why}")
    template = PostgresTemplate.create()
    cluster = template.clone({"max_connections": "20"})
    try:
        dsn = cluster.dsn()
        variants = {
            "check": await run_check(dsn, runs, None),
            "check+query": await run_check(dsn, runs, "SELECT count(*) FROM pg_class"),
            "baseline": await run_baseline(dsn, runs),
        }
    finally:
        cluster.destroy()
        shutil.rmtree(template.root, ignore_errors=True)
    print(f"PostgreSQL check, {runs} sequential runs per variant, 127.0.0.1, scram-sha-256 (ms)")
    for name, times in variants.items():
        print(
            f"{name:12}  connect {percentiles(times['connect'])}"
            f"   query {percentiles(times['query'])}   total {percentiles(times['total'])}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    asyncio.run(main(parser.parse_args().runs))
