"""Diagnosis: from the state of every check, each problem with its root cause, the checks it
affects, the evidence, and the first next step from its runbook.

The rules are data: `RULES` is an ordered table, and the first rule whose predicate matches a
failing check classifies it. A check whose dependency (its `depends_on`, or the container of
its own service) fails critically is a symptom: it is listed as affected under the
dependency's problem instead of being a problem of its own, so one cause pages once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from monitor.alertnames import AlertName, Severity
from monitor.conditions import LATENCY_PLACEHOLDERS, ConditionResult
from monitor.core.health import Health
from monitor.core.result import CheckResult, FailureKind
from monitor.core.service_kind import ServiceKind, kind_of_check_type, kind_of_service
from monitor.core.spec import CheckSpec
from monitor.runbooks import Catalogue, DiagnosisStep

# Result kinds of the container and Docker checks (monitor/checks/container.py).
ENVIRONMENT_KINDS = frozenset({FailureKind.ENVIRONMENT})
CRASH_LOOP_KINDS = frozenset({FailureKind.CRASH_LOOP})
OOM_KINDS = frozenset({FailureKind.OOM})
STOPPED_KINDS = frozenset({FailureKind.STOPPED})
DOWN_KINDS = frozenset(
    {FailureKind.EXITED, FailureKind.MISSING, FailureKind.NOT_RUNNING, FailureKind.PAUSED}
)
DOCKER_KINDS = frozenset({FailureKind.DOCKER_UNAVAILABLE})
# Container states (docker inspect's State.Status), not result kinds.
NOT_RUNNING_STATES = frozenset({"exited", "dead", "missing", "created", "paused", "removing"})
_DATABASE_KEYS = re.compile(r"^(database|db|postgres|postgresql|pg)$", re.IGNORECASE)
_BODY_PATH = re.compile(r"\[BODY\]((?:\.[^\s.\[\]()]+|\[\d+\])+)")
_ENV_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
_READINESS = re.compile(r"ready|readiness", re.IGNORECASE)


@dataclass(frozen=True)
class CheckView:
    """What diagnosis knows about one check: its spec, its health and its last result."""

    name: str
    type: str
    service: str | None = None
    depends_on: tuple[str, ...] = ()
    health: Health = Health.UNKNOWN
    result: CheckResult | None = None
    target: str | None = None

    @classmethod
    def of(cls, spec: CheckSpec, health: Health, result: CheckResult | None) -> CheckView:
        """A view of a configured check."""
        target = getattr(spec, "url", None)
        return cls(
            spec.name,
            spec.type,
            spec.service,
            tuple(spec.depends_on),
            health,
            result,
            target if isinstance(target, str) else None,
        )

    @property
    def failed(self) -> bool:
        """The last run observed the target and found it failing."""
        return self.result is not None and not self.result.ok and not self.result.unknown

    @property
    def unobservable(self) -> bool:
        """The last run could not observe the target at all (e.g. Docker unreachable)."""
        return self.result is not None and self.result.unknown

    @property
    def kind(self) -> FailureKind:
        """The bounded kind of the last result (`OK` when there is none)."""
        return self.result.kind if self.result is not None else FailureKind.OK

    @property
    def failed_conditions(self) -> tuple[ConditionResult, ...]:
        """The conditions that did not hold in the last run."""
        return self.result.failed_conditions if self.result is not None else ()

    @property
    def label(self) -> str:
        """The service it belongs to, else its own name (for sentences)."""
        return self.service or self.name

    @property
    def watches(self) -> ServiceKind:
        """The kind of service this check watches."""
        return kind_of_check_type(self.type)

    @property
    def down(self) -> bool:
        """Unhealthy by its thresholds, or its last run failed (a dependency that has just
        started failing counts at once)."""
        return self.health is Health.UNHEALTHY or self.failed


class _Described(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def service(self) -> str | None: ...
    @property
    def depends_on(self) -> tuple[str, ...]: ...


def containers_by_service(checks: Iterable[_Described]) -> dict[str, list[str]]:
    """The container checks of each service, by name: built once per snapshot (or alerting
    round) so looking up a check's dependencies does not scan every check."""
    index: dict[str, list[str]] = {}
    for check in checks:
        if check.type == "container" and check.service:
            index.setdefault(check.service, []).append(check.name)
    for names in index.values():
        names.sort()
    return index


