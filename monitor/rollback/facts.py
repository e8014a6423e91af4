"""A service's health facts and rollback blockers, computed in one place for the daemon's
automatic rollback, `opsmon rollback` and `opsmon gate`: pure functions over diagnosis'
CheckViews (every check's spec, health and last result), so all three refuse a rollback for
the same reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from monitor.core.health import Health
from monitor.diagnosis import CheckView, diagnose
from monitor.diagnosis import Snapshot as Situation
from monitor.rollback.policy import Blocker, HealthFacts


def own_checks(service: str, views: Iterable[CheckView]) -> set[str]:
    """The names of the service's own checks (`service: NAME`, not its dependencies)."""
    return {v.name for v in views if v.service == service}


def health_facts(
    service: str, views: Sequence[CheckView], crash_looping: bool = False
) -> HealthFacts:
    """The service's own checks that are unhealthy (with their reasons), and whether it
    crash-loops (`crash_looping` from deploy tracking, or a check saying so)."""
    unhealthy: list[str] = []
    evidence: list[str] = []
    for view in views:
        if view.service != service:
            continue
        result = view.result
        if result is not None and result.kind == "crash_loop":
            crash_looping = True
        if view.health is Health.UNHEALTHY and result is not None and not result.ok:
            unhealthy.append(view.name)
            evidence.append(f"{view.name}: {result.reason}")
    return HealthFacts(tuple(unhealthy), crash_looping, tuple(evidence))


def _dependencies(own: set[str], views: Sequence[CheckView]) -> set[str]:
    """Every check the own checks depend on, directly or through others."""
    by_name = {v.name: v for v in views}
    wanted: set[str] = set()
    pending = [d for v in views if v.name in own for d in v.depends_on]
    while pending:
        name = pending.pop()
        if name in wanted or name in own:
            continue
        wanted.add(name)
        found = by_name.get(name)
        if found is not None:
            pending.extend(found.depends_on)
    return wanted


def rollback_blockers(service: str, views: Sequence[CheckView]) -> tuple[Blocker, ...]:
    """Why a rollback of `service` cannot help, if it cannot: a diagnosis of its checks that
    says so (e.g. DatabaseConnectionFailing, EnvironmentVariablesMissing), or a dependency
    that is down (any check its own checks depend on, and any database check). Pass the
    service's own checks as they are about its current container (unknown otherwise)."""
    own = own_checks(service, views)
    blockers = [
        Blocker(problem.alert.value, problem.summary)
        for problem in diagnose(Situation(views))
        if not problem.rollback_can_help and own & set(problem.checks)
    ]
    wanted = _dependencies(own, views)
    for view in views:
        # The last result, not only the debounced state: a dependency that has just started
        # failing must stop a rollback that its own failure would set off.
        down = view.health is Health.UNHEALTHY or view.failed
        if view.name in own or not down:
            continue
        if view.name in wanted or view.type == "postgres":
            blockers.append(
                Blocker("a dependency is down", f"{view.name} ({view.type}) is unhealthy too")
            )
    return tuple(blockers)
