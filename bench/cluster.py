"""A cluster of real `opsmon run` processes on one real PostgreSQL (all on 127.0.0.1).

    .venv/bin/python bench/cluster.py                       # 3 instances, 50 checks, lease 3s
    .venv/bin/python bench/cluster.py --instances 3 --checks 200 --lease 2s --rounds 5
    .venv/bin/python bench/cluster.py --only sharded --sharded-checks 600

Prints:
- failover: seconds from SIGKILL of the leader until another instance reports itself leader
  (`opsmon_cluster_leader` 1), per round, against the 2 x lease the issue allows;
- checks per second per instance (from `opsmon_check_runs_total` over a quiet window);
- store statements per check run (transactions the store committed in that window, minus
  nothing: lease renewals and membership are counted too, so this is the whole cost);
- for one outage: notifications the receiver accepted and the store transactions it cost.

Then the same instances with `cluster.sharding: true` and `--sharded-checks` checks (one
asyncio target, a path per check):
- checks per second per instance, and whether each check ran on exactly one instance;
- store transactions per check per keeper round (the keeper's and the lease's statements
  over the window, divided by checks x rounds) and rows read per round;
- rebalance after SIGKILL of one instance: until every check is owned again by a live
  survivor, and until every check has run again, per round, against 2 x lease.
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
from tests.support.path_target import PathTarget
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


def judged(server: PostgresCluster) -> int:
    """Checks with a published healthy judgement by their owner."""
    rows = server.sql(
        "SELECT count(*) FROM opsmon_cluster_shards AS s JOIN opsmon_cluster_views AS v"
        " ON v.instance = s.owner AND v.check_name = s.check_name WHERE v.health = 'healthy'"
    )
    return int(rows[0][0])


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
    parser.add_argument("--only", choices=("leader", "sharded"), help="run one part only")
    parser.add_argument("--sharded-checks", type=int, default=600)
    parser.add_argument("--sharded-interval", default="2s")
    args = parser.parse_args()
    why = available()
    if why:
        raise SystemExit(why)
    template = PostgresTemplate.create()
    if args.only != "sharded":
        leader_figures(args, template)
    if args.only != "leader":
        sharded_figures(args, template)


def leader_figures(args: argparse.Namespace, template: PostgresTemplate) -> None:
    """Every instance runs every check; the leader pages."""
    lease = parse_duration(args.lease)
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
        accepted = receiver.accepted()
        senders = sorted({r.path.rsplit("/", 1)[-1] for r in accepted})
        alerts = [len(r.json["alerts"]) for r in accepted]
        print(
            f"outage: first page {page:.2f}s after the target failed; {len(accepted)}"
            f" notification(s) accepted from {args.instances} instances (sent by"
            f" {', '.join(senders)}; alerts in each: {alerts}); {commits} store transactions in"
            f" {page + 3 * lease:.1f}s (renewals included)"
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


def sharded_config(
    tmp: Path, name: str, server: PostgresCluster, target: PathTarget, args: argparse.Namespace
) -> Path:
    checks = "".join(
        f'  - {{name: c{i:04d}, type: http, service: s, url: "{target.url(f"c{i:04d}", name)}"}}\n'
        for i in range(args.sharded_checks)
    )
    path = tmp / f"{name}.yml"
    path.write_text(
        textwrap.dedent(f"""\
        state_dir: {tmp / name}
        defaults:
          {{interval: {args.sharded_interval}, timeout: 1s, failure_threshold: 2}}
        cluster:
          store: "{server.dsn()}"
          instance: {name}
          lease: {args.lease}
          sharding: true
        checks:
        """)
        + checks
    )
    return path


def owners(server: PostgresCluster) -> dict[str, str | None]:
    """Check -> its live owner in the shard table."""
    rows = server.sql(
        "SELECT check_name, CASE WHEN expires_at > now() THEN owner END FROM opsmon_cluster_shards"
    )
    return {str(check): owner for check, owner in rows}


def sharded_figures(args: argparse.Namespace, template: PostgresTemplate) -> None:
    """`cluster.sharding: true`: the checks spread over the instances."""
    lease = parse_duration(args.lease)
    interval = parse_duration(args.sharded_interval)
    total = args.sharded_checks
    server = template.clone({"max_connections": "50"})
    target = PathTarget().start()
    tmp = Path(tempfile.mkdtemp(prefix="opsmon-bench-shards-"))
    names = [f"s{n}" for n in range(args.instances)]
    members: dict[str, DaemonProcess] = {}

    def start(name: str) -> None:
        config = sharded_config(tmp, name, server, target, args)
        members[name] = DaemonProcess(config, tmp / f"{name}.log").start()

    def balanced(live: list[str]) -> bool:
        table = owners(server)
        share = -(-total // len(live))
        counts = {n: sum(1 for o in table.values() if o == n) for n in live}
        return (
            len(table) == total
            and all(o in live for o in table.values())
            and all(abs(c - share) <= 1 for c in counts.values())
        )

    try:
        for name in names:
            start(name)
        for name in names:
            members[name].wait_ready(timeout=60)
        wait(lambda: balanced(names), 60)
        # Steady state: every check judged by its owner (the first judgements are published
        # as they come, a burst that is not the cost of running).
        wait(lambda: judged(server) >= total, 60)
        print(
            f"\nsharded: {args.instances} instances, {total} HTTP checks at {interval:g}s, "
            f"lease {lease:g}s"
        )
        runs_before = {n: metric(m, "opsmon_check_runs_total") for n, m in members.items()}
        commits_before = committed(server)
        fetched_before = fetched(server)
        since = time.monotonic()
        time.sleep(args.window)  # a measurement window, not synchronisation
        runs = {
            n: metric(m, "opsmon_check_runs_total") - runs_before[n] for n, m in members.items()
        }
        commits = committed(server) - commits_before
        rows_read = fetched(server) - fetched_before
        ran = target.runners(since)
        once = sum(1 for by in ran.values() if len(by) == 1)
        per_instance = statistics.median(runs.values()) / args.window
        print(
            f"checks per second per instance: {per_instance:.1f} (median of {len(runs)}; "
            f"{sum(runs.values()) / args.window:.1f} for the cluster); {once} of {total} checks "
            f"ran on exactly one instance, {len(ran)} ran at all"
        )
        rounds = args.window / (lease / 3)
        print(
            f"store: {commits / args.window:.1f} transactions/s for the cluster "
            f"(lease + shards), {commits / rounds:.1f} per keeper round, "
            f"{commits / rounds / total:.4f} per check per round; "
            f"{rows_read / rounds:.0f} rows read per round"
        )

        owned_again, ran_again = [], []
        live = list(names)
        for _ in range(args.rounds):
            victim = live[-1]
            members[victim].signal(signal.SIGKILL)
            killed = time.monotonic()
            members[victim].wait_exit()
            rest = [n for n in live if n != victim]
            wait(lambda rest=rest: balanced(rest), 10 * lease)
            owned_again.append(time.monotonic() - killed)

            def every_check_ran(after: float = killed) -> bool:
                return len(target.runners(after)) == total

            wait(every_check_ran, 10 * lease + 3 * interval)
            ran_again.append(time.monotonic() - killed)
            start(victim)
            members[victim].wait_ready(timeout=60)
            wait(lambda: balanced(live), 60)
        print(
            "rebalance after SIGKILL of one instance, every check owned by a survivor: "
            + ", ".join(f"{f:.2f}s" for f in owned_again)
            + f" (median {statistics.median(owned_again):.2f}s; bound 2 x lease = {2 * lease:g}s)"
        )
        print(
            "every check run again since the kill: "
            + ", ".join(f"{f:.2f}s" for f in ran_again)
            + f" (interval {interval:g}s)"
        )
    finally:
        for member in members.values():
            if member.alive():
                member.signal(signal.SIGTERM)
        for member in members.values():
            if member.alive():
                member.stop()
        target.stop()
        server.destroy()


def fetched(server: PostgresCluster) -> int:
    """Rows returned by reads in the app database so far."""
    rows = server.sql(
        "SELECT tup_returned FROM pg_stat_database WHERE datname = current_database()"
    )
    return int(rows[0][0])


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
