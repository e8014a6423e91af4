"""The gate's I/O: watch each service's new container and its own checks, feed the verdict
machine (monitor/gate/verdict.py), then promote, or roll back through the rollback
coordinator (the daemon's guards, journal and strategies), and report.

Each service is gated concurrently. A gate owns its service's rollback lease from its start
to its verdict (monitor/rollback/lease.py); a gate that finds the lease held waits for the
owner's outcome and reports it instead of acting.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TextIO

from monitor.alertnames import AlertName
from monitor.config import Config, LoadedConfig, load_for_command
from monitor.core.result import CheckResult
from monitor.core.spec import CheckSpec
from monitor.docker.access import DockerUnavailable
from monitor.docker.lifecycle import parse_inspect
from monitor.gate.evidence import candidates, container_seen, wants_logs
from monitor.gate.output import publish
from monitor.gate.report import (
    EXIT_USAGE,
    RollbackDone,
    ServiceReport,
    Verdict,
    progress_line,
    to_document,
)
from monitor.gate.verdict import (
    Change,
    CheckSeen,
    ContainerSeen,
    Evidence,
    GateState,
    Observation,
    Phase,
    Rules,
    choose,
    next_wake,
    start,
    step,
)
from monitor.logs import configure_logging, get_logger
from monitor.redaction import Redactor
from monitor.rollback.alerts import RollbackAlert
from monitor.rollback.coordinator import Coordinator, Request
from monitor.rollback.docker_ops import DockerCallFailed
from monitor.rollback.journal import Status
from monitor.rollback.lease import Holder, LeaseHeld, LeaseUnavailable
from monitor.rollback.policy import Action, Blocker, HealthFacts
from monitor.rollback.session import RollbackSession
from monitor.rollback.snapshot import Snapshot, SnapshotError
from monitor.runner import CheckRunner

# How often the container is looked at (checks run at their own intervals).
POLL = 0.5
LOG_LINES = 50
# The alert of each failing evidence (its runbook is linked from the report).
EVIDENCE_ALERTS: dict[Evidence, AlertName] = {
    Evidence.OOM: AlertName.CONTAINER_OOM_KILLED,
    Evidence.MISSING_ENV: AlertName.ENVIRONMENT_VARIABLES_MISSING,
    Evidence.CRASH_LOOP: AlertName.CONTAINER_CRASH_LOOPING,
    Evidence.EXITED: AlertName.CONTAINER_DOWN,
    Evidence.UNHEALTHY: AlertName.HEALTH_CHECK_FAILING,
}
VERDICT_ALERTS: dict[Verdict, AlertName] = {
    Verdict.PROMOTED: AlertName.DEPLOY_PROMOTED,
    Verdict.ROLLED_BACK: AlertName.DEPLOY_ROLLED_BACK,
    Verdict.ROLLBACK_FAILED: AlertName.DEPLOY_GATE_FAILED,
    Verdict.ROLLBACK_REFUSED: AlertName.DEPLOY_GATE_FAILED,
    Verdict.NOT_ROLLED_BACK: AlertName.DEPLOY_GATE_FAILED,
    Verdict.TIMED_OUT: AlertName.DEPLOY_GATE_FAILED,
}
_ROLLBACK_VERDICTS: dict[Status, Verdict] = {
    Status.SUCCEEDED: Verdict.ROLLED_BACK,
    Status.FAILED: Verdict.ROLLBACK_FAILED,
    Status.UNDONE: Verdict.ROLLBACK_FAILED,
    Status.SKIPPED: Verdict.ROLLBACK_REFUSED,
    Status.DRY_RUN: Verdict.ROLLBACK_REFUSED,
}


@dataclass(frozen=True)
class GateOptions:
    """The command line, as the gate uses it."""

    services: tuple[str, ...]
    image: str | None
    timeout: float
    healthy_for: float
    rollback: bool


class Printer:
    """Progress lines as they happen (stdout; stderr under --json, so stdout stays JSON)."""

    def __init__(self, out: TextIO, redactor: Redactor) -> None:
        self._out = out
        self._redactor = redactor

    def change(self, service: str, change: Change) -> None:
        """One timestamped line."""
        print(self._redactor.text(progress_line(service, change)), file=self._out, flush=True)


def _project(config: Config, service: str) -> str | None:
    """The Compose project of `service`: rollback's setting, else its container check's."""
    if config.rollback is not None:
        settings = config.rollback.services.get(service)
        if settings is not None and settings.project:
            return settings.project
    for spec in config.checks:
        project = getattr(spec, "project", None)
        if spec.type == "container" and spec.service == service and isinstance(project, str):
            return project
    return None


def _required_env(config: Config, service: str) -> list[str]:
    names: list[str] = []
    for spec in config.checks:
        required = getattr(spec, "required_env", ())
        if spec.type == "container" and spec.service == service:
            names += [n for n in required if n not in names]
    return names


class Session(RollbackSession):
    """What one `opsmon gate` needs: a rollback session acting as the gate, the service
    leases, and where the gate prints."""

    def __init__(self, loaded: LoadedConfig, redactor: Redactor, printer: Printer) -> None:
        super().__init__(loaded, redactor, "gate", checks_use_docker=True)
        self.printer = printer
        self._log = get_logger("gate")

    def runbook(self, alert: AlertName) -> str:
        """The runbook link of `alert`."""
        from monitor.runbooks import runbook_url

        return runbook_url(self.config, alert.value)


class ServiceGate:
    """The gate of one service."""

    def __init__(self, session: Session, service: str, options: GateOptions) -> None:
        self.s = session
        self.service = service
        self.options = options
        self.project = _project(session.config, service)
        self.required_env = _required_env(session.config, service)
        self.specs = session.specs_of(service)
        self.started_at = session.clock.now()
        self.changes: list[Change] = []
        self._runners: dict[str, CheckRunner] = {}
        self._due: dict[str, float] = {}
        self._container: str | None = None
        self._data: dict[str, Any] | None = None
        self._logs: dict[tuple[str, int, str], str] = {}
        self._engine_trouble = False

    def _say(self, text: str) -> None:
        self._record(Change(self.s.clock.now(), text))

    def _record(self, change: Change) -> None:
        self.changes.append(change)
        self.s.printer.change(self.service, change)

    # --- ownership ----------------------------------------------------------------------------
    async def run(self) -> ServiceReport:
        """Gate the service (or wait for whoever owns its rollback), then alert."""
        report = await self._owned_or_followed()
        report.changes = self.changes
        self._alert(report)
        return report

    async def _owned_or_followed(self) -> ServiceReport:
        run = uuid.uuid4().hex[:16]
        deadline = self.started_at + timedelta(seconds=self.options.timeout)
        leases = self.s.leases
        while True:
            held = False
            try:
                async with leases.hold(self.service, "gate", run):
                    held = True
                    await self._note_run(leases.gate_started(run, self.service))
                    report = await self._gate()
                    document = to_document([report])["services"][0]
                    await self._note_run(leases.gate_finished(run, report.verdict.value, document))
                    return report
            except LeaseHeld as exc:
                followed = await self._follow(exc.holder, deadline)
                if followed is not None:
                    return followed
                # The owner went away without an outcome: gate it ourselves.
            except LeaseUnavailable as exc:
                if held:
                    raise  # not from taking the lease: never judge the deploy twice
                # Fail closed for the rollback, not for the verdict: judge the deploy without
                # the lease; a rollback still needs it (the coordinator takes it or refuses).
                self._say(
                    f"{exc}: this gate does not hold the rollback lease of {self.service}; "
                    "judging the deploy without it (no rollback unless the lease can be "
                    "taken then)"
                )
                return await self._gate()

    async def _note_run(self, record: Awaitable[None]) -> None:
        """Record the gate run for gates that wait for it; a store that does not answer
        costs only that (they wait until this gate's lease expires, then gate themselves)."""
        try:
            await record
        except LeaseUnavailable as exc:
            self._say(f"{exc}: this gate's run is not recorded for other gates")

    async def _follow(self, holder: Holder, deadline: datetime) -> ServiceReport | None:
        self._say(
            f"{holder.describe()} owns the rollback of {self.service}; waiting for its outcome"
        )
        clock = self.s.clock
        unreachable = False
        while True:
            try:
                current = await self.s.leases.holder(self.service)
                owned = current is not None and current.run == holder.run
                unreachable = False
            except LeaseUnavailable as exc:
                # Nobody can tell whether the owner is done: keep waiting (up to the deadline).
                if not unreachable:
                    self._say(f"{exc}; waiting for it")
                unreachable = owned = True
            flight = self.s.coordinator.in_flight(self.service) if self.s.coordinator else None
            busy = owned or (flight is not None and flight.id == holder.run)
            if not busy:
                break
            if clock.now() >= deadline:
                return self._report(
                    Verdict.TIMED_OUT,
                    f"no verdict within {self.options.timeout:g}s: {holder.describe()} still "
                    f"owns the rollback of {self.service}",
                    followed=holder.describe(),
                )
            await asyncio.sleep(POLL)
        try:
            document = await self.s.leases.gate_report(holder.run)
        except LeaseUnavailable as exc:
            self._say(f"{exc}: the outcome of {holder.describe()} cannot be read")
            document = None
        if document is not None:
            return self._from_document(holder, document)
        record = self.s.coordinator.journal.get(holder.run) if self.s.coordinator else None
        if record is None or record.status.in_flight:
            return None
        verdict = _ROLLBACK_VERDICTS.get(record.status, Verdict.ROLLBACK_FAILED)
        self._say(f"{holder.describe()} finished its rollback: {record.status.value}")
        report = self._report(verdict, record.outcome or record.reason, followed=holder.describe())
        report.image, report.image_id = record.bad_image, record.bad_image_id
        report.last_known_good = record.target_image
        report.evidence = list(record.evidence)
        report.reason = record.reason
        report.rollback = RollbackDone(
            record.id, record.status.value, record.target_image, record.outcome, holder.describe()
        )
        return report

    def _from_document(self, holder: Holder, document: dict[str, Any]) -> ServiceReport:
        """The report of the gate that owned the service, as this gate's."""
        verdict = Verdict(document["verdict"])
        report = self._report(verdict, str(document["summary"]), followed=holder.describe())
        report.image = document.get("image") or ""
        report.image_id = document.get("image_id") or ""
        report.container = document.get("container") or ""
        report.last_known_good = document.get("last_known_good") or ""
        report.evidence = list(document.get("evidence") or [])
        report.reason = document.get("rollback_reason") or ""
        report.diagnosis = document.get("diagnosis") or ""
        report.runbook_url = document.get("runbook_url") or ""
        report.checks = [
            CheckSeen(c["name"], c["health"], c.get("reason") or "")
            for c in document.get("checks") or []
        ]
        rollback = document.get("rollback")
        if rollback:
            report.rollback = RollbackDone(
                rollback["id"],
                rollback["status"],
                rollback["target_image"],
                rollback["outcome"],
                rollback.get("owner") or holder.describe(),
            )
        self._say(f"{holder.describe()} finished: {verdict.value}")
        return report

    def _report(self, verdict: Verdict, summary: str, followed: str = "") -> ServiceReport:
        return ServiceReport(
            service=self.service,
            verdict=verdict,
            summary=summary,
            started_at=self.started_at,
            finished_at=self.s.clock.now(),
            followed=followed,
        )

    # --- watching -----------------------------------------------------------------------------
    async def _look(self) -> ContainerSeen | None:
        """The new container now (None: none yet)."""
        summaries = await self.s.ops.service_containers(self.service, self.project)
        chosen = choose(candidates(summaries), self.options.image)
        if chosen.id is None:
            return None
        data = await self.s.ops.inspect(chosen.id)
        if data is None:
            return None
        self._data = data
        logs = ""
        if wants_logs(data):
            view = parse_inspect(data)
            key = (view.id, view.restart_count, str(view.exit_code))
            if key not in self._logs:
                try:
                    self._logs[key] = await self.s.access.log_tail(view.id, LOG_LINES)
                except DockerUnavailable:
                    self._logs[key] = ""
            logs = self._logs[key]
        return container_seen(data, self.required_env, logs)

    def _fresh_runners(self) -> None:
        from monitor.runner import build_runner

        self._runners = {spec.name: build_runner(spec, self.s.context, []) for spec in self.specs}
        now = self.s.clock.monotonic()
        self._due = {name: now for name in self._runners}

    async def _run_due(self) -> None:
        now = self.s.clock.monotonic()
        due = [r for name, r in self._runners.items() if self._due[name] <= now]
        await asyncio.gather(*(r.run_once() for r in due))
        for runner in due:
            self._due[runner.spec.name] = now + runner.spec.interval

    def _checks(self) -> tuple[CheckSeen, ...]:
        seen = []
        for name, runner in self._runners.items():
            state = runner.state
            last = state.last_result
            reason = last.reason if last is not None and not last.ok else ""
            seen.append(CheckSeen(name, state.health.value, reason))
        return tuple(seen)

    async def _observe(self, state: GateState) -> GateState:
        try:
            container = await self._look()
            if self._engine_trouble:
                self._say("Docker engine answers again")
                self._engine_trouble = False
        except DockerCallFailed as exc:
            # Judge by what was last seen (the checks keep running); the deadline still holds.
            if not self._engine_trouble:
                self._say(f"Docker engine: {exc.reason}; looking again")
                self._engine_trouble = True
            container = state.container
        if container is not None and container.id != self._container:
            self._container = container.id
            self._fresh_runners()
        if container is not None:
            await self._run_due()
        state, changes = step(
            state, Observation(self.s.clock.now(), container, self._checks() if container else ())
        )
        for change in changes:
            self._record(change)
        return state

    async def _gate(self) -> ServiceReport:
        rules = Rules(self.options.healthy_for, self.options.timeout)
        state = start(self.service, self.started_at, rules)
        self._say(
            f"gating {self.service}: {len(self.specs)} check(s) must stay healthy for "
            f"{self.options.healthy_for:g}s, within {self.options.timeout:g}s"
            + (
                f"; waiting for a container running {self.options.image}"
                if self.options.image
                else ""
            )
        )
        while not state.phase.final:
            state = await self._observe(state)
            if state.phase.final:
                break
            pause = next_wake(state, self.s.clock.now(), POLL)
            if self._due:
                until_check = min(self._due.values()) - self.s.clock.monotonic()
                pause = min(pause, max(0.0, until_check))
            await asyncio.sleep(max(pause, 0.01))
        return await self._verdict(state)

    # --- acting -------------------------------------------------------------------------------
    async def _verdict(self, state: GateState) -> ServiceReport:
        container = state.container
        if state.phase is Phase.PROMOTED:
            report = self._report(Verdict.PROMOTED, state.summary)
            self._fill(report, state)
            report.last_known_good = await self._promote(report)
            return report
        if state.phase is Phase.TIMED_OUT:
            report = self._report(Verdict.TIMED_OUT, state.summary)
            self._fill(report, state)
            return report
        failure = state.failure
        assert failure is not None and container is not None
        report = self._report(Verdict.NOT_ROLLED_BACK, failure.summary)
        self._fill(report, state)
        alert = EVIDENCE_ALERTS[failure.evidence]
        report.diagnosis = alert.value
        report.runbook_url = self.s.runbook(alert)
        if not self.options.rollback:
            report.reason = "--no-rollback: the service is left as it is"
            return report
        coordinator = self.s.coordinator
        if coordinator is None:
            report.verdict = Verdict.ROLLBACK_REFUSED
            report.reason = "rollback is off (the config has no `rollback:` section)"
            return report
        return await self._roll_back(report, state, coordinator)

    def _fill(self, report: ServiceReport, state: GateState) -> None:
        container = state.container
        if container is not None:
            report.image, report.image_id, report.container = (
                container.image,
                container.image_id,
                container.name,
            )
        report.checks = list(state.checks)
        if state.failure is not None:
            report.evidence = list(state.failure.details)
        lkg = self.s.store.lkg(self.service)
        if lkg is not None:
            report.last_known_good = lkg.image

    async def _promote(self, report: ServiceReport) -> str:
        """Make the promoted container's image the service's last known good now."""
        data = await self.s.ops.inspect(self._container or "") if self._container else None
        if data is None:
            self._say("the promoted container is gone; the last known good is unchanged")
            return report.last_known_good
        deploy = self._see(data)
        try:
            snapshot = Snapshot.from_inspect(data)
        except SnapshotError as exc:
            self._say(f"cannot snapshot the container ({exc}); the last known good is unchanged")
            return report.last_known_good
        tracker = self.s.tracker
        if deploy is None or self.s.store.bad_image(self.service, deploy.image_id) is not None:
            self._say(
                f"{report.image} was rolled back from before; it does not become the last "
                "known good"
            )
            return report.last_known_good
        self.s.store.mark_healthy(deploy.id)
        tracker.promote(deploy, snapshot, self.s.clock.now())
        self._say(f"{report.image} is the last known good of {self.service} now")
        return report.image

    def _see(self, data: Mapping[str, Any]) -> Any:
        if self.s.coordinator is not None:
            return self.s.coordinator.see(self.service, data)
        from monitor.docker.lifecycle import PROJECT_LABEL, parse_time

        config = data.get("Config") or {}
        state = data.get("State") or {}
        started = parse_time(state.get("StartedAt")) or self.s.clock.now()
        return self.s.tracker.seen(
            self.service,
            str((config.get("Labels") or {}).get(PROJECT_LABEL, "")),
            str(data.get("Id")),
            str(data.get("Name") or "").lstrip("/"),
            str(config.get("Image") or ""),
            str(data.get("Image") or ""),
            started,
        ).deploy

    async def _blockers(self, state: GateState) -> tuple[HealthFacts, tuple[Blocker, ...]]:
        """What every check says now, as the rollback policy's health facts and blockers
        (monitor/rollback/facts.py, as for the daemon): the own checks as the gate ran them
        on the new container, every other check run once now."""
        from monitor.diagnosis import CheckView
        from monitor.diagnosis import Snapshot as Situation
        from monitor.rollback.facts import service_facts
        from monitor.runner import build_runner

        others = [s for s in self.s.config.checks if s.service != self.service]
        runners = [build_runner(spec, self.s.context, []) for spec in others]
        results = await asyncio.gather(*(r.run_once() for r in runners))
        rows: list[tuple[CheckSpec, CheckResult]] = list(zip(others, results, strict=True))
        views = list(Situation.from_results(rows))
        views += [
            CheckView.of(r.spec, r.state.health, r.state.last_result)
            for r in self._runners.values()
        ]
        found = service_facts(self.service, Situation(views))
        health, blockers = found.health, found.blockers
        failure = state.failure
        assert failure is not None
        crash = failure.evidence in (Evidence.CRASH_LOOP, Evidence.EXITED, Evidence.OOM)
        health = replace(
            health,
            crash_looping=health.crash_looping or crash,
            evidence=(*failure.details, *health.evidence),
        )
        return health, blockers

    async def _roll_back(
        self, report: ServiceReport, state: GateState, coordinator: Coordinator
    ) -> ServiceReport:
        failure = state.failure
        assert failure is not None and self._data is not None
        health, blockers = await self._blockers(state)
        if blockers:
            try:
                cause = AlertName(blockers[0].cause)
            except ValueError:  # not an alert (e.g. "a dependency is down")
                cause = None
            if cause is not None:
                report.diagnosis, report.runbook_url = cause.value, self.s.runbook(cause)
        deploy = self._see(self._data)
        coordinator.verifier = self.s.verifier_for(self.service)
        self._say(f"{failure.summary}; asking the rollback coordinator")
        outcome = await coordinator.handle(
            Request(
                self.service,
                health,
                blockers,
                None,
                gate=failure.summary,
                deploy_id=deploy.id if deploy is not None else None,
            )
        )
        decision = outcome.decision
        record = outcome.rollback
        report.reason = decision.reason
        if decision.action is Action.ROLLBACK and record is not None:
            report.verdict = _ROLLBACK_VERDICTS.get(record.status, Verdict.ROLLBACK_FAILED)
            report.rollback = RollbackDone(
                record.id, record.status.value, record.target_image, record.outcome, "this gate"
            )
            report.last_known_good = record.target_image
            if report.verdict is Verdict.ROLLED_BACK:
                report.summary = f"{failure.summary}; rolled back to {record.target_image}"
            else:
                report.summary = f"{failure.summary}; the rollback failed"
        else:
            report.verdict = Verdict.ROLLBACK_REFUSED
            report.summary = f"{failure.summary}; not rolled back"
        self._say(report.summary)
        return report

    # --- alerts -------------------------------------------------------------------------------
    def _alert(self, report: ServiceReport) -> None:
        if report.followed:
            return  # the owner alerts
        name = VERDICT_ALERTS[report.verdict]
        now = self.s.clock.now()
        for other in set(VERDICT_ALERTS.values()):
            self.s.sink.resolve(self.service, other, now, " (a new deploy gate finished)")
        headline = {
            AlertName.DEPLOY_PROMOTED: f"The deploy of {self.service} ({report.image}) passed "
            "the gate and is its last known good now.",
            AlertName.DEPLOY_ROLLED_BACK: f"The deploy of {self.service} ({report.image}) "
            f"failed the gate and was rolled back to {report.last_known_good}.",
            AlertName.DEPLOY_GATE_FAILED: f"The deploy of {self.service} ({report.image or '?'})"
            f" needs a human: {report.verdict.value.replace('_', ' ')}.",
        }[name]
        lines = [report.summary, *(f"Evidence: {e}" for e in report.evidence)]
        if report.reason:
            lines.append(f"Rollback: {report.reason}")
        if report.rollback is not None and report.rollback.outcome:
            lines.append(report.rollback.outcome)
        self.s.sink.fire(RollbackAlert(name, self.service, headline, "\n".join(lines)), now)


async def gate(
    loaded: LoadedConfig, options: GateOptions, redactor: Redactor, out: TextIO
) -> list[ServiceReport]:
    """Gate every service concurrently; one report each, in the order given."""
    session = Session(loaded, redactor, Printer(out, redactor))
    try:
        await session.share_guards()
        gates = [ServiceGate(session, service, options) for service in options.services]
        return list(await asyncio.gather(*(g.run() for g in gates)))
    finally:
        await session.share_guards()
        await session.aclose()


def _known_services(config: Config) -> set[str]:
    services = {s.service for s in config.checks if s.service}
    if config.rollback is not None:
        services |= set(config.rollback.services)
    return services


def run_gate(args: argparse.Namespace) -> int:
    """`opsmon gate`: load the config, gate, print, return the exit code."""
    redactor = Redactor()
    configure_logging(redactor, "WARNING", "console", stream=sys.stderr)
    loaded = load_for_command(args.config, sys.stderr)
    if loaded is None:
        return EXIT_USAGE
    redactor.update(loaded.secrets)
    config = loaded.config
    known = _known_services(config)
    problems = []
    for service in args.services:
        if service not in known:
            problems.append(
                f"no service named {service} in {loaded.path} (known: {', '.join(sorted(known))})"
            )
    if problems:
        for problem in problems:
            print(f"opsmon gate: {problem}", file=sys.stderr)
        return EXIT_USAGE
    options = GateOptions(
        tuple(dict.fromkeys(args.services)),
        args.image,
        args.timeout,
        args.healthy_for,
        not args.no_rollback,
    )
    progress = sys.stderr if args.json else sys.stdout
    reports = asyncio.run(gate(loaded, options, redactor, progress))
    return publish(reports, args.json, sys.stdout, os.environ, redactor.text)
