"""The `opsmon` command line: run, check, config validate, demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from monitor import __version__
from monitor.alerting.silence_args import add_silence_commands
from monitor.cluster.cli_args import add_cluster_commands
from monitor.gate.cli import add_gate_command
from monitor.gatus_import import add_import_commands
from monitor.rollback.cli_args import add_rollback_commands
from monitor.runbook_index import add_index_command

# Everything else is imported by the command that needs it: `opsmon --help` and
# `opsmon config validate` must not pay for httpx, docker, psycopg, uvicorn, ...
if TYPE_CHECKING:
    from monitor.config import LoadedConfig
    from monitor.core.result import CheckResult
    from monitor.daemon import Daemon
    from monitor.redaction import Redactor
    from monitor.runbooks import Catalogue

EXIT_OK, EXIT_UNHEALTHY, EXIT_CONFIG = 0, 1, 2
EXIT_NOT_FOUND = 1  # the README's exit code for an unknown runbook id


def _load(args: argparse.Namespace, err: TextIO) -> LoadedConfig | None:
    """The command's config (problems printed to `err`); warnings always go to stderr."""
    from monitor.config import load_for_command
    from monitor.config_warnings import config_warnings

    loaded = load_for_command(args.config, err)
    if loaded is not None:
        for warning in config_warnings(loaded.config):
            print(f"{loaded.path}: warning: {warning}", file=sys.stderr)
    return loaded


def cmd_run(args: argparse.Namespace) -> int:
    """`opsmon run`: the daemon."""
    from monitor.config import default_config_path
    from monitor.daemon import Daemon
    from monitor.errors import init_sentry
    from monitor.logs import configure_logging, get_logger
    from monitor.redaction import Redactor
    from monitor.settings import Settings
    from monitor.state_quarantine import quarantine_if_corrupt
    from monitor.statelock import hold_state_dir

    settings = Settings()
    redactor = Redactor()
    configure_logging(redactor, settings.log_level, settings.log_format)
    log = get_logger("cli")
    loaded = _load(args, sys.stderr)
    if loaded is None:
        log.error("config_invalid", config=args.config or str(default_config_path(os.environ)))
        return EXIT_CONFIG
    redactor.update(loaded.secrets)
    init_sentry(settings.sentry_dsn, settings.environment, redactor)
    lock = hold_state_dir(loaded.config.state_dir, sys.stderr)
    if lock is None:
        return EXIT_CONFIG
    try:
        quarantine_if_corrupt(loaded.config.state_dir)
    except OSError as exc:
        log.error("state_quarantine_failed", state_dir=str(loaded.config.state_dir), error=str(exc))
    daemon = Daemon(loaded, settings, redactor=redactor)
    with lock:
        return asyncio.run(_run_with_signals(daemon))


async def _run_with_signals(daemon: Daemon) -> int:
    from monitor.logs import get_logger
    from monitor.signals import install

    install(
        asyncio.get_running_loop(),
        {
            signal.SIGTERM: daemon.request_stop,
            signal.SIGINT: daemon.request_stop,
            signal.SIGHUP: daemon.request_reload,
        },
    )
    try:
        return await daemon.run()
    except OSError as exc:
        get_logger("cli").error("cannot_start", error=str(exc))
        return EXIT_CONFIG


async def run_checks_once(
    loaded: LoadedConfig, only: Sequence[str] = ()
) -> list[tuple[Any, CheckResult]]:
    """Run every (or every named) check once, concurrently, and return specs with results."""
    from monitor.checks.context import CheckContext
    from monitor.docker.access import DockerAccess
    from monitor.docker.config import needs_docker
    from monitor.metrics import Metrics
    from monitor.net.clients import HttpClients
    from monitor.runner import build_runner

    context = CheckContext(Metrics(), HttpClients())
    if needs_docker(loaded.config):
        context.docker = DockerAccess.from_environment(os.environ, loaded.config.docker.host)
    specs = [s for s in loaded.config.checks if not only or s.name in only]
    try:
        runners = [build_runner(spec, context, []) for spec in specs]
        results = await asyncio.gather(*(r.run_once() for r in runners))
    finally:
        await context.http.aclose()
        if context.docker is not None:
            await context.docker.aclose()
    return list(zip(specs, results, strict=True))


def _render_table(rows: list[tuple[Any, CheckResult]], redactor: Redactor) -> str:
    header = ("CHECK", "TYPE", "SERVICE", "RESULT", "TIME", "REASON")
    lines = [header]
    for spec, result in rows:
        lines.append(
            (
                spec.name,
                spec.type,
                spec.service or "-",
                "healthy" if result.ok else "unhealthy",
                f"{result.duration * 1000:.0f}ms",
                redactor.text(result.reason) if result.reason else "",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False))
        + "  "
        + line[-1]
        for line in lines
    )