def dependency_names(check: _Described, containers: Mapping[str, Sequence[str]]) -> list[str]:
    """What `check` stands on: its `depends_on`, then the container checks of its own service
    (`containers`: from `containers_by_service`). Diagnosis finds root causes along these
    edges and alerting inhibits along the same ones."""
    found = list(check.depends_on)
    if check.type != "container" and check.service:
        found.extend(name for name in containers.get(check.service, ()) if name not in found)
    return found


class Snapshot:
    """Every check at one moment; the input of `diagnose`."""

    def __init__(self, views: Iterable[CheckView]) -> None:
        self.checks: dict[str, CheckView] = {view.name: view for view in views}
        self._containers: dict[str, list[str]] | None = None

    @classmethod
    def from_runners(cls, runners: Iterable[Any], elsewhere: Iterable[CheckView] = ()) -> Snapshot:
        """From the daemon's CheckRunners (health after thresholds, last result), and with
        sharding the checks other instances run, as their owners judge them."""
        return cls(
            [
                *elsewhere,
                *(
                    CheckView.of(runner.spec, runner.state.health, runner.state.last_result)
                    for runner in runners
                ),
            ]
        )

    @classmethod
    def from_results(cls, rows: Iterable[tuple[CheckSpec, CheckResult]]) -> Snapshot:
        """From one run of each check (as `opsmon explain` does): a failed run is unhealthy."""

        def health(result: CheckResult) -> Health:
            if result.unknown:
                return Health.UNKNOWN
            return Health.HEALTHY if result.ok else Health.UNHEALTHY

        return cls(CheckView.of(spec, health(result), result) for spec, result in rows)

    def __iter__(self) -> Iterator[CheckView]:
        return iter(self.checks.values())

    def __getitem__(self, name: str) -> CheckView:
        return self.checks[name]

    def of_type(self, check_type: str) -> list[CheckView]:
        """Every check of this type, by name."""
        return sorted((v for v in self if v.type == check_type), key=lambda v: v.name)

    def dependencies(self, view: CheckView) -> list[CheckView]:
        """What `view` stands on: its `depends_on`, and the container of its own service."""
        if self._containers is None:
            self._containers = containers_by_service(self.checks.values())
        names = dependency_names(view, self._containers)
        return [self.checks[name] for name in names if name in self.checks]

    def of_service(self, service: str) -> list[CheckView]:
        """Every check of `service` (by its `service` field), by name."""
        return sorted((v for v in self if v.service == service), key=lambda v: v.name)

    def service_kind(self, service: str) -> ServiceKind:
        """A service with a check that watches a database is a database; else an app."""
        return kind_of_service(v.type for v in self.of_service(service))

    def stands_on(self, names: Iterable[str]) -> list[CheckView]:
        """Every check that the checks `names` stand on, transitively (their `depends_on` and
        their services' containers), excluding `names` themselves."""
        start = set(names)
        seen: set[str] = set()
        pending = [
            d for name in start if name in self.checks for d in self.dependencies(self[name])
        ]
        while pending:
            current = pending.pop()
            if current.name in seen or current.name in start:
                continue
            seen.add(current.name)
            pending.extend(self.dependencies(current))
        return sorted((self[name] for name in seen), key=lambda v: v.name)

    def related(self, view: CheckView, check_type: str) -> list[CheckView]:
        """Checks of `check_type` that `view` depends on (transitively), else all of that type."""
        seen: set[str] = set()
        found: list[CheckView] = []
        pending = list(self.dependencies(view))
        while pending:
            current = pending.pop()
            if current.name in seen:
                continue
            seen.add(current.name)
            if current.type == check_type:
                found.append(current)
            pending.extend(self.dependencies(current))
        return sorted(found, key=lambda v: v.name) if found else self.of_type(check_type)


@dataclass(frozen=True)
class Finding:
    """What a rule found on one check: the root cause check, the evidence, sentence values."""

    root: str
    evidence: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)
    variables: tuple[str, ...] = ()


Predicate = Callable[[CheckView, Snapshot], "Finding | None"]


