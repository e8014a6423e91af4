"""The `opsmon silence` arguments. Light on purpose: `opsmon --help` builds every parser, so the
silence store and config are imported only when a silence command runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def cmd_silence_add(args: argparse.Namespace) -> int:
    """`opsmon silence add` (see monitor.alerting.silence_cli)."""
    from monitor.alerting.silence_cli import cmd_silence_add as run

    return run(args)


def cmd_silence_list(args: argparse.Namespace) -> int:
    """`opsmon silence list` (see monitor.alerting.silence_cli)."""
    from monitor.alerting.silence_cli import cmd_silence_list as run

    return run(args)


def cmd_silence_expire(args: argparse.Namespace) -> int:
    """`opsmon silence expire` (see monitor.alerting.silence_cli)."""
    from monitor.alerting.silence_cli import cmd_silence_expire as run

    return run(args)


def add_silence_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Register `silence add|list|expire` on the CLI's subcommands."""
    silence = commands.add_parser(
        "silence", help="silence alerts (stored in state_dir; the daemon picks them up)"
    )
    verbs = silence.add_subparsers(dest="silence_command", required=True, metavar="COMMAND")
    add = verbs.add_parser(
        "add", help="silence alerts matching labels", description="silence alerts matching labels"
    )
    with_config(add)
    add.add_argument(
        "--match",
        action="append",
        required=True,
        metavar="LABEL=VALUE",
        help="label to match: alertname, severity, service, check, channel (repeatable;"
        " a|b matches either)",
    )
    until = add.add_mutually_exclusive_group()
    until.add_argument(
        "--for", dest="duration", default="1h", metavar="DURATION", help="how long (default 1h)"
    )
    until.add_argument("--until", metavar="TIME", help="end time, ISO 8601 with zone")
    add.add_argument("--starts", metavar="TIME", help="start time, ISO 8601 (default: now)")
    add.add_argument("--comment", required=True, help="why (shown in `silence list`)")
    add.add_argument("--author", help="who (default: $USER)")
    add.set_defaults(func=cmd_silence_add)
    listing = verbs.add_parser("list", help="list active and pending silences")
    with_config(listing)
    listing.add_argument("--all", action="store_true", help="include expired silences")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_silence_list)
    expire = verbs.add_parser("expire", help="end a silence now")
    with_config(expire)
    expire.add_argument("id", help="silence id (a unique prefix is enough)")
    expire.set_defaults(func=cmd_silence_expire)
