"""Rollback benchmark: how long a bad deploy stays live before opsmon has the last known good
container back and healthy, on the real engine.

    .venv/bin/python bench/rollback.py           # tightened timings (5 runs), then the defaults
    .venv/bin/python bench/rollback.py --runs 3 --skip-defaults

Each run: a busybox HTTP service (host network, 127.0.0.1) is deployed as v1 the way Compose
does it, `opsmon run` (enforce mode) promotes v1 to last known good, then v2, whose /health
answers 404, replaces it. Measured from the bad container's start (its `State.StartedAt`):
- decided:  opsmon's rollback started (journal `started_at`), i.e. detection by the checks'
            thresholds plus the decision;
- started:  the restored v1 container's `State.StartedAt`;
- answers:  the first 200 from /health after that (polled every 20 ms by this script);
- verified: opsmon's checks turned healthy again and RollbackPerformed was raised.

"defaults" uses opsmon's documented defaults (interval 30s, failure_threshold 3,
success_threshold 2, stable_after 2m), once with a Docker HEALTHCHECK on the container (the
container check reacts to its health_status events at once) and once without (only the
HTTP check's polls see the failure): about ten minutes. "tightened" uses interval 1s,
timeout 800ms, failure_threshold 2, success_threshold 1, stable_after 3s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import docker.errors

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.docker.lifecycle import parse_time
from tests.support.receiver import Receiver
from tests.support.rollback import (
    Deployment,
    ServiceImages,
    answers,
    build_images,
    docker_client,
    remove_images,
)
from tests.support.rollback_daemon import Opsmon
from tests.support.waiting import wait_until

TIGHT_DEFAULTS = {
    "interval": "1s",
    "timeout": "800ms",
    "failure_threshold": 2,
    "success_threshold": 1,
}
TIGHT_ROLLBACK = {"stable_after": "3s", "window": "5m", "verify_timeout": "1m"}


@dataclass(frozen=True)
class Run:
    """Seconds from the bad container's start to each milestone."""

    decided: float
    started: float
    answers: float
    verified: float


def _seconds(later: datetime | None, earlier: datetime) -> float:
    assert later is not None
    return (later - earlier).total_seconds()


def one_run(images: ServiceImages, folder: Path, tight: bool, docker_health: bool = True) -> Run:
    """Deploy v1, let it become LKG, deploy v2, time the rollback."""
    client = docker_client()
    state = folder / "service-state"
    state.mkdir(parents=True)
    state.chmod(0o777)
    deployment = Deployment(client, images, state, docker_healthcheck=docker_health)
    deployment.set_healthy(True)
    hooks = Receiver().start()
    opsmon = Opsmon(deployment, folder / "opsmon", hooks)
    opsmon.folder.mkdir()
    try:
        if tight:
            opsmon.configure(defaults=TIGHT_DEFAULTS, **TIGHT_ROLLBACK)
        else:
            opsmon.configure(defaults={})
        deployment.deploy("v1")
        opsmon.start()
        opsmon.wait_lkg("v1", timeout=60 if tight else 400)
        deployment.deploy("v2")
        bad = deployment.inspect()
        bad_start = parse_time(bad["State"]["StartedAt"])
        assert bad_start is not None

        restored: dict[str, Any] = {}

        def back() -> bool:
            try:
                current = deployment.inspect()
            except docker.errors.NotFound:  # between the rename and the create
                return False
            if current["Id"] == bad["Id"] or not current["State"]["Running"]:
                return False
            restored.update(current)
            return True

        wait_until(back, timeout=120 if tight else 600, interval=0.02)
        wait_until(lambda: answers(deployment.health_url) == 200, timeout=60, interval=0.02)
        answered = time.time()
        opsmon.wait_alert("RollbackPerformed", timeout=60 if tight else 600)
        [record] = [r for r in opsmon.rollbacks() if r["status"] == "succeeded"]
        decided = datetime.fromisoformat(record["started_at"])
        verified = datetime.fromisoformat(record["finished_at"])
        return Run(
            decided=_seconds(decided, bad_start),
            started=_seconds(parse_time(restored["State"]["StartedAt"]), bad_start),
            answers=answered - bad_start.timestamp(),
            verified=_seconds(verified, bad_start),
        )
    finally:
        opsmon.stop()
        hooks.stop()
        deployment.cleanup()
        client.close()


def report(label: str, runs: list[Run]) -> None:
    """Print the median (and min..max) of each milestone."""
    print(f"\n{label}: {len(runs)} run(s), seconds from the bad container's start")
    for field in ("decided", "started", "answers", "verified"):
        values = [getattr(r, field) for r in runs]
        spread = f"  (min {min(values):.2f}, max {max(values):.2f})" if len(values) > 1 else ""
        print(f"  {field:<9} median {statistics.median(values):7.2f}{spread}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs with tightened timings")
    parser.add_argument("--skip-defaults", action="store_true", help="skip the default-timing run")
    args = parser.parse_args()
    client = docker_client()
    images = build_images(client, f"local/opsmon-rb-bench-{uuid.uuid4().hex[:8]}")
    try:
        with tempfile.TemporaryDirectory() as temp:
            tight = [
                one_run(images, Path(temp, f"tight-{n}"), tight=True) for n in range(args.runs)
            ]
            report("tightened (interval 1s, failure 2, success 1, stable_after 3s)", tight)
            if not args.skip_defaults:
                label = "defaults (interval 30s, failure 3, success 2, stable_after 2m)"
                runs = [one_run(images, Path(temp, "defaults"), tight=False)]
                report(label + ", container with a Docker HEALTHCHECK", runs)
                runs = [one_run(images, Path(temp, "plain"), tight=False, docker_health=False)]
                report(label + ", HTTP check only (no HEALTHCHECK)", runs)
    finally:
        remove_images(client, images)
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