@dataclass(frozen=True)
class Rule:
    """One row of the diagnosis table."""

    name: str
    alert: AlertName
    severity: Severity
    matches: Predicate
    summary: str
    rollback_can_help: bool
    step: str | None = None  # which Diagnosis command comes first: the one mentioning this

    @property
    def explains_dependents(self) -> bool:
        """A critical failure of a dependency explains its dependents' failures; a warning
        (slow, certificate, saturation) does not, so they keep their own diagnosis."""
        return self.severity is Severity.CRITICAL


# --- evidence and predicates ----------------------------------------------------------------


def evidence(view: CheckView) -> tuple[str, ...]:
    """One line per failed condition, else the reason of the failure."""
    if view.failed_conditions:
        return tuple(f"{view.name}: {c.detail}" for c in view.failed_conditions)
    if view.result is not None and view.result.reason:
        return (f"{view.name}: {view.result.reason}",)
    return ()


def _own(view: CheckView, **values: str) -> Finding:
    return Finding(view.name, evidence(view), values)


def _only_conditions_on(view: CheckView, placeholders: frozenset[str]) -> bool:
    failed = view.failed_conditions
    return (
        view.failed
        and view.kind == FailureKind.CONDITION
        and bool(failed)
        and all(c.placeholders and c.placeholders <= placeholders for c in failed)
    )


def kind_in(kinds: frozenset[FailureKind], check_type: str | None = None) -> Predicate:
    """Matches a failed check whose result kind is one of `kinds`."""

    def matches(view: CheckView, snapshot: Snapshot) -> Finding | None:
        if not view.failed or view.kind not in kinds:
            return None
        if check_type is not None and view.type != check_type:
            return None
        return _own(view)

    return matches


def only_conditions_on(placeholders: frozenset[str], check_type: str | None = None) -> Predicate:
    """Matches a check that answered and fails only conditions on these placeholders."""

    def matches(view: CheckView, snapshot: Snapshot) -> Finding | None:
        if check_type is not None and view.type != check_type:
            return None
        if not _only_conditions_on(view, placeholders):
            return None
        return _own(view)

    return matches


def _docker_unreachable(view: CheckView, snapshot: Snapshot) -> Finding | None:
    if view.type == "docker":
        hit = view.failed or view.unobservable
    else:
        hit = (view.failed or view.unobservable) and view.kind in DOCKER_KINDS
    if not hit:
        return None
    # One engine, one problem: the Docker self-check is the root when there is one.
    engines = snapshot.of_type("docker")
    if engines:
        return Finding(engines[0].name, evidence(view))
    blind = sorted(
        v.name
        for v in snapshot
        if (v.failed or v.unobservable) and v.kind in DOCKER_KINDS and v.type != "docker"
    )
    return Finding(blind[0] if blind else view.name, evidence(view))


def missing_variables(view: CheckView) -> tuple[str, ...]:
    """The names of the missing environment variables a container check reported."""
    result = view.result
    if result is None:
        return ()
    for key in ("MISSING_ENV", "missing_env", "MISSING_VARIABLES"):
        names = result.facts.get(key)
        if isinstance(names, list | tuple) and all(isinstance(n, str) for n in names):
            return tuple(names)
    return tuple(dict.fromkeys(_ENV_NAME.findall(result.reason)))


def _environment_missing(view: CheckView, snapshot: Snapshot) -> Finding | None:
    if not view.failed or view.kind not in ENVIRONMENT_KINDS:
        return None
    names = missing_variables(view)
    pattern = view.result.facts.get("LOG_PATTERN") if view.result is not None else None
    if names:
        shown = ", ".join(names)
    elif isinstance(pattern, str):
        shown = f"its log matches the pattern {pattern}"
    else:
        shown = "see the container log"
    return Finding(view.name, evidence(view), {"variables": shown}, names)


def _container_not_running(view: CheckView, snapshot: Snapshot) -> Finding | None:
    if not view.failed or view.type != "container":
        return None
    if view.kind in DOWN_KINDS or view.result is None:
        return _own(view)
    state = view.result.facts.get("STATE")
    return _own(view) if isinstance(state, str) and state in NOT_RUNNING_STATES else None


