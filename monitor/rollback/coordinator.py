"""One code path for every rollback, automatic (the daemon) or manual (`opsmon rollback`):
gather the facts, decide (monitor/rollback/policy.py), then plan, carry out through the
service's strategy, verify, and report (journal, alerts, metrics, freeze on failure)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from monitor.alertnames import AlertName
from monitor.clock import Clock
from monitor.core.durations import format_duration
from monitor.docker.lifecycle import PROJECT_LABEL, parse_time
from monitor.docker.selection import Selector, best_candidate
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.redaction import Redactor
from monitor.rollback.alerts import AlertSink, RollbackAlert
from monitor.rollback.command import CommandStrategy, image_tag, render
from monitor.rollback.config import (
    DATABASE_NAME,
    RollbackConfig,
    Strategy,
    database_services,
    service_projects,
)
from monitor.rollback.docker_ops import ContainerOps, DockerCallFailed
from monitor.rollback.journal import (
    AlreadyInFlight,
    Journal,
    Rollback,
    Status,
    Step,
    hour_ago,
    new_id,
    owner_alive,
    owner_id,
)
from monitor.rollback.lease import LeaseHeld, Leases, LeaseUnavailable, LocalLeases, ServiceLeases
from monitor.rollback.policy import (
    Action,
    Blocker,
    Decision,
    DeployFacts,
    HealthFacts,
    PolicyInput,
    decide,
    environment_gone,
)
from monitor.rollback.recreate import RecreateStrategy, StrategyFailed, failed_name
from monitor.rollback.retire import retire_failed
from monitor.rollback.retired_copy import FAILED_FROM_LABEL
from monitor.rollback.snapshot import Snapshot, SnapshotError, diff, short_id
from monitor.rollback.store import Deploy, RollbackStore
from monitor.rollback.tracker import DeployTracker

if TYPE_CHECKING:
    from monitor.config import Config

# Verification after a restart gets at least this long (the checks start from scratch).
RESUME_VERIFY_MIN = timedelta(seconds=60)


@dataclass(frozen=True)
class Verification:
    """Whether the service's checks turned healthy, and what they said."""

    healthy: bool
    evidence: tuple[str, ...] = ()


class Verifier(Protocol):
    """Waits for a service's checks to turn healthy after a rollback."""

    async def verify(self, rollback: Rollback, deadline: datetime) -> Verification:
        """Healthy by `deadline`, or not (with the failing checks' reasons)."""
        ...


class RollbackStrategy(Protocol):
    """A way of carrying out a rollback (`recreate`, `command`)."""

    async def execute(self, rollback: Rollback) -> None:
        """Put the target image in place; raise StrategyFailed if that does not work."""
        ...

    async def resume(self, rollback: Rollback) -> None:
        """Finish after a crash."""
        ...


@dataclass(frozen=True)
class Request:
    """What to decide about: the service, what its checks say, and the manual options."""

    service: str
    health: HealthFacts = field(default_factory=HealthFacts)
    blockers: tuple[Blocker, ...] = ()
    silenced: str | None = None
    manual: bool = False
    force: bool = False
    dry_run: bool = False
    to_image: str | None = None
    # A deploy gate's request: why it failed the new version (silences do not stop it; the
    # gate sends its own alert instead of RollbackSkipped).
    gate: str | None = None
    # The deploy the facts are about: if another container is current by the time the engine
    # is asked, the facts are stale and nothing is decided.
    deploy_id: int | None = None
    # Awaited once a rollback is decided, before anything is changed (alerting pages the
    # outage it is for, and holds back what the swap sets off).
    on_rollback: Callable[[], Awaitable[None]] | None = None


@dataclass
class Outcome:
    """What happened: the decision, the journal record (if any), the plan and the diff."""

    decision: Decision
    rollback: Rollback | None = None
    plan: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The decision, the plan and the diff, for a person."""
        lines = [self.decision.reason]
        if self.plan:
            lines += ["", "Plan:", *(f"  {n}. {s}" for n, s in enumerate(self.plan, 1))]
        if self.diff:
            lines += ["", "Changes (running -> restored):", *(f"  {d}" for d in self.diff)]
        text = "\n".join(lines)
        # A dry run's or a skip's journal record keeps a copy of this very text as its outcome:
        # print it once.
        if self.rollback is not None and self.rollback.outcome and self.rollback.outcome != text:
            text += "\n\n" + self.rollback.outcome
        return text


@dataclass(frozen=True)
class Current:
    """The service's current container."""

    data: dict[str, Any]
    deploy: Deploy

    @property
    def snapshot(self) -> Snapshot | None:
        """Its snapshot (None if inspect lacks what one needs)."""
        try:
            return Snapshot.from_inspect(self.data)
        except SnapshotError:
            return None


