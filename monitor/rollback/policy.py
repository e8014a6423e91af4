"""Whether to roll a service back: a pure function of what opsmon knows, with the reason.

Inside `window` after a deploy, a rollback is warranted when the service's own checks are
unhealthy by their thresholds, when it crash-loops, or when it never became healthy by the
window's deadline. It then happens only if the diagnosis says a rollback can help (no
dependency such as the database down; missing environment variables only when the last
known good ran with variables the service no longer has), a last known good
image different from the current one exists, and the service is not a database, not frozen,
not silenced, not over `max_per_hour`, and has no other rollback in flight. A warranted
rollback that a guard stops is reported with the guard's reason (RollbackSkipped); one that
would not be attempted at all (the diagnosis says it cannot help, or the plan changes
nothing) is no automatic decision (only an operator's `opsmon rollback` is told why).
`dry_run` mode reports the plan of an automatic one (a manual one is carried out unless
asked for with --dry-run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from monitor.core.durations import format_duration
from monitor.rollback.config import Mode
from monitor.rollback.snapshot import short_id

# The "never became healthy" trigger fires at the window's deadline; the evaluation may come
# a little after it (a tick, a slow check), but not long after.
DEADLINE_GRACE = timedelta(seconds=60)


class Action(StrEnum):
    """What to do."""

    NONE = "none"  # nothing is wrong, or nothing that a rollback is meant for
    ROLLBACK = "rollback"
    DRY_RUN = "dry_run"  # warranted; only say what would be done
    SKIP = "skip"  # warranted, but a guard stops it: alert with the reason


class Trigger(StrEnum):
    """Why a rollback is warranted."""

    UNHEALTHY = "unhealthy"
    CRASH_LOOP = "crash_loop"
    NEVER_HEALTHY = "never_healthy"
    MANUAL = "manual"
    GATE = "gate"  # a deploy gate judged the new version bad


@dataclass(frozen=True)
class DeployFacts:
    """The service's current container as deploy tracking sees it."""

    image: str
    image_id: str
    started_at: datetime
    ever_healthy: bool
    origin: str = "deploy"  # `rollback`: the container a rollback made (no new window)


@dataclass(frozen=True)
class HealthFacts:
    """The service's checks now."""

    unhealthy: tuple[str, ...] = ()  # own checks unhealthy by their thresholds
    crash_looping: bool = False
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Blocker:
    """A diagnosis that says a rollback cannot help, e.g. the database is down: `cause` is its
    alert name (or what else it is), `summary` the sentence."""

    cause: str
    summary: str


# The blocker of a release that cannot start for missing environment variables: it holds only
# while the last known good would miss them too.
ENVIRONMENT_BLOCKER = "EnvironmentVariablesMissing"


def environment_gone(lkg_env: Mapping[str, str], current_env: Mapping[str, str]) -> tuple[str, ...]:
    """The variables the last known good ran with (set, non-empty) that the service's current
    container lacks: by name only (values are secret)."""
    return tuple(
        sorted(name for name, value in lkg_env.items() if value and not current_env.get(name))
    )


@dataclass(frozen=True)
class PolicyInput:
    """Everything the decision depends on."""

    service: str
    now: datetime
    mode: Mode
    window: float
    max_per_hour: int
    opted_in: bool
    is_database: bool
    deploy: DeployFacts | None
    lkg_image: str | None
    lkg_image_id: str | None
    health: HealthFacts
    blockers: tuple[Blocker, ...] = ()
    frozen: str | None = None  # why, when frozen
    silenced: str | None = None  # which silence, when silenced
    rollbacks_last_hour: int = 0
    in_flight: str | None = None  # the id of a rollback in flight
    manual: bool = False
    gate: str | None = None  # a deploy gate's verdict: why the new version failed
    force: bool = False  # manual only: skip the window
    dry_run: bool = False  # manual --dry-run
    target_image: str | None = None  # manual --to
    target_image_id: str | None = None
    target_is_bad: bool = False
    target_missing: str | None = None  # why the target image cannot be used (not on the engine)
    # Variables the LKG ran with that the current container lacks (None: not known).
    lkg_env_gone: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Decision:
    """The verdict, with a sentence saying why."""

    action: Action
    reason: str
    trigger: Trigger | None = None
    evidence: tuple[str, ...] = field(default_factory=tuple)
    target_image: str | None = None
    target_image_id: str | None = None


def _trigger(facts: PolicyInput) -> tuple[Trigger, str] | None:
    deploy = facts.deploy
    if facts.manual:
        return Trigger.MANUAL, "an operator asked for it"
    if facts.gate:
        return Trigger.GATE, f"the deploy gate failed it: {facts.gate}"
    if deploy is None:
        return None
    health = facts.health
    if health.crash_looping:
        return Trigger.CRASH_LOOP, f"{facts.service} crash-loops since its deploy"
    if health.unhealthy:
        return (
            Trigger.UNHEALTHY,
            f"{facts.service} is unhealthy since its deploy ({', '.join(health.unhealthy)})",
        )
    deadline = deploy.started_at + timedelta(seconds=facts.window)
    if not deploy.ever_healthy and deadline <= facts.now <= deadline + DEADLINE_GRACE:
        return (
            Trigger.NEVER_HEALTHY,
            f"{facts.service} did not become healthy within {format_duration(facts.window)} "
            "of its deploy",
        )
    return None


