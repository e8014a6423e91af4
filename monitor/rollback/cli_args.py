"""The `opsmon rollback` arguments. Light on purpose: `opsmon --help` builds every parser, so
the rollback machinery (Docker, the coordinator) is imported only when the command runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def cmd_rollback(args: argparse.Namespace) -> int:
    """`opsmon rollback ...` (see monitor.rollback.cli)."""
    from monitor.rollback.cli import cmd_rollback as run

    return run(args)


def add_rollback_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add `opsmon rollback ...` to the command parser."""
    rollback = commands.add_parser(
        "rollback",
        usage="opsmon rollback SERVICE [--to IMAGE] [--dry-run] [--force] [--config FILE]\n"
        "       opsmon rollback status [--json] [--config FILE]\n"
        "       opsmon rollback unfreeze SERVICE [--config FILE]",
        help="roll a service back to its last known good image; status; unfreeze",
        description="Roll SERVICE back (same guards as the automatic rollback), or "
        "`rollback status`, or `rollback unfreeze SERVICE`.",
    )
    with_config(rollback)
    rollback.add_argument(
        "words", nargs="+", metavar="ARG", help="SERVICE, status, or unfreeze SERVICE"
    )
    rollback.add_argument("--to", metavar="IMAGE", help="roll back to this image instead")
    rollback.add_argument(
        "--dry-run", action="store_true", help="print the plan and the diff; change nothing"
    )
    rollback.add_argument(
        "--force", action="store_true", help="allow it outside the window after the deploy"
    )
    rollback.add_argument("--json", action="store_true", help="status as JSON")
    rollback.set_defaults(func=cmd_rollback)
