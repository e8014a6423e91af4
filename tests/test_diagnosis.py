"""Diagnosis: states of all checks in, one problem per root cause out, with its runbook step."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from monitor.alertnames import AlertName, Severity
from monitor.checks.base import judge
from monitor.clock import SystemClock
from monitor.conditions import Condition, Facts
from monitor.core.health import Health
from monitor.core.result import CheckResult
from monitor.core.spec import CheckSpec
from monitor.diagnosis import RULES, CheckView, Snapshot, diagnose, emitted_alert_names
from monitor.metrics import Metrics
from monitor.runbooks import Catalogue, load_catalogue
from monitor.runner import CheckRunner

BACKEND_CONDITIONS = (
    "[STATUS] == 200",
    "[BODY].status == ok",
    "[BODY].services.database == ok",
    "[RESPONSE_TIME] < 1500",
)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    """The repository's runbooks."""
    return load_catalogue()


# --- building snapshots ---------------------------------------------------------------------


def _view(
    name: str,
    type_: str,
    result: CheckResult | None,
    *,
    service: str | None = None,
    depends_on: tuple[str, ...] = (),
    url: str | None = None,
    health: Health | None = None,
) -> CheckView:
    if health is None:
        if result is None or result.unknown:
            health = Health.UNKNOWN
        else:
            health = Health.HEALTHY if result.ok else Health.UNHEALTHY
    return CheckView(name, type_, service, depends_on, health, result, url)


def http(
    name: str,
    *,
    status: int = 200,
    body: dict[str, Any] | None = None,
    ms: float = 40.0,
    conditions: tuple[str, ...] = BACKEND_CONDITIONS,
    cert_ms: float | None = None,
    service: str | None = "backend",
    depends_on: tuple[str, ...] = (),
    url: str | None = None,
    health: Health | None = None,
) -> CheckView:
    """An HTTP check judged by the real condition engine on the given answer."""
    if body is None:
        body = {"status": "ok", "services": {"database": "ok", "mastra": "ok"}}
    facts: dict[str, Any] = {"STATUS": status, "RESPONSE_TIME": ms, "CONNECTED": True}
    if cert_ms is not None:
        facts["CERTIFICATE_EXPIRATION"] = cert_ms
    parsed = tuple(Condition.parse(c) for c in conditions)
    result = judge(
        parsed, facts, Facts(dict(facts, BODY=json.dumps(body))), duration=ms / 1000, connected=True
    )
    return _view(
        name, "http", result, service=service, depends_on=depends_on, url=url, health=health
    )


def refused(name: str, **kw: Any) -> CheckView:
    """An HTTP check whose target refuses connections."""
    result = CheckResult.failure("connection_refused", "connection refused by 127.0.0.1:4000")
    return _view(name, "http", result, service=kw.pop("service", "backend"), **kw)


def postgres(
    name: str = "database",
    *,
    kind: str | None = None,
    ratio: float = 0.1,
    service: str | None = "db",
    health: Health | None = None,
) -> CheckView:
    """A PostgreSQL check: connection failures by kind, else judged on its ratio condition."""
    if kind is not None:
        result = CheckResult.failure(kind, "connection refused by 127.0.0.1:5432")
    else:
        facts = {"CONNECTED": True, "CONNECTIONS_USED_RATIO": ratio, "QUERY_TIME": 2.0}
        conditions = (Condition.parse("[CONNECTIONS_USED_RATIO] < 0.8"),)
        result = judge(conditions, facts, Facts(facts), duration=0.01, connected=True)
    return _view(name, "postgres", result, service=service, health=health)


def container(
    name: str = "backend-container",
    *,
    kind: str | None = None,
    reason: str = "",
    service: str = "backend",
    unknown: bool = False,
    **facts: Any,
) -> CheckView:
    """A container check that is fine, or fails with a given kind (as checks/container.py does)."""
    base: dict[str, Any] = {"STATE": "running", "MISSING_ENV": []}
    base.update(facts)
    if kind is None:
        result = CheckResult(ok=True, facts=base, connected=True)
    elif unknown:
        result = CheckResult(ok=False, kind=kind, reason=reason, unknown=True)
    else:
        result = CheckResult.failure(kind, reason, facts=base, connected=True)
    return _view(name, "container", result, service=service)


