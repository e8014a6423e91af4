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
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from monitor.alerting.incidents import IncidentTracker
from monitor.alerting.store import AlertingStore
from monitor.checks.context import CheckContext
from monitor.clock import SystemClock
from monitor.config import LoadedConfig, load_for_command
from monitor.core.health import Health
from monitor.core.result import CheckResult
from monitor.core.spec import CheckSpec
from monitor.diagnosis import Snapshot as Situation
from monitor.docker.access import DockerAccess
from monitor.docker.config import needs_docker
from monitor.logs import configure_logging
from monitor.metrics import Metrics
from monitor.net.clients import HttpClients
from monitor.redaction import Redactor
from monitor.rollback.alerts import AlertSink, IncidentSink, LogSink
from monitor.rollback.coordinator import Coordinator, Request, Verification
from monitor.rollback.docker_ops import ContainerOps, DockerCallFailed
from monitor.rollback.facts import service_facts
from monitor.rollback.journal import Rollback, Status
from monitor.rollback.policy import Action, Blocker, HealthFacts
from monitor.rollback.status import render_status, status_document
from monitor.rollback.store import open_store
from monitor.rollback.tracker import DeployTracker
from monitor.runner import build_runner

EXIT_OK, EXIT_NOT_DONE, EXIT_USAGE = 0, 1, 2
# Pause between verification rounds of the service's checks.
VERIFY_PAUSE = 1.0


def _load(args: argparse.Namespace) -> LoadedConfig | None:
    loaded = load_for_command(args.config, sys.stderr)
    if loaded is None:
        return None
    if loaded.config.rollback is None:
        print(f"{loaded.path}: no `rollback:` section, so rollback is off", file=sys.stderr)
        return None
    return loaded


class CheckVerifier:
    """Verification by running the service's checks (with their thresholds) until they are
    all healthy or the deadline passes."""

    def __init__(self, specs: Sequence[CheckSpec], context: CheckContext) -> None:
        self._specs = specs
        self._context = context

    async def verify(self, rollback: Rollback, deadline: datetime) -> Verification:
        runners = [build_runner(spec, self._context, []) for spec in self._specs]
        if not runners:
            return Verification(False, (f"no check has service {rollback.service}",))
        clock = self._context.clock
        while True:
            await asyncio.gather(*(r.run_once() for r in runners))
            failing = [
                f"{r.spec.name}: {r.state.health.value}: "
                + (r.state.last_result.reason if r.state.last_result else "")
                for r in runners
                if r.state.health is not Health.HEALTHY
            ]
            if not failing:
                return Verification(True)
            remaining = (deadline - clock.now()).total_seconds()
            if remaining <= 0:
                return Verification(False, tuple(failing))
            await asyncio.sleep(min(VERIFY_PAUSE, remaining))


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


class _Session:
    """What one CLI command needs: the config, the store, the engine, the coordinator."""

    def __init__(self, loaded: LoadedConfig) -> None:
        config = loaded.config
        assert config.rollback is not None
        self.loaded = loaded
        self.redactor = Redactor(loaded.secrets)
        self.clock = SystemClock()
        self.metrics = Metrics()
        self.store = open_store(config.state_dir)
        self.access = DockerAccess.from_environment(os.environ, config.docker.host)
        self.ops = ContainerOps(self.access)
        self.context = CheckContext(self.metrics, HttpClients(), self.clock)
        if needs_docker(config):
            self.context.docker = self.access
        self.alert_store: AlertingStore | None = None
        sink: AlertSink = LogSink()
        if config.alerting is not None:
            self.alert_store = AlertingStore.open(config.state_dir)
            tracker = IncidentTracker(
                self.alert_store,
                self.metrics,
                self.redactor,
                config.public_url,
                config.runbook_url_template,
            )
            sink = IncidentSink(tracker)
        self.coordinator = Coordinator(
            config,
            self.store,
            self.ops,
            DeployTracker(self.store, self.clock, config.rollback.stable_after),
            self.clock,
            self.metrics,
            self.redactor,
            sink,
            CheckVerifier([], self.context),
        )
        self.coordinator.lease_kind = "operator"

    def specs_of(self, service: str) -> list[CheckSpec]:
        """The checks of `service`."""
        return [s for s in self.loaded.config.checks if s.service == service]

    async def aclose(self) -> None:
        """Release everything."""
        self.ops.close()
        await self.context.http.aclose()
        await self.access.aclose()
        self.store.close()
        if self.alert_store is not None:
            self.alert_store.close()


def _with_session(
    work: Callable[[_Session, argparse.Namespace], Any],
) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        redactor = Redactor()
        configure_logging(redactor, "WARNING", "console", stream=sys.stderr)
        loaded = _load(args)
        if loaded is None:
            return EXIT_USAGE
        redactor.update(loaded.secrets)

        async def run() -> int:
            session = _Session(loaded)
            try:
                code: int = await work(session, args)
                return code
            except DockerCallFailed as exc:
                print(f"rollback: {session.redactor.text(exc.reason)}", file=sys.stderr)
                return EXIT_NOT_DONE
            finally:
                await session.aclose()

        return asyncio.run(run())

    return command


async def _rollback(session: _Session, args: argparse.Namespace) -> int:
    service: str = args.service
    config = session.loaded.config
    assert config.rollback is not None
    known = sorted({s.service for s in config.checks if s.service} | set(config.rollback.services))
    if service not in known:
        print(f"no service named {service} (known: {', '.join(known)})", file=sys.stderr)
        return EXIT_USAGE
    rows = await _run_checks(config.checks, session.context)
    health, blockers = _facts(service, rows)
    session.coordinator.verifier = CheckVerifier(session.specs_of(service), session.context)
    outcome = await session.coordinator.handle(
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


async def _status(session: _Session, args: argparse.Namespace) -> int:
    config = session.loaded.config
    assert config.rollback is not None
    document = status_document(
        session.coordinator, sorted(config.rollback.services), session.clock.now()
    )
    document = session.redactor.value(document)
    print(json.dumps(document, indent=2) if args.json else render_status(document))
    return EXIT_OK


async def _unfreeze(session: _Session, args: argparse.Namespace) -> int:
    service: str = args.service
    if session.coordinator.unfreeze(service):
        print(f"automation re-enabled for {service}")
        return EXIT_OK
    print(f"{service} was not frozen", file=sys.stderr)
    return EXIT_NOT_DONE


def cmd_rollback(args: argparse.Namespace) -> int:
    """Dispatch `rollback status`, `rollback unfreeze SERVICE` and `rollback SERVICE`."""
    words: list[str] = args.words
    verbs: dict[str, tuple[int, Callable[[_Session, argparse.Namespace], Any]]] = {
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
