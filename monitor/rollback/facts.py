"""A service's health facts and rollback blockers: the one place both the daemon's rollback
component and `opsmon rollback` (and `opsmon gate`) compute them, from a diagnosis snapshot.

Pure: the caller builds the snapshot (the daemon from its runners, with results older than
the deploy blanked out; the CLI from one run of every check) and says whether the deploy
tracker saw the service crash-loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.core.health import Health
from monitor.core.service_kind import ServiceKind
from monitor.diagnosis import CRASH_LOOP_KINDS, Snapshot, diagnose
from monitor.rollback.policy import Blocker, HealthFacts

DEPENDENCY_DOWN = "a dependency is down"


@dataclass(frozen=True)
class ServiceFacts:
    """What the checks say about one service: its health and why a rollback cannot help."""

    health: HealthFacts
    blockers: tuple[Blocker, ...]


def service_facts(service: str, snapshot: Snapshot, *, crash_looping: bool = False) -> ServiceFacts:
    """The health of `service` (its own checks that are unhealthy, whether it crash-loops, the
    evidence) and the blockers: diagnoses of its checks that a rollback cannot help, and every
    check it stands on (transitively) or any database that is down."""
    own = snapshot.of_service(service)
    names = {view.name for view in own}
    failing = [
        v for v in own if v.health is Health.UNHEALTHY and v.result is not None and not v.result.ok
    ]
    crash = crash_looping or any(v.failed and v.kind in CRASH_LOOP_KINDS for v in own)
    health = HealthFacts(
        tuple(v.name for v in failing),
        crash,
        tuple(f"{v.name}: {v.result.reason}" for v in failing if v.result is not None),
    )
    blockers = [
        Blocker(problem.alert.value, problem.summary)
        for problem in diagnose(snapshot)
        if not problem.rollback_can_help and names & set(problem.checks)
    ]
    below = {view.name for view in snapshot.stands_on(names)}
    blockers += [
        Blocker(DEPENDENCY_DOWN, f"{view.name} ({view.type}) is unhealthy too")
        for view in snapshot
        if view.name not in names
        and view.down
        and (view.name in below or view.watches is ServiceKind.DATABASE)
    ]
    return ServiceFacts(health, tuple(blockers))
