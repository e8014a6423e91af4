"""`opsmon gate SERVICE... [--config FILE] [--image IMAGE] [--timeout 5m] [--healthy-for 30s]
[--no-rollback] [--json]`: run right after the deploy command.

Exit codes: 0 promoted, 1 rolled back (the last known good is healthy), 2 rollback failed,
refused or frozen (the service needs a human), 3 timed out without a verdict, 4 usage or
config error. With several services the most urgent one decides (2, then 3, then 1, then 0).

Only argparse and the pure verdict/report modules are imported here; the engine, the checks
and the stores are imported by the handler, so `opsmon --help` stays light.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from monitor.core.durations import parse_duration
from monitor.gate.report import EXIT_USAGE

DEFAULT_TIMEOUT = "5m"
DEFAULT_HEALTHY_FOR = "30s"
_SERVICE_NAME = "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"


class GateParser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage; the gate's contract says 4 (2 means "needs a human"),
    also for arguments it does not know (which argparse leaves to the root parser)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return seconds


def add_gate_command(commands: Any, with_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `opsmon gate` to the command parser."""
    # The subparsers action builds its parsers from one class; the gate needs its own.
    default_class = commands._parser_class
    commands._parser_class = GateParser
    gate: argparse.ArgumentParser = commands.add_parser(
        "gate",
        help="after a deploy: wait for the new version, promote it or roll it back",
        description="Wait for each SERVICE's new container, then for every check of the "
        "service to be healthy continuously for --healthy-for (promoted: it becomes the last "
        "known good). Fail fast on evidence (crash loop, exit at start, OOM kill, checks "
        "unhealthy by their thresholds) and roll back through the same guards as the daemon. "
        "Exit 0 promoted, 1 rolled back (last known good healthy), 2 rollback failed, refused "
        "or frozen, 3 timed out without a verdict, 4 usage or config error.",
    )
    commands._parser_class = default_class
    with_config(gate)
    gate.add_argument("services", nargs="+", metavar="SERVICE", help="Compose service(s)")
    gate.add_argument(
        "--image",
        metavar="IMAGE",
        help="judge the container running this image (reference or id); default: the "
        "service's most recently created container",
    )
    gate.add_argument(
        "--timeout",
        type=_duration,
        default=_duration(DEFAULT_TIMEOUT),
        metavar="DURATION",
        help=f"give up without a verdict after this long (default {DEFAULT_TIMEOUT}; exit 3)",
    )
    gate.add_argument(
        "--healthy-for",
        dest="healthy_for",
        type=_duration,
        default=_duration(DEFAULT_HEALTHY_FOR),
        metavar="DURATION",
        help="every check healthy this long without a failure promotes the deploy "
        f"(default {DEFAULT_HEALTHY_FOR})",
    )
    gate.add_argument(
        "--no-rollback",
        dest="no_rollback",
        action="store_true",
        help="judge only: on failure leave the service as it is (exit 2)",
    )
    gate.add_argument("--json", action="store_true", help="print one JSON document at the end")
    gate.set_defaults(func=cmd_gate)


def cmd_gate(args: argparse.Namespace) -> int:
    """`opsmon gate`: the handler (imports the heavy parts only now)."""
    import re

    bad = [s for s in args.services if not re.match(_SERVICE_NAME, s)]
    if bad:
        print(f"opsmon gate: not a service name: {', '.join(bad)}", file=sys.stderr)
        return EXIT_USAGE
    if args.healthy_for >= args.timeout:
        print(
            "opsmon gate: --healthy-for must be shorter than --timeout "
            "(the deploy could never be promoted)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from monitor.gate.run import run_gate

    return run_gate(args)
