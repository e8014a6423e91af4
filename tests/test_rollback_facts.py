"""A service's health facts and rollback blockers (one function for daemon, CLI and gate)."""

from __future__ import annotations

from monitor.core.health import Health
from monitor.core.result import CheckResult
from monitor.diagnosis import CheckView
from monitor.rollback.facts import health_facts, rollback_blockers

OK = CheckResult(ok=True)


def failed(reason: str, kind: str = "condition") -> CheckResult:
    """A failed run that observed its target."""
    return CheckResult.failure(kind, reason, connected=True)


def view(
    name: str,
    health: Health,
    result: CheckResult | None,
    *,
    type_: str = "http",
    service: str | None = "backend",
    depends_on: tuple[str, ...] = (),
) -> CheckView:
    """One check as diagnosis sees it."""
    return CheckView(name, type_, service, depends_on, health, result)


def test_unhealthy_own_checks_are_the_health_facts() -> None:
    """Only the service's own checks, unhealthy by thresholds, with their reasons."""
    views = [
        view("backend-health", Health.UNHEALTHY, failed("[STATUS] (500) == 200")),
        view("backend-ready", Health.HEALTHY, OK),
        view("frontend-health", Health.UNHEALTHY, failed("down"), service="frontend"),
    ]
    facts = health_facts("backend", views)
    assert facts.unhealthy == ("backend-health",)
    assert facts.evidence == ("backend-health: [STATUS] (500) == 200",)
    assert not facts.crash_looping


def test_a_crash_loop_result_is_a_crash_loop() -> None:
    """A container check reporting a crash loop makes the service crash-loop."""
    views = [view("backend-container", Health.UNKNOWN, failed("crash loop", "crash_loop"))]
    assert health_facts("backend", views).crash_looping


def test_nothing_blocks_a_bad_image() -> None:
    """Only the service's own health check failing: a rollback can help."""
    views = [
        view("backend-health", Health.UNHEALTHY, failed("[STATUS] (500) == 200")),
        view("database", Health.HEALTHY, OK, type_="postgres", service="db"),
    ]
    assert rollback_blockers("backend", views) == ()


def test_a_database_down_blocks_the_rollback() -> None:
    """A postgres check that just failed (not yet unhealthy) is a dependency down."""
    views = [
        view("backend-health", Health.UNHEALTHY, failed("[STATUS] (503) == 200")),
        view(
            "database", Health.HEALTHY, failed("connection refused"), type_="postgres", service="db"
        ),
    ]
    [blocker] = [
        b for b in rollback_blockers("backend", views) if b.cause == "a dependency is down"
    ]
    assert blocker.summary == "database (postgres) is unhealthy too"


def test_a_transitive_dependency_down_blocks_the_rollback() -> None:
    """backend-health -> auth -> cache: the cache failing blocks a rollback of backend."""
    views = [
        view("backend-health", Health.UNHEALTHY, failed("503"), depends_on=("auth",)),
        view("auth", Health.HEALTHY, OK, service="auth", depends_on=("cache",)),
        view("cache", Health.UNHEALTHY, failed("refused"), service="cache"),
    ]
    causes = [b.summary for b in rollback_blockers("backend", views)]
    assert "cache (http) is unhealthy too" in causes


def test_an_unrelated_failing_service_does_not_block() -> None:
    """Another service's failing http check is none of backend's business."""
    views = [
        view("backend-health", Health.UNHEALTHY, failed("503")),
        view("frontend-health", Health.UNHEALTHY, failed("refused"), service="frontend"),
    ]
    assert rollback_blockers("backend", views) == ()
