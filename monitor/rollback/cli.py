"""`opsmon rollback SERVICE [--to IMAGE] [--dry-run] [--force]`, `opsmon rollback status` and
`opsmon rollback unfreeze SERVICE`.

A manual rollback goes through the same coordinator, guards and journal as the daemon's
(only the trigger differs: an operator instead of failing checks; `--force` skips the
window). It runs the service's checks itself to verify, and writes its alerts to the
SQLite store, where a running daemon's alerting sends them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from monitor.checks.context import CheckContext
from monitor.config import LoadedConfig, load_for_command
from monitor.core.result import CheckResult
from monitor.core.spec import CheckSpec
from monitor.diagnosis import Snapshot as Situation
from monitor.docker.config import needs_docker
from monitor.logs import configure_logging
from monitor.redaction import Redactor
from monitor.rollback.coordinator import Coordinator, Request
from monitor.rollback.docker_ops import DockerCallFailed
from monitor.rollback.facts import service_facts
from monitor.rollback.journal import Status
from monitor.rollback.lease import owners
from monitor.rollback.policy import Action, Blocker, HealthFacts
from monitor.rollback.session import RollbackSession
from monitor.rollback.status import render_status, status_document
from monitor.runner import build_runner

EXIT_OK, EXIT_NOT_DONE, EXIT_USAGE = 0, 1, 2


def _load(args: argparse.Namespace) -> LoadedConfig | None:
    loaded = load_for_command(args.config, sys.stderr)
    if loaded is None:
        return None
    if loaded.config.rollback is None:
        print(f"{loaded.path}: no `rollback:` section, so rollback is off", file=sys.stderr)
        return None
    return loaded


async def _run_checks(
    specs: Sequence[CheckSpec], context: CheckContext
) -> list[tuple[CheckSpec, CheckResult]]:
    runners = [build_runner(spec, context, []) for spec in specs]
    results = await asyncio.gather(*(r.run_once() for r in runners))
    return list(zip(specs, results, strict=True))


def _facts(
    service: str, rows: list[tuple[CheckSpec, CheckResult]]
) -> tuple[HealthFacts, tuple[Blocker, ...]]:
    """What one run of every check says about `service` (monitor/rollback/facts.py, as the
    daemon computes it)."""
    found = service_facts(service, Situation.from_results(rows))
    return found.health, found.blockers


Work = Callable[[RollbackSession, Coordinator, argparse.Namespace], Any]


def _with_session(work: Work) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        redactor = Redactor()
        configure_logging(redactor, "WARNING", "console", stream=sys.stderr)
        loaded = _load(args)
        if loaded is None:
            return EXIT_USAGE
        redactor.update(loaded.secrets)

        async def run() -> int:
            session = RollbackSession(
                loaded, redactor, "operator", checks_use_docker=needs_docker(loaded.config)
            )
            # _load refused a config without `rollback:`, so there is a coordinator.
            assert session.coordinator is not None
            try:
                await session.share_guards()
                code: int = await work(session, session.coordinator, args)
                return code
            except DockerCallFailed as exc:
                print(f"rollback: {session.redactor.text(exc.reason)}", file=sys.stderr)
                return EXIT_NOT_DONE
            finally:
                await session.share_guards()
                await session.aclose()

        return asyncio.run(run())

    return command


async def _rollback(
    session: RollbackSession, coordinator: Coordinator, args: argparse.Namespace
) -> int:
    service: str = args.service
    config = session.loaded.config
    assert config.rollback is not None
    known = sorted({s.service for s in config.checks if s.service} | set(config.rollback.services))
    if service not in known:
        print(f"no service named {service} (known: {', '.join(known)})", file=sys.stderr)
        return EXIT_USAGE
    rows = await _run_checks(config.checks, session.context)
    health, blockers = _facts(service, rows)
    coordinator.verifier = session.verifier_for(service)
    outcome = await coordinator.handle(
        Request(
            service,
            health,
            blockers,
            None,
            manual=True,
            force=args.force,
            dry_run=args.dry_run,
            to_image=args.to,
        )
    )
    print(session.redactor.text(outcome.text))
    action = outcome.decision.action
    if action is Action.DRY_RUN:
        return EXIT_OK
    rollback = outcome.rollback
    if action is Action.ROLLBACK and rollback is not None and rollback.status is Status.SUCCEEDED:
        return EXIT_OK
    return EXIT_NOT_DONE


async def _status(
    session: RollbackSession, coordinator: Coordinator, args: argparse.Namespace
) -> int:
    config = session.loaded.config
    assert config.rollback is not None
    services = sorted(config.rollback.services)
    owned = await owners(coordinator.leases, services)
    document = status_document(coordinator, services, session.clock.now(), owned)
    document = session.redactor.value(document)
    print(json.dumps(document, indent=2) if args.json else render_status(document))
    return EXIT_OK


async def _unfreeze(
    session: RollbackSession, coordinator: Coordinator, args: argparse.Namespace
) -> int:
    service: str = args.service
    if coordinator.unfreeze(service):
        print(f"automation re-enabled for {service}")
        return EXIT_OK
    print(f"{service} was not frozen", file=sys.stderr)
    return EXIT_NOT_DONE


def cmd_rollback(args: argparse.Namespace) -> int:
    """Dispatch `rollback status`, `rollback unfreeze SERVICE` and `rollback SERVICE`."""
    words: list[str] = args.words
    verbs: dict[str, tuple[int, Work]] = {
        "status": (1, _status),
        "unfreeze": (2, _unfreeze),
    }
    arity, work = verbs.get(words[0], (1, _rollback))
    if len(words) != arity:
        print(
            "usage: opsmon rollback SERVICE | rollback status | rollback unfreeze SERVICE",
            file=sys.stderr,
        )
        return EXIT_USAGE
    args.service = words[-1]
    return _with_session(work)(args)