def _database_container_down(view: CheckView, snapshot: Snapshot) -> Finding | None:
    """The container of a database service is not running (stopped or crashed): for its
    dependents and for on-call that is the database being down, whatever stopped it."""
    if not view.failed or view.type != "container" or not view.service:
        return None
    if snapshot.service_kind(view.service) is not ServiceKind.DATABASE:
        return None
    if view.kind not in STOPPED_KINDS and _container_not_running(view, snapshot) is None:
        return None
    reason = view.result.reason if view.result is not None else "not running"
    return Finding(view.name, evidence(view), {"reason": reason})


def _container_failing(view: CheckView, snapshot: Snapshot) -> Finding | None:
    return _own(view) if view.failed and view.type == "container" else None


def _postgres_failing(view: CheckView, snapshot: Snapshot) -> Finding | None:
    return _own(view) if view.failed and view.type == "postgres" else None


def reports_database_error(view: CheckView, *, present: bool = True) -> bool:
    """A failed condition on a body field such as `services.database` (the backend's view).
    With `present` (the default) only a field that is there and says something other than
    the expected value counts: an absent field (an error body without it, a body that is
    not JSON) is no evidence about the database."""
    for condition in view.failed_conditions:
        if present and condition.absent:
            continue
        for path in _BODY_PATH.findall(condition.condition):
            keys = re.findall(r"\.([^.\[\]]+)", path)
            if any(_DATABASE_KEYS.match(key) for key in keys):
                return True
    return False


def _database_down_behind(view: CheckView, snapshot: Snapshot) -> Finding | None:
    # The database's own check failing is the positive evidence here; the service's body
    # field may be absent (it answered with a generic error body).
    if not view.failed or not reports_database_error(view, present=False):
        return None
    down = [pg for pg in snapshot.related(view, "postgres") if pg.failed]
    if not down:
        return None
    return Finding(down[0].name, evidence(down[0]) + evidence(view))


def _database_error_backend_side(view: CheckView, snapshot: Snapshot) -> Finding | None:
    if not view.failed or not reports_database_error(view):
        return None
    postgres = snapshot.related(view, "postgres")
    if not postgres or not all(pg.result is not None and pg.result.ok for pg in postgres):
        return None
    names = ", ".join(pg.name for pg in postgres)
    lines = (
        *evidence(view),
        *(f"{pg.name}: opsmon's own PostgreSQL check connects fine" for pg in postgres),
    )
    return Finding(view.name, lines, {"postgres": names})


def _database_error_reported(view: CheckView, snapshot: Snapshot) -> Finding | None:
    if not view.failed or not reports_database_error(view):
        return None
    return _own(view)


def _readiness_failing(view: CheckView, snapshot: Snapshot) -> Finding | None:
    if not view.failed or view.type != "http":
        return None
    if _READINESS.search(view.name) or (view.target and _READINESS.search(view.target)):
        return _own(view)
    return None


def _any_failure(view: CheckView, snapshot: Snapshot) -> Finding | None:
    return _own(view) if view.failed else None


# --- the table ------------------------------------------------------------------------------

CRITICAL, WARNING = Severity.CRITICAL, Severity.WARNING