def _age(facts: PolicyInput) -> str:
    assert facts.deploy is not None
    seconds = max(0, round((facts.now - facts.deploy.started_at).total_seconds()))
    return format_duration(seconds) if seconds else "0s"


def _in_window(facts: PolicyInput, trigger: Trigger) -> str | None:
    """None when the window allows a rollback, else why not."""
    deploy = facts.deploy
    if facts.manual and facts.force:
        return None
    if deploy is None:
        return f"no deploy of {facts.service} has been seen"
    if deploy.origin == "rollback" and not facts.manual:
        return f"{facts.service} runs the container a rollback made; it is not rolled back again"
    if trigger is Trigger.NEVER_HEALTHY:
        return None
    deadline = deploy.started_at + timedelta(seconds=facts.window)
    if facts.now > deadline:
        return (
            f"the deploy of {facts.service} is {_age(facts)} old, outside the rollback window of "
            f"{format_duration(facts.window)}" + (" (--force overrides)" if facts.manual else "")
        )
    return None


def _pointless(facts: PolicyInput, target_id: str | None) -> str | None:
    """Why a rollback would not be attempted at all, even with every guard open: the
    diagnosis says it cannot help (the database is down, the release is only slow), or the
    plan changes nothing (the service already runs the target). Automation stays quiet about
    these (no RollbackSkipped); an operator's `opsmon rollback` is told."""
    service = facts.service
    blockers = facts.blockers
    if facts.lkg_env_gone == ():
        # The new release needs a variable the old one did not, and the last known good ran
        # healthy with the environment the service has now: a rollback helps.
        blockers = tuple(b for b in blockers if b.cause != ENVIRONMENT_BLOCKER)
    if blockers:
        first = blockers[0]
        if first.cause == ENVIRONMENT_BLOCKER and facts.lkg_env_gone:
            return (
                f"a rollback cannot help: {first.cause}: {first.summary} The last known good "
                f"needs {', '.join(facts.lkg_env_gone)} too, which the service no longer has."
            )
        return f"a rollback cannot help: {first.cause}: {first.summary}"
    if facts.deploy is not None and target_id is not None and facts.deploy.image_id == target_id:
        return (
            f"{service} already runs the last known good image {short_id(target_id)}; "
            "a rollback cannot change anything"
        )
    return None


def _guards(facts: PolicyInput, target_id: str | None) -> str | None:
    """The first guard that stops a warranted rollback, as a sentence (None: go)."""
    service = facts.service
    if facts.is_database:
        return f"{service} is a database; a database is never rolled back"
    if not facts.opted_in:
        return f"{service} is not listed under rollback.services"
    if facts.deploy is None:
        return f"no container of {service} was found"
    if facts.target_missing:
        return f"{facts.target_missing} (opsmon never pulls)"
    if target_id is None:
        return f"{service} has no last known good image yet (none has run healthy long enough)"
    if facts.target_is_bad:
        return f"the image {short_id(target_id)} failed before; it is not rolled back to"
    if facts.frozen:
        return (
            f"automation is frozen for {service} ({facts.frozen}); "
            f"run `opsmon rollback unfreeze {service}` once it is sorted out"
        )
    if facts.silenced and not facts.manual:
        return f"alerts of {service} are silenced ({facts.silenced})"
    if facts.in_flight:
        return f"another rollback of {service} is in flight ({facts.in_flight})"
    if facts.rollbacks_last_hour >= facts.max_per_hour:
        return (
            f"{service} was rolled back {facts.rollbacks_last_hour} time(s) in the last hour "
            f"(max_per_hour: {facts.max_per_hour})"
        )
    return None


def decide(facts: PolicyInput) -> Decision:
    """Roll back, dry-run, skip (with the guard's reason) or do nothing."""
    found = _trigger(facts)
    if found is None:
        return Decision(Action.NONE, f"{facts.service} needs no rollback")
    trigger, why = found
    evidence = facts.health.evidence
    window = _in_window(facts, trigger)
    if window is not None:
        # Outside the window a failing service is left to the ordinary alerts.
        action = Action.SKIP if facts.manual else Action.NONE
        return Decision(action, window, trigger, evidence)
    target = facts.target_image or facts.lkg_image
    target_id = facts.target_image_id or facts.lkg_image_id
    pointless = _pointless(facts, target_id) if facts.opted_in and not facts.is_database else None
    if pointless is not None:
        action = Action.SKIP if facts.manual else Action.NONE
        return Decision(action, f"no rollback: {pointless}", trigger, evidence, target, target_id)
    blocked = _guards(facts, target_id)
    if blocked is not None:
        return Decision(
            Action.SKIP, f"no rollback: {blocked}", trigger, evidence, target, target_id
        )
    assert target is not None and target_id is not None and facts.deploy is not None
    plan = (
        f"{why}: roll {facts.service} back from {facts.deploy.image} "
        f"({short_id(facts.deploy.image_id)}) to {target} ({short_id(target_id)})"
    )
    # The mode governs automation; an operator's `opsmon rollback` is carried out (unless
    # asked for with --dry-run), so a dry-run plan can be acted on by hand.
    if facts.dry_run or (facts.mode is Mode.DRY_RUN and not facts.manual):
        return Decision(Action.DRY_RUN, f"dry run: {plan}", trigger, evidence, target, target_id)
    return Decision(Action.ROLLBACK, plan, trigger, evidence, target, target_id)