def docker(ok: bool = True) -> CheckView:
    """The Docker engine self-check."""
    result = (
        CheckResult(ok=True, connected=True)
        if ok
        else CheckResult.failure(
            "docker_unavailable", "cannot reach the Docker engine: permission denied"
        )
    )
    return _view("docker", "docker", result)


# --- the scenario table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """One expected problem."""

    alert: AlertName
    root: str
    affected: tuple[str, ...] = ()
    rollback: bool | None = None
    severity: Severity | None = None
    step: str | None = None  # a text the first command contains
    variables: tuple[str, ...] = field(default=())


DB_ERROR = {"status": "ok", "services": {"database": "error", "mastra": "ok"}}

SCENARIOS: list[tuple[str, list[CheckView], list[Expect]]] = [
    ("all healthy", [http("backend-health"), postgres(), container()], []),
    (
        "database down behind a backend that depends on it",
        [
            http("backend-health", status=503, body=DB_ERROR, depends_on=("database",)),
            postgres(kind="connection_refused"),
        ],
        [
            Expect(
                AlertName.DATABASE_CONNECTION_FAILING,
                "database",
                ("backend-health",),
                rollback=False,
                step="pg_isready -h db -U postgres",
            )
        ],
    ),
    (
        "database down, backend reports it without declaring depends_on",
        [http("backend-health", status=503, body=DB_ERROR), postgres(kind="connection_refused")],
        [Expect(AlertName.DATABASE_CONNECTION_FAILING, "database", ("backend-health",))],
    ),
    (
        "backend reports database error while opsmon's postgres check is healthy",
        [
            http("backend-health", status=503, body=DB_ERROR, depends_on=("database",)),
            postgres(),
        ],
        [
            Expect(
                AlertName.DATABASE_CONNECTION_FAILING,
                "backend-health",
                rollback=False,
                step="DATABASE_URL",
            )
        ],
    ),
    (
        "backend reports database error and no postgres check exists",
        [http("backend-health", status=503, body=DB_ERROR)],
        [Expect(AlertName.DATABASE_CONNECTION_FAILING, "backend-health", step="pg_isready")],
    ),
    (
        "readiness and health both below a down database (transitive)",
        [
            http(
                "backend-ready",
                status=503,
                body={"ready": False},
                conditions=("[STATUS] == 200",),
                depends_on=("backend-health",),
            ),
            http("backend-health", status=503, body=DB_ERROR, depends_on=("database",)),
            postgres(kind="timeout"),
        ],
        [
            Expect(
                AlertName.DATABASE_CONNECTION_FAILING,
                "database",
                ("backend-health", "backend-ready"),
            )
        ],
    ),
    (
        "container exited at start for a missing variable; its health endpoint is a symptom",
        [
            container(
                kind="environment",
                reason="required environment variable missing or empty: DATABASE_URL",
                STATE="exited",
                MISSING_ENV=["DATABASE_URL"],
            ),
            refused("backend-health"),
        ],
        [
            Expect(
                AlertName.ENVIRONMENT_VARIABLES_MISSING,
                "backend-container",
                ("backend-health",),
                rollback=False,
                variables=("DATABASE_URL",),
                step="Invalid environment variables",
            )
        ],
    ),
    (
        "container log matches the environment pattern",
        [
            container(
                kind="environment",
                reason="exited with code 1 after 2s; its last log lines match the pattern "
                "'invalid_environment' (environment variables missing or invalid)",
                STATE="exited",
                LOG_PATTERN="invalid_environment",
            )
        ],
        [Expect(AlertName.ENVIRONMENT_VARIABLES_MISSING, "backend-container", rollback=False)],
    ),
    (
        "crash loop",
        [
            container(kind="crash_loop", reason="crash loop: restarted 3 times within 10m"),
            refused("backend-health"),
        ],
        [
            Expect(
                AlertName.CONTAINER_CRASH_LOOPING,
                "backend-container",
                ("backend-health",),
                rollback=True,
            )
        ],
    ),
    (
        "OOM kill",
        [container(kind="oom", reason="OOM-killed (exit code 137)", STATE="exited")],
        [Expect(AlertName.CONTAINER_OOM_KILLED, "backend-container", rollback=True)],
    ),
    (
        "container exited",
        [
            container(kind="exited", reason="exited with code 1", STATE="exited"),
            refused("backend-health"),
            refused("backend-ready", url="http://127.0.0.1:4000/api/ready"),
        ],
        [
            Expect(
                AlertName.CONTAINER_DOWN,
                "backend-container",
                ("backend-health", "backend-ready"),
                rollback=True,
            )
        ],
    ),
    (
        "container stopped on request: rolling back would not help",
        [container(kind="stopped", reason="stopped on request (SIGTERM)", STATE="exited")],
        [Expect(AlertName.CONTAINER_DOWN, "backend-container", rollback=False)],
    ),
    (
        "container missing",
        [container(kind="missing", reason="no container matches service backend")],
        [Expect(AlertName.CONTAINER_DOWN, "backend-container")],
    ),
    (
        "container unhealthy",
        [container(kind="unhealthy", reason="Docker health check reports unhealthy")],
        [Expect(AlertName.CONTAINER_UNHEALTHY, "backend-container", rollback=True)],
    ),
    (
        "Docker engine unreachable: one problem, container checks blind",
        [
            docker(ok=False),
            container(kind="docker_unavailable", reason="Docker unreachable", unknown=True),
            container(
                "db-container",
                service="db",
                kind="docker_unavailable",
                reason="Docker unreachable",
                unknown=True,
            ),
            http("backend-health"),
        ],
        [
            Expect(
                AlertName.DOCKER_API_UNAVAILABLE,
                "docker",
                ("backend-container", "db-container"),
                rollback=False,
            )
        ],
    ),
    (
        "health endpoint fails while its container runs and its dependency is healthy",
        [
            http("backend-health", status=500, depends_on=("database",)),
            container(),
            postgres(),
        ],
        [
            Expect(
                AlertName.HEALTH_CHECK_FAILING,
                "backend-health",
                rollback=True,
                step="curl -s",
            )
        ],
    ),
    (
        "readiness fails",
        [
            http(
                "backend-ready",
                status=503,
                body={"ready": False},
                conditions=("[STATUS] == 200", "[BODY].ready == true"),
                url="http://127.0.0.1:4000/api/ready",
            ),
            http("backend-health"),
        ],
        [Expect(AlertName.SERVICE_NOT_READY, "backend-ready", severity=Severity.WARNING)],
    ),
    (
        "only latency fails: a warning, not a page",
        [http("backend-health", ms=2400.0)],
        [
            Expect(
                AlertName.SLOW_RESPONSES,
                "backend-health",
                severity=Severity.WARNING,
                rollback=False,
            )
        ],
    ),
    (
        "latency and status fail: a health failure",
        [http("backend-health", status=503, ms=2400.0)],
        [Expect(AlertName.HEALTH_CHECK_FAILING, "backend-health", severity=Severity.CRITICAL)],
    ),
    (
        "certificate expires soon",
        [
            http(
                "frontend-tls",
                service="frontend",
                conditions=("[STATUS] == 200", "[CERTIFICATE_EXPIRATION] > 168h"),
                cert_ms=2 * 24 * 3600 * 1000,
            )
        ],
        [
            Expect(
                AlertName.TLS_CERTIFICATE_EXPIRING,
                "frontend-tls",
                severity=Severity.WARNING,
                step="opsmon explain",
            )
        ],
    ),
    (
        "postgres near max_connections while connected",
        [postgres(ratio=0.93)],
        [Expect(AlertName.DATABASE_SATURATED, "database", severity=Severity.WARNING)],
    ),
    (
        "a warning on a dependency does not swallow a dependent's outage",
        [
            http("backend-health", ms=2400.0),
            http(
                "frontend",
                service="frontend",
                status=502,
                conditions=("[STATUS] == 200",),
                depends_on=("backend-health",),
            ),
        ],
        [
            Expect(AlertName.HEALTH_CHECK_FAILING, "frontend"),
            Expect(AlertName.SLOW_RESPONSES, "backend-health"),
        ],
    ),
    (
        "a dependency that failed but is not unhealthy yet is still the root",
        [
            http("backend-health", status=503, body=DB_ERROR, depends_on=("database",)),
            postgres(kind="connection_refused", health=Health.HEALTHY),
        ],
        [Expect(AlertName.DATABASE_CONNECTION_FAILING, "database", ("backend-health",))],
    ),
    (
        "a failed run below the failure threshold is no problem yet",
        [http("backend-health", status=503, health=Health.HEALTHY)],
        [],
    ),
    (
        "the database container is down: postgres check and backend are symptoms",
        [
            container("db-container", service="db", kind="exited", reason="exited with code 137"),
            postgres(kind="connection_refused"),
            http("backend-health", status=503, body=DB_ERROR, depends_on=("database",)),
        ],
        [
            Expect(
                AlertName.DATABASE_CONNECTION_FAILING,
                "db-container",
                ("backend-health", "database"),
                rollback=False,
            )
        ],
    ),
    (
        "the database container stopped on request: the database is down, one problem",
        [
            container("db-container", service="db", kind="stopped", reason="stopped on request"),
            postgres(kind="connection_refused"),
            http("backend-ready", status=503, body={"ready": False}, depends_on=("database",)),
        ],
        [
            Expect(
                AlertName.DATABASE_CONNECTION_FAILING,
                "db-container",
                ("backend-ready", "database"),
                rollback=False,
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("views", "expected"),
    [pytest.param(views, expected, id=name) for name, views, expected in SCENARIOS],
)
def test_scenario(views: list[CheckView], expected: list[Expect], catalogue: Catalogue) -> None:
    """Each scenario yields exactly the expected problems: alert, root cause, affected checks,
    severity, rollback advice, and the runbook command to type first."""
    problems = diagnose(Snapshot(views), catalogue)
    got = sorted((p.alert, p.root, p.affected) for p in problems)
    assert got == sorted((e.alert, e.root, e.affected) for e in expected)
    for want in expected:
        problem = next(p for p in problems if (p.alert, p.root) == (want.alert, want.root))
        runbook = catalogue.for_alert(want.alert)
        assert runbook is not None and problem.runbook == runbook.id
        assert problem.next_step is not None
        assert problem.severity == (want.severity or runbook.severity)
        if want.rollback is not None:
            assert problem.rollback_can_help is want.rollback
        if want.step is not None:
            assert want.step in problem.next_step.command
        assert problem.variables == want.variables
        assert problem.evidence, "every problem carries evidence"
        assert problem.summary and "{" not in problem.summary


def test_evidence_names_each_failed_condition_with_its_value(catalogue: Catalogue) -> None:
    """The evidence quotes every failed condition with the value seen, root first."""
    views = [
        http("backend-health", status=503, body=DB_ERROR, depends_on=("database",)),
        postgres(kind="connection_refused"),
    ]
    (problem,) = diagnose(Snapshot(views), catalogue)
    assert problem.evidence[0] == "database: connection refused by 127.0.0.1:5432"
    assert "backend-health: [STATUS] (503) == 200" in problem.evidence
    assert "backend-health: [BODY].services.database (error) == ok" in problem.evidence


def test_backend_side_database_problem_points_at_database_url(catalogue: Catalogue) -> None:
    """With PostgreSQL itself healthy, the diagnosis says so and sends on-call to DATABASE_URL."""
    views = [http("backend-health", status=503, body=DB_ERROR), postgres()]
    (problem,) = diagnose(Snapshot(views), catalogue)
    assert "DATABASE_URL" in problem.summary
    assert "database: opsmon's own PostgreSQL check connects fine" in problem.evidence
    assert problem.next_step is not None and "DATABASE_URL" in problem.next_step.command


def test_missing_variables_are_named_without_values(catalogue: Catalogue) -> None:
    """EnvironmentVariablesMissing names every missing variable in its summary."""
    view = container(
        kind="environment",
        reason="required environment variables missing or empty: DATABASE_URL, ANTHROPIC_API_KEY",
        MISSING_ENV=["DATABASE_URL", "ANTHROPIC_API_KEY"],
    )
    (problem,) = diagnose(Snapshot([view]), catalogue)
    assert problem.variables == ("DATABASE_URL", "ANTHROPIC_API_KEY")
    assert "DATABASE_URL, ANTHROPIC_API_KEY" in problem.summary


def test_every_rule_severity_matches_its_runbook(catalogue: Catalogue) -> None:
    """A rule's severity is the one its runbook states, so alert and runbook agree."""
    for rule in RULES:
        runbook = catalogue.for_alert(rule.alert)
        assert runbook is not None, rule.alert
        assert rule.severity == runbook.severity, rule.name
        runbook.step(rule.step)  # the step a rule points at exists in its runbook


def test_emitted_alert_names_come_from_the_rule_table() -> None:
    """The names diagnosis can emit are read from its rules, and cover the issue's list."""
    names = emitted_alert_names()
    assert names == {rule.alert for rule in RULES}
    assert AlertName.DATABASE_CONNECTION_FAILING in names
    assert AlertName.ENVIRONMENT_VARIABLES_MISSING in names


class _ScriptedCheck:
    """A check of our own protocol whose results the test scripts (no target involved)."""

    def __init__(self, spec: CheckSpec, results: list[CheckResult]) -> None:
        self.spec = spec
        self._results = results

    async def run(self) -> CheckResult:
        return self._results.pop(0)


async def test_snapshot_from_runners_follows_thresholds(catalogue: Catalogue) -> None:
    """In the daemon, a problem appears only once a check has crossed its failure threshold."""
    spec = CheckSpec(name="backend-health", type="http", service="backend", failure_threshold=2)
    failure = CheckResult.failure("connection_refused", "connection refused by 127.0.0.1:4000")
    check = _ScriptedCheck(spec, [CheckResult(ok=True), failure, failure])
    runner = CheckRunner(check, Metrics(), SystemClock(), [])
    await runner.run_once()
    await runner.run_once()
    assert diagnose(Snapshot.from_runners([runner]), catalogue) == []
    await runner.run_once()
    (problem,) = diagnose(Snapshot.from_runners([runner]), catalogue)
    assert (problem.alert, problem.root) == (AlertName.HEALTH_CHECK_FAILING, "backend-health")
    assert problem.labels == {
        "alertname": "HealthCheckFailing",
        "severity": "critical",
        "check": "backend-health",
        "service": "backend",
    }


EXPRESS_ERROR = {"error": "Internal Server Error"}


def test_absent_database_field_is_no_evidence_against_the_database(catalogue: Catalogue) -> None:
    """A 500 with Express's error body while PostgreSQL is fine is the app's own failure
    (HealthCheckFailing, rollback can help), not DatabaseConnectionFailing."""
    views = [
        http("backend-health", status=500, body=EXPRESS_ERROR, depends_on=("database",)),
        postgres(),
    ]
    (problem,) = diagnose(Snapshot(views), catalogue)
    assert problem.alert is AlertName.HEALTH_CHECK_FAILING
    assert problem.rollback_can_help is True
    assert "backend-health: [BODY].services.database (<missing>) == ok" in problem.evidence


def test_absent_database_field_without_a_postgres_check_blames_the_app(
    catalogue: Catalogue,
) -> None:
    """Without a PostgreSQL check, an error body lacking the field still blames the app."""
    views = [http("backend-health", status=500, body=EXPRESS_ERROR)]
    (problem,) = diagnose(Snapshot(views), catalogue)
    assert problem.alert is AlertName.HEALTH_CHECK_FAILING


def test_absent_database_field_with_the_database_down_blames_the_database(
    catalogue: Catalogue,
) -> None:
    """The database's own failing check is positive evidence, whatever the body lacks."""
    views = [
        http("backend-health", status=500, body=EXPRESS_ERROR, depends_on=("database",)),
        postgres(kind="connection_refused"),
    ]
    (problem,) = diagnose(Snapshot(views), catalogue)
    assert (problem.alert, problem.root) == (AlertName.DATABASE_CONNECTION_FAILING, "database")
    assert problem.affected == ("backend-health",)