RULES: tuple[Rule, ...] = (
    Rule(
        "docker-unreachable",
        AlertName.DOCKER_API_UNAVAILABLE,
        CRITICAL,
        _docker_unreachable,
        "opsmon cannot reach the Docker Engine API, so it cannot see the containers.",
        rollback_can_help=False,
    ),
    Rule(
        "environment-missing",
        AlertName.ENVIRONMENT_VARIABLES_MISSING,
        CRITICAL,
        _environment_missing,
        "{service} cannot start: required environment variables are not set ({variables}).",
        rollback_can_help=False,
    ),
    Rule(
        "container-oom-killed",
        AlertName.CONTAINER_OOM_KILLED,
        CRITICAL,
        kind_in(OOM_KINDS),
        "The {service} container was killed for running out of memory.",
        rollback_can_help=True,
    ),
    Rule(
        "container-crash-looping",
        AlertName.CONTAINER_CRASH_LOOPING,
        CRITICAL,
        kind_in(CRASH_LOOP_KINDS),
        "The {service} container keeps crashing and being restarted.",
        rollback_can_help=True,
    ),
    Rule(
        "database-container-down",
        AlertName.DATABASE_CONNECTION_FAILING,
        CRITICAL,
        _database_container_down,
        "The database {service} is down: its container is not running ({reason}).",
        rollback_can_help=False,
    ),
    Rule(
        "container-stopped",
        AlertName.CONTAINER_DOWN,
        CRITICAL,
        kind_in(STOPPED_KINDS, "container"),
        "The {service} container was stopped on request and is not running.",
        rollback_can_help=False,
    ),
    Rule(
        "container-down",
        AlertName.CONTAINER_DOWN,
        CRITICAL,
        _container_not_running,
        "The {service} container is not running.",
        rollback_can_help=True,
    ),
    Rule(
        "container-unhealthy",
        AlertName.CONTAINER_UNHEALTHY,
        CRITICAL,
        _container_failing,
        "The {service} container runs, but it is unhealthy.",
        rollback_can_help=True,
    ),
    Rule(
        "database-saturated",
        AlertName.DATABASE_SATURATED,
        WARNING,
        only_conditions_on(frozenset({"CONNECTIONS_USED_RATIO"}), "postgres"),
        "PostgreSQL ({root}) is running out of connection slots.",
        rollback_can_help=False,
    ),
    Rule(
        "certificate-expiring",
        AlertName.TLS_CERTIFICATE_EXPIRING,
        WARNING,
        only_conditions_on(frozenset({"CERTIFICATE_EXPIRATION"})),
        "The TLS certificate checked by {root} expires soon.",
        rollback_can_help=False,
    ),
    Rule(
        "slow-responses",
        AlertName.SLOW_RESPONSES,
        WARNING,
        only_conditions_on(LATENCY_PLACEHOLDERS),
        "{root} answers correctly, but more slowly than its latency conditions allow.",
        rollback_can_help=False,
    ),
    Rule(
        "database-unreachable",
        AlertName.DATABASE_CONNECTION_FAILING,
        CRITICAL,
        _postgres_failing,
        "opsmon cannot connect to PostgreSQL and run a query ({root}).",
        rollback_can_help=False,
    ),
    Rule(
        "database-down-behind-service",
        AlertName.DATABASE_CONNECTION_FAILING,
        CRITICAL,
        _database_down_behind,
        "opsmon cannot connect to PostgreSQL ({root}), and {service} reports its database"
        " as failing.",
        rollback_can_help=False,
    ),
    Rule(
        "database-error-on-service-side",
        AlertName.DATABASE_CONNECTION_FAILING,
        CRITICAL,
        _database_error_backend_side,
        "{service} reports its database connection as failing, while opsmon's own PostgreSQL"
        " check ({postgres}) connects fine: the problem is on {service}'s side, check its"
        " DATABASE_URL and its network path to the database.",
        rollback_can_help=False,
        step="DATABASE_URL",
    ),
    Rule(
        "database-error-reported",
        AlertName.DATABASE_CONNECTION_FAILING,
        CRITICAL,
        _database_error_reported,
        "{service} reports its database connection as failing (no PostgreSQL check tells"
        " whether the database itself is up).",
        rollback_can_help=False,
    ),
    Rule(
        "service-not-ready",
        AlertName.SERVICE_NOT_READY,
        WARNING,
        _readiness_failing,
        "{service} is not ready to serve traffic ({root}).",
        rollback_can_help=True,
    ),
    Rule(
        "health-check-failing",
        AlertName.HEALTH_CHECK_FAILING,
        CRITICAL,
        _any_failure,
        "The {root} check of {service} fails, and no check it depends on explains why.",
        rollback_can_help=True,
    ),
)


def emitted_alert_names(rules: Sequence[Rule] = RULES) -> frozenset[AlertName]:
    """Every alert name the diagnosis rules can produce."""
    return frozenset(rule.alert for rule in rules)


# --- the engine -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Classification:
    """The rule that matched a check and what it found."""

    rule: Rule
    finding: Finding


@dataclass(frozen=True)
class Problem:
    """One incident: its alert, its root cause, what it affects, why, and what to type first."""

    alert: AlertName
    severity: Severity
    rule: str
    root: str
    service: str | None
    affected: tuple[str, ...]
    summary: str
    evidence: tuple[str, ...]
    rollback_can_help: bool
    runbook: str | None
    next_step: DiagnosisStep | None
    variables: tuple[str, ...] = ()

    @property
    def checks(self) -> tuple[str, ...]:
        """The root check followed by every affected one."""
        return (self.root, *self.affected)

    @property
    def labels(self) -> dict[str, str]:
        """The alert labels (bounded values only)."""
        labels = {"alertname": self.alert.value, "severity": self.severity.value}
        labels["check"] = self.root
        if self.service:
            labels["service"] = self.service
        return labels


