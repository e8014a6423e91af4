"""The `opsmon cluster` arguments. Light on purpose: `opsmon --help` builds every parser, so
psycopg is imported only when the command runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def cmd_cluster_status(args: argparse.Namespace) -> int:
    """`opsmon cluster status` (see monitor.cluster.cli)."""
    from monitor.cluster.cli import cmd_cluster_status as run

    return run(args)


def add_cluster_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add `opsmon cluster status` to the command parser."""
    cluster = commands.add_parser("cluster", help="the instances sharing one cluster store")
    cluster_commands = cluster.add_subparsers(dest="cluster_command", required=True)
    status = cluster_commands.add_parser(
        "status",
        help="leader, epoch, lease age and members, as the cluster store has them",
        description="The leader, its epoch and lease, and every member, read from the "
        "cluster store named by the config's `cluster:` section. Exit 0 with a leader (or "
        "without a `cluster:` section: it runs alone), 1 without a leader, 2 when the store "
        "cannot be reached.",
    )
    with_config(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_cluster_status)
