"""A cluster of real `opsmon run` processes on one real PostgreSQL (all on 127.0.0.1).

    .venv/bin/python bench/cluster.py                       # 3 instances, 50 checks, lease 3s
    .venv/bin/python bench/cluster.py --instances 3 --checks 200 --lease 2s --rounds 5

Prints:
- failover: seconds from SIGKILL of the leader until another instance reports itself leader
  (`opsmon_cluster_leader` 1), per round, against the 2 x lease the issue allows;
- checks per second per instance (from `opsmon_check_runs_total` over a quiet window);
- store statements per check run (transactions the store committed in that window, minus
  nothing: lease renewals and membership are counted too, so this is the whole cost);
- for one outage: notifications the receiver accepted and the store transactions it cost.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.core.durations import parse_duration
from tests.support.daemon_process import DaemonProcess
from tests.support.postgres import PostgresCluster, PostgresTemplate, available
from tests.support.receiver import FlipTarget, Receiver


def metric(member: DaemonProcess, family: str) -> float:
    """Sum of every sample of `family` on the member's /metrics (0 if unreachable)."""
    try:
        text = member.get("/metrics", timeout=1).text
    except Exception:
        return 0.0
    return sum(
        float(m.group(1)) for m in re.finditer(rf"^{family}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    )


def committed(server: PostgresCluster) -> int:
    """Transactions committed in the app database so far."""
    rows = server.sql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    return int(rows[0][0])


def write_config(
    tmp: Path,
    name: str,
    server: PostgresCluster,
    target: FlipTarget,
    hook: str,
    args: argparse.Namespace,
) -> Path:
    checks = "\n".join(
        f'  - {{name: check-{i}, type: http, service: backend, url: "{target.url}"}}'
        for i in range(args.checks)
    )
    path = tmp / f"{name}.yml"
    path.write_text(
        textwrap.dedent(f"""\
        state_dir: {tmp / name}
        defaults: {{interval: 1s, timeout: 500ms, failure_threshold: 2, success_threshold: 2}}
        alerting:
          group_wait: 300ms
          group_interval: 300ms
          group_by: [alertname]
          channels:
            - {{name: hooks, type: webhook, url: "{hook}/{name}"}}
        cluster:
          store: "{server.dsn()}"
          instance: {name}
          lease: {args.lease}
        checks:
        """)
        + checks
        + "\n"
    )
    return path


def wait(predicate: object, timeout: float) -> float:
    """Seconds until `predicate()` holds (polling every 20 ms); raises on timeout."""
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out after {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--checks", type=int, default=50)
    parser.add_argument("--lease", default="3s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=20.0, help="quiet window, seconds")
    args = parser.parse_args()
    why = available()
    if why:
        raise SystemExit(why)
    lease = parse_duration(args.lease)
    template = PostgresTemplate.create()
    server = template.clone({"max_connections": "50"})
    receiver, target = Receiver().start(), FlipTarget().start()
    tmp = Path(tempfile.mkdtemp(prefix="opsmon-bench-cluster-"))
    names = [f"i{n}" for n in range(args.instances)]
    members: dict[str, DaemonProcess] = {}

    def start(name: str) -> None:
        config = write_config(tmp, name, server, target, receiver.url("/hook"), args)
        members[name] = DaemonProcess(config, tmp / f"{name}.log").start()
        members[name].wait_ready(timeout=60)

    def leader() -> str | None:
        leading = [
            n for n, m in members.items() if m.alive() and metric(m, "opsmon_cluster_leader") == 1
        ]
        return leading[0] if len(leading) == 1 else None

    try:
        for name in names:
            start(name)
        wait(leader, 30)
        print(f"{args.instances} instances, {args.checks} HTTP checks each at 1s, lease {lease:g}s")

        runs_before = {n: metric(m, "opsmon_check_runs_total") for n, m in members.items()}
        commits_before = committed(server)
        time.sleep(args.window)  # a measurement window, not synchronisation
        runs = {
            n: metric(m, "opsmon_check_runs_total") - runs_before[n] for n, m in members.items()
        }
        commits = committed(server) - commits_before
        total_runs = sum(runs.values())
        per_instance = statistics.median(runs.values()) / args.window
        print(f"checks per second per instance: {per_instance:.1f} (median of {len(runs)})")
        print(
            f"store transactions: {commits / args.window:.1f}/s for the whole cluster, "
            f"{commits / max(total_runs, 1):.4f} per check run (checks never touch the store)"
        )

        commits_before = committed(server)
        target.healthy = False
        page = wait(lambda: any(r.status == 200 for r in receiver.requests), 30)
        time.sleep(3 * lease)  # let every follower settle its copies
        commits = committed(server) - commits_before
        accepted = len(receiver.accepted())
        print(
            f"outage: first page {page:.2f}s after the target failed; {accepted} notification(s) "
            f"accepted from {args.instances} instances; {commits} store transactions in "
            f"{page + 3 * lease:.1f}s (renewals included)"
        )
        target.healthy = True

        failovers = []
        for _ in range(args.rounds):
            old = wait_for_leader(leader)
            members[old].signal(signal.SIGKILL)
            members[old].wait_exit()
            failovers.append(wait(lambda old=old: leader() not in (None, old), 4 * lease))
            start(old)
        print(
            "failover after SIGKILL of the leader: "
            + ", ".join(f"{f:.2f}s" for f in failovers)
            + f" (median {statistics.median(failovers):.2f}s; bound 2 x lease = {2 * lease:g}s)"
        )
    finally:
        for member in members.values():
            if member.alive():
                member.stop()
        receiver.stop()
        target.stop()
        server.destroy()


def wait_for_leader(leader: object) -> str:
    """The current leader (waits for one)."""
    found: list[str] = []

    def one() -> bool:
        name = leader()  # type: ignore[operator]
        if name:
            found.append(name)
        return bool(name)

    wait(one, 30)
    return found[-1]


if __name__ == "__main__":
    main()
