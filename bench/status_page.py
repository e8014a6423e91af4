"""Status page benchmark: server time to answer `GET /status` (and one `/status/<check>`)
with 200 checks and 90 days of history, and what that history costs on disk.

    .venv/bin/python bench/status_page.py                 # 200 checks, 90 days
    .venv/bin/python bench/status_page.py --checks 1000 --runs 50

History is written through the daemon's own history store (`HistoryStore.add`): one day row
per check and day (as a check every 30 s gives: 2,880 runs a day, some days with failures)
plus 48 hour rows per check. The timed part is the page handler itself, in process: reading
the rows from SQLite, adding the recorder's unwritten rows, building the view, rendering the
HTML. Figures are the first request (nothing kept yet: after a start or at midnight) and the
median and 95th percentile of the `--runs` requests after it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.requests import Request

from monitor.api.auth import TokenTable
from monitor.clock import SystemClock
from monitor.status.config import StatusPageConfig
from monitor.status.data import NoIncidents, StatusData
from monitor.status.pages import StatusPages
from monitor.status.rollup import DAY, HOUR, Period, Rollup, bucket_index, period_start
from monitor.status.store import HistoryRecorder, open_history
from monitor.status.view import CheckInfo
from monitor.store import DB_FILE

RUNS_PER_DAY = 2880  # a 30 s interval
RUNS_PER_HOUR = RUNS_PER_DAY // 24


class StaticChecks:
    """The daemon's checks, frozen."""

    def __init__(self, checks: list[CheckInfo]) -> None:
        self._checks = checks

    def checks(self) -> list[CheckInfo]:
        return self._checks


def _row(rng: random.Random, check: str, period: Period, start: float, runs: int) -> Rollup:
    row = Rollup(check, period, start, total=runs)
    failures = rng.choice([0] * 20 + [1, 3, 40, runs // 10])
    row.ok = runs - min(failures, runs)
    scale = rng.uniform(3.0, 5.5)
    for _ in range(runs // 40):  # the histogram's shape, scaled to the run count
        index = bucket_index(rng.lognormvariate(scale, 0.6))
        row.histogram[index] = row.histogram.get(index, 0) + 40
    return row


def seed(state_dir: Path, checks: int, now: float) -> list[CheckInfo]:
    """Write 90 days of day rows and 48 hours of hour rows for `checks` checks."""
    rng = random.Random(42)
    store, close = open_history(state_dir)
    infos = []
    today = period_start(now, Period.DAY)
    hour = period_start(now, Period.HOUR)
    for n in range(checks):
        name = f"svc{n // 4:03d}-check{n % 4}"
        rows = [_row(rng, name, Period.DAY, today - d * DAY, RUNS_PER_DAY) for d in range(90)]
        rows += [_row(rng, name, Period.HOUR, hour - h * HOUR, RUNS_PER_HOUR) for h in range(48)]
        store.add(rows)
        state = "unhealthy" if n % 37 == 0 else "healthy"
        since = datetime.fromtimestamp(now, UTC) - timedelta(hours=n % 50)
        infos.append(CheckInfo(name, "http", f"svc{n // 4:03d}", state, since, None))
    store.prune(now)
    close()
    return infos


def _request(path: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": [],
        "query_string": b"",
        "client": ("127.0.0.1", 50000),
        "path_params": {"check": path.rsplit("/", 1)[-1]},
    }
    return Request(scope)


async def measure(
    pages: StatusPages, path: str, runs: int
) -> tuple[float, list[float], list[float], int]:
    handler = pages.page if path == "/status" else pages.check_page
    started = time.perf_counter()
    response = await handler(_request(path))  # the first: nothing kept yet
    first = (time.perf_counter() - started) * 1000
    size = len(response.body)
    times, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = await handler(_request(path))
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, response.status_code
    return first, times, cpu, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory() as folder:
        state_dir = Path(folder)
        started = time.perf_counter()
        infos = seed(state_dir, args.checks, now)
        seeded = time.perf_counter() - started
        with sqlite3.connect(state_dir / DB_FILE) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            rows = db.execute("SELECT count(*) FROM history_rollups").fetchone()[0]
        size = sum(p.stat().st_size for p in state_dir.iterdir() if p.name.startswith(DB_FILE))
        store, close = open_history(state_dir)
        recorder = HistoryRecorder(store)
        data = StatusData(StaticChecks(infos), store, recorder, NoIncidents(), SystemClock())
        pages = StatusPages(data, lambda: StatusPageConfig(), lambda: TokenTable())
        print(f"seeded {args.checks} checks x 90 days ({rows} rows) in {seeded:.1f}s")
        print(f"store: {size / 1e6:.2f} MB on disk ({size / args.checks / 1e3:.1f} kB per check)")
        for path in ("/status", f"/status/{infos[0].name}"):
            first, times, cpu, body = asyncio.run(measure(pages, path, args.runs))
            p95 = sorted(times)[max(0, round(0.95 * len(times)) - 1)]
            print(
                f"{path}: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms"
                f" (CPU median {statistics.median(cpu):.1f} ms) over {len(times)} requests;"
                f" first request {first:.1f} ms; page {body / 1e3:.0f} kB"
            )
        print(f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        close()


if __name__ == "__main__":
    main()