class Coordinator:
    """Decides and carries out rollbacks; the daemon and the CLI both go through `handle`."""

    def __init__(
        self,
        config: Config,
        store: RollbackStore,
        ops: ContainerOps,
        tracker: DeployTracker,
        clock: Clock,
        metrics: Metrics,
        redactor: Redactor,
        alerts: AlertSink,
        verifier: Verifier,
        environ: Mapping[str, str] | None = None,
        leases: ServiceLeases | None = None,
    ) -> None:
        self.store = store
        self.journal = Journal(store)
        # Who owns each service's rollback: this instance's state, or with a `cluster:`
        # section the cluster store (monitor/cluster/leases.py).
        self.leases: ServiceLeases = leases or LocalLeases(Leases(store, clock))
        # Who carries rollbacks out through this coordinator (the lease's kind).
        self.lease_kind = "daemon"
        self.ops = ops
        self.tracker = tracker
        self.clock = clock
        self.metrics = metrics
        self.redactor = redactor
        self.alerts = alerts
        self.verifier = verifier
        self._environ = environ
        self._log = get_logger("rollback")
        self.strategies: dict[str, RollbackStrategy] = {}
        self.config = RollbackConfig()
        self.databases: frozenset[str] = frozenset()
        self.projects: dict[str, str] = {}
        self.reconfigure(config)

    def reconfigure(self, config: Config) -> None:
        """Use a new config (its `rollback:` section, checks and databases)."""
        assert config.rollback is not None
        self.config = rollback = config.rollback
        self.databases = database_services(config)
        self.projects = service_projects(config)
        self.tracker.stable_after = rollback.stable_after
        self.strategies = {
            Strategy.RECREATE.value: RecreateStrategy(self.ops, self.journal, self.clock),
            Strategy.COMMAND.value: CommandStrategy(
                rollback.services, self.ops, self.journal, self.clock, self.redactor, self._environ
            ),
        }

    def project(self, service: str) -> str | None:
        """The Compose project of `service` (None: any project)."""
        return self.projects.get(service)

    # --- facts ------------------------------------------------------------------------------
    async def current(self, service: str, origin: str = "deploy") -> Current | None:
        """The service's current container (running first, else the newest), recorded as a
        deploy if it is new."""
        project = self.project(service)
        summaries = await self.ops.service_containers(service, project)
        chosen = best_candidate(summaries, Selector(project=project, service=service))
        if chosen is None:
            return None
        data = await self.ops.inspect(chosen)
        if data is None:
            return None
        seen = self.see(service, data, origin)
        return Current(data, seen) if seen is not None else None

    def see(self, service: str, data: Mapping[str, Any], origin: str = "deploy") -> Deploy | None:
        """Record the container `data` (inspect) of `service` with the deploy tracker."""
        config = data.get("Config") or {}
        labels = config.get("Labels") or {}
        # When it started (a container created but not started yet: when it was created);
        # results of checks before that are about another container.
        state = data.get("State") or {}
        created = (
            parse_time(state.get("StartedAt"))
            or parse_time(data.get("Created"))
            or self.clock.now()
        )
        return self.tracker.seen(
            service,
            str(labels.get(PROJECT_LABEL, "")),
            str(data.get("Id")),
            str(data.get("Name") or "").lstrip("/"),
            str(config.get("Image") or ""),
            str(data.get("Image") or ""),
            created,
            origin,
        ).deploy

    def in_flight(self, service: str) -> Rollback | None:
        """The rollback of `service` being carried out, if any."""
        found = self.journal.in_flight(service)
        return found[0] if found else None

    async def _target(self, request: Request) -> tuple[str | None, str | None, str | None]:
        """(image reference, image id, problem) of where to roll back to."""
        if request.to_image is None:
            lkg = self.store.lkg(request.service)
            if lkg is None:
                return None, None, None
            # The reference if it still names the LKG image, else its id (tags move).
            image = await self.ops.image(lkg.image)
            if image is not None and image.get("Id") == lkg.image_id:
                return lkg.image, lkg.image_id, None
            if await self.ops.image(lkg.image_id) is None:
                return (
                    None,
                    None,
                    f"the last known good image {lkg.image} is no longer on the engine",
                )
            return lkg.image_id, lkg.image_id, None
        image = await self.ops.image(request.to_image)
        if image is None:
            return None, None, f"the engine has no image {request.to_image}"
        return request.to_image, str(image.get("Id")), None

    # --- the one code path -------------------------------------------------------------------
    async def handle(self, request: Request) -> Outcome:
        """Decide about `request.service` and act on the decision."""
        service = request.service
        now = self.clock.now()
        try:
            holder = await self.leases.other_holder(service)
        except LeaseUnavailable as exc:
            return self._lease_unavailable(request, exc)
        if holder is not None:
            # Whoever took the service's lease first owns its rollback; the others wait (a
            # skip: the daemon looks again a few ticks later, not every tick while a gate runs).
            return Outcome(
                Decision(
                    Action.SKIP,
                    f"no rollback: {holder.describe()} owns the rollback of {service} "
                    "until it finishes",
                )
            )
        current = await self.current(service)
        deploy = current.deploy if current is not None else None
        if request.deploy_id is not None and (deploy is None or deploy.id != request.deploy_id):
            return Outcome(Decision(Action.NONE, f"{service} changed while deciding"))
        target, target_id, problem = await self._target(request)
        frozen = self.store.frozen(service)
        flight = self.in_flight(service)
        blockers = request.blockers
        lkg = self.store.lkg(service)
        mine = current.snapshot if current is not None else None
        env_gone = environment_gone(lkg.snapshot.env, mine.env) if lkg and mine else None
        facts = PolicyInput(
            service=service,
            now=now,
            mode=self.config.mode,
            window=self.config.window,
            max_per_hour=self.config.max_per_hour,
            opted_in=service in self.config.services,
            is_database=service in self.databases or bool(DATABASE_NAME.match(service)),
            deploy=None
            if deploy is None
            else DeployFacts(
                deploy.image, deploy.image_id, deploy.started_at, deploy.ever_healthy, deploy.origin
            ),
            lkg_image=target,
            lkg_image_id=target_id,
            health=request.health,
            blockers=blockers,
            frozen=frozen.reason if frozen is not None else None,
            silenced=request.silenced,
            rollbacks_last_hour=self.journal.executed_since(service, hour_ago(now)),
            in_flight=flight.id if flight is not None else None,
            manual=request.manual,
            gate=request.gate,
            force=request.force,
            dry_run=request.dry_run,
            target_missing=problem,
            lkg_env_gone=env_gone,
            target_is_bad=target_id is not None
            and self.store.bad_image(service, target_id) is not None,
        )
        decision = decide(facts)
        if decision.action is Action.NONE:
            return Outcome(decision)
        outcome = Outcome(decision)
        if current is not None and decision.target_image is not None:
            outcome.plan = self._plan(service, current, decision)
            lkg = self.store.lkg(service)
            mine = current.snapshot
            if lkg is not None and mine is not None:
                outcome.diff = diff(mine, replace(lkg.snapshot, image=decision.target_image))
        self._log.info(
            "rollback_decision",
            service=service,
            action=decision.action.value,
            reason=decision.reason,
            trigger=decision.trigger.value if decision.trigger else None,
            manual=request.manual,
        )
        if decision.action is Action.ROLLBACK:
            assert current is not None
            if request.on_rollback is not None:
                await request.on_rollback()
            outcome.rollback = await self._execute(request, decision, current)
            return outcome
        outcome.rollback = self._note(request, decision, current, outcome)
        return outcome

    def _plan(self, service: str, current: Current, decision: Decision) -> list[str]:
        settings = self.config.services.get(service)
        checks_wait = (
            f"wait up to {format_duration(self.config.verify_timeout)} for the checks of "
            f"{service} to turn healthy; on failure alert RollbackFailed and freeze automation"
        )
        data = current.data
        name = str(data.get("Name") or "").lstrip("/")
        cid = str(data.get("Id"))
        target = f"{decision.target_image} ({short_id(decision.target_image_id or '')})"
        if settings is not None and settings.strategy is Strategy.COMMAND:
            assert settings.command is not None
            tag = image_tag(decision.target_image or "")
            argv = render(
                settings.command,
                {
                    "service": service,
                    "project": current.deploy.project,
                    "lkg_tag": tag,
                    "lkg_image": decision.target_image or "",
                    "bad_image": current.deploy.image,
                },
            )
            where = f" in {settings.cwd}" if settings.cwd else ""
            return [
                f"run `{self.redactor.text(' '.join(argv))}`{where} with CI_COMMIT_SHA={tag} "
                f"(timeout {format_duration(settings.timeout)})",
                checks_wait,
            ]
        plan = [
            f"stop {name} ({short_id(cid)}, image {current.deploy.image})",
            f"rename it to {failed_name(name, cid)} (kept, stopped, for inspection)",
            f"create {name} from the last known good snapshot with image {target}",
        ]
        lkg = self.store.lkg(service)
        if lkg is not None and lkg.snapshot.extra_networks():
            plan.append(f"connect it to {', '.join(lkg.snapshot.extra_networks())}")
        plan += ["start it", checks_wait]
        return plan

    def _record(
        self, request: Request, decision: Decision, current: Current | None, status: Status
    ) -> Rollback:
        now = self.clock.now()
        service = request.service
        settings = self.config.services.get(service)
        data = current.data if current is not None else {}
        cid = str(data.get("Id") or "")
        name = str(data.get("Name") or "").lstrip("/")
        lkg = self.store.lkg(service)
        target = decision.target_image or ""
        return Rollback(
            id=new_id(),
            service=service,
            project=current.deploy.project if current is not None else "",
            strategy=(settings.strategy if settings is not None else Strategy.RECREATE).value,
            trigger="manual" if request.manual else "gate" if request.gate else "auto",
            status=status,
            step=Step.PLANNED,
            bad_image=current.deploy.image if current is not None else "",
            bad_image_id=current.deploy.image_id if current is not None else "",
            target_image=target,
            target_image_id=decision.target_image_id or "",
            target_tag=image_tag(
                lkg.image if lkg is not None and request.to_image is None else target
            ),
            old_container_id=cid,
            old_name=name,
            old_was_running=bool((data.get("State") or {}).get("Running")),
            failed_name=failed_name(name, cid) if cid else "",
            reason=decision.reason,
            evidence=list(decision.evidence),
            owner=owner_id(),
            started_at=now,
            updated_at=now,
            snapshot=lkg.snapshot if lkg is not None else None,
        )

    def _note(
        self, request: Request, decision: Decision, current: Current | None, outcome: Outcome
    ) -> Rollback:
        status = Status.DRY_RUN if decision.action is Action.DRY_RUN else Status.SKIPPED
        record = self._record(request, decision, current, status)
        if not request.manual and request.gate is None:
            # Looked at again every few seconds while the service fails: report it once per
            # container and reason (also across a restart of the daemon).
            last = self.journal.recent(request.service, 1)
            if (
                last
                and last[0].status is status
                and last[0].trigger == "auto"
                and last[0].old_container_id == record.old_container_id
                and (status is Status.DRY_RUN or last[0].reason == record.reason)
            ):
                return last[0]
        record.snapshot = None  # nothing will be created from it
        record.outcome = outcome.text
        record.finished_at = record.started_at
        self.journal.note(record)
        result = "dry_run" if status is Status.DRY_RUN else "skipped"
        self.metrics.rollbacks.labels(request.service, result).inc()
        if not request.manual and request.gate is None:
            self.alerts.fire(
                RollbackAlert(
                    AlertName.ROLLBACK_SKIPPED,
                    request.service,
                    (
                        f"Dry run: opsmon would roll {request.service} back to "
                        f"{decision.target_image}."
                        if status is Status.DRY_RUN
                        else f"{request.service} was not rolled back: "
                        f"{_first_clause(decision.reason)}."
                    ),
                    _with_evidence(outcome.text, decision.evidence),
                ),
                record.started_at,
            )
        return record

    # --- carrying out -----------------------------------------------------------------------
    async def _execute(self, request: Request, decision: Decision, current: Current) -> Rollback:
        service = request.service
        record = self._record(request, decision, current, Status.IN_PROGRESS)
        if record.strategy == Strategy.RECREATE.value and record.snapshot is None:
            record.status = Status.SKIPPED
            record.outcome = "no snapshot of the last known good container"
            self.journal.note(record)
            return record
        try:
            async with self.leases.hold(service, self.lease_kind, record.id):
                try:
                    self.journal.begin(record)
                except AlreadyInFlight:
                    record.status = Status.SKIPPED
                    record.outcome = "another rollback of the service started at the same time"
                    return record
                await self._begun(record, current)
        except LeaseHeld as exc:
            record.status = Status.SKIPPED
            record.outcome = f"{exc.holder.describe()} took over the rollback of {service}"
        except LeaseUnavailable as exc:
            # Nothing was changed: the lease is taken before the journal or the engine is.
            record.status = Status.SKIPPED
            record.outcome = self._lease_unavailable(request, exc).decision.reason
        return record

    def _lease_unavailable(self, request: Request, exc: LeaseUnavailable) -> Outcome:
        """Fail closed: nobody can tell who owns the service's rollback, so none is done."""
        reason = (
            f"no rollback: nobody can tell who owns the rollback of {request.service} "
            f"({exc}); a rollback needs its lease"
        )
        self._log.warning(
            "rollback_lease_unavailable",
            service=request.service,
            reason=self.redactor.text(str(exc)),
        )
        return Outcome(Decision(Action.SKIP, reason))

    async def _begun(self, record: Rollback, current: Current) -> None:
        service = record.service
        self.tracker.mark_bad(current.deploy, record.reason, record.started_at)
        for name in (AlertName.ROLLBACK_SKIPPED, AlertName.ROLLBACK_PERFORMED):
            self.alerts.resolve(service, name, record.started_at, " (a rollback started)")
        self._log.info(
            "rollback_started",
            rollback=record.id,
            service=service,
            strategy=record.strategy,
            bad_image=record.bad_image,
            target_image=record.target_image,
        )
        await self._carry_out(record, resume=False)

    async def resume(self, record: Rollback) -> Rollback:
        """Finish a rollback found in flight at start (its owner died)."""
        now = self.clock.now()
        self.journal.adopt(record, owner_id(), now)
        self._log.info(
            "rollback_resumed", rollback=record.id, service=record.service, step=record.step.value
        )
        if record.status is Status.VERIFYING:
            await self._verify(record, resumed=True)
        else:
            await self._carry_out(record, resume=True)
        return record

    def orphans(self) -> list[Rollback]:
        """In-flight rollbacks whose owner is gone (or is this process, before it began any)."""
        return [
            r for r in self.journal.in_flight() if not owner_alive(r.owner) or r.owner == owner_id()
        ]

    async def _carry_out(self, record: Rollback, resume: bool) -> None:
        strategy = self.strategies[record.strategy]
        try:
            if resume:
                await strategy.resume(record)
            else:
                await strategy.execute(record)
        except StrategyFailed as exc:
            status = Status.UNDONE if exc.undone else Status.FAILED
            step = Step.UNDONE if exc.undone else Step.VERIFY_FAILED
            what = (
                "the old container was put back" if exc.undone else "the service was left as it is"
            )
            self._fail(record, status, step, f"Rollback failed: {exc.reason}; {what}.", ())
            return
        await self._adopt_replacement(record)
        await self._verify(record, resumed=resume)

    async def _adopt_replacement(self, record: Rollback) -> None:
        """Tell deploy tracking that the service's container is the rollback's."""
        try:
            if record.new_container_id:
                data = await self.ops.inspect(record.new_container_id)
                if data is not None:
                    self.see(record.service, data, origin="rollback")
                    return
            summaries = await self.ops.service_containers(record.service, record.project or None)
            for summary in summaries:
                if (
                    summary.get("State") == "running"
                    and summary.get("ImageID") == record.target_image_id
                ):
                    data = await self.ops.inspect(str(summary["Id"]))
                    if data is not None:
                        self.see(record.service, data, origin="rollback")
                        return
        except DockerCallFailed as exc:
            self._log.warning("rollback_replacement_unseen", rollback=record.id, reason=exc.reason)

    async def _verify(self, record: Rollback, resumed: bool) -> None:
        now = self.clock.now()
        deadline = now + timedelta(seconds=self.config.verify_timeout)
        if resumed and record.verify_deadline is not None:
            deadline = max(record.verify_deadline, now + RESUME_VERIFY_MIN)
        if record.status is not Status.VERIFYING or record.verify_deadline != deadline:
            self.journal.verifying(record, deadline, now)
        result = await self.verifier.verify(record, deadline)
        if not result.healthy:
            self._fail(
                record,
                Status.FAILED,
                Step.VERIFY_FAILED,
                f"Rollback failed: {record.service} on {record.target_image} did not turn healthy "
                f"within {format_duration(self.config.verify_timeout)}.",
                result.evidence,
            )
            return
        kept = await self._retire(record) if record.strategy == Strategy.RECREATE.value else []
        finished = self.clock.now()
        seconds = (finished - record.started_at).total_seconds()
        outcome = (
            f"{record.service} rolled back from {record.bad_image} "
            f"({short_id(record.bad_image_id)}) to {record.target_image} "
            f"({short_id(record.target_image_id)}) in "
            f"{seconds:.1f}s; its checks are healthy."
        )
        self.journal.finish(record, Status.SUCCEEDED, Step.VERIFIED, outcome, finished)
        self.metrics.rollbacks.labels(record.service, "succeeded").inc()
        self.metrics.rollback_duration.observe(seconds)
        self._log.info(
            "rollback_succeeded",
            rollback=record.id,
            service=record.service,
            seconds=round(seconds, 2),
        )
        self.alerts.fire(
            RollbackAlert(
                AlertName.ROLLBACK_PERFORMED,
                record.service,
                f"{record.service} was rolled back from {record.bad_image} to "
                f"{record.target_image}.",
                "\n".join(
                    [
                        outcome,
                        f"Why: {record.reason}",
                        *_evidence_lines(record.evidence),
                        *kept,
                    ]
                ),
            ),
            finished,
        )

    async def _retire(self, record: Rollback) -> list[str]:
        """Replace the kept failed container by its relabelled copy, so that Compose no longer
        counts it as the service's; the lines RollbackPerformed says about it."""
        self.journal.step(record, Step.RETIRE_OLD, self.clock.now())
        name = record.failed_name
        try:
            retired = await retire_failed(self.ops, record, self.store.path.parent / "retired")
        except DockerCallFailed as exc:
            self._log.warning("failed_container_not_retired", rollback=record.id, reason=exc.reason)
            return [
                f"Failed container kept (stopped) as {name}, still with the service's Compose "
                f"labels ({exc.reason}): remove it (docker rm {name}) before the next deploy, "
                "Compose counts it as a container of the service."
            ]
        saved = f"; its log is saved in {retired.logs}" if retired.logs else ""
        return [
            f"Failed container kept (stopped) as {name}, without the service's Compose labels "
            f"(label {FAILED_FROM_LABEL}={short_id(record.old_container_id)}){saved}. "
            f"Remove it (docker rm {name}) once you have looked at it."
        ]

    def _fail(
        self,
        record: Rollback,
        status: Status,
        step: Step,
        outcome: str,
        evidence: Sequence[str],
    ) -> None:
        now = self.clock.now()
        self.journal.finish(record, status, step, outcome, now)
        self.store.freeze(record.service, f"rollback {record.id} failed", now)
        self.metrics.rollbacks.labels(record.service, "failed").inc()
        self._log.error(
            "rollback_failed", rollback=record.id, service=record.service, outcome=outcome
        )
        lines = [
            outcome,
            f"Rollback from {record.bad_image} ({short_id(record.bad_image_id)}) to "
            f"{record.target_image} ({short_id(record.target_image_id)}); why: {record.reason}",
            *_evidence_lines(evidence or record.evidence),
            f"Automation is frozen for {record.service} until "
            f"`opsmon rollback unfreeze {record.service}`.",
        ]
        if record.output:
            lines += ["Command output (end):", record.output[-1000:]]
        self.alerts.fire(
            RollbackAlert(
                AlertName.ROLLBACK_FAILED,
                record.service,
                f"The rollback of {record.service} to {record.target_image} failed; "
                "automation is frozen.",
                "\n".join(lines),
            ),
            now,
        )

    def unfreeze(self, service: str) -> bool:
        """Turn automation back on for `service` (and resolve its RollbackFailed)."""
        done = self.store.unfreeze(service)
        with contextlib.suppress(Exception):
            self.alerts.resolve(
                service, AlertName.ROLLBACK_FAILED, self.clock.now(), " (unfrozen by an operator)"
            )
        return done


def _first_clause(reason: str) -> str:
    return reason.removeprefix("no rollback: ")


def _evidence_lines(evidence: Sequence[str]) -> list[str]:
    return [f"Evidence: {line}" for line in evidence]


def _with_evidence(text: str, evidence: Sequence[str]) -> str:
    return "\n".join([text, *_evidence_lines(evidence)])