def cmd_check(args: argparse.Namespace) -> int:
    """`opsmon check`: every check once, a table or JSON, nothing sent."""
    from monitor.logs import configure_logging
    from monitor.redaction import Redactor

    redactor = Redactor()
    configure_logging(redactor, "WARNING", "console", stream=sys.stderr)
    loaded = _load(args, sys.stderr)
    if loaded is None:
        return EXIT_CONFIG
    redactor.update(loaded.secrets)
    known = {spec.name for spec in loaded.config.checks}
    unknown = [name for name in args.only if name not in known]
    if unknown:
        print(
            f"no check named {', '.join(unknown)} (known: {', '.join(sorted(known))})",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    rows = asyncio.run(run_checks_once(loaded, args.only))
    if args.json:
        payload = [
            {
                "name": spec.name,
                "type": spec.type,
                "service": spec.service,
                "ok": result.ok,
                "kind": result.kind,
                "reason": result.reason or None,
                "duration_ms": round(result.duration * 1000, 1),
                "facts": dict(result.facts),
            }
            for spec, result in rows
        ]
        print(json.dumps(redactor.value(payload), indent=2))
    else:
        print(_render_table(rows, redactor))
    return EXIT_OK if all(result.ok for _, result in rows) else EXIT_UNHEALTHY


def cmd_config_validate(args: argparse.Namespace) -> int:
    """`opsmon config validate`: load, interpolate, validate; print problems."""
    loaded = _load(args, sys.stdout)
    if loaded is None:
        return EXIT_CONFIG
    count = len(loaded.config.checks)
    print(f"{loaded.path}: valid ({count} check{'s' if count != 1 else ''})")
    return EXIT_OK


def _catalogue(err: TextIO, outline_only: bool = False) -> Catalogue | None:
    from monitor.runbooks import RunbookError, load_catalogue
    from monitor.settings import Settings

    try:
        catalogue = load_catalogue(Settings().runbooks_dir, outline_only)
    except RunbookError as exc:
        print(exc, file=err)
        return None
    for problem in catalogue.problems:
        print(f"invalid runbook: {problem}", file=err)
    return catalogue


def cmd_runbooks_list(args: argparse.Namespace) -> int:
    """`opsmon runbooks list`: every runbook with its alerts (no Markdown parser loaded)."""
    catalogue = _catalogue(sys.stderr, outline_only=True)
    if catalogue is None:
        return EXIT_CONFIG
    rows = [("ID", "SEVERITY", "ALERTS", "TITLE")]
    rows += [(r.id, r.severity.value, ",".join(r.alerts), r.title) for r in catalogue]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        print("  ".join(cells) + "  " + row[3])
    return EXIT_OK


def _rendering_config(args: argparse.Namespace) -> LoadedConfig | int | None:
    """The config a runbook is rendered for, found as `run` and `explain` find theirs
    (`--config`, `$OPSMON_CONFIG`, `./opsmon.yml`, `config/opsmon.yml`); None without one
    (or with `--generic`); EXIT_CONFIG when one was named or found but does not load."""
    from monitor.config import default_config_path

    if args.generic:
        return None
    named = args.config or os.environ.get("OPSMON_CONFIG")
    if not named and not default_config_path(os.environ).exists():
        return None
    loaded = _load(args, sys.stderr)
    if loaded is None:
        print(
            "the runbook is rendered for this config; `opsmon runbooks show --generic` prints it"
            " as shipped",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    return loaded


def cmd_runbooks_show(args: argparse.Namespace) -> int:
    """`opsmon runbooks show ID`: one runbook as plain text (an alert name works too), its
    commands rendered for the config (real URLs, compose file, database, contacts) as the
    daemon's `/runbooks/<id>` page shows them."""
    from monitor.redaction import Redactor
    from monitor.runbook_context import RunbookContext
    from monitor.runbooks import localize_runbook, render_text

    catalogue = _catalogue(sys.stderr)
    if catalogue is None:
        return EXIT_CONFIG
    runbook = catalogue.get(args.id) or catalogue.for_alert(args.id)
    if runbook is None:
        known = ", ".join(r.id for r in catalogue)
        print(f"no runbook named {args.id} (known: {known})", file=sys.stderr)
        return EXIT_NOT_FOUND
    loaded = _rendering_config(args)
    if isinstance(loaded, int):
        return loaded
    if loaded is None:
        print(render_text(runbook), end="")
        return EXIT_OK
    shown = localize_runbook(runbook, RunbookContext.of(loaded.config))
    # The context holds no secret by construction; the redactor is the second line.
    print(Redactor(loaded.secrets).text(render_text(shown)), end="")
    print(f"(commands rendered for {loaded.path})", file=sys.stderr)
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    """`opsmon explain`: every check once, then each problem with its runbook's first step."""
    from monitor.diagnosis import Snapshot, diagnose
    from monitor.explain import render_report
    from monitor.logs import configure_logging
    from monitor.redaction import Redactor

    redactor = Redactor()
    configure_logging(redactor, "WARNING", "console", stream=sys.stderr)
    loaded = _load(args, sys.stderr)
    catalogue = _catalogue(sys.stderr)
    if loaded is None or catalogue is None:
        return EXIT_CONFIG
    redactor.update(loaded.secrets)
    known = {spec.name for spec in loaded.config.checks}
    if args.check and args.check not in known:
        print(f"no check named {args.check} (known: {', '.join(sorted(known))})", file=sys.stderr)
        return EXIT_CONFIG
    rows = asyncio.run(run_checks_once(loaded))
    problems = diagnose(Snapshot.from_results(rows), catalogue)
    if args.check:
        problems = [p for p in problems if args.check in p.checks]
    print(render_report(problems, len(rows), loaded.config, catalogue, redactor, args.config))
    return EXIT_UNHEALTHY if problems else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """`opsmon demo`: a sample backend plus the daemon on the demo config."""
    from monitor.demo import run_demo

    return run_demo(args.backend_port, args.listen)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each command's function is its `func` default (a plain registry)."""
    parser = argparse.ArgumentParser(prog="opsmon", description=__doc__)
    parser.add_argument("--version", action="version", version=f"opsmon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, func: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_)
        sub.set_defaults(func=func)
        return sub

    def with_config(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config",
            metavar="FILE",
            help="config file (default: $OPSMON_CONFIG, ./opsmon.yml, config/opsmon.yml)",
        )

    with_config(command("run", cmd_run, "run the daemon"))
    check = command("check", cmd_check, "run every check once and print the results")
    with_config(check)
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this check (repeatable)",
    )
    config = commands.add_parser("config", help="config file tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    validate = config_commands.add_parser("validate", help="validate the config file")
    validate.set_defaults(func=cmd_config_validate)
    with_config(validate)
    demo = command("demo", cmd_demo, "start a sample service and the daemon watching it")
    demo.add_argument(
        "--backend-port",
        type=int,
        metavar="PORT",
        help="port of the sample backend (default 4000, or a free one if 4000 is taken)",
    )
    demo.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="opsmon's address, e.g. [::1]:9110 (default $OPSMON_LISTEN, else 127.0.0.1:9110,"
        " or a free port if that is taken)",
    )
    explain = command("explain", cmd_explain, "run every check once and explain each problem")
    with_config(explain)
    explain.add_argument("check", nargs="?", help="only the problems this check is part of")
    runbooks = commands.add_parser("runbooks", help="the runbooks that alerts link to")
    runbook_commands = runbooks.add_subparsers(dest="runbooks_command", required=True)
    runbook_commands.add_parser("list", help="list every runbook").set_defaults(
        func=cmd_runbooks_list
    )
    show = runbook_commands.add_parser(
        "show", help="print one runbook, its commands rendered for the config"
    )
    show.add_argument("id", help="runbook id (or alert name)")
    with_config(show)
    show.add_argument(
        "--generic",
        action="store_true",
        help="print the runbook as shipped, not rendered for a config",
    )
    show.set_defaults(func=cmd_runbooks_show)
    add_index_command(runbook_commands)
    add_silence_commands(commands, with_config)
    add_rollback_commands(commands, with_config)
    add_import_commands(commands, with_config)
    add_gate_command(commands, with_config)
    add_cluster_commands(commands, with_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `opsmon` command."""
    args = build_parser().parse_args(argv)
    from monitor.settings import SettingsError, load_settings

    try:
        load_settings()  # every command reads them: a bad environment is one clear line
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    try:
        code: int = args.func(args)
    except sqlite3.DatabaseError as exc:
        # A command that reads state found the file unreadable: one line, not a traceback.
        from monitor.state_quarantine import unreadable_state_line

        print(unreadable_state_line(exc), file=sys.stderr)
        return EXIT_CONFIG
    return code