def classify(
    view: CheckView, snapshot: Snapshot, rules: Sequence[Rule] = RULES
) -> Classification | None:
    """The first rule that matches `view`, with its finding."""
    for rule in rules:
        finding = rule.matches(view, snapshot)
        if finding is not None:
            return Classification(rule, finding)
    return None


def _roots(
    view: CheckView, snapshot: Snapshot, own: Mapping[str, Classification], trail: frozenset[str]
) -> set[str]:
    """The deepest failing dependencies that explain `view`'s failure (empty: none does)."""
    found: set[str] = set()
    for dependency in snapshot.dependencies(view):
        if dependency.name in trail:
            continue
        classification = own.get(dependency.name)
        if classification is None or not classification.rule.explains_dependents:
            continue
        deeper = _roots(dependency, snapshot, own, trail | {dependency.name})
        found |= deeper or {classification.finding.root}
    return found


_STEP_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]]+(?::\d+)?(?:/[^\s'\"]*)?")


def localized(step: DiagnosisStep | None, target: str | None) -> DiagnosisStep | None:
    """The step with the runbook's example URL replaced by the root check's own URL, so the
    first command works for that check where on-call stands (not `http://backend:4000/...`
    for every check)."""
    if step is None or not target:
        return step
    return replace(step, command=_STEP_URL.sub(lambda _: target, step.command, count=1))


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return key


def diagnose(
    snapshot: Snapshot, catalogue: Catalogue | None = None, rules: Sequence[Rule] = RULES
) -> list[Problem]:
    """Every problem in `snapshot`, critical first; each unhealthy check appears in exactly one
    problem per root cause, as the root or as affected."""
    own = {
        view.name: found
        for view in snapshot
        if (view.failed or view.unobservable)
        and (found := classify(view, snapshot, rules)) is not None
    }
    triggering = [
        view
        for view in snapshot
        if view.name in own and (view.health is Health.UNHEALTHY or view.unobservable)
    ]
    groups: dict[tuple[AlertName, str], tuple[Classification, list[str]]] = {}
    for view in sorted(triggering, key=lambda v: v.name):
        mine = own[view.name]
        roots = _roots(view, snapshot, own, frozenset({view.name})) or {mine.finding.root}
        for root in sorted(roots):
            primary = own.get(root, mine) if root != view.name else mine
            key = (primary.rule.alert, root)
            _, members = groups.setdefault(key, (primary, []))
            members.append(view.name)
    problems = [
        _problem(root, primary, members, snapshot, own, catalogue)
        for (_, root), (primary, members) in groups.items()
    ]
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(problems, key=lambda p: (order[p.severity], p.root, p.alert.value))


def _problem(
    root: str,
    primary: Classification,
    members: list[str],
    snapshot: Snapshot,
    own: Mapping[str, Classification],
    catalogue: Catalogue | None,
) -> Problem:
    rule, finding = primary.rule, primary.finding
    affected = tuple(name for name in sorted(set(members)) if name != root)
    lines = list(finding.evidence)
    for name in affected:
        lines.extend(own[name].finding.evidence)
    root_view = snapshot.checks.get(root)
    service = root_view.service if root_view is not None else None
    values = _Values(finding.values)
    values.setdefault("root", root)
    values.setdefault("service", service or root)
    runbook = catalogue.for_alert(rule.alert) if catalogue is not None else None
    return Problem(
        alert=rule.alert,
        severity=rule.severity,
        rule=rule.name,
        root=root,
        service=service,
        affected=affected,
        summary=rule.summary.format_map(values),
        evidence=tuple(dict.fromkeys(lines)),
        rollback_can_help=rule.rollback_can_help,
        runbook=runbook.id if runbook is not None else None,
        next_step=localized(
            runbook.step(rule.step) if runbook is not None else None,
            root_view.target if root_view is not None else None,
        ),
        variables=finding.variables,
    )
