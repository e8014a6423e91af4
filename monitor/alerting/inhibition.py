"""Inhibition by dependency: while a check's `depends_on` target (directly or further down) is
firing, the dependent's incident is held back and listed as affected in the root's alert, so a
database outage pages once, not once per service. With sharding, the checks other instances
run count too: one failing there is a root for the dependents here, and one failing there
that stands on a root failing here is listed as affected by it (its owner holds it back)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from monitor.alerting.model import Incident

Dependencies = Callable[[str], Sequence[str]]


@dataclass(frozen=True)
class Inhibitions:
    """Which incidents are inhibited (id -> root check) and what each root affects."""

    roots: dict[str, str] = field(default_factory=dict)
    affected: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _describe(check: str, service: str | None) -> str:
    return f"{check} ({service})" if service else check


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
    firing_elsewhere: Mapping[str, str | None] | None = None,
) -> Inhibitions:
    """Work out the inhibitions among the firing incidents; with sharding, the checks other
    instances run and judge failing (`firing_elsewhere`: check -> service) are roots too (their
    owner pages them), and dependents of a root here (their owner holds them back)."""
    elsewhere = firing_elsewhere or {}
    firing = [i for i in incidents if i.status.value == "firing" and i.check]
    here = {str(i.check) for i in firing}
    firing_checks = here | set(elsewhere)
    result = Inhibitions()
    for incident in sorted(firing, key=lambda i: str(i.check)):
        root = _root(str(incident.check), firing_checks, dependencies)
        if root is not None:
            result.roots[incident.id] = root
            described = _describe(str(incident.check), incident.labels.get("service"))
            result.affected[root] = (*result.affected.get(root, ()), described)
    for check, service in sorted(elsewhere.items()):
        root = _root(check, firing_checks, dependencies)
        if root in here:
            result.affected[root] = (*result.affected.get(root, ()), _describe(check, service))
    return result
