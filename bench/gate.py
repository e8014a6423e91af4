"""Deploy gate benchmark: seconds from `docker-compose up -d` returning to `opsmon gate`'s
verdict, for a good deploy, a deploy whose health endpoint fails, and a crash-looping one.

    .venv/bin/python bench/gate.py               # 3 runs each, --healthy-for 10s
    .venv/bin/python bench/gate.py --runs 5 --healthy-for 30s

Each run deploys the busybox backend of tests/support/gate.py with Debian's docker-compose
(v1.29, host network, 127.0.0.1, `restart: always`, image tag = CI_COMMIT_SHA) on the real
engine, after a first deploy of `good1` has been gated so the service has a last known good.
Then `CI_COMMIT_SHA=<tag> docker-compose up -d` deploys the version under test and
`opsmon gate web --healthy-for H --timeout 5m` runs at once (as a pipeline step would). The
clock starts when `up -d` returns and stops when the gate exits:

- good:       `good2`; expect about H plus the gate's start-up (exit 0);
- bad-health: `badhealth` (its /health answers 500); expect detection by the check's
              thresholds (interval 1s, failure_threshold 2) plus the recreate rollback
              (stopping the bad container waits out its 3 s grace period: it ignores
              SIGTERM like Node as PID 1) plus the verification (exit 1);
- crash-loop: `crash` (exits with code 3 at once); expect 3 restarts by Docker's back-off
              plus the rollback (exit 1).

The checks use interval 1s, timeout 800ms, failure_threshold 2, success_threshold 1.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.gate import (
    ComposeProject,
    build_gate_images,
    gate_config,
    remove_gate_images,
    run_gate,
    write_config,
)
from tests.support.rollback import compose_available, docker_client

CASES = {"good": ("good2", 0), "bad-health": ("badhealth", 1), "crash-loop": ("crash", 1)}
BENCH_DEFAULTS = {
    "interval": "1s",
    "timeout": "800ms",
    "failure_threshold": 2,
    "success_threshold": 1,
}


def one_run(project: ComposeProject, folder: Path, tag: str, healthy_for: str) -> tuple[float, int]:
    """Seconds from `up -d` returning to the gate's exit, and its exit code."""
    config = gate_config(project, folder / "state")
    config["defaults"] = BENCH_DEFAULTS
    path = write_config(folder / "opsmon.yml", config)
    project.up("good1")
    first = run_gate(path, "web", "--healthy-for", "2s", "--timeout", "2m")
    if first.code != 0:
        raise SystemExit(f"could not promote good1:\n{first.stdout}\n{first.stderr}")
    deployed = project.up(tag)
    done = run_gate(path, "web", "--healthy-for", healthy_for, "--timeout", "5m")
    return done.ended - deployed, done.code


def main() -> int:
    """Run every case `--runs` times and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--healthy-for", default="10s")
    args = parser.parse_args()
    if not compose_available():
        print("docker-compose is not installed (bash scripts/test-env.sh)", file=sys.stderr)
        return 2
    client = docker_client()
    images = build_gate_images(client, f"local/opsmon-gate-bench-{int(time.time())}")
    figures: dict[str, list[float]] = {name: [] for name in CASES}
    try:
        for name, (tag, expected) in CASES.items():
            for run in range(args.runs):
                with tempfile.TemporaryDirectory(prefix="opsmon-gate-bench-") as folder:
                    project = ComposeProject(client, images, Path(folder))
                    try:
                        seconds, code = one_run(project, Path(folder), tag, args.healthy_for)
                    finally:
                        project.cleanup()
                if code != expected:
                    print(f"{name} run {run + 1}: exit {code}, expected {expected}")
                    return 1
                figures[name].append(seconds)
                print(f"{name:<11} run {run + 1}: {seconds:6.2f}s (exit {code})", flush=True)
    finally:
        remove_gate_images(client, images)
        client.close()
    print()
    print(f"seconds from `up -d` to verdict (--healthy-for {args.healthy_for}, {args.runs} runs)")
    print(f"{'case':<11} {'median':>7} {'min':>7} {'max':>7}")
    for name, values in figures.items():
        print(f"{name:<11} {statistics.median(values):7.2f} {min(values):7.2f} {max(values):7.2f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:
        print(exc.stderr, file=sys.stderr)
        sys.exit(1)
