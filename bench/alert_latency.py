"""Alert latency (state change -> webhook receiver) and outbox throughput to a slow receiver.

    .venv/bin/python bench/alert_latency.py                      # 200 samples, 200 slow sends
    .venv/bin/python bench/alert_latency.py --samples 500 --slow-ms 500

Both parts run the real daemon in this process (`Daemon`, the composition root: check runners,
the alerting component, the SQLite store in a temporary state_dir with synchronous=FULL, the
engine and outbox loops, the webhook notifier on the shared httpx client) and a webhook
receiver on 127.0.0.1 (a thread). Checks poll only once an hour and their targets are healthy,
so the only transitions are the ones the benchmark makes.

Latency: `group_wait: 0`, one check per service (one group each). For each sample the clock
starts just before the runner records the result that crosses the failure threshold (the state
change) and stops when the receiver has read the POST for that check. Printed: p50, p95, max
in ms (target: p95 < 200 ms).

Throughput: the receiver answers every POST after `--slow-ms`; `--burst` checks fail at once
(one notification per group) and the clock stops when the last one is accepted. Printed:
notifications per second for `delivery.max_in_flight` 1, 4 (the default) and 16.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from monitor.config import load_config
from monitor.core.result import CheckResult
from monitor.daemon import Daemon
from monitor.logs import configure_logging
from monitor.redaction import Redactor
from monitor.settings import Settings
from tests.support.receiver import Answer, FlipTarget, Receiver

TARGET_P95_MS = 200.0
FAILURE = CheckResult.failure("condition", "[STATUS] (503) == 200")


def write_config(directory: Path, checks: int, target: str, hook: str, in_flight: int) -> Path:
    """A config with `checks` checks, one service each, alerting to `hook` at once."""
    config = {
        "listen": "127.0.0.1:0",
        "state_dir": str(directory / "state"),
        "defaults": {"interval": "1h", "timeout": "5s", "failure_threshold": 1},
        "checks": [
            {"name": f"c{i}", "type": "http", "service": f"s{i}", "url": target}
            for i in range(checks)
        ],
        "alerting": {
            "group_wait": "0s",
            "channels": [{"name": "hooks", "type": "webhook", "url": hook}],
            "delivery": {"max_in_flight": in_flight, "timeout": "30s"},
        },
    }
    path = directory / "opsmon.yml"
    path.write_text(yaml.safe_dump(config))
    return path


async def start(path: Path) -> tuple[Daemon, asyncio.Task[int]]:
    """Run the daemon in this loop until its first round of checks is done."""
    daemon = Daemon(load_config(path), Settings(state_dir=None, listen=None))
    task = asyncio.create_task(daemon.run())
    while not daemon.readiness()[0]:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the alerting loops are up
    return daemon, task


async def stop(daemon: Daemon, task: asyncio.Task[int]) -> None:
    """Stop it cleanly."""
    daemon.request_stop()
    await task


def _checks_seen(receiver: Receiver) -> dict[str, float]:
    seen: dict[str, float] = {}
    for request in receiver.accepted():
        for alert in request.json["alerts"]:
            seen.setdefault(alert["labels"]["check"], request.at)
    return seen


async def latency(samples: int, target: FlipTarget) -> list[float]:
    """Milliseconds from each state change to its arrival at the receiver."""
    receiver = Receiver().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = write_config(Path(tmp), samples, target.url, receiver.url(), 4)
            daemon, task = await start(path)
            results = []
            try:
                for i in range(samples):
                    runner = daemon.runners[f"c{i}"]
                    started = time.monotonic()
                    await runner.record(FAILURE)
                    # The receiver is a thread: polling is how this loop learns of arrivals.
                    while f"c{i}" not in (seen := _checks_seen(receiver)):  # noqa: ASYNC110
                        await asyncio.sleep(0.0005)
                    results.append((seen[f"c{i}"] - started) * 1000)
            finally:
                await stop(daemon, task)
        return results
    finally:
        receiver.stop()


async def throughput(burst: int, slow: float, in_flight: int, target: FlipTarget) -> float:
    """Notifications per second delivered to a receiver that takes `slow` seconds each."""
    receiver = Receiver().start()
    receiver.default = Answer(200, delay=slow)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = write_config(Path(tmp), burst, target.url, receiver.url(), in_flight)
            daemon, task = await start(path)
            try:
                started = time.monotonic()
                for i in range(burst):
                    await daemon.runners[f"c{i}"].record(FAILURE)
                while len(receiver.accepted()) < burst:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                elapsed = time.monotonic() - started
            finally:
                await stop(daemon, task)
        return burst / elapsed
    finally:
        receiver.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="latency samples (default 200)")
    parser.add_argument("--burst", type=int, default=200, help="notifications for throughput")
    parser.add_argument("--slow-ms", type=float, default=200.0, help="receiver delay per POST")
    args = parser.parse_args()
    configure_logging(Redactor(), "ERROR", "console", stream=sys.stderr)
    logging.getLogger().setLevel(logging.ERROR)
    target = FlipTarget().start()
    try:
        times = asyncio.run(latency(args.samples, target))
        quantiles = statistics.quantiles(times, n=100)
        p95 = quantiles[94]
        print(
            f"latency state change -> webhook received (group_wait 0, {len(times)} samples): "
            f"p50 {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, max {max(times):.1f} ms "
            f"(target p95 < {TARGET_P95_MS:.0f} ms: {'met' if p95 < TARGET_P95_MS else 'MISSED'})"
        )
        for in_flight in (1, 4, 16):
            rate = asyncio.run(throughput(args.burst, args.slow_ms / 1000, in_flight, target))
            ideal = in_flight / (args.slow_ms / 1000)
            print(
                f"outbox throughput, receiver answering in {args.slow_ms:.0f} ms, "
                f"max_in_flight {in_flight:>2}: {rate:6.1f} notifications/s "
                f"({args.burst} notifications; bound {ideal:.0f}/s)"
            )
    finally:
        target.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
