"""A service's health facts and rollback blockers: one function for the daemon and the CLI."""

from __future__ import annotations

from monitor.core.health import Health
from monitor.core.result import CheckResult
from monitor.core.service_kind import ServiceKind
from monitor.diagnosis import CheckView, Snapshot
from monitor.rollback.facts import DEPENDENCY_DOWN, service_facts

OK = CheckResult(ok=True)


def view(
    name: str,
    type_: str = "http",
    *,
    service: str | None = None,
    depends_on: tuple[str, ...] = (),
    result: CheckResult = OK,
    health: Health | None = None,
) -> CheckView:
    """A check seen with a result (health follows the result unless given)."""
    if health is None:
        health = Health.HEALTHY if result.ok else Health.UNHEALTHY
    return CheckView(name, type_, service, depends_on, health, result)


REFUSED = CheckResult.failure("connection_refused", "connection refused by 127.0.0.1:4000")


def test_unhealthy_own_checks_are_the_health_facts() -> None:
    """The service's own checks unhealthy by their thresholds, with their reasons."""
    snapshot = Snapshot(
        [
            view("backend-health", service="backend", result=REFUSED),
            view("frontend", service="frontend", result=REFUSED),
        ]
    )
    facts = service_facts("backend", snapshot)
    assert facts.health.unhealthy == ("backend-health",)
    assert facts.health.evidence == ("backend-health: connection refused by 127.0.0.1:4000",)
    assert facts.blockers == ()


def test_a_failure_still_inside_its_threshold_is_not_unhealthy() -> None:
    """A single failed run under the failure threshold is no health fact yet."""
    snapshot = Snapshot(
        [view("backend-health", service="backend", result=REFUSED, health=Health.HEALTHY)]
    )
    assert service_facts("backend", snapshot).health.unhealthy == ()


def test_a_transitive_dependency_that_is_down_blocks_the_rollback() -> None:
    """backend -> cache -> queue: the queue down blocks backend's rollback (the CLI used to
    look only one level deep)."""
    snapshot = Snapshot(
        [
            view("backend-health", service="backend", depends_on=("cache",), result=REFUSED),
            view("cache", service="cache", depends_on=("queue",)),
            view("queue", service="queue", result=REFUSED),
        ]
    )
    facts = service_facts("backend", snapshot)
    assert DEPENDENCY_DOWN in [b.cause for b in facts.blockers]
    assert any("queue" in b.summary for b in facts.blockers)


def test_a_database_that_is_down_blocks_even_without_depends_on() -> None:
    """A database outage blocks any rollback: diagnosis says which checks watch a database."""
    refused = CheckResult.failure("connection_refused", "connection refused by 127.0.0.1:5432")
    snapshot = Snapshot(
        [
            view("backend-health", service="backend", result=REFUSED),
            view("database", "postgres", service="db", result=refused),
        ]
    )
    assert snapshot.service_kind("db") is ServiceKind.DATABASE
    assert snapshot.service_kind("backend") is ServiceKind.APP
    facts = service_facts("backend", snapshot)
    assert any(b.summary == "database (postgres) is unhealthy too" for b in facts.blockers)


def test_crash_loop_from_a_check_or_the_tracker() -> None:
    """A crash-loop kind on an own check, or the deploy tracker's count, is a crash loop."""
    looping = CheckResult.failure("crash_loop", "restarted 3 times")
    snapshot = Snapshot([view("backend-container", "container", service="backend", result=looping)])
    assert service_facts("backend", snapshot).health.crash_looping
    quiet = Snapshot([view("backend-container", "container", service="backend")])
    assert not service_facts("backend", quiet).health.crash_looping
    assert service_facts("backend", quiet, crash_looping=True).health.crash_looping
