"""Inhibition by dependency: while a check's `depends_on` target (directly or further down) is
firing, the dependent's incident is held back and listed as affected in the root's alert, so a
database outage pages once, not once per service."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

from monitor.alerting.model import Incident

Dependencies = Callable[[str], Sequence[str]]


@dataclass(frozen=True)
class Inhibitions:
    """Which incidents are inhibited (id -> root check) and what each root affects."""

    roots: dict[str, str] = field(default_factory=dict)
    affected: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _describe(incident: Incident) -> str:
    service = incident.labels.get("service")
    return f"{incident.check} ({service})" if service else str(incident.check)


def _root(check: str, firing: set[str], dependencies: Dependencies) -> str | None:
    """The deepest firing check below `check` in the dependency graph (None: none fires)."""
    root: str | None = None
    seen = {check}
    frontier = list(dependencies(check))
    while frontier:
        current = frontier.pop(0)
        if current in seen:
            continue
        seen.add(current)
        if current in firing:
            root = current
        frontier.extend(dependencies(current))
    return root


def inhibit(
    incidents: Iterable[Incident],
    dependencies: Dependencies,
    firing_elsewhere: Collection[str] = (),
) -> Inhibitions:
    """Work out the inhibitions among the firing incidents; with sharding, the checks other
    instances run and judge failing (`firing_elsewhere`) are roots too (their owner pages
    them)."""
    firing = [i for i in incidents if i.status.value == "firing" and i.check]
    firing_checks = {str(i.check) for i in firing} | set(firing_elsewhere)
    result = Inhibitions()
    for incident in sorted(firing, key=lambda i: str(i.check)):
        root = _root(str(incident.check), firing_checks, dependencies)
        if root is not None:
            result.roots[incident.id] = root
            result.affected[root] = (*result.affected.get(root, ()), _describe(incident))
    return result
